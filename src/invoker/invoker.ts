// The single entry for every invocation: admission and instance choice (asked of the scaler), the deadline,
// the result, and one record per invocation. It carries out the scaler's decisions on real sandbox processes.
import type { FunctionInit, InvokeMessage } from '../protocol/messages.js';
import type { InvocationResult, SandboxInstance, TimedResult } from '../sandbox/instance.js';
import { resolveEntry } from '../sandbox/code-tree.js';
import type { StemCellPool } from '../sandbox/pool.js';
import { FixedKeepAlive, type KeepAlivePolicy } from '../scaler/policy.js';
import { queueSlots } from '../scaler/queueing.js';
import {
  Scaler,
  type Action,
  type FunctionScaleStats,
  type ProjectLimits,
  type ProjectScaleUsage,
  type ThrottleReason,
} from '../scaler/scaler.js';
import { systemClock, type Clock, type Timer } from '../clock/clock.js';
import type { FunctionRef, FunctionVersion, InvocationRecord, InvocationStatus } from '../store/types.js';
import { functionArn, MAX_SYNC_PAYLOAD_BYTES } from '../config/limits.js';
import type { CodeCache } from './code-cache.js';
import { refKey, type FunctionRegistry } from './registry.js';
import type { InspectTarget } from './types.js';
import {
  MALFORMED_RESPONSE,
  type ColdTimes,
  type InvocationSink,
  type InvocationTrace,
  type InvokeTracer,
  type InvokeOutcome,
  type InvokeRequest,
  type Invoker,
  type LoadCheck,
} from './types.js';
import { timeOrderedId } from '../ids.js';
import { billedMs, DEFAULT_PRICE_TABLE, meter, type PriceTable } from '../metering/price.js';
import { platformReport, platformStart } from '../metering/report-line.js';
import type { ProvisionedMeter } from '../metering/usage-meter.js';

export interface InvokerOptions {
  /** Every finished invocation's record goes to each sink (the invocation log first). */
  sinks: InvocationSink[];
  /** What each record's usage costs; the defaults are AWS's us-east-1 list prices. */
  prices?: PriceTable;
  /** Told, every tick, how long provisioned instances were kept (MB x ms), to bill it. */
  provisionedMeter?: ProvisionedMeter;
  registry: FunctionRegistry;
  clock?: Clock;
  pool: StemCellPool;
  code: CodeCache;
  /** The platform's keep-alive policy; functions may name another in their manifest. */
  keepAlive: KeepAlivePolicy;
  policies?: Record<string, KeepAlivePolicy>;
  maxConcurrency: number;
  memoryBudgetMB: number;
  scaleOut?: { burst: number; perSecond: number };
  /** Let very short invocations wait for a busy warm instance when that is quicker than a cold start. */
  queueing?: boolean;
  region: string;
  accountId: string;
  onError?: (err: unknown, context: string) => void;
  /** A function's own AWS credentials and the API's origin, asked at each instance start and put into its
   *  environment as AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_ENDPOINT_URL. */
  awsEnv?: (fn: FunctionRef & { version: number }) => Promise<FunctionAwsEnv | undefined>;
  /** The function's environment as an instance gets it (its secret references replaced by their values),
   *  asked at each instance start. Without it, the manifest's values as they are. */
  environment?: (fv: FunctionVersion) => Promise<EnvironmentResult>;
  /** Spans for invocations, admission and cold starts; absent when tracing is off. */
  tracer?: InvokeTracer;
  /** V8 code caches of CommonJS entries, produced by deploy checks and given to cold starts (default on). */
  v8CodeCache?: boolean;
  /** Told what became of each code cache: produced by a check, accepted or rejected by a cold start. */
  onCodeCache?: (outcome: 'produced' | 'accepted' | 'rejected') => void;
}

/** An invocation with its span, when tracing is on. */
interface TracedRequest extends InvokeRequest {
  trace?: InvocationTrace;
}

/** An instance's environment, or why it cannot be had (a message for the caller: never a secret's value). */
export type EnvironmentResult = { ok: true; env: Record<string, string> } | { ok: false; message: string };

/** A cold start refused before the function ran, with what the caller is told. */
class StartRefused extends Error {}

/** What an instance is given to call Nimbus's AWS APIs as its function. */
export interface FunctionAwsEnv {
  accessKeyId: string;
  secretAccessKey: string;
  endpointUrl?: string;
}

/** What the invoker has learnt about one function version, to size waits against cold starts. */
interface VersionInfo {
  fv: FunctionVersion;
  /** Exponentially weighted mean of warm invocation durations, ms (0 until measured). */
  warmMs: number;
  /** Exponentially weighted mean of cold invocation durations, ms. */
  coldMs: number;
}

const MAX_REQUEUES = 3;
/** Lambda's limit on a synchronous response. */
const MAX_RESPONSE_BYTES = MAX_SYNC_PAYLOAD_BYTES;

export class DefaultInvoker implements Invoker {
  readonly scaler: Scaler;
  private instances = new Map<string, SandboxInstance>();
  /** Cold starts in progress: their process is being taken from the pool and given the function's code. */
  private startingInstances = new Map<string, Promise<SandboxInstance | undefined>>();
  private versions = new Map<string, VersionInfo>();
  private drainWaiters: (() => void)[] = [];
  private ticker: Timer | null = null;
  private closed = false;
  private starting = 0;
  private readonly clock: Clock;
  /** Bumped by recycle(): a function's instances from before it are retired like an older version's. */
  private generations = new Map<string, number>();

  constructor(private readonly o: InvokerOptions) {
    this.clock = o.clock ?? systemClock;
    this.scaler = new Scaler({
      globalConcurrency: o.maxConcurrency,
      memoryBudgetMB: o.memoryBudgetMB,
      policy: o.keepAlive,
      ...(o.scaleOut ? { scaleOut: o.scaleOut } : {}),
    });
    for (const fv of o.registry.all()) this.register(fv);
    o.registry.onChange((refs) => {
      for (const ref of refs) this.refresh(ref);
    });
    // Keep-alive expiry and provisioned top-ups run on the injected clock, once a second of its time.
    const everySecond = (): void => {
      this.tick();
      if (!this.closed) this.ticker = this.clock.setTimeout(everySecond, 1000);
    };
    this.ticker = this.clock.setTimeout(everySecond, 1000);
    // Provisioned instances of functions deployed before this start come up now, not a second later.
    setImmediate(() => this.tick());
  }

  invoke(req: InvokeRequest): Promise<InvokeOutcome> {
    return this.o.tracer ? this.traced(req, this.o.tracer) : this.run(req);
  }

  private async traced(req: InvokeRequest, tracer: InvokeTracer): Promise<InvokeOutcome> {
    const requestId = req.requestId ?? timeOrderedId();
    const trace = tracer.invocation(req, requestId);
    const outcome = await this.run({ ...req, requestId, trace });
    trace.end(outcome);
    return outcome;
  }

  private async run(req: TracedRequest): Promise<InvokeOutcome> {
    const requestId = req.requestId ?? timeOrderedId();
    const start = this.clock.now();
    const t0 = performance.now();
    const fv = this.closed ? undefined : this.o.registry.get(req.fn);
    const q = req.fn.qualifier;
    // Only the latest version has instances; an older or unknown qualifier names nothing that can run.
    if (!fv || (q !== undefined && q !== '$LATEST' && q !== String(fv.version))) {
      const name = q !== undefined ? `${req.fn.name}:${q}` : req.fn.name;
      return notFound(
        req,
        requestId,
        this.closed ? 'Nimbus is shutting down' : `Function not found: ${this.arn(name)}`,
      );
    }
    let info = this.versions.get(this.keyOf(fv)) ?? this.register(fv);

    for (let attempt = 0; ; attempt++) {
      // Read each attempt: recycle() may have moved the function to a new key meanwhile.
      const key = this.keyOf(fv);
      info = this.versions.get(key) ?? info;
      const slots = this.o.queueing === false ? 0 : queueSlots(info.warmMs, info.coldMs);
      const a = this.scaler.acquire(key, this.clock.now(), slots);
      req.trace?.admitted(a.kind, performance.now(), a.kind === 'throttle' ? a.reason : undefined);
      const cold = a.kind === 'cold' ? req.trace?.coldTimes() : undefined;
      if (a.kind === 'throttle') return this.throttled(req, requestId, fv, start, a.reason);
      let inst: SandboxInstance | undefined;
      let init: FunctionInit | undefined;
      try {
        if (a.kind === 'cold') {
          for (const id of a.evict) this.stopInstance(id);
          // The process, its AWS credentials and its environment, all before anyone may send to it: overlapping
          // invocations (perInstance > 1) wait on `starting`, which settles after this path resumes, so the
          // first frame the instance receives is the one carrying init.
          const prepared = Promise.all([
            this.startInstance(a.instance, fv, cold),
            this.awsOf(fv),
            this.envOf(fv),
            this.v8CacheOf(fv),
          ]);
          const starting = prepared.then(([i, , e]) => (e.ok ? i : undefined));
          // Awaited only by overlapping invocations, if any; this path reports a failed start itself.
          starting.catch(() => undefined);
          this.startingInstances.set(a.instance, starting);
          let ready: Awaited<typeof prepared>;
          try {
            ready = await prepared;
          } finally {
            this.startingInstances.delete(a.instance);
          }
          const [started, awsEnv, resolved, v8] = ready;
          inst = started;
          if (!resolved.ok) {
            this.stopInstance(a.instance);
            throw new StartRefused(resolved.message);
          }
          init = this.init(fv, inst, awsEnv, resolved.env, v8);
        } else {
          // A warm choice may be an instance whose cold start is still under way: wait for its process.
          inst =
            this.instances.get(a.instance) ??
            (await this.startingInstances.get(a.instance)?.catch(() => undefined));
        }
      } catch (err) {
        const refused = err instanceof StartRefused;
        if (!refused) this.o.onError?.(err, `start ${fv.name}`);
        this.carryOut(this.scaler.release(a.instance, this.clock.now(), false));
        const outcome = refused
          ? this.failure(requestId, fv, err.message, t0, 'Nimbus.SecretUnavailable')
          : this.failure(requestId, fv, 'the sandbox could not be started', t0);
        this.record(req, outcome, start, fv, 0, null);
        this.settled();
        return outcome;
      }
      if (!inst) {
        // The scaler handed out an instance whose process is already gone: forget it and choose again.
        this.carryOut(this.scaler.release(a.instance, this.clock.now(), false));
        this.settled();
        continue;
      }
      // One literal, absent fields undefined (JSON leaves them out): no spread objects on the warm path.
      const msg: InvokeMessage = {
        t: 'invoke',
        id: requestId,
        event: req.event,
        // The sandbox compares this with its own wall clock (getRemainingTimeInMillis), so it is real time.
        deadline: Date.now() + fv.config.timeout * 1000,
        init,
        clientContext: req.clientContext,
        traceId: req.trace ? req.trace.header : req.traceId,
      };
      if (req.trace) req.propagate?.(req.trace.traceparent);
      if (cold && init) cold.sent = performance.now();
      const provisioned = this.scaler.isProvisioned(a.instance);
      const result = await inst.invoke(msg, fv.config.timeout);
      if (init) this.codeCacheUsed(fv, result);
      const healthy = result.kind === 'ok' || result.kind === 'error';
      if (!healthy && !inst.dead) inst.stop();
      this.carryOut(this.scaler.release(a.instance, this.clock.now(), healthy));
      this.settled();
      if (result.kind === 'requeue') {
        if (attempt < MAX_REQUEUES) continue;
        const outcome = this.failure(requestId, fv, 'no instance could take the invocation', t0);
        this.record(req, outcome, start, fv, 0, null);
        return outcome;
      }
      // Billed and recorded: the time it ran, not the time it waited behind another invocation.
      const durationMs = result.durationMs;
      learn(info, a.kind === 'cold', a.kind === 'cold' ? performance.now() - t0 : durationMs);
      const outcome = checked(toOutcome(requestId, fv, result, durationMs, a.kind === 'cold'), req);
      const rss = Math.max(result.rss, inst.polledRss);
      this.record(req, outcome, start, fv, rss, result.initMs ?? null, provisioned);
      return outcome;
    }
  }

  private register(fv: FunctionVersion): VersionInfo {
    const key = this.keyOf(fv);
    const cfg = fv.config;
    this.scaler.register({
      key,
      name: refKey(fv),
      project: fv.project,
      memoryMB: cfg.memory,
      reserved: cfg.reservedConcurrency,
      provisioned: cfg.provisionedConcurrency ?? 0,
      perInstance: cfg.perInstanceConcurrency ?? 1,
      policy: this.policyFor(cfg.keepAlive),
      scaleOut: cfg.scaleOutPer10s
        ? { burst: cfg.scaleOutPer10s, perSecond: cfg.scaleOutPer10s / 10 }
        : undefined,
    });
    const info: VersionInfo = { fv, warmMs: 0, coldMs: 0 };
    this.versions.set(key, info);
    this.o.pool.ensure(cfg.memory, cfg.ephemeralStorage, cfg.network);
    return info;
  }

  private fixedPolicies = new Map<number, KeepAlivePolicy>();

  /** The manifest names a policy, or a fixed window in seconds (one shared policy object per window). */
  private policyFor(keepAlive: 'fixed' | 'hybrid' | number | undefined): KeepAlivePolicy | undefined {
    if (keepAlive === undefined) return undefined;
    if (typeof keepAlive === 'string') return this.o.policies?.[keepAlive];
    let p = this.fixedPolicies.get(keepAlive);
    if (!p) this.fixedPolicies.set(keepAlive, (p = new FixedKeepAlive(keepAlive * 1000)));
    return p;
  }

  /** A function was deployed or removed: serve the latest version, retire the others. */
  private refresh(ref: FunctionRef): void {
    const current = this.o.registry.get(ref);
    const currentKey = current ? this.keyOf(current) : null;
    const name = refKey(ref);
    for (const [key, info] of this.versions) {
      if (refKey(info.fv) !== name || key === currentKey) continue;
      this.carryOut(this.scaler.retire(key));
      this.versions.delete(key);
    }
    if (current) this.register(current);
    else this.scaler.forgetName(name);
    this.tick();
  }

  /** The scaler's key of a function version: its generation counts the recycles of its instances. */
  private keyOf(fv: FunctionVersion): string {
    const gen = this.generations.get(refKey(fv)) ?? 0;
    return gen === 0 ? versionKey(fv) : `${versionKey(fv)}:g${gen}`;
  }

  /**
   * Retires the instances of these functions (idle ones stop now, busy ones when they finish), so that the
   * next invocation starts a new instance with the environment as it is now: after a secret it references
   * changed. Provisioned instances are started again by the next tick.
   */
  recycle(refs: readonly FunctionRef[]): void {
    for (const ref of refs) {
      const current = this.o.registry.get(ref);
      if (!current) continue;
      const oldKey = this.keyOf(current);
      const old = this.versions.get(oldKey);
      this.generations.set(refKey(ref), (this.generations.get(refKey(ref)) ?? 0) + 1);
      this.carryOut(this.scaler.retire(oldKey));
      this.versions.delete(oldKey);
      const info = this.register(current);
      // What was learnt about its durations still holds: the code is the same.
      if (old) Object.assign(info, { warmMs: old.warmMs, coldMs: old.coldMs });
    }
    this.tick();
  }

  private async startInstance(id: string, fv: FunctionVersion, times?: ColdTimes): Promise<SandboxInstance> {
    // Until linked, the code must not be collected by a deploy that superseded this version meanwhile.
    const release = this.o.code.hold(fv.codeSha256);
    let inst: SandboxInstance;
    try {
      const code = await this.o.code.tree(fv.codeSha256);
      const inspected = this.inspected?.name === refKey(fv) ? this.inspected : undefined;
      if (times) times.poolStart = performance.now();
      inst = inspected
        ? await this.o.pool.bootInspectable(fv.config.memory, fv.config.ephemeralStorage, fv.config.network)
        : await this.o.pool.acquire(fv.config.memory, fv.config.ephemeralStorage, fv.config.network);
      if (times) times.linkStart = times.poolEnd = performance.now();
      if (inspected) {
        inspected.instances.push(inst);
        if (inspected.attached) inst.suspendTimeouts(true);
        inst.onExitOnce(() => {
          inspected.instances = inspected.instances.filter((i) => i !== inst);
        });
      }
      try {
        await inst.assign(versionKey(fv), code, fv.config.perInstanceConcurrency ?? 1);
        if (times) times.linkEnd = performance.now();
      } catch (err) {
        inst.stop();
        throw err;
      }
    } finally {
      release();
    }
    this.instances.set(id, inst);
    inst.onExitOnce(() => {
      if (this.instances.get(id) === inst) this.instances.delete(id);
      this.scaler.failed(id);
    });
    return inst;
  }

  /**
   * Loads a version that is not deployed yet, as its first cold start would (a stem cell of its memory and
   * /tmp size, its code linked in, its environment, the runtime's loader) but runs no handler, then stops the
   * process and waits for its folder to go. The scaler never hears of it: a deploy's check, not an instance.
   */
  async checkLoad(fv: FunctionVersion): Promise<LoadCheck> {
    const [code, aws, env] = await Promise.all([
      this.o.code.tree(fv.codeSha256),
      this.awsOf(fv),
      this.envOf(fv),
    ]);
    if (!env.ok) return { ok: false, environment: env.message };
    const inst = await this.o.pool.acquire(fv.config.memory, fv.config.ephemeralStorage, fv.config.network);
    const gone = new Promise<void>((resolve) => {
      if (inst.dead) resolve();
      else inst.onExitOnce(() => resolve());
    });
    try {
      await inst.assign(`check:${versionKey(fv)}`, code, fv.config.perInstanceConcurrency ?? 1);
      const init = this.init(fv, inst, await aws, env.env);
      const result = await inst.invoke(
        {
          t: 'invoke',
          id: `check-${timeOrderedId()}`,
          event: null,
          deadline: 0,
          warmup: true,
          init: {
            ...init,
            ...(this.o.v8CodeCache !== false && init.entry ? { produceCodeCache: true } : {}),
            describeHandler: true,
          },
        },
        fv.config.timeout,
      );
      const produced = result.codeCache?.produced;
      if (result.kind === 'ok' && produced !== undefined) {
        // Kept only for a check that loaded: a refused deploy leaves nothing (CodeCache.discard).
        await this.o.code.putV8Cache(fv.codeSha256, v8Key(fv), produced).then(
          () => this.o.onCodeCache?.('produced'),
          (err: unknown) => this.o.onError?.(err, `code cache of ${fv.name}`),
        );
      }
      if (result.kind !== 'ok') return { ok: false, result, codeDir: inst.codeDirInside };
      return result.handler ? { ok: true, handler: result.handler } : { ok: true };
    } finally {
      inst.stop();
      await gone;
    }
  }

  /** Provisioned and pre-warmed instances: started and initialized with no invocation. */
  private async warmUp(id: string, key: string, reason: 'provisioned' | 'prewarm'): Promise<void> {
    const info = this.versions.get(key);
    if (!info) return this.scaler.failed(id);
    this.starting++;
    try {
      const aws = this.awsOf(info.fv);
      const env = this.envOf(info.fv);
      const v8 = this.v8CacheOf(info.fv);
      const inst = await this.startInstance(id, info.fv);
      const resolved = await env;
      if (!resolved.ok) {
        inst.stop();
        throw new Error(`${info.fv.name} was not warmed up: ${resolved.message}`);
      }
      const r = await inst.invoke(
        {
          t: 'invoke',
          id: `warmup-${id}`,
          event: null,
          deadline: 0,
          warmup: true,
          init: {
            ...this.init(info.fv, inst, await aws, resolved.env, await v8),
            ...(reason === 'provisioned' ? { initializationType: 'provisioned-concurrency' as const } : {}),
          },
        },
        info.fv.config.timeout,
      );
      this.codeCacheUsed(info.fv, r);
      if (r.kind === 'ok' && !this.closed) this.scaler.started(id, this.clock.now());
      else {
        inst.stop();
        this.scaler.failed(id);
      }
    } catch (err) {
      this.o.onError?.(err, `warm up ${key}`);
      this.scaler.failed(id);
    } finally {
      this.starting--;
      this.settled();
    }
  }

  private carryOut(actions: Action[]): void {
    for (const a of actions) {
      if (a.kind === 'stop') this.stopInstance(a.instance);
      else {
        for (const id of a.evict) this.stopInstance(id);
        void this.warmUp(a.instance, a.key, a.reason);
      }
    }
  }

  private stopInstance(id: string): void {
    const inst = this.instances.get(id);
    this.instances.delete(id);
    inst?.stop();
  }

  private tick(): void {
    if (this.closed) return;
    this.meterProvisioned();
    this.carryOut(this.scaler.tick(this.clock.now()));
  }

  private lastProvisionedAt: number | null = null;

  /** The time since the last tick that ready provisioned instances were kept, as MB x ms per function. */
  private meterProvisioned(): void {
    const now = this.clock.now();
    const since = this.lastProvisionedAt ?? now;
    this.lastProvisionedAt = now;
    const meter = this.o.provisionedMeter;
    if (!meter || now <= since) return;
    for (const [key, count] of this.scaler.provisionedReady()) {
      const fv = this.versions.get(key)?.fv;
      if (fv) meter.provisioned(fv.project, fv.name, count * fv.config.memory * (now - since));
    }
  }

  /** The version's V8 code cache, if a deploy check produced one on this node. Never rejects. */
  private async v8CacheOf(fv: FunctionVersion): Promise<string | undefined> {
    if (this.o.v8CodeCache === false) return undefined;
    try {
      return await this.o.code.v8Cache(fv.codeSha256, v8Key(fv));
    } catch {
      return undefined;
    }
  }

  /** A cache V8 refused (another Node, other flags, a damaged file) is deleted, so it is not sent again. */
  private codeCacheUsed(fv: FunctionVersion, result: TimedResult): void {
    const used = result.codeCache?.used;
    if (used === undefined) return;
    this.o.onCodeCache?.(used);
    if (used === 'rejected') {
      this.o.code
        .dropV8Cache(fv.codeSha256, v8Key(fv))
        .catch((err: unknown) => this.o.onError?.(err, `code cache of ${fv.name}`));
    }
  }

  /** Never rejects: without credentials the function still runs (and its AWS calls are refused). */
  private async awsOf(fv: FunctionVersion): Promise<FunctionAwsEnv | undefined> {
    try {
      return await this.o.awsEnv?.({ project: fv.project, name: fv.name, version: fv.version });
    } catch (err) {
      this.o.onError?.(err, `credentials of ${fv.name}`);
      return undefined;
    }
  }

  /** Never rejects: an environment that cannot be had is a refused start with a message for the caller. */
  private async envOf(fv: FunctionVersion): Promise<EnvironmentResult> {
    if (!this.o.environment) return { ok: true, env: fv.config.environment };
    try {
      return await this.o.environment(fv);
    } catch (err) {
      this.o.onError?.(err, `environment of ${fv.name}`);
      return { ok: false, message: "the function's environment could not be read; try again" };
    }
  }

  private init(
    fv: FunctionVersion,
    inst: SandboxInstance,
    aws: FunctionAwsEnv | undefined,
    environment: Record<string, string>,
    v8?: string,
  ): FunctionInit {
    const name = fv.name;
    const entry = inst.code ? resolveEntry(inst.code, fv.config.handler, inst.codeDirInside) : undefined;
    return {
      functionName: name,
      functionVersion: String(fv.version),
      handler: fv.config.handler,
      codeDir: inst.codeDirInside,
      memoryMB: fv.config.memory,
      timeoutSec: fv.config.timeout,
      region: this.o.region,
      invokedFunctionArn: this.arn(name),
      logGroupName: `/aws/lambda/${name}`,
      logStreamName: `${new Date().toISOString().slice(0, 10).replace(/-/g, '/')}/[${fv.version}]${inst.id}`,
      // Without bubblewrap there is no private /tmp; TMPDIR (os.tmpdir()) points at the instance's own.
      env: {
        ...environment,
        ...logVariables(fv.config),
        TMPDIR: inst.tmpDirInside,
        ...awsVariables(aws && { ...aws, endpointUrl: inst.endpointInside(aws.endpointUrl) }),
      },
      concurrency: inst.concurrency,
      ...(inst.awsSocketInside !== undefined ? { awsSocket: inst.awsSocketInside } : {}),
      ...(inst.inspectSocketInside !== undefined ? { inspectSocket: inst.inspectSocketInside } : {}),
      ...(entry ? { entry } : {}),
      ...(entry?.format === 'commonjs' && v8 !== undefined ? { codeCache: v8 } : {}),
    };
  }

  /** The one function being debugged (`nimbus dev --inspect`), its inspectable instances, newest last. */
  private inspected: { name: string; attached: boolean; instances: SandboxInstance[] } | undefined =
    undefined;

  /**
   * Makes the function's instances inspectable from now on: its current ones are retired, and each new one
   * boots outside the stem-cell pool with an inspector (sandbox/instance.ts). One function at a time.
   */
  inspect(ref: FunctionRef): InspectTarget {
    const name = refKey(ref);
    if (this.inspected) throw new Error(`${this.inspected.name} is being inspected already`);
    const state = { name, attached: false, instances: [] as SandboxInstance[] };
    this.inspected = state;
    this.recycle([ref]);
    return {
      socket: () => state.instances.filter((i) => !i.dead).at(-1)?.inspectSocket,
      attached: (on) => {
        state.attached = on;
        for (const i of state.instances) i.suspendTimeouts(on);
      },
      close: () => {
        if (this.inspected !== state) return;
        this.inspected = undefined;
        // Back to ordinary instances, with the permission model and their timeouts.
        this.recycle([ref]);
      },
    };
  }

  arn(name: string): string {
    return functionArn(this.o.region, this.o.accountId, name);
  }

  private throttled(
    req: TracedRequest,
    requestId: string,
    fv: FunctionVersion,
    start: number,
    reason: ThrottleReason,
  ): InvokeOutcome {
    const outcome: InvokeOutcome = {
      requestId,
      project: fv.project,
      functionName: fv.name,
      version: String(fv.version),
      status: 'throttled',
      throttleReason: reason,
      error: {
        errorType: 'TooManyRequestsException',
        errorMessage: this.throttleMessage(fv.project, reason),
        trace: [],
      },
      durationMs: 0,
      cold: false,
      logs: '',
    };
    this.record(req, outcome, start, fv, 0, null);
    return outcome;
  }

  /** A project quota's throttle says which quota and how to raise it; the others say the reason. */
  private throttleMessage(project: string, reason: ThrottleReason): string {
    const u = this.scaler.projectUsage(project);
    if (reason === 'ProjectConcurrencyQuotaExceeded') {
      return (
        `Rate Exceeded. Project "${project}" is at its concurrency quota of ${u.concurrency} concurrent ` +
        `executions on this node; raise it with \`nimbus project quota ${project} --concurrency <n>\``
      );
    }
    if (reason === 'ProjectMemoryQuotaExceeded') {
      return (
        `Rate Exceeded. Project "${project}" is at its memory quota of ${u.memoryMB} MB of instances on this ` +
        `node; raise it with \`nimbus project quota ${project} --memory <MB>\``
      );
    }
    return `Rate Exceeded. (${reason})`;
  }

  /** A project's concurrency and memory quotas on this node (null: none), effective at the next admission. */
  setProjectLimits(project: string, limits: ProjectLimits): void {
    this.scaler.setProjectLimits(project, limits);
  }

  /** What a project runs on this node now, and its caps. */
  projectUsage(project: string): ProjectScaleUsage {
    return this.scaler.projectUsage(project);
  }

  private failure(
    requestId: string,
    fv: FunctionVersion,
    message: string,
    t0: number,
    errorType = 'Nimbus.SandboxError',
  ): InvokeOutcome {
    return {
      requestId,
      project: fv.project,
      functionName: fv.name,
      version: String(fv.version),
      status: 'unhandled',
      error: { errorType, errorMessage: message, trace: [] },
      durationMs: performance.now() - t0,
      cold: true,
      logs: '',
    };
  }

  private record(
    req: TracedRequest,
    o: InvokeOutcome,
    start: number,
    fv: FunctionVersion,
    maxRss: number,
    initMs: number | null,
    provisioned = false,
  ): void {
    const throttled = o.status === 'throttled';
    // The host times a cold start from sending to answer, init included: the record's duration is the
    // handler's alone, as Lambda's, and the bill is both (Lambda bills init since August 2025).
    const durationMs = Math.round(Math.max(0, o.durationMs - (initMs ?? 0)) * 1000) / 1000;
    const billed = throttled ? 0 : billedMs(durationMs, initMs);
    const prices = this.o.prices ?? DEFAULT_PRICE_TABLE;
    const usage = meter(billed, fv.config.memory, throttled, prices, provisioned);
    const rec: InvocationRecord = {
      requestId: o.requestId,
      project: fv.project,
      functionName: fv.name,
      version: o.version,
      trigger: req.trigger,
      attempt: req.attempt ?? 1,
      start,
      durationMs,
      billedMs: billed,
      memoryMB: fv.config.memory,
      requests: usage.requests,
      gbSeconds: usage.gbSeconds,
      costPicoUsd: usage.costPicoUsd,
      maxRssBytes: maxRss,
      cold: o.cold,
      initMs,
      status: o.status as InvocationStatus,
      errorType: o.error?.errorType ?? null,
      errorMessage: o.error?.errorMessage ?? null,
      logs: o.logs,
      traceId: req.trace ? req.trace.traceId : null,
    };
    if (fv.config.logFormat === 'JSON' && !throttled) rec.logs = withPlatformRecords(rec, fv.config);
    o.record = rec;
    for (const sink of this.o.sinks) {
      try {
        sink.write(rec);
      } catch (err) {
        // A sink must not throw; if one does, the others still get the record and the caller its result.
        this.o.onError?.(err, `invocation sink, request ${rec.requestId}`);
      }
    }
  }

  private settled(): void {
    if (this.scaler.totals.inFlight === 0 && this.starting === 0)
      for (const w of this.drainWaiters.splice(0)) w();
  }

  /** One row per function version holding instances; name is the plain function name. */
  stats(): (FunctionScaleStats & { project: string; version: number })[] {
    return this.scaler.stats().flatMap((s) => {
      const info = this.versions.get(s.key);
      if (!info) return [];
      return [{ ...s, project: info.fv.project, name: info.fv.name, version: info.fv.version }];
    });
  }

  /** The keep-alive policy a function gets (for display when it has no instances yet). */
  policyName(ref: FunctionRef): string {
    const fv = this.o.registry.get(ref);
    return (this.policyFor(fv?.config.keepAlive) ?? this.o.keepAlive).name;
  }

  /** Event invocations of the function that may start now, leaving synchronous callers `1 - share` of its
   *  reserved concurrency and of the global limit (see Scaler.headroom). 0 for an unknown function. */
  headroom(ref: FunctionRef, share: number): number {
    const fv = this.o.registry.get(ref);
    if (!fv || this.closed) return 0;
    return this.scaler.headroom(refKey(fv), fv.config.reservedConcurrency, share);
  }

  get inFlightCount(): number {
    return this.scaler.totals.inFlight;
  }

  /** Resolves once nothing is running (new invocations are still accepted until close()). */
  drain(): Promise<void> {
    if (this.scaler.totals.inFlight === 0 && this.starting === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  close(): void {
    // The provisioned instances' last second is billed before they stop.
    if (!this.closed) this.meterProvisioned();
    this.closed = true;
    this.ticker?.cancel();
    for (const inst of this.instances.values()) inst.stop();
    this.instances.clear();
  }
}

function versionKey(fv: FunctionVersion): string {
  return `${refKey(fv)}:${fv.version}:${fv.codeSha256.slice(0, 12)}`;
}

/** What a version's V8 code cache depends on besides its code: the entry (by handler) and the heap flag (memory). */
function v8Key(fv: FunctionVersion): string {
  return `${fv.config.handler}\0${fv.config.memory}`;
}

/** Running means of durations; the first measurement seeds them. */
function learn(info: VersionInfo, cold: boolean, ms: number): void {
  if (cold) info.coldMs = info.coldMs === 0 ? ms : info.coldMs * 0.8 + ms * 0.2;
  else info.warmMs = info.warmMs === 0 ? ms : info.warmMs * 0.9 + ms * 0.1;
}

function toOutcome(
  requestId: string,
  fv: FunctionVersion,
  r: Exclude<InvocationResult, { kind: 'requeue' }>,
  durationMs: number,
  cold: boolean,
): InvokeOutcome {
  const o: InvokeOutcome = {
    requestId,
    project: fv.project,
    functionName: fv.name,
    version: String(fv.version),
    status: 'ok',
    durationMs,
    cold,
    logs: r.logs,
  };
  if (r.kind === 'ok' && r.payload.length > MAX_RESPONSE_BYTES) {
    // As Lambda: a response over 6 MB is the function's error, not something to pass on.
    o.status = 'error';
    o.error = {
      errorType: 'Function.ResponseSizeTooLarge',
      errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).`,
      trace: [],
    };
    return o;
  }
  if (r.kind === 'ok') {
    o.payload = r.payload;
    return o;
  }
  o.status =
    r.kind === 'timeout'
      ? 'timeout'
      : r.kind === 'oom'
        ? 'oom'
        : r.kind === 'unhandled'
          ? 'unhandled'
          : 'error';
  o.error = r.error;
  return o;
}

/** An ok answer the caller cannot use (checkPayload gave a reason) is the function's error. */
function checked(o: InvokeOutcome, req: InvokeRequest): InvokeOutcome {
  if (o.status !== 'ok' || !req.checkPayload) return o;
  const problem = req.checkPayload(o.payload ?? 'null');
  if (problem === undefined) return o;
  const { payload: _unused, ...rest } = o;
  return {
    ...rest,
    status: 'error',
    error: { errorType: MALFORMED_RESPONSE, errorMessage: problem, trace: [] },
  };
}

function notFound(req: InvokeRequest, requestId: string, message: string): InvokeOutcome {
  return {
    requestId,
    project: req.fn.project,
    functionName: req.fn.name,
    version: '0',
    status: 'not_found',
    error: { errorType: 'ResourceNotFoundException', errorMessage: message, trace: [] },
    durationMs: 0,
    cold: false,
    logs: '',
  };
}

/** Lambda's advanced logging controls reach the runtime as AWS sets them: only with the JSON format. */
function logVariables(cfg: FunctionVersion['config']): Record<string, string> {
  if (cfg.logFormat !== 'JSON') return {};
  return { AWS_LAMBDA_LOG_FORMAT: 'JSON', AWS_LAMBDA_LOG_LEVEL: cfg.applicationLogLevel ?? 'INFO' };
}

/**
 * JSON format: the record's logs carry platform.start before the function's lines and platform.report after
 * them, as CloudWatch holds them, unless systemLogLevel is WARN (both are INFO records).
 */
function withPlatformRecords(rec: InvocationRecord, cfg: FunctionVersion['config']): string {
  if (cfg.systemLogLevel === 'WARN') return rec.logs;
  const logs = rec.logs === '' || rec.logs.endsWith('\n') ? rec.logs : `${rec.logs}\n`;
  const end = rec.start + Math.ceil(rec.durationMs + (rec.initMs ?? 0));
  return platformStart(rec.requestId, rec.version, rec.start) + logs + platformReport(rec, end);
}

/** The manifest cannot set AWS_* (reserved), so these are the platform's alone. */
function awsVariables(aws: FunctionAwsEnv | undefined): Record<string, string> {
  if (!aws) return {};
  return {
    AWS_ACCESS_KEY_ID: aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.secretAccessKey,
    ...(aws.endpointUrl !== undefined ? { AWS_ENDPOINT_URL: aws.endpointUrl } : {}),
  };
}

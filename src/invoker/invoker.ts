// The single entry for every invocation: admission, instance choice (warm, stem cell, or 429), deadline,
// result, and one record per invocation. It knows sandboxes only through the pool and instance types.
import { randomUUID } from 'node:crypto';
import type { FunctionInit, InvokeMessage } from '../protocol/messages.js';
import type { SandboxInstance, InvocationResult } from '../sandbox/instance.js';
import type { StemCellPool } from '../sandbox/pool.js';
import { admit, type KeepAlivePolicy } from '../scaler/admission.js';
import type { FunctionVersion, InvocationRecord, InvocationStatus, Store } from '../store/types.js';
import type { CodeCache } from './code-cache.js';
import type { FunctionRegistry } from './registry.js';
import type { InvokeOutcome, InvokeRequest, Invoker } from './types.js';

export interface InvokerOptions {
  store: Store;
  registry: FunctionRegistry;
  pool: StemCellPool;
  code: CodeCache;
  keepAlive: KeepAlivePolicy;
  maxConcurrency: number;
  region: string;
  accountId: string;
  onError?: (err: unknown, context: string) => void;
}

/** Instances of one function version. */
interface VersionState {
  fv: FunctionVersion;
  idle: SandboxInstance[];
  inFlight: number;
  cold: number;
  warm: number;
  throttled: number;
}

export interface FunctionStats {
  name: string;
  version: number;
  idle: number;
  busy: number;
  cold: number;
  warm: number;
  throttled: number;
}

export class DefaultInvoker implements Invoker {
  private states = new Map<string, VersionState>();
  /** In-flight per function name (all versions), for reserved concurrency. */
  private perFunction = new Map<string, number>();
  private inFlight = 0;
  private drainWaiters: (() => void)[] = [];
  private sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: InvokerOptions) {
    this.sweeper = setInterval(() => this.sweep(), 1000);
    this.sweeper.unref();
    o.registry.onChange((names) => {
      for (const name of names) this.retireOldVersions(name);
    });
  }

  async invoke(req: InvokeRequest): Promise<InvokeOutcome> {
    const requestId = req.requestId ?? randomUUID();
    const start = Date.now();
    const t0 = performance.now();
    const fv = this.o.registry.get(req.functionName);
    if (!fv || this.closed) {
      return {
        requestId,
        functionName: req.functionName,
        version: '0',
        status: 'not_found',
        error: {
          errorType: 'ResourceNotFoundException',
          errorMessage: this.closed
            ? 'Nimbus is shutting down'
            : `Function not found: ${this.arn(req.functionName)}`,
          trace: [],
        },
        durationMs: 0,
        cold: false,
        logs: '',
      };
    }
    const key = `${fv.name}:${fv.version}`;
    let state = this.states.get(key);
    if (!state) {
      state = { fv, idle: [], inFlight: 0, cold: 0, warm: 0, throttled: 0 };
      this.states.set(key, state);
    }
    const fnInFlight = this.perFunction.get(fv.name) ?? 0;
    const decision = admit({
      functionInFlight: fnInFlight,
      reserved: fv.config.reservedConcurrency,
      globalInFlight: this.inFlight,
      globalLimit: this.o.maxConcurrency,
    });
    if (!decision.ok) {
      state.throttled++;
      const outcome: InvokeOutcome = {
        requestId,
        functionName: fv.name,
        version: String(fv.version),
        status: 'throttled',
        error: {
          errorType: 'TooManyRequestsException',
          errorMessage: `Rate Exceeded. (${decision.reason})`,
          trace: [],
        },
        durationMs: 0,
        cold: false,
        logs: '',
      };
      this.record(req, outcome, start, fv, 0, null);
      return outcome;
    }

    this.inFlight++;
    this.perFunction.set(fv.name, fnInFlight + 1);
    state.inFlight++;
    try {
      let inst = state.idle.pop();
      const cold = inst === undefined;
      let init: FunctionInit | undefined;
      if (!inst) {
        state.cold++;
        const codeDir = this.o.code.peek(fv.codeSha256) ?? (await this.o.code.dir(fv.codeSha256));
        inst = await this.o.pool.acquire(fv.config.memory);
        inst.assign(key, codeDir);
        init = this.init(fv, inst);
      } else {
        state.warm++;
      }
      const msg: InvokeMessage = {
        t: 'invoke',
        id: requestId,
        event: req.event,
        deadline: Date.now() + fv.config.timeout * 1000,
        ...(init ? { init } : {}),
        ...(req.clientContext !== undefined ? { clientContext: req.clientContext } : {}),
      };
      const result = await inst.invoke(msg, fv.config.timeout);
      const durationMs = performance.now() - t0;
      this.release(state, inst, result);
      const outcome = toOutcome(requestId, fv, result, durationMs, cold);
      this.record(req, outcome, start, fv, Math.max(result.rss, inst.polledRss), result.initMs ?? null);
      return outcome;
    } catch (err) {
      this.o.onError?.(err, `invoke ${fv.name}`);
      const outcome: InvokeOutcome = {
        requestId,
        functionName: fv.name,
        version: String(fv.version),
        status: 'unhandled',
        error: {
          errorType: 'Nimbus.SandboxError',
          errorMessage: 'the sandbox could not be started',
          trace: [],
        },
        durationMs: performance.now() - t0,
        cold: true,
        logs: '',
      };
      this.record(req, outcome, start, fv, 0, null);
      return outcome;
    } finally {
      state.inFlight--;
      this.inFlight--;
      const left = (this.perFunction.get(fv.name) ?? 1) - 1;
      if (left === 0) this.perFunction.delete(fv.name);
      else this.perFunction.set(fv.name, left);
      if (this.inFlight === 0) for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  private init(fv: FunctionVersion, inst: SandboxInstance): FunctionInit {
    const name = fv.name;
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
      env: { ...fv.config.environment, TMPDIR: inst.tmpDirInside },
    };
  }

  arn(name: string): string {
    return `arn:aws:lambda:${this.o.region}:${this.o.accountId}:function:${name}`;
  }

  /** Healthy instances go back to the idle stack (LIFO keeps the warmest on top); broken ones are gone. */
  private release(state: VersionState, inst: SandboxInstance, result: InvocationResult): void {
    if (result.kind === 'ok' || result.kind === 'error') {
      const current = this.o.registry.get(state.fv.name);
      if (
        !this.closed &&
        current?.version === state.fv.version &&
        current.codeSha256 === state.fv.codeSha256
      ) {
        state.idle.push(inst);
        return;
      }
    }
    // init failures leave a half-loaded module; unhandled, timeout and oom already killed the process.
    if (result.kind === 'init' || this.closed || !inst.dead) inst.stop();
  }

  private record(
    req: InvokeRequest,
    o: InvokeOutcome,
    start: number,
    fv: FunctionVersion,
    maxRss: number,
    initMs: number | null,
  ): void {
    const rec: InvocationRecord = {
      requestId: o.requestId,
      functionName: fv.name,
      version: o.version,
      trigger: req.trigger,
      start,
      durationMs: Math.round(o.durationMs * 1000) / 1000,
      billedMs: o.status === 'throttled' ? 0 : Math.max(1, Math.ceil(o.durationMs)),
      memoryMB: fv.config.memory,
      maxRssBytes: maxRss,
      cold: o.cold,
      initMs,
      status: o.status as InvocationStatus,
      errorType: o.error?.errorType ?? null,
      errorMessage: o.error?.errorMessage ?? null,
      logs: o.logs,
    };
    this.o.store.appendInvocation(rec);
  }

  private retireOldVersions(name: string): void {
    const current = this.o.registry.get(name);
    for (const [key, state] of this.states) {
      if (state.fv.name !== name) continue;
      if (current && current.version === state.fv.version && current.codeSha256 === state.fv.codeSha256)
        continue;
      for (const inst of state.idle.splice(0)) inst.stop();
      if (state.inFlight === 0) this.states.delete(key);
    }
    if (current) this.o.pool.ensure(current.config.memory);
  }

  private sweep(): void {
    const now = Date.now();
    for (const state of this.states.values()) {
      // Idle instances are stacked oldest-first; stop from the bottom while the policy says so.
      while (state.idle.length > 0 && this.o.keepAlive.shouldStop(state.idle[0]!.lastUsed, now)) {
        state.idle.shift()!.stop();
      }
      for (let i = state.idle.length - 1; i >= 0; i--) if (state.idle[i]!.dead) state.idle.splice(i, 1);
    }
  }

  stats(): FunctionStats[] {
    return [...this.states.values()].map((s) => ({
      name: s.fv.name,
      version: s.fv.version,
      idle: s.idle.length,
      busy: s.inFlight,
      cold: s.cold,
      warm: s.warm,
      throttled: s.throttled,
    }));
  }

  get inFlightCount(): number {
    return this.inFlight;
  }

  /** Resolves once nothing is running (new invocations are still accepted until close()). */
  drain(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const state of this.states.values()) for (const inst of state.idle.splice(0)) inst.stop();
  }
}

function toOutcome(
  requestId: string,
  fv: FunctionVersion,
  r: InvocationResult,
  durationMs: number,
  cold: boolean,
): InvokeOutcome {
  const base = {
    requestId,
    functionName: fv.name,
    version: String(fv.version),
    durationMs,
    cold,
    logs: r.logs,
  };
  if (r.kind === 'ok') return { ...base, status: 'ok', payload: r.payload };
  const status: InvocationStatus =
    r.kind === 'timeout'
      ? 'timeout'
      : r.kind === 'oom'
        ? 'oom'
        : r.kind === 'unhandled'
          ? 'unhandled'
          : 'error';
  return { ...base, status, error: r.error };
}

// The scaling engine's decisions, as a pure state machine over instance ids and a clock passed in. It decides
// which instance serves an invocation (warm, a new one, or 429), when idle instances stop, what to evict when
// memory runs short, and which instances to start ahead of demand (provisioned, pre-warm). It starts and stops
// nothing itself: the invoker carries out its actions on real processes, the trace simulator in simulated time.
import type { KeepAlivePolicy } from './policy.js';

export interface ScalerFunction {
  /** Instances belong to one version: "name:version". */
  key: string;
  /** Reserved concurrency, keep-alive history and scale-out rate are per function name. */
  name: string;
  /** Its project, whose quotas (setProjectLimits) bind all the project's functions together. */
  project?: string | undefined;
  memoryMB: number;
  /**
   * Concurrency set aside for the function (all versions) out of the global limit, and its cap: it may
   * always run this many at once, and never more. Undefined: it shares the unreserved pool (the global
   * limit less every reservation) with the other unreserved functions.
   */
  reserved?: number | undefined;
  /** Initialized instances kept at all times. */
  provisioned: number;
  /** Invocations one instance serves at once (1: the Lambda model). */
  perInstance: number;
  /** Overrides the platform's keep-alive policy for this function. */
  policy?: KeepAlivePolicy | undefined;
  /** Overrides the platform's scale-out bucket for this function. */
  scaleOut?: { burst: number; perSecond: number } | undefined;
}

export interface ScalerOptions {
  /** Concurrent invocations across all functions: reservations are carved out of it. */
  globalConcurrency: number;
  /** Sum of configured memory of all instances (starting, idle or busy). */
  memoryBudgetMB: number;
  policy: KeepAlivePolicy;
  /** New instances per function: a token bucket (AWS: 1,000 per 10 s). */
  scaleOut?: { burst: number; perSecond: number };
}

export type ThrottleReason =
  | 'ReservedFunctionConcurrentInvocationLimitExceeded'
  | 'ConcurrentInvocationLimitExceeded'
  | 'MemoryBudgetExceeded'
  | 'ScaleOutRateExceeded'
  | 'FunctionNotRegistered'
  | 'ProjectConcurrencyQuotaExceeded'
  | 'ProjectMemoryQuotaExceeded';

/** A project's caps on this node; null: none. */
export interface ProjectLimits {
  concurrency: number | null;
  memoryMB: number | null;
}

/** What a project uses on this node, and its caps. */
export interface ProjectScaleUsage extends ProjectLimits {
  inFlight: number;
  /** Configured memory of its instances (starting, idle or busy). */
  instanceMemoryMB: number;
}

export type Acquired =
  | { kind: 'warm'; instance: string }
  /** Start a process for `instance` (it runs this invocation first); stop the `evict`ed ones first. */
  | { kind: 'cold'; instance: string; evict: string[] }
  | { kind: 'throttle'; reason: ThrottleReason };

export type Action =
  | { kind: 'stop'; instance: string; reason: 'keep-alive' | 'evicted' | 'retired' | 'scale-to-zero' }
  /** Start and initialize an instance with no invocation; report back with started() or failed(). */
  | { kind: 'start'; instance: string; key: string; reason: 'provisioned' | 'prewarm'; evict: string[] };

type State = 'starting' | 'ready';

interface Inst {
  id: string;
  fn: Fn;
  /** Memory counted for this instance: what its function had when it started (settings may change). */
  memoryMB: number;
  state: State;
  active: number;
  lastUsed: number;
  provisioned: boolean;
  /** In fn.available: has spare capacity and is ready. */
  listed: boolean;
  /** When an idle instance stops (Infinity while busy or provisioned). */
  expiresAt: number;
}

interface Fn {
  spec: ScalerFunction;
  instances: Set<Inst>;
  /** Ready instances with spare capacity, most recently used last. */
  available: Inst[];
  retired: boolean;
  prewarmAt: number | null;
  prewarmKeepMs: number;
  cold: number;
  warm: number;
  throttled: number;
  evicted: number;
  queued: number;
}

interface ProjectState {
  limits: ProjectLimits;
  inFlight: number;
  memoryMB: number;
}

interface NameState {
  /** The project its versions belong to (one name is one project's). */
  project: string | undefined;
  inFlight: number;
  lastIdleAt: number | null;
  /** Scale-out tokens left; -1 until the function first scales out (then the bucket starts full). */
  tokens: number;
  tokensAt: number;
}

export interface FunctionScaleStats {
  key: string;
  name: string;
  busy: number;
  idle: number;
  starting: number;
  provisioned: number;
  inFlight: number;
  cold: number;
  warm: number;
  throttled: number;
  evicted: number;
  /** Invocations that waited for a busy warm instance instead of a cold start. */
  queued: number;
  policy: string;
}

let seq = 0;

export class Scaler {
  private fns = new Map<string, Fn>();
  private names = new Map<string, NameState>();
  private projects = new Map<string, ProjectState>();
  private insts = new Map<string, Inst>();
  /** Removed instances that still had invocations counted on them (queued behind a crash): drained on release. */
  private gone = new Map<string, Inst>();
  private inFlight = 0;
  /** Reservation of each function name that has a version served (not retired). */
  private reservations = new Map<string, number>();
  /** Sum of `reservations`. */
  private reservedTotal = 0;
  /** In flight of the names without a reservation: what the unreserved pool is charged. Kept equal to the sum
   *  of their NameState.inFlight, also when a deploy adds or drops a reservation mid-flight. */
  private unreservedInFlight = 0;
  private memoryMB = 0;
  private readonly burst: number;
  private readonly perSecond: number;

  constructor(private readonly o: ScalerOptions) {
    this.burst = o.scaleOut?.burst ?? 1000;
    this.perSecond = o.scaleOut?.perSecond ?? 100;
  }

  /** Adds a function version, or updates its settings (instances are kept). */
  register(spec: ScalerFunction): void {
    const fn = this.fns.get(spec.key);
    this.nameState(spec.name).project = spec.project;
    this.reserve(spec.name, spec.reserved);
    if (fn) {
      fn.spec = spec;
      fn.retired = false;
      return;
    }
    this.fns.set(spec.key, {
      spec,
      instances: new Set(),
      available: [],
      retired: false,
      prewarmAt: null,
      prewarmKeepMs: 0,
      cold: 0,
      warm: 0,
      throttled: 0,
      evicted: 0,
      queued: 0,
    });
  }

  /** Sets a name's reservation (undefined: none), moving its running invocations to the pool they now use. */
  private reserve(name: string, reserved: number | undefined): void {
    const before = this.reservations.get(name);
    if (before === reserved) return;
    const inFlight = this.names.get(name)?.inFlight ?? 0;
    if (before === undefined) this.unreservedInFlight -= inFlight;
    else this.reservedTotal -= before;
    if (reserved === undefined) {
      this.reservations.delete(name);
      this.unreservedInFlight += inFlight;
    } else {
      this.reservations.set(name, reserved);
      this.reservedTotal += reserved;
    }
  }

  /** Sets a project's caps (null: none); instances and invocations already running are kept. */
  setProjectLimits(project: string, limits: ProjectLimits): void {
    this.projectState(project).limits = { ...limits };
  }

  /** A project's usage on this node and its caps. */
  projectUsage(project: string): ProjectScaleUsage {
    const p = this.projectState(project);
    return { ...p.limits, inFlight: p.inFlight, instanceMemoryMB: p.memoryMB };
  }

  private projectState(project: string | undefined): ProjectState {
    const key = project ?? '';
    let p = this.projects.get(key);
    if (!p) {
      p = { limits: { concurrency: null, memoryMB: null }, inFlight: 0, memoryMB: 0 };
      this.projects.set(key, p);
    }
    return p;
  }

  /** What unreserved functions share: the global limit less every reservation (0 if they exceed it). */
  get unreservedPool(): number {
    return Math.max(0, this.o.globalConcurrency - this.reservedTotal);
  }

  private nameState(name: string): NameState {
    let s = this.names.get(name);
    if (!s)
      this.names.set(
        name,
        (s = { project: undefined, inFlight: 0, lastIdleAt: null, tokens: -1, tokensAt: 0 }),
      );
    return s;
  }

  /** A version is no longer served: idle instances stop now, busy ones when they finish. */
  retire(key: string): Action[] {
    const fn = this.fns.get(key);
    if (!fn) return [];
    fn.retired = true;
    // A name none of whose versions is served any more (removed) holds no reservation.
    if (![...this.fns.values()].some((f) => !f.retired && f.spec.name === fn.spec.name))
      this.reserve(fn.spec.name, undefined);
    const actions: Action[] = [];
    for (const inst of [...fn.instances]) {
      if (inst.active === 0) actions.push(this.remove(inst, 'retired'));
    }
    if (fn.instances.size === 0) this.fns.delete(key);
    return actions;
  }

  /** Forgets a removed function's keep-alive history. */
  forgetName(name: string): void {
    if ([...this.fns.values()].some((f) => f.spec.name === name) || (this.names.get(name)?.inFlight ?? 0) > 0)
      return;
    this.names.delete(name);
    this.o.policy.forget(name);
  }

  /**
   * Chooses where an invocation runs. `queueSlots` > 0 lets it wait behind a busy instance of the function
   * (at most that many waiting per instance) instead of starting a new one; see queueing.ts.
   */
  acquire(key: string, now: number, queueSlots = 0): Acquired {
    const fn = this.fns.get(key);
    if (!fn || fn.retired) return { kind: 'throttle', reason: 'FunctionNotRegistered' };
    const name = this.nameState(fn.spec.name);
    const { reserved } = fn.spec;
    if (reserved !== undefined && name.inFlight >= reserved) {
      return this.throttle(fn, 'ReservedFunctionConcurrentInvocationLimitExceeded');
    }
    // The project's quota caps all its functions together, reserved or not (deploys keep reservations in it).
    const project = this.projectState(fn.spec.project);
    if (project.limits.concurrency !== null && project.inFlight >= project.limits.concurrency)
      return this.throttle(fn, 'ProjectConcurrencyQuotaExceeded');
    // An unreserved function draws on the unreserved pool only, so however many run, every reserved function
    // can still reach its reservation. The global check stays as the node's ceiling: it binds a reserved
    // function only when reservations exceed the limit (a lowered NIMBUS_MAX_CONCURRENCY; deploys refuse it).
    if (reserved === undefined && this.unreservedInFlight >= this.unreservedPool)
      return this.throttle(fn, 'ConcurrentInvocationLimitExceeded');
    if (this.inFlight >= this.o.globalConcurrency)
      return this.throttle(fn, 'ConcurrentInvocationLimitExceeded');

    if (queueSlots > 0) {
      // Short invocations: pack them onto the fewest instances (the fullest one with room), so a handful of
      // processes run back to back with warm caches instead of many waking up for one invocation each.
      const capacity = fn.spec.perInstance + queueSlots;
      let best: Inst | undefined;
      for (const inst of fn.instances) {
        if (inst.state === 'ready' && inst.active < capacity && (!best || inst.active > best.active))
          best = inst;
      }
      if (best) {
        if (best.active >= fn.spec.perInstance) {
          fn.queued++;
        }
        return this.use(fn, name, best, now);
      }
    } else {
      const top = fn.available[fn.available.length - 1];
      if (top) return this.use(fn, name, top, now);
    }

    this.refill(name, now, fn.spec.scaleOut);
    if (name.tokens < 1) return this.throttle(fn, 'ScaleOutRateExceeded');
    const evict = this.makeRoom(fn.spec.memoryMB, fn);
    if (evict === 'project') return this.throttle(fn, 'ProjectMemoryQuotaExceeded');
    if (evict === 'node') return this.throttle(fn, 'MemoryBudgetExceeded');
    name.tokens -= 1;
    const inst = this.add(fn, 'ready', false, now);
    inst.active = 1;
    if (fn.spec.perInstance > 1) this.list(inst);
    fn.cold++;
    this.begin(fn, name, now);
    return { kind: 'cold', instance: inst.id, evict };
  }

  /** Counts an invocation onto an existing instance. */
  private use(fn: Fn, name: NameState, inst: Inst, now: number): Acquired {
    inst.active++;
    if (inst.listed && inst.active >= fn.spec.perInstance) {
      const at = fn.available.lastIndexOf(inst);
      if (at >= 0) fn.available.splice(at, 1);
      inst.listed = false;
    }
    inst.expiresAt = Infinity;
    fn.warm++;
    this.begin(fn, name, now);
    return { kind: 'warm', instance: inst.id };
  }

  /** An invocation on `instance` ended; healthy false means the instance is gone (crash, timeout, OOM). */
  release(instance: string, now: number, healthy: boolean): Action[] {
    const inst = this.insts.get(instance) ?? this.gone.get(instance);
    if (!inst) return [];
    const { fn } = inst;
    const name = this.nameState(fn.spec.name);
    inst.active--;
    this.inFlight--;
    name.inFlight--;
    this.projectState(fn.spec.project).inFlight--;
    if (!this.reservations.has(fn.spec.name)) this.unreservedInFlight--;
    inst.lastUsed = now;
    const actions: Action[] = [];
    if (this.gone.has(inst.id)) {
      if (inst.active === 0) this.gone.delete(inst.id);
    } else if (!healthy) {
      this.remove(inst, null);
    } else if (fn.retired) {
      if (inst.active === 0) actions.push(this.remove(inst, 'retired'));
    } else if (!inst.listed) {
      this.list(inst);
    }
    if (name.inFlight === 0) actions.push(...this.wentIdle(fn, name, now, inst));
    else if (inst.active === 0 && !inst.provisioned && this.insts.has(inst.id))
      inst.expiresAt = this.expiry(fn, now);
    if (fn.retired && fn.instances.size === 0) this.fns.delete(fn.spec.key);
    return actions;
  }

  /** A start action's instance finished initializing. */
  started(instance: string, now: number): void {
    const inst = this.insts.get(instance);
    if (!inst || inst.state !== 'starting') return;
    inst.state = 'ready';
    inst.lastUsed = now;
    this.list(inst);
  }

  /** A started instance failed to initialize, or an idle instance died on its own. */
  failed(instance: string): void {
    const inst = this.insts.get(instance);
    if (inst && inst.active === 0) this.remove(inst, null);
  }

  /** Periodic work: expire idle instances, keep provisioned instances topped up, pre-warm on schedule. */
  tick(now: number): Action[] {
    const actions: Action[] = [];
    for (const fn of this.fns.values()) {
      for (const inst of fn.instances) {
        if (inst.active === 0 && !inst.provisioned && inst.state === 'ready' && inst.expiresAt <= now) {
          actions.push(this.remove(inst, 'keep-alive'));
        }
      }
      if (fn.retired) continue;
      let provisioned = 0;
      for (const inst of fn.instances) if (inst.provisioned) provisioned++;
      // Provisioned concurrency lowered: the surplus becomes ordinary instances (idle ones first), subject to
      // keep-alive and eviction like any other.
      if (provisioned > fn.spec.provisioned) {
        const surplus = [...fn.instances]
          .filter((i) => i.provisioned)
          .sort((a, b) => (a.active === 0 ? 0 : 1) - (b.active === 0 ? 0 : 1));
        for (const inst of surplus.slice(0, provisioned - fn.spec.provisioned)) {
          inst.provisioned = false;
          if (inst.active === 0) inst.expiresAt = inst.lastUsed + this.expiry(fn, 0);
        }
        provisioned = fn.spec.provisioned;
      }
      for (; provisioned < fn.spec.provisioned; provisioned++) {
        const evict = this.makeRoom(fn.spec.memoryMB, fn);
        if (!Array.isArray(evict)) break;
        const inst = this.add(fn, 'starting', true, now);
        actions.push({ kind: 'start', instance: inst.id, key: fn.spec.key, reason: 'provisioned', evict });
      }
      if (fn.prewarmAt !== null && fn.prewarmAt <= now) {
        fn.prewarmAt = null;
        if (fn.instances.size === 0) {
          // Pre-warming never evicts: it is a bet on the future, not a need of the present.
          const project = this.projectState(fn.spec.project);
          const limit = project.limits.memoryMB;
          if (
            this.memoryMB + fn.spec.memoryMB <= this.o.memoryBudgetMB &&
            (limit === null || project.memoryMB + fn.spec.memoryMB <= limit)
          ) {
            const inst = this.add(fn, 'starting', false, now);
            inst.expiresAt = now + fn.prewarmKeepMs;
            actions.push({
              kind: 'start',
              instance: inst.id,
              key: fn.spec.key,
              reason: 'prewarm',
              evict: [],
            });
          }
        }
      }
    }
    return actions;
  }

  /** Whether an instance is kept for provisioned concurrency (its invocations are priced as such). */
  isProvisioned(id: string): boolean {
    return this.insts.get(id)?.provisioned ?? false;
  }

  /** Ready provisioned instances per function version key (what provisioned concurrency bills for). */
  provisionedReady(): Map<string, number> {
    const out = new Map<string, number>();
    for (const fn of this.fns.values()) {
      let n = 0;
      for (const i of fn.instances) if (i.provisioned && i.state === 'ready') n++;
      if (n > 0) out.set(fn.spec.key, n);
    }
    return out;
  }

  stats(): FunctionScaleStats[] {
    return [...this.fns.values()].map((fn) => {
      let busy = 0;
      let idle = 0;
      let starting = 0;
      let provisioned = 0;
      for (const i of fn.instances) {
        if (i.state === 'starting') starting++;
        else if (i.active > 0) busy++;
        else idle++;
        if (i.provisioned) provisioned++;
      }
      return {
        key: fn.spec.key,
        name: fn.spec.name,
        busy,
        idle,
        starting,
        provisioned,
        inFlight: this.names.get(fn.spec.name)?.inFlight ?? 0,
        cold: fn.cold,
        warm: fn.warm,
        throttled: fn.throttled,
        evicted: fn.evicted,
        queued: fn.queued,
        policy: (fn.spec.policy ?? this.o.policy).name,
      };
    });
  }

  /**
   * How many more invocations of a function (by name) may start now while using at most `share` (0..1] of
   * the concurrency it may use: its reservation, or for an unreserved function the unreserved pool (shared).
   * Event-driven work asks with a share below 1, so however deep its backlog, HTTP traffic keeps the rest.
   */
  headroom(name: string, reserved: number | undefined, share: number): number {
    const state = this.names.get(name);
    const inFlight = state?.inFlight ?? 0;
    let node = this.o.globalConcurrency - this.inFlight;
    const project = state && this.projectState(state.project);
    if (project && project.limits.concurrency !== null) {
      // The project's quota is shared the same way: event-driven work leaves HTTP its part of it.
      const quota = project.limits.concurrency;
      node = Math.min(node, Math.max(1, Math.floor(quota * share)) - project.inFlight);
    }
    const pool = reserved ?? this.unreservedPool;
    const used = reserved === undefined ? this.unreservedInFlight : inFlight;
    // At least one slot of a non-empty pool, so a small pool still lets events through.
    const room = Math.max(pool === 0 ? 0 : 1, Math.floor(pool * share)) - used;
    return Math.max(0, Math.min(room, node));
  }

  get totals(): { inFlight: number; memoryMB: number; instances: number } {
    return { inFlight: this.inFlight, memoryMB: this.memoryMB, instances: this.insts.size };
  }

  /** Instance ids that are ready, idle and not provisioned, for tests and the simulator's accounting. */
  idleInstances(): { id: string; key: string; memoryMB: number }[] {
    const out: { id: string; key: string; memoryMB: number }[] = [];
    for (const i of this.insts.values()) {
      if (i.active === 0 && i.state === 'ready' && !i.provisioned)
        out.push({ id: i.id, key: i.fn.spec.key, memoryMB: i.memoryMB });
    }
    return out;
  }

  private begin(fn: Fn, name: NameState, now: number): void {
    if (name.inFlight === 0) {
      const policy = fn.spec.policy ?? this.o.policy;
      policy.observe(fn.spec.name, now, name.lastIdleAt === null ? null : now - name.lastIdleAt);
      fn.prewarmAt = null;
    }
    name.inFlight++;
    this.inFlight++;
    this.projectState(fn.spec.project).inFlight++;
    if (!this.reservations.has(fn.spec.name)) this.unreservedInFlight++;
  }

  /** The function's last invocation ended on `released` (undefined if that instance is gone). */
  private wentIdle(fn: Fn, name: NameState, now: number, released: Inst | undefined): Action[] {
    name.lastIdleAt = now;
    const plan = (fn.spec.policy ?? this.o.policy).plan(fn.spec.name);
    const actions: Action[] = [];
    if (plan.prewarmMs > 0 && !fn.retired) {
      for (const inst of [...fn.instances]) {
        if (inst.active === 0 && !inst.provisioned) actions.push(this.remove(inst, 'scale-to-zero'));
      }
      fn.prewarmAt = now + plan.prewarmMs;
      fn.prewarmKeepMs = plan.keepAliveMs;
      return actions;
    }
    // The instance that finished last carries the function's window; the others keep the one they got
    // when they went idle as extras, each counted from its own last use. Every idle instance has one.
    const last = released && fn.instances.has(released) && !released.provisioned ? released : undefined;
    for (const inst of fn.instances) {
      if (inst.active !== 0 || inst.provisioned) continue;
      if (inst === last) inst.expiresAt = inst.lastUsed + plan.keepAliveMs;
      else if (inst.expiresAt === Infinity)
        inst.expiresAt = inst.lastUsed + (plan.extraKeepAliveMs ?? plan.keepAliveMs);
    }
    return actions;
  }

  /** Expiry of an instance that went idle while others of its function are still busy: an extra one. */
  private expiry(fn: Fn, now: number): number {
    const plan = (fn.spec.policy ?? this.o.policy).plan(fn.spec.name);
    return now + (plan.extraKeepAliveMs ?? plan.keepAliveMs);
  }

  private throttle(fn: Fn, reason: ThrottleReason): Acquired {
    fn.throttled++;
    return { kind: 'throttle', reason };
  }

  private refill(name: NameState, now: number, rate?: { burst: number; perSecond: number }): void {
    const burst = rate?.burst ?? this.burst;
    const perSecond = rate?.perSecond ?? this.perSecond;
    // The bucket starts full (-1 until first used): a function's first burst may use all of it.
    name.tokens =
      name.tokens < 0 ? burst : Math.min(burst, name.tokens + ((now - name.tokensAt) / 1000) * perSecond);
    name.tokensAt = now;
  }

  /**
   * Instance ids to evict (least recently used idle, never provisioned) so `mb` more fits both the node's
   * budget and the project's memory quota: the project's own idle instances go first (only they free its
   * quota), then anyone's for the node. 'project' or 'node' names what cannot fit; nothing is evicted then.
   */
  private makeRoom(mb: number, forFn: Fn): string[] | 'project' | 'node' {
    const project = this.projectState(forFn.spec.project);
    const limit = project.limits.memoryMB;
    const needProject = limit === null ? 0 : project.memoryMB + mb - limit;
    const needNode = this.memoryMB + mb - this.o.memoryBudgetMB;
    if (needProject <= 0 && needNode <= 0) return [];
    const idle = [...this.insts.values()]
      .filter((i) => i.active === 0 && i.state === 'ready' && !i.provisioned)
      .sort((a, b) => (a.fn === forFn ? 1 : 0) - (b.fn === forFn ? 1 : 0) || a.lastUsed - b.lastUsed);
    const chosen = new Set<Inst>();
    let freedProject = 0;
    let freedNode = 0;
    for (const i of idle) {
      if (freedProject >= needProject) break;
      if (this.projectState(i.fn.spec.project) !== project) continue;
      chosen.add(i);
      freedProject += i.memoryMB;
      freedNode += i.memoryMB;
    }
    if (freedProject < needProject) return 'project';
    for (const i of idle) {
      if (freedNode >= needNode) break;
      if (chosen.has(i)) continue;
      chosen.add(i);
      freedNode += i.memoryMB;
    }
    if (freedNode < needNode) return 'node';
    const evict: string[] = [];
    for (const inst of chosen) {
      inst.fn.evicted++;
      this.remove(inst, 'evicted');
      evict.push(inst.id);
    }
    return evict;
  }

  private add(fn: Fn, state: State, provisioned: boolean, now: number): Inst {
    const inst: Inst = {
      id: `i${(++seq).toString(36)}`,
      fn,
      memoryMB: fn.spec.memoryMB,
      state,
      active: 0,
      lastUsed: now,
      provisioned,
      listed: false,
      expiresAt: Infinity,
    };
    fn.instances.add(inst);
    this.insts.set(inst.id, inst);
    this.memoryMB += fn.spec.memoryMB;
    this.projectState(fn.spec.project).memoryMB += fn.spec.memoryMB;
    return inst;
  }

  private list(inst: Inst): void {
    if (inst.listed || inst.state !== 'ready' || inst.active >= inst.fn.spec.perInstance) return;
    inst.listed = true;
    inst.fn.available.push(inst);
  }

  private remove(inst: Inst, reason: 'keep-alive' | 'evicted' | 'retired' | 'scale-to-zero'): Action;
  private remove(inst: Inst, reason: null): null;
  private remove(
    inst: Inst,
    reason: 'keep-alive' | 'evicted' | 'retired' | 'scale-to-zero' | null,
  ): Action | null {
    if (this.insts.delete(inst.id)) {
      if (inst.active > 0) this.gone.set(inst.id, inst);
      inst.fn.instances.delete(inst);
      this.memoryMB -= inst.memoryMB;
      this.projectState(inst.fn.spec.project).memoryMB -= inst.memoryMB;
      if (inst.listed) {
        const at = inst.fn.available.indexOf(inst);
        if (at >= 0) inst.fn.available.splice(at, 1);
        inst.listed = false;
      }
    }
    return reason === null ? null : { kind: 'stop', instance: inst.id, reason };
  }
}

// Replays a trace through the real Scaler and keep-alive policy in simulated time: no processes, just an event
// queue of arrivals, completions and finished initializations, with scaler.tick() every simulated tick and
// its start/stop actions carried out on a mirror of the instances that the accounting integrates over time.
import type { KeepAlivePolicy } from '../scaler/policy.js';
import { HybridHistogramPolicy, type HybridState } from '../scaler/hybrid.js';
import { Scaler, type Action } from '../scaler/scaler.js';
import { EventHeap, EventKind } from './heap.js';
import { DURATION_PERCENTILES, type Trace } from './trace.js';

/**
 * How a minute's invocation count is placed within the minute. even: at (i + ½)·60 s / n; random: uniform
 * from a seeded PRNG; trigger: even for timer-triggered functions (they fire on a schedule), random for the rest.
 */
export type ArrivalModel = 'even' | 'random' | 'trigger';
/** average: every invocation takes the function's mean; percentiles: sampled from its percentile curve. */
export type DurationModel = 'average' | 'percentiles';

export interface SimOptions {
  /** Memory budget of the scaler (default: unlimited, to measure the policy and not the capacity). */
  memoryBudgetMB?: number;
  /** Simulated time between scaler.tick() calls (default 1000 ms). */
  tickMs?: number;
  /** Initialization time of pre-warm starts (default 0). Cold starts are counted, their latency is not. */
  initMs?: number;
  arrivals?: ArrivalModel;
  durations?: DurationModel;
  seed?: number;
  /** Cross-check the mirror against the scaler at every tick (slow; for tests). */
  verify?: boolean;
  /** Also return per-function counts and idle memory-time (for analysis). */
  perFunction?: boolean;
}

export interface FunctionResult {
  index: number;
  acquires: number;
  cold: number;
  idleGBs: number;
}

export type StopReason = Extract<Action, { kind: 'stop' }>['reason'];

export interface SimResult {
  /** The policy as given on the command line, e.g. "fixed10". */
  policy: string;
  /** The policy object's own name, e.g. "fixed 600s". */
  policyName: string;
  acquires: number;
  cold: number;
  /** Cold starts of a function that had no instance at all: what keep-alive and pre-warming can avoid. */
  coldFromZero: number;
  /** Cold starts of a function whose instances were all busy (or starting): scale-out under concurrency. */
  coldScaleOut: number;
  warm: number;
  throttled: number;
  /** cold / acquires. */
  coldStartRate: number;
  /** Functions with at least one invocation: the population of the per-function percentiles. */
  functions: number;
  /** Per-function cold-start percentage (cold / acquires of that function · 100). */
  perFunctionColdPct: { mean: number; p50: number; p75: number; p90: number; p99: number };
  /** Functions all of whose invocations were cold. */
  functionsAlwaysCold: number;
  /** Memory-time of instances holding memory without running an invocation (idle, or pre-warm starting). */
  idleGBs: number;
  /** Memory-time of all instances (idle and busy). */
  allocatedGBs: number;
  peakInstances: number;
  peakMemoryMB: number;
  prewarmStarts: number;
  /** Pre-warmed instances that served at least one invocation. */
  prewarmHits: number;
  stops: Record<StopReason, number>;
  /** For the hybrid policy: how many functions ended in each mode. */
  hybridModes?: Record<HybridState['mode'], number>;
  simulatedMs: number;
  wallMs: number;
  perFunction?: FunctionResult[];
}

const MINUTE = 60_000;

/** Scaler instances as the simulator sees them: what the accounting integrates. */
interface Live {
  id: string;
  fn: number;
  mb: number;
  /** Since when the instance has held memory without an invocation (meaningful while active is 0). */
  idleSince: number;
  active: number;
  ready: boolean;
  prewarm: boolean;
  used: boolean;
  removed: boolean;
}

/** mulberry32: small, fast, and the same sequence on every platform. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

/** Inverse CDF of a duration given at the DURATION_PERCENTILES points, linear in between. */
function sampleDuration(pct: readonly number[], u: number): number {
  const x = u * 100;
  for (let i = 1; i < DURATION_PERCENTILES.length; i++) {
    const hi = DURATION_PERCENTILES[i]!;
    if (x <= hi) {
      const lo = DURATION_PERCENTILES[i - 1]!;
      const a = pct[i - 1]!;
      const b = pct[i]!;
      return a + ((b - a) * (x - lo)) / (hi - lo);
    }
  }
  return pct[pct.length - 1]!;
}

export function simulate(
  trace: Trace,
  policy: KeepAlivePolicy,
  label: string,
  o: SimOptions = {},
): SimResult {
  const wall0 = performance.now();
  const tickMs = o.tickMs ?? 1000;
  const initMs = o.initMs ?? 0;
  const arrivals = o.arrivals ?? 'trigger';
  const sampled = (o.durations ?? 'average') === 'percentiles';
  const seed = o.seed ?? 1;
  const end = trace.minutes * MINUTE;
  const fns = trace.functions;
  const nF = fns.length;

  const scaler = new Scaler({
    globalConcurrency: Infinity,
    memoryBudgetMB: o.memoryBudgetMB ?? Infinity,
    policy,
    // Scale-out is not what is being measured: no token-bucket throttling.
    scaleOut: { burst: Number.MAX_SAFE_INTEGER, perSecond: Number.MAX_SAFE_INTEGER },
  });
  const keys: string[] = [];
  const indexOf = new Map<string, number>();
  const memMB = new Float64Array(nF);
  const durMs = new Float64Array(nF);
  const evenArrivals = new Uint8Array(nF);
  for (const f of fns) {
    const key = `f${f.index}`;
    keys.push(key);
    indexOf.set(key, f.index);
    memMB[f.index] = f.memoryMB;
    durMs[f.index] = f.durationMs;
    evenArrivals[f.index] = arrivals === 'even' || (arrivals === 'trigger' && f.trigger === 'timer') ? 1 : 0;
    scaler.register({
      key,
      name: key,
      memoryMB: f.memoryMB,
      reserved: undefined,
      provisioned: 0,
      perInstance: 1,
    });
  }
  const rArrival = prng(seed);
  const rDuration = prng(seed ^ 0x9e3779b9);

  const heap = new EventHeap(1 << 16);
  const live = new Map<string, Live>();
  // Events that refer to an instance carry a slot number into this table (recycled through `free`).
  const slots: (Live | null)[] = [];
  const free: number[] = [];
  const slotOf = (rec: Live): number => {
    const s = free.pop();
    if (s !== undefined) {
      slots[s] = rec;
      return s;
    }
    slots.push(rec);
    return slots.length - 1;
  };

  const idleBy = new Float64Array(nF);
  /** Books an idle stretch of `rec` that ends at `t`, clipped to the trace window, to its function. */
  const idleEnds = (rec: Live, t: number): void => {
    const a = rec.idleSince < end ? rec.idleSince : end;
    const b = t < end ? t : end;
    if (b > a) idleBy[rec.fn]! += (b - a) * rec.mb;
  };
  const coldBy = new Float64Array(nF);
  /** Live instances per function in the mirror, to tell a cold start from zero from a scale-out. */
  const liveBy = new Uint32Array(nF);
  let coldFromZero = 0;
  const acqBy = new Float64Array(nF);
  let cold = 0;
  let warm = 0;
  let throttled = 0;
  let prewarmStarts = 0;
  let prewarmHits = 0;
  const stops: Record<StopReason, number> = { 'keep-alive': 0, evicted: 0, retired: 0, 'scale-to-zero': 0 };
  let liveMB = 0;
  let idleMB = 0;
  let peakInstances = 0;
  let peakMemoryMB = 0;
  let idleMBms = 0;
  let liveMBms = 0;
  let lastT = 0;
  let nextTick = 0;

  const integrate = (t: number): void => {
    const u = t < end ? t : end;
    if (u > lastT) {
      idleMBms += idleMB * (u - lastT);
      liveMBms += liveMB * (u - lastT);
      lastT = u;
    }
  };
  const added = (rec: Live): void => {
    live.set(rec.id, rec);
    liveBy[rec.fn]!++;
    liveMB += rec.mb;
    if (live.size > peakInstances) peakInstances = live.size;
    if (liveMB > peakMemoryMB) peakMemoryMB = liveMB;
  };
  const kill = (id: string, reason: StopReason, t: number): void => {
    const rec = live.get(id);
    if (!rec) return;
    live.delete(id);
    liveBy[rec.fn]!--;
    rec.removed = true;
    liveMB -= rec.mb;
    if (rec.active === 0) {
      idleMB -= rec.mb;
      idleEnds(rec, t);
    }
    stops[reason]++;
  };
  const apply = (actions: Action[], t: number): void => {
    for (const a of actions) {
      if (a.kind === 'stop') {
        kill(a.instance, a.reason, t);
        continue;
      }
      for (const e of a.evict) kill(e, 'evicted', t);
      const fn = indexOf.get(a.key)!;
      const mb = memMB[fn]!;
      const prewarm = a.reason === 'prewarm';
      const rec: Live = {
        id: a.instance,
        fn,
        mb,
        idleSince: t,
        active: 0,
        ready: false,
        prewarm,
        used: false,
        removed: false,
      };
      added(rec);
      idleMB += mb;
      if (prewarm) prewarmStarts++;
      if (initMs <= 0) {
        scaler.started(a.instance, t);
        rec.ready = true;
      } else {
        heap.push(t + initMs, EventKind.Started, slotOf(rec));
      }
    }
  };
  const verify = (t: number): void => {
    let mirror = 0;
    for (const r of live.values()) if (r.active === 0 && r.ready) mirror += r.mb;
    let real = 0;
    for (const i of scaler.idleInstances()) real += i.memoryMB;
    const tot = scaler.totals;
    if (
      Math.abs(mirror - real) > 1e-6 ||
      tot.instances !== live.size ||
      Math.abs(tot.memoryMB - liveMB) > 1e-6
    ) {
      throw new Error(
        `t=${t}: mirror idle ${mirror} MB / ${live.size} inst / ${liveMB} MB, ` +
          `scaler idle ${real} MB / ${tot.instances} inst / ${tot.memoryMB} MB`,
      );
    }
  };
  /** Ticks the scaler at every tick time up to `t` (only within the trace window), then integrates to `t`. */
  const advance = (t: number): void => {
    const last = t < end ? t : end;
    while (nextTick <= last) {
      integrate(nextTick);
      apply(scaler.tick(nextTick), nextTick);
      if (o.verify) verify(nextTick);
      nextTick += tickMs;
    }
    integrate(t);
  };

  const step = (): void => {
    const t = heap.peekTime();
    const kind = heap.peekKind();
    const data = heap.peekData();
    heap.pop();
    advance(t);
    if (kind === EventKind.Arrival) {
      const f = data;
      acqBy[f]!++;
      const r = scaler.acquire(keys[f]!, t);
      let rec: Live;
      if (r.kind === 'throttle') {
        throttled++;
        return;
      } else if (r.kind === 'warm') {
        rec = live.get(r.instance)!;
        if (rec.active === 0) {
          idleMB -= rec.mb;
          idleEnds(rec, t);
        }
        if (rec.prewarm && !rec.used) prewarmHits++;
        rec.used = true;
        rec.active++;
        warm++;
      } else {
        for (const e of r.evict) kill(e, 'evicted', t);
        if (liveBy[f] === 0) coldFromZero++;
        rec = {
          id: r.instance,
          fn: f,
          mb: memMB[f]!,
          idleSince: t,
          active: 1,
          ready: true,
          prewarm: false,
          used: true,
          removed: false,
        };
        added(rec);
        cold++;
        coldBy[f]!++;
      }
      const pct = fns[f]!.durationPercentiles;
      const d = sampled && pct ? sampleDuration(pct, rDuration()) : durMs[f]!;
      heap.push(t + d, EventKind.Completion, slotOf(rec));
    } else {
      const rec = slots[data]!;
      slots[data] = null;
      free.push(data);
      if (kind === EventKind.Completion) {
        const actions = scaler.release(rec.id, t, true);
        rec.active--;
        if (rec.active === 0 && !rec.removed) {
          idleMB += rec.mb;
          rec.idleSince = t;
        }
        apply(actions, t);
      } else if (!rec.removed) {
        scaler.started(rec.id, t);
        rec.ready = true;
      }
    }
  };

  for (let m = 0; m < trace.minutes; m++) {
    const base = m * MINUTE;
    for (let f = 0; f < nF; f++) {
      const n = fns[f]!.perMinute[m]!;
      if (n === 0) continue;
      if (evenArrivals[f]) {
        const gap = MINUTE / n;
        for (let i = 0; i < n; i++) heap.push(base + (i + 0.5) * gap, EventKind.Arrival, f);
      } else {
        for (let i = 0; i < n; i++) heap.push(base + rArrival() * MINUTE, EventKind.Arrival, f);
      }
    }
    const until = base + MINUTE;
    while (heap.peekTime() < until) step();
  }
  advance(end);
  // Invocations still running at the end complete (outside the measured window) so the books balance.
  while (heap.size > 0) step();
  for (const rec of live.values()) if (rec.active === 0) idleEnds(rec, end);
  if (o.verify) {
    verify(end);
    let sum = 0;
    for (const x of idleBy) sum += x;
    if (Math.abs(sum - idleMBms) > 1e-6 * Math.max(1, idleMBms))
      throw new Error(`idle per function ${sum} ≠ ${idleMBms}`);
    if (scaler.totals.inFlight !== 0) throw new Error(`in flight at the end: ${scaler.totals.inFlight}`);
  }

  const pcts: number[] = [];
  let alwaysCold = 0;
  for (let f = 0; f < nF; f++) {
    const a = acqBy[f]!;
    if (a === 0) continue;
    pcts.push((coldBy[f]! / a) * 100);
    if (coldBy[f] === a) alwaysCold++;
  }
  pcts.sort((a, b) => a - b);
  let hybridModes: SimResult['hybridModes'];
  if (policy instanceof HybridHistogramPolicy) {
    hybridModes = { histogram: 0, 'few-observations': 0, flat: 0, 'out-of-bounds': 0 };
    for (const k of keys) hybridModes[policy.inspect(k).mode]++;
  }
  const acquires = cold + warm + throttled;
  return {
    policy: label,
    policyName: policy.name,
    acquires,
    cold,
    coldFromZero,
    coldScaleOut: cold - coldFromZero,
    warm,
    throttled,
    coldStartRate: acquires ? cold / acquires : 0,
    functions: pcts.length,
    perFunctionColdPct: {
      mean: pcts.length ? pcts.reduce((s, x) => s + x, 0) / pcts.length : 0,
      p50: percentile(pcts, 50),
      p75: percentile(pcts, 75),
      p90: percentile(pcts, 90),
      p99: percentile(pcts, 99),
    },
    functionsAlwaysCold: alwaysCold,
    idleGBs: idleMBms / 1024 / 1000,
    allocatedGBs: liveMBms / 1024 / 1000,
    peakInstances,
    peakMemoryMB,
    prewarmStarts,
    prewarmHits,
    stops,
    ...(hybridModes ? { hybridModes } : {}),
    simulatedMs: end,
    wallMs: performance.now() - wall0,
    ...(o.perFunction
      ? {
          perFunction: fns.map((f) => ({
            index: f.index,
            acquires: acqBy[f.index]!,
            cold: coldBy[f.index]!,
            idleGBs: idleBy[f.index]! / 1024 / 1000,
          })),
        }
      : {}),
  };
}

// Prometheus metrics (prom-client): an InvocationSink for what invocation records tell, hooks the gateway,
// the async event source and the store call, and gauges read at scrape time from the scaler, the stem-cell
// pool and the event queue. The warm path only increments pre-resolved children: the label children of a
// (project, function, trigger) are looked up in nested maps, never built from a joined string per call.
import client from 'prom-client';
import type { InvocationSink } from '../invoker/types.js';
import type {
  EventQueueStats,
  FunctionRef,
  InvocationRecord,
  InvocationStatus,
  StoreBackend,
  Trigger,
} from '../store/types.js';

/** Invocation and init durations: 1 ms to Lambda's 15-minute timeout, dense where warm work lands. */
export const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900,
];
/** Store calls: 100 µs to 5 s. */
export const STORE_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5,
];
/** Async event age at an attempt's start: a second to Lambda's six-hour maximum event age. */
export const EVENT_AGE_BUCKETS = [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 10_800, 21_600];

/** How long one read of the event queue's per-function counts serves scrapes. */
const EVENT_STATS_TTL_MS = 2000;

/** What the scrape reads from the rest of the platform; each is a call into memory but events(). */
export interface MetricsSources {
  /** One row per function version holding instances (the invoker's stats). */
  instances(): {
    project: string;
    name: string;
    busy: number;
    idle: number;
    starting: number;
    provisioned: number;
    inFlight: number;
  }[];
  stemCells(): { memoryMB: number; tmpMB: number; ready: number; starting: number; target: number }[];
  /** The event queue's counts per function (a store query: cached EVENT_STATS_TTL_MS). */
  events(): Promise<EventQueueStats[]>;
  now(): number;
}

/** Why an async event was dead-lettered (the destination record's condition, or the function is gone). */
export type DeadLetterReason =
  'RetriesExhausted' | 'EventAgeExceeded' | 'RecursiveInvocationLoop' | 'FunctionNotFound';

/** What the async event source tells metrics. */
export interface EventObserver {
  /** An attempt is about to run; ageMs since the event was accepted. */
  attempt(ref: FunctionRef, ageMs: number): void;
  dead(ref: FunctionRef, reason: DeadLetterReason): void;
}

/** A matched route as the gateway has it: `route` is the same object for every request to it until the
 *  route table is rebuilt, so children are cached by it. */
export interface MatchedRoute {
  route: object;
  routeKey: string;
}

/** What the gateway tells metrics: one call per answered request, with its route (or none). */
export interface GatewayObserver {
  request(match: MatchedRoute | undefined, status: number): void;
  throttled(match: MatchedRoute): void;
}

type Counter = client.Counter<string>;
type Histogram = client.Histogram<string>;
type CounterChild = ReturnType<Counter['labels']>;
type HistogramChild = ReturnType<Histogram['labels']>;

/** One function's children under one trigger. */
interface TriggerSeries {
  status: Partial<Record<InvocationStatus, CounterChild>>;
  errors?: CounterChild;
  throttles?: CounterChild;
}

/** One function's children. */
interface FunctionSeries {
  triggers: Partial<Record<Trigger, TriggerSeries>>;
  duration: HistogramChild;
  cold: CounterChild;
  warm: CounterChild;
  init?: HistogramChild;
  eventAge?: HistogramChild;
}

export class Metrics implements InvocationSink, EventObserver, GatewayObserver {
  readonly registry = new client.Registry();
  private readonly invocations: Counter;
  private readonly errors: Counter;
  private readonly throttles: Counter;
  private readonly durations: Histogram;
  private readonly inits: Histogram;
  private readonly coldStarts: Counter;
  private readonly warmStarts: Counter;
  private readonly eventAge: Histogram;
  private readonly deadLetters: Counter;
  private readonly gatewayRequests: Counter;
  private readonly gatewayThrottles: Counter;
  private readonly storeDuration: Histogram;
  private readonly fns = new Map<string, Map<string, FunctionSeries>>();
  /** Per route object (stable until the route table is rebuilt) and status code. */
  private readonly routes = new WeakMap<object, Map<number, CounterChild>>();
  private readonly unmatched = new Map<number, CounterChild>();
  private readonly routeThrottles = new WeakMap<object, CounterChild>();
  private readonly storeOps = new Map<string, HistogramChild>();
  private sources: MetricsSources | undefined;
  private eventStats: { at: number; rows: Promise<EventQueueStats[]> } | undefined;

  constructor(private readonly backend: StoreBackend) {
    const r = [this.registry];
    const fnLabels = ['function', 'project'];
    const trigLabels = ['function', 'project', 'trigger'];
    client.collectDefaultMetrics({ register: this.registry, prefix: 'nimbus_' });
    this.invocations = new client.Counter({
      name: 'nimbus_invocations_total',
      help: 'Invocation records, throttled ones included, by function, project, trigger and status.',
      labelNames: [...trigLabels, 'status'],
      registers: r,
    });
    this.errors = new client.Counter({
      name: 'nimbus_errors_total',
      help: 'Invocations that ended in a function error, an unhandled error, a timeout or out of memory.',
      labelNames: trigLabels,
      registers: r,
    });
    this.throttles = new client.Counter({
      name: 'nimbus_throttles_total',
      help: 'Invocations refused for concurrency, memory or scale-out rate (status "throttled").',
      labelNames: trigLabels,
      registers: r,
    });
    this.durations = new client.Histogram({
      name: 'nimbus_invocation_duration_seconds',
      help: 'How long invocations that ran took (the billed duration, unrounded).',
      labelNames: fnLabels,
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.inits = new client.Histogram({
      name: 'nimbus_init_duration_seconds',
      help: "A cold start's module init time (loading the handler), as Lambda's Init Duration.",
      labelNames: fnLabels,
      buckets: DURATION_BUCKETS,
      registers: r,
    });
    this.coldStarts = new client.Counter({
      name: 'nimbus_cold_starts_total',
      help: 'Invocations that ran on a newly started instance.',
      labelNames: fnLabels,
      registers: r,
    });
    this.warmStarts = new client.Counter({
      name: 'nimbus_warm_starts_total',
      help: 'Invocations that ran on an instance that was already running.',
      labelNames: fnLabels,
      registers: r,
    });
    this.eventAge = new client.Histogram({
      name: 'nimbus_async_event_age_seconds',
      help: 'Time from accepting an async event to the start of each of its attempts.',
      labelNames: fnLabels,
      buckets: EVENT_AGE_BUCKETS,
      registers: r,
    });
    this.deadLetters = new client.Counter({
      name: 'nimbus_dead_letters_total',
      help: 'Async events this node gave up on (kept as dead), by reason.',
      labelNames: [...fnLabels, 'reason'],
      registers: r,
    });
    this.gatewayRequests = new client.Counter({
      name: 'nimbus_gateway_requests_total',
      help: 'Requests the gateway answered, by route key ("unmatched" for none) and HTTP status.',
      labelNames: ['route', 'status'],
      registers: r,
    });
    this.gatewayThrottles = new client.Counter({
      name: 'nimbus_gateway_throttles_total',
      help: "Requests refused by a route's or a service's throttle (429) before any function ran.",
      labelNames: ['route'],
      registers: r,
    });
    this.storeDuration = new client.Histogram({
      name: 'nimbus_store_duration_seconds',
      help: 'Store calls on the invocation path: the invocation log batch write and the event queue operations.',
      labelNames: ['backend', 'operation'],
      buckets: STORE_BUCKETS,
      registers: r,
    });
    this.scrapeGauges();
  }

  /** Where the scrape-time gauges read from; until set they are empty. */
  setSources(sources: MetricsSources): void {
    this.sources = sources;
  }

  write(rec: InvocationRecord): void {
    const fs = this.series(rec.project, rec.functionName);
    const ts = (fs.triggers[rec.trigger] ??= { status: {} });
    const status = rec.status;
    (ts.status[status] ??= this.invocations.labels(rec.functionName, rec.project, rec.trigger, status)).inc();
    if (status === 'throttled') {
      (ts.throttles ??= this.throttles.labels(rec.functionName, rec.project, rec.trigger)).inc();
      return;
    }
    if (status !== 'ok') (ts.errors ??= this.errors.labels(rec.functionName, rec.project, rec.trigger)).inc();
    (rec.cold ? fs.cold : fs.warm).inc();
    fs.duration.observe(rec.durationMs / 1000);
    if (rec.initMs !== null)
      (fs.init ??= this.inits.labels(rec.functionName, rec.project)).observe(rec.initMs / 1000);
  }

  attempt(ref: FunctionRef, ageMs: number): void {
    const fs = this.series(ref.project, ref.name);
    (fs.eventAge ??= this.eventAge.labels(ref.name, ref.project)).observe(Math.max(0, ageMs) / 1000);
  }

  dead(ref: FunctionRef, reason: DeadLetterReason): void {
    this.deadLetters.labels(ref.name, ref.project, reason).inc();
  }

  request(match: MatchedRoute | undefined, status: number): void {
    let byStatus = match ? this.routes.get(match.route) : this.unmatched;
    if (!byStatus) this.routes.set(match!.route, (byStatus = new Map()));
    let child = byStatus.get(status);
    if (!child) {
      child = this.gatewayRequests.labels(match ? match.routeKey : 'unmatched', String(status));
      byStatus.set(status, child);
    }
    child.inc();
  }

  throttled(match: MatchedRoute): void {
    let child = this.routeThrottles.get(match.route);
    if (!child) this.routeThrottles.set(match.route, (child = this.gatewayThrottles.labels(match.routeKey)));
    child.inc();
  }

  /** A store call's duration (ms, as performance.now() measures). */
  storeCall(operation: string, ms: number): void {
    let child = this.storeOps.get(operation);
    if (!child) this.storeOps.set(operation, (child = this.storeDuration.labels(this.backend, operation)));
    child.observe(ms / 1000);
  }

  /** The exposition in Prometheus's text format. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private series(project: string, name: string): FunctionSeries {
    let byName = this.fns.get(project);
    if (!byName) this.fns.set(project, (byName = new Map()));
    let fs = byName.get(name);
    if (!fs) {
      fs = {
        triggers: {},
        duration: this.durations.labels(name, project),
        cold: this.coldStarts.labels(name, project),
        warm: this.warmStarts.labels(name, project),
      };
      byName.set(name, fs);
    }
    return fs;
  }

  /** Gauges whose values are read when scraped: nothing on the hot path keeps them. */
  private scrapeGauges(): void {
    const r = [this.registry];
    // collect() runs with the gauge as `this`; these reach the Metrics.
    const self = { sources: () => this.sources, events: () => this.events() };
    const fnLabels = ['function', 'project'];
    new client.Gauge({
      name: 'nimbus_concurrent_executions',
      help: 'Invocations of the function running now (or waiting for a busy instance).',
      labelNames: fnLabels,
      registers: r,
      collect() {
        this.reset();
        // Rows are per version; in-flight is per function, so a function retiring a version counts once.
        const seen = new Set<string>();
        for (const s of self.sources()?.instances() ?? []) {
          const key = `${s.project}\0${s.name}`;
          if (seen.has(key)) continue;
          seen.add(key);
          this.set({ function: s.name, project: s.project }, s.inFlight);
        }
      },
    });
    new client.Gauge({
      name: 'nimbus_instances',
      help: 'Instances (sandbox processes) of the function by state: busy, idle or starting.',
      labelNames: [...fnLabels, 'state'],
      registers: r,
      collect() {
        this.reset();
        for (const [labels, v] of sumBy(self.sources()?.instances() ?? [], (s) => [
          [{ function: s.name, project: s.project, state: 'busy' }, s.busy],
          [{ function: s.name, project: s.project, state: 'idle' }, s.idle],
          [{ function: s.name, project: s.project, state: 'starting' }, s.starting],
        ]))
          this.set(labels, v);
      },
    });
    new client.Gauge({
      name: 'nimbus_provisioned_instances',
      help: "Instances kept for the function's provisioned concurrency (also counted in nimbus_instances).",
      labelNames: fnLabels,
      registers: r,
      collect() {
        this.reset();
        for (const [labels, v] of sumBy(self.sources()?.instances() ?? [], (s) =>
          s.provisioned > 0 ? [[{ function: s.name, project: s.project }, s.provisioned]] : [],
        ))
          this.set(labels, v);
      },
    });
    new client.Gauge({
      name: 'nimbus_stem_cells',
      help: 'Pre-spawned runtime processes by memory and /tmp size: ready, or starting.',
      labelNames: ['memory_mb', 'tmp_mb', 'state'],
      registers: r,
      collect() {
        this.reset();
        for (const p of self.sources()?.stemCells() ?? []) {
          const m = String(p.memoryMB);
          const t = String(p.tmpMB);
          this.set({ memory_mb: m, tmp_mb: t, state: 'ready' }, p.ready);
          this.set({ memory_mb: m, tmp_mb: t, state: 'starting' }, p.starting);
        }
      },
    });
    new client.Gauge({
      name: 'nimbus_stem_cells_target',
      help: 'Ready stem cells the pool aims to keep, by memory and /tmp size.',
      labelNames: ['memory_mb', 'tmp_mb'],
      registers: r,
      collect() {
        this.reset();
        for (const p of self.sources()?.stemCells() ?? [])
          this.set({ memory_mb: String(p.memoryMB), tmp_mb: String(p.tmpMB) }, p.target);
      },
    });
    new client.Gauge({
      name: 'nimbus_async_events',
      help: 'Async events in the queue by state: pending (waiting), in_flight (leased to a node) or dead.',
      labelNames: [...fnLabels, 'state'],
      registers: r,
      async collect() {
        this.reset();
        for (const s of await self.events()) {
          const l = { function: s.functionName, project: s.project };
          this.set({ ...l, state: 'pending' }, Math.max(0, s.pending - s.inFlight));
          this.set({ ...l, state: 'in_flight' }, s.inFlight);
          this.set({ ...l, state: 'dead' }, s.dead);
        }
      },
    });
    new client.Gauge({
      name: 'nimbus_async_oldest_event_age_seconds',
      help: 'Age of the oldest pending (not dead) async event of the function.',
      labelNames: fnLabels,
      registers: r,
      async collect() {
        this.reset();
        const now = self.sources()?.now() ?? Date.now();
        for (const s of await self.events()) {
          if (s.oldestPendingAt === null) continue;
          this.set(
            { function: s.functionName, project: s.project },
            Math.max(0, now - s.oldestPendingAt) / 1000,
          );
        }
      },
    });
  }

  /** The event queue's counts, read from the store at most once per EVENT_STATS_TTL_MS for all gauges. */
  private events(): Promise<EventQueueStats[]> {
    const src = this.sources;
    if (!src) return Promise.resolve([]);
    const now = Date.now();
    if (!this.eventStats || now - this.eventStats.at > EVENT_STATS_TTL_MS) {
      const rows = src.events().catch(() => {
        // An unreachable store shows as missing series (and /readyz says so), not as a failed scrape.
        this.eventStats = undefined;
        return [];
      });
      this.eventStats = { at: now, rows };
    }
    return this.eventStats.rows;
  }
}

/** Sums rows that share their labels (versions of one function) into one value per label set. */
function sumBy<T>(
  rows: readonly T[],
  values: (row: T) => [Record<string, string>, number][],
): [Record<string, string>, number][] {
  const out = new Map<string, [Record<string, string>, number]>();
  for (const row of rows) {
    for (const [labels, v] of values(row)) {
      const key = Object.values(labels).join('\0');
      const had = out.get(key);
      if (had) had[1] += v;
      else out.set(key, [labels, v]);
    }
  }
  return [...out.values()];
}

/** Wraps every method of a store part that returns a promise with a timer reporting to metrics as
 *  "<part>.<method>". */
export function timedPart<T extends object>(part: T, name: string, metrics: Metrics): T {
  const wrapped = Object.create(part) as Record<string, unknown>;
  for (let proto = Object.getPrototypeOf(part) as object | null; proto && proto !== Object.prototype;) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const fn = (part as Record<string, unknown>)[key];
      if (
        key === 'constructor' ||
        typeof fn !== 'function' ||
        key in Object.getOwnPropertyDescriptors(wrapped)
      )
        continue;
      const operation = `${name}.${key}`;
      wrapped[key] = function (...args: unknown[]): unknown {
        const t0 = performance.now();
        const out = (fn as (...a: unknown[]) => unknown).apply(part, args);
        if (out instanceof Promise)
          return out.finally(() => metrics.storeCall(operation, performance.now() - t0));
        return out;
      };
    }
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  return wrapped as T;
}

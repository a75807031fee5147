// Prometheus metrics (prom-client's registry and exposition): an InvocationSink for what invocation records
// tell, hooks for the gateway, the async event source and store calls, and gauges read at scrape time from the
// scaler, the stem-cell pool and the event queue. The warm path only adds to plain numbers in series resolved
// once per (project, function, trigger), found through nested maps: no label string is built or hashed per call.
// prom-client's own children hash their labels on every update (about 0.5 µs each here), so counters and
// histograms are small families of our own that hand prom-client their values when scraped.
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
/** Async event age at an attempt's start: 10 ms to Lambda's six-hour maximum event age. */
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
  stemCells(): {
    memoryMB: number;
    tmpMB: number;
    /** The pool's network mode (stem cells are kept per memory, /tmp size and network). */
    network?: string;
    ready: number;
    starting: number;
    target: number;
  }[];
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
  /** project: the project whose routes were looked in, undefined for a host that names none with routes. */
  request(match: MatchedRoute | undefined, status: number, project?: string): void;
  throttled(match: MatchedRoute, project: string): void;
}

type Labels = Record<string, string>;

/** One counter series: the hot path adds to value. */
export interface CounterSeries {
  value: number;
}

/** The project label of gateway requests to a host that names no project with routes (unbounded names). */
const UNKNOWN_PROJECT = 'unknown';

/** A counter family whose series are plain objects, exported with their labels when scraped. */
class CounterFamily {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly all: { labels: Labels; s: CounterSeries }[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  series(labels: Labels): CounterSeries {
    const s = { value: 0 };
    this.all.push({ labels, s });
    return s;
  }

  get(): Promise<unknown> {
    const values = this.all.map(({ labels, s }) => ({ labels, value: s.value }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: 'sum', values });
  }
}

/** One histogram series: counts per bucket (not cumulative; the last is +Inf), their sum and count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

class HistogramFamily {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly all: { labels: Labels; s: HistogramSeries }[] = [];
  private readonly le: string[];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    this.le = [...bounds.map(String), '+Inf'];
  }

  series(labels: Labels): HistogramSeries {
    const s = new HistogramSeries(this.bounds);
    this.all.push({ labels, s });
    return s;
  }

  get(): Promise<unknown> {
    const values: { metricName: string; labels: Labels; value: number }[] = [];
    for (const { labels, s } of this.all) {
      let cumulative = 0;
      for (let i = 0; i < this.le.length; i++) {
        cumulative += s.counts[i]!;
        values.push({
          metricName: `${this.name}_bucket`,
          labels: { ...labels, le: this.le[i]! },
          value: cumulative,
        });
      }
      values.push({ metricName: `${this.name}_sum`, labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: s.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: 'sum', values });
  }
}

type CounterChild = CounterSeries;
type HistogramChild = HistogramSeries;

/** One function's children under one trigger. */
interface TriggerSeries {
  status: Partial<Record<InvocationStatus, CounterChild>>;
  errors?: CounterChild;
  throttles?: CounterChild;
}

/** One function's children. */
interface FunctionSeries {
  labels: Labels;
  triggers: Partial<Record<Trigger, TriggerSeries>>;
  duration: HistogramChild;
  cold: CounterChild;
  warm: CounterChild;
  init?: HistogramChild;
  eventAge?: HistogramChild;
}

export class Metrics implements InvocationSink, EventObserver, GatewayObserver {
  readonly registry = new client.Registry();
  private readonly invocations: CounterFamily;
  private readonly errors: CounterFamily;
  private readonly throttles: CounterFamily;
  private readonly durations: HistogramFamily;
  private readonly inits: HistogramFamily;
  private readonly coldStarts: CounterFamily;
  private readonly warmStarts: CounterFamily;
  private readonly eventAge: HistogramFamily;
  private readonly deadLetters: CounterFamily;
  private readonly deadByReason = new Map<string, CounterChild>();
  private readonly gatewayRequests: CounterFamily;
  private readonly gatewayThrottles: CounterFamily;
  private readonly storeDuration: HistogramFamily;
  private readonly codeCaches: CounterFamily;
  private readonly codeCacheBy = new Map<string, CounterChild>();
  private readonly fns = new Map<string, Map<string, FunctionSeries>>();
  /** Per route object (stable until the route table is rebuilt) and status code. */
  private readonly routes = new WeakMap<object, Map<number, CounterChild>>();
  /** Unmatched requests by project, then status. */
  private readonly unmatched = new Map<string, Map<number, CounterChild>>();
  private readonly routeThrottles = new WeakMap<object, CounterChild>();
  private readonly storeOps = new Map<string, HistogramChild>();
  private sources: MetricsSources | undefined;
  private eventStats: { at: number; rows: Promise<EventQueueStats[]> } | undefined;

  constructor(private readonly backend: StoreBackend) {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'nimbus_' });
    const counter = (name: string, help: string): CounterFamily =>
      this.register(new CounterFamily(name, help));
    const histogram = (name: string, help: string, buckets: readonly number[]): HistogramFamily =>
      this.register(new HistogramFamily(name, help, buckets));
    this.invocations = counter(
      'nimbus_invocations_total',
      'Invocation records, throttled ones included, by function, project, trigger and status.',
    );
    this.errors = counter(
      'nimbus_errors_total',
      'Invocations that ended in a function error, an unhandled error, a timeout or out of memory.',
    );
    this.throttles = counter(
      'nimbus_throttles_total',
      'Invocations refused for concurrency, memory or scale-out rate (status "throttled").',
    );
    this.durations = histogram(
      'nimbus_invocation_duration_seconds',
      'How long invocations that ran took (the billed duration, unrounded).',
      DURATION_BUCKETS,
    );
    this.inits = histogram(
      'nimbus_init_duration_seconds',
      "A cold start's module init time (loading the handler), as Lambda's Init Duration.",
      DURATION_BUCKETS,
    );
    this.coldStarts = counter(
      'nimbus_cold_starts_total',
      'Invocations that ran on a newly started instance.',
    );
    this.warmStarts = counter(
      'nimbus_warm_starts_total',
      'Invocations that ran on an instance that was already running.',
    );
    this.eventAge = histogram(
      'nimbus_async_event_age_seconds',
      'Time from accepting an async event to the start of each of its attempts.',
      EVENT_AGE_BUCKETS,
    );
    this.deadLetters = counter(
      'nimbus_dead_letters_total',
      'Async events this node gave up on (kept as dead), by reason.',
    );
    this.gatewayRequests = counter(
      'nimbus_gateway_requests_total',
      'Requests the gateway answered, by project, route key ("unmatched" for none) and HTTP status.',
    );
    this.gatewayThrottles = counter(
      'nimbus_gateway_throttles_total',
      "Requests refused by a route's or a service's throttle (429) before any function ran, by project and route.",
    );
    this.storeDuration = histogram(
      'nimbus_store_duration_seconds',
      'Store calls on the invocation path: the invocation log batch write and the event queue operations.',
      STORE_BUCKETS,
    );
    this.codeCaches = counter(
      'nimbus_code_cache_total',
      'V8 code caches of entry bundles: produced by a deploy check, accepted or rejected by a cold start.',
    );
    this.scrapeGauges();
  }

  /** A V8 code cache was produced at deploy, or a cold start used (accepted) or refused (rejected) one. */
  codeCache = (outcome: 'produced' | 'accepted' | 'rejected'): void => {
    let c = this.codeCacheBy.get(outcome);
    if (!c) this.codeCacheBy.set(outcome, (c = this.codeCaches.series({ outcome })));
    c.value++;
  };

  /** Where the scrape-time gauges read from; until set they are empty. */
  setSources(sources: MetricsSources): void {
    this.sources = sources;
  }

  write(rec: InvocationRecord): void {
    const fs = this.series(rec.project, rec.functionName);
    const ts = (fs.triggers[rec.trigger] ??= { status: {} });
    const status = rec.status;
    (ts.status[status] ??= this.invocations.series({ ...fs.labels, trigger: rec.trigger, status })).value++;
    if (status === 'throttled') {
      (ts.throttles ??= this.throttles.series({ ...fs.labels, trigger: rec.trigger })).value++;
      return;
    }
    if (status !== 'ok') (ts.errors ??= this.errors.series({ ...fs.labels, trigger: rec.trigger })).value++;
    (rec.cold ? fs.cold : fs.warm).value++;
    fs.duration.observe(rec.durationMs / 1000);
    if (rec.initMs !== null) (fs.init ??= this.inits.series(fs.labels)).observe(rec.initMs / 1000);
  }

  attempt(ref: FunctionRef, ageMs: number): void {
    const fs = this.series(ref.project, ref.name);
    (fs.eventAge ??= this.eventAge.series(fs.labels)).observe(Math.max(0, ageMs) / 1000);
  }

  /** Rare (an event given up on): a key string per call is fine here. */
  dead(ref: FunctionRef, reason: DeadLetterReason): void {
    const key = `${ref.project}\0${ref.name}\0${reason}`;
    let s = this.deadByReason.get(key);
    if (!s)
      this.deadByReason.set(
        key,
        (s = this.deadLetters.series({ function: ref.name, project: ref.project, reason })),
      );
    s.value++;
  }

  request(match: MatchedRoute | undefined, status: number, project = UNKNOWN_PROJECT): void {
    // A route object belongs to one project's table, so it keys that project's series by itself.
    let byStatus = match ? this.routes.get(match.route) : this.unmatched.get(project);
    if (!byStatus) {
      byStatus = new Map();
      if (match) this.routes.set(match.route, byStatus);
      else this.unmatched.set(project, byStatus);
    }
    let child = byStatus.get(status);
    if (!child) {
      child = this.gatewayRequests.series({
        route: match ? match.routeKey : 'unmatched',
        status: String(status),
        project,
      });
      byStatus.set(status, child);
    }
    child.value++;
  }

  throttled(match: MatchedRoute, project: string): void {
    let child = this.routeThrottles.get(match.route);
    if (!child)
      this.routeThrottles.set(
        match.route,
        (child = this.gatewayThrottles.series({ route: match.routeKey, project })),
      );
    child.value++;
  }

  /** A store call's duration (ms, as performance.now() measures). */
  storeCall(operation: string, ms: number): void {
    let child = this.storeOps.get(operation);
    if (!child)
      this.storeOps.set(operation, (child = this.storeDuration.series({ backend: this.backend, operation })));
    child.observe(ms / 1000);
  }

  /** The exposition in Prometheus's text format. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private register<T extends CounterFamily | HistogramFamily>(family: T): T {
    // The registry reads name, help, type and get(); it formats and escapes what get() returns.
    this.registry.registerMetric(family as unknown as client.Metric);
    return family;
  }

  private series(project: string, name: string): FunctionSeries {
    let byName = this.fns.get(project);
    if (!byName) this.fns.set(project, (byName = new Map()));
    let fs = byName.get(name);
    if (!fs) {
      const labels = { function: name, project };
      fs = {
        labels,
        triggers: {},
        duration: this.durations.series(labels),
        cold: this.coldStarts.series(labels),
        warm: this.warmStarts.series(labels),
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
      help: 'Pre-spawned runtime processes by memory, /tmp size and network mode: ready, or starting.',
      labelNames: ['memory_mb', 'tmp_mb', 'network', 'state'],
      registers: r,
      collect() {
        this.reset();
        for (const p of self.sources()?.stemCells() ?? []) {
          const labels = {
            memory_mb: String(p.memoryMB),
            tmp_mb: String(p.tmpMB),
            network: p.network ?? 'outbound',
          };
          this.set({ ...labels, state: 'ready' }, p.ready);
          this.set({ ...labels, state: 'starting' }, p.starting);
        }
      },
    });
    new client.Gauge({
      name: 'nimbus_stem_cells_target',
      help: 'Ready stem cells the pool aims to keep, by memory, /tmp size and network mode.',
      labelNames: ['memory_mb', 'tmp_mb', 'network'],
      registers: r,
      collect() {
        this.reset();
        for (const p of self.sources()?.stemCells() ?? [])
          this.set(
            { memory_mb: String(p.memoryMB), tmp_mb: String(p.tmpMB), network: p.network ?? 'outbound' },
            p.target,
          );
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
    const now = src.now();
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

// The hybrid histogram keep-alive policy of "Serverless in the Wild" (Shahrad et al., USENIX ATC 2020, §4.2):
// learn each function's idle times (IT) in a range-limited histogram; when the histogram shows a pattern,
// scale to zero as soon as the function goes idle, pre-warm one instance just before the head of the IT
// distribution and keep it until its tail; when it shows none, keep a plain fixed keep-alive.
import type { IdlePlan, KeepAlivePolicy } from './policy.js';

export interface HybridOptions {
  /** Idle times up to this are binned; longer ones are "out of bounds" (paper: 4 hours). */
  rangeMs?: number;
  /** Bin width (paper: 1 minute). */
  binMs?: number;
  /** Percentile of ITs that sets the pre-warm window (paper: 5). */
  headPercentile?: number;
  /** Percentile of ITs that sets the end of the keep-alive window (paper: 99). */
  tailPercentile?: number;
  /** Safety margin: pre-warm this % earlier and keep alive this % longer (paper: 10). */
  marginPct?: number;
  /** Fewer in-range ITs than this: not representative. */
  minObservations?: number;
  /** Coefficient of variation of the bin counts at or below which the histogram is flat (paper: 2). */
  cvThreshold?: number;
  /** More out-of-bounds ITs than this % of all ITs: not representative (the paper forecasts with ARIMA). */
  maxOutOfBoundsPct?: number;
  /** The fallback ("standard") keep-alive, with no pre-warming. */
  fallbackKeepAliveMs?: number;
}

/** Why `plan` chose what it chose, for tests, the simulator's report and operators. */
export interface HybridState {
  observations: number;
  outOfBounds: number;
  cv: number;
  mode: 'histogram' | 'few-observations' | 'flat' | 'out-of-bounds';
  plan: IdlePlan;
}

interface Histogram {
  bins: Float64Array;
  /** In-range observations: the sum of `bins`. */
  n: number;
  /** Sum of squared bin counts, kept up to date so the CV costs O(1). */
  sumSq: number;
  outOfBounds: number;
  /** The plan for the current counts; null after an observation until the next plan(). */
  cached: IdlePlan | null;
  mode: HybridState['mode'];
}

export class HybridHistogramPolicy implements KeepAlivePolicy {
  readonly name = 'hybrid';
  readonly rangeMs: number;
  readonly binMs: number;
  readonly headPercentile: number;
  readonly tailPercentile: number;
  readonly marginPct: number;
  readonly minObservations: number;
  readonly cvThreshold: number;
  readonly maxOutOfBoundsPct: number;
  readonly fallbackKeepAliveMs: number;
  private readonly nBins: number;
  private readonly fallback: IdlePlan;
  private readonly hists = new Map<string, Histogram>();

  constructor(o: HybridOptions = {}) {
    this.rangeMs = o.rangeMs ?? 4 * 3_600_000;
    this.binMs = o.binMs ?? 60_000;
    this.headPercentile = o.headPercentile ?? 5;
    this.tailPercentile = o.tailPercentile ?? 99;
    this.marginPct = o.marginPct ?? 10;
    this.minObservations = o.minObservations ?? 10;
    this.cvThreshold = o.cvThreshold ?? 2;
    this.maxOutOfBoundsPct = o.maxOutOfBoundsPct ?? 50;
    this.fallbackKeepAliveMs = o.fallbackKeepAliveMs ?? 600_000;
    if (!(this.binMs > 0) || !(this.rangeMs >= this.binMs)) throw new RangeError('need 0 < binMs <= rangeMs');
    if (!(
      this.headPercentile >= 0 &&
      this.headPercentile <= this.tailPercentile &&
      this.tailPercentile <= 100
    )) {
      throw new RangeError('need 0 <= headPercentile <= tailPercentile <= 100');
    }
    this.nBins = Math.ceil(this.rangeMs / this.binMs);
    this.fallback = Object.freeze({ prewarmMs: 0, keepAliveMs: this.fallbackKeepAliveMs });
  }

  observe(fn: string, _now: number, idleMs: number | null): void {
    // The first invocation of a function has no idle time before it.
    if (idleMs === null || !(idleMs >= 0)) return;
    let h = this.hists.get(fn);
    if (!h) {
      h = {
        bins: new Float64Array(this.nBins),
        n: 0,
        sumSq: 0,
        outOfBounds: 0,
        cached: null,
        mode: 'few-observations',
      };
      this.hists.set(fn, h);
    }
    h.cached = null;
    if (idleMs >= this.rangeMs) {
      h.outOfBounds++;
      return;
    }
    const b = Math.floor(idleMs / this.binMs);
    const c = h.bins[b]!;
    h.bins[b] = c + 1;
    h.sumSq += 2 * c + 1;
    h.n++;
  }

  plan(fn: string): IdlePlan {
    const h = this.hists.get(fn);
    if (!h) return this.fallback;
    if (h.cached === null) this.compute(h);
    return h.cached!;
  }

  forget(fn: string): void {
    this.hists.delete(fn);
  }

  /** The histogram's verdict for `fn` (functions never observed report 'few-observations'). */
  inspect(fn: string): HybridState {
    const h = this.hists.get(fn);
    if (!h) return { observations: 0, outOfBounds: 0, cv: 0, mode: 'few-observations', plan: this.fallback };
    const plan = this.plan(fn);
    return { observations: h.n, outOfBounds: h.outOfBounds, cv: this.cv(h), mode: h.mode, plan };
  }

  /** Coefficient of variation (population) of the counts over all bins of the range. */
  private cv(h: Histogram): number {
    if (h.n === 0) return 0;
    // mean = n/B and variance = sumSq/B - mean², so CV² = B·sumSq/n² - 1.
    return Math.sqrt(Math.max(0, (this.nBins * h.sumSq) / (h.n * h.n) - 1));
  }

  private compute(h: Histogram): void {
    const total = h.n + h.outOfBounds;
    if (total > 0 && (h.outOfBounds * 100) / total > this.maxOutOfBoundsPct) {
      h.mode = 'out-of-bounds';
    } else if (h.n < this.minObservations) {
      h.mode = 'few-observations';
    } else if (this.cv(h) <= this.cvThreshold) {
      h.mode = 'flat';
    } else {
      h.mode = 'histogram';
    }
    if (h.mode !== 'histogram') {
      h.cached = this.fallback;
      return;
    }
    // Percentiles over the in-range ITs only: the out-of-bounds ones would be cold under any window we
    // could afford, so they must not drag the tail out to the range.
    const head = this.percentileBin(h, this.headPercentile);
    const tail = this.percentileBin(h, this.tailPercentile);
    // Head rounded down to its bin's start, tail up to its bin's end, then widened by the margin both ways
    // (in integer percent so that bin edges give exact milliseconds).
    const prewarmMs = Math.floor((head * this.binMs * (100 - this.marginPct)) / 100);
    const keepUntil = Math.ceil(((tail + 1) * this.binMs * (100 + this.marginPct)) / 100);
    h.cached = { prewarmMs, keepAliveMs: keepUntil - prewarmMs, extraKeepAliveMs: this.fallbackKeepAliveMs };
  }

  /** The bin holding the p-th percentile (nearest rank) of the in-range ITs. */
  private percentileBin(h: Histogram, p: number): number {
    const rank = Math.max(1, Math.ceil((p / 100) * h.n));
    let seen = 0;
    for (let b = 0; b < this.nBins; b++) {
      seen += h.bins[b]!;
      if (seen >= rank) return b;
    }
    return this.nBins - 1;
  }
}

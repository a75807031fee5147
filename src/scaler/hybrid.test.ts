import { describe, expect, it } from 'vitest';
import { HybridHistogramPolicy } from './hybrid.js';
import { prng } from '../sim/simulate.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

/** Feeds idle times to `fn` as the scaler would: each one at the start of an invocation. */
function feed(p: HybridHistogramPolicy, fn: string, idle: number[]): void {
  let now = 0;
  p.observe(fn, now, null);
  for (const ms of idle) {
    now += ms;
    p.observe(fn, now, ms);
  }
}

describe('HybridHistogramPolicy', () => {
  it('has the paper defaults', () => {
    const p = new HybridHistogramPolicy();
    expect(p.name).toBe('hybrid');
    expect([p.rangeMs, p.binMs, p.headPercentile, p.tailPercentile, p.marginPct, p.cvThreshold]).toEqual([
      4 * HOUR,
      MIN,
      5,
      99,
      10,
      2,
    ]);
    expect(p.fallbackKeepAliveMs).toBe(10 * MIN);
  });

  it('an unknown function gets the fixed fallback', () => {
    expect(new HybridHistogramPolicy().plan('nobody')).toEqual({ prewarmMs: 0, keepAliveMs: 10 * MIN });
  });

  it('a function invoked every 30 minutes is pre-warmed around 27 min and kept to about 33 min', () => {
    const p = new HybridHistogramPolicy();
    // Idle times of a 30-min timer whose runs take a few seconds, with a little jitter.
    const r = prng(1);
    feed(
      p,
      'timer',
      Array.from({ length: 20 }, () => 30 * MIN - 5_000 + Math.round(r() * 10_000)),
    );
    const { prewarmMs, keepAliveMs } = p.plan('timer');
    expect(p.inspect('timer').mode).toBe('histogram');
    expect(prewarmMs).toBeGreaterThanOrEqual(26 * MIN);
    expect(prewarmMs).toBeLessThanOrEqual(27 * MIN);
    // The window starts before every observed IT and ends after all of them, with the 10% margin.
    const end = prewarmMs + keepAliveMs;
    expect(end).toBeGreaterThanOrEqual(33 * MIN);
    expect(end).toBeLessThanOrEqual(2_046_000);
    // Far less warm time than a fixed 10-minute keep-alive that would miss every invocation anyway.
    expect(keepAliveMs).toBeLessThan(8.5 * MIN);
  });

  it('is exact on bin edges: head rounded down, tail rounded up, both widened by the margin', () => {
    const p = new HybridHistogramPolicy();
    feed(p, 'f', Array<number>(20).fill(30 * MIN));
    // IT = 30 min falls in bin [30, 31): pre-warm 30·0.9 = 27 min, keep until 31·1.1 = 34.1 min.
    expect(p.plan('f')).toEqual({
      prewarmMs: 27 * MIN,
      keepAliveMs: 2_046_000 - 27 * MIN,
      extraKeepAliveMs: 10 * MIN,
    });
  });

  it('too few observations: fixed fallback', () => {
    const p = new HybridHistogramPolicy({ minObservations: 10 });
    feed(p, 'rare', Array<number>(9).fill(30 * MIN));
    expect(p.inspect('rare').mode).toBe('few-observations');
    expect(p.plan('rare')).toEqual({ prewarmMs: 0, keepAliveMs: 10 * MIN });
    // The tenth IT makes the same pattern count.
    p.observe('rare', 0, 30 * MIN);
    expect(p.plan('rare').prewarmMs).toBe(27 * MIN);
  });

  it('idle times spread evenly over the range: flat histogram, fixed fallback', () => {
    const p = new HybridHistogramPolicy();
    // Two ITs in each of the 240 one-minute bins: every bin count equal, CV 0.
    const idle: number[] = [];
    for (let b = 0; b < 240; b++) idle.push(b * MIN + 10_000, b * MIN + 50_000);
    feed(p, 'uniform', idle);
    const s = p.inspect('uniform');
    expect(s.mode).toBe('flat');
    expect(s.cv).toBeCloseTo(0, 9);
    expect(s.plan).toEqual({ prewarmMs: 0, keepAliveMs: 10 * MIN });
  });

  it('highly variable random idle times: flat histogram, fixed fallback', () => {
    const p = new HybridHistogramPolicy();
    const r = prng(7);
    feed(
      p,
      'noisy',
      Array.from({ length: 500 }, () => Math.floor(r() * 4 * HOUR)),
    );
    const s = p.inspect('noisy');
    expect(s.cv).toBeLessThan(2);
    expect(s.mode).toBe('flat');
    expect(s.plan).toEqual({ prewarmMs: 0, keepAliveMs: 10 * MIN });
  });

  it('idle times beyond the 4-hour range: fixed fallback (no ARIMA here)', () => {
    const p = new HybridHistogramPolicy({ fallbackKeepAliveMs: 20 * MIN });
    feed(p, 'daily', Array<number>(30).fill(6 * HOUR));
    const s = p.inspect('daily');
    expect(s.mode).toBe('out-of-bounds');
    expect(s.outOfBounds).toBe(30);
    expect(s.plan).toEqual({ prewarmMs: 0, keepAliveMs: 20 * MIN });
  });

  it('a minority of out-of-bounds ITs is left out of the percentiles', () => {
    const p = new HybridHistogramPolicy();
    feed(p, 'f', [...Array<number>(20).fill(30 * MIN), 5 * HOUR, 5 * HOUR]);
    expect(p.inspect('f').mode).toBe('histogram');
    expect(p.plan('f')).toEqual({
      prewarmMs: 27 * MIN,
      keepAliveMs: 2_046_000 - 27 * MIN,
      extraKeepAliveMs: 10 * MIN,
    });
  });

  it('ITs under a minute: no pre-warm (head in the first bin), keep-alive to the tail', () => {
    const p = new HybridHistogramPolicy();
    const r = prng(3);
    feed(
      p,
      'busy',
      Array.from({ length: 200 }, () => 40_000 + Math.floor(r() * 19_000)),
    );
    const plan = p.plan('busy');
    expect(plan.prewarmMs).toBe(0);
    // Tail in bin [0, 1 min) → keep alive 1 min + 10%.
    expect(plan.keepAliveMs).toBe(66_000);
  });

  it('ITs of one to two minutes with a few shorter ones: the head percentile picks the first bin', () => {
    const p = new HybridHistogramPolicy();
    // 10% of the ITs under a minute puts the 5th percentile in bin 0; the tail is in bin 1.
    feed(p, 'f', [...Array<number>(90).fill(61_000), ...Array<number>(10).fill(30_000)]);
    expect(p.plan('f')).toEqual({ prewarmMs: 0, keepAliveMs: 132_000, extraKeepAliveMs: 10 * MIN });
  });

  it('keeps learning: a pattern that shifts moves the window', () => {
    const p = new HybridHistogramPolicy();
    feed(p, 'f', Array<number>(20).fill(10 * MIN));
    expect(p.plan('f').prewarmMs).toBe(9 * MIN);
    // Once more than 5% of ITs are short, the head (and so the pre-warm) drops to the first bin.
    for (let i = 0; i < 5; i++) p.observe('f', 0, 20_000);
    expect(p.plan('f').prewarmMs).toBe(0);
  });

  it('forget drops the history', () => {
    const p = new HybridHistogramPolicy();
    feed(p, 'f', Array<number>(20).fill(30 * MIN));
    p.forget('f');
    expect(p.plan('f')).toEqual({ prewarmMs: 0, keepAliveMs: 10 * MIN });
  });

  it('rejects nonsense options', () => {
    expect(() => new HybridHistogramPolicy({ binMs: 0 })).toThrow(RangeError);
    expect(() => new HybridHistogramPolicy({ headPercentile: 99, tailPercentile: 5 })).toThrow(RangeError);
  });
});

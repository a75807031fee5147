import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FixedKeepAlive } from '../scaler/policy.js';
import { EventHeap, EventKind } from './heap.js';
import { main } from './main.js';
import { makePolicy } from './policies.js';
import { percentile, simulate } from './simulate.js';
import { loadTrace, type Trace } from './trace.js';

const MINUTES = 30;
let dir: string;
let trace: Trace;

/**
 * Three functions over 30 minutes, every run 1 s long:
 * - f0 (app A, 1024 MB, timer): once a minute;
 * - f1 (app B, 512 MB): once, in minute 0;
 * - f2 (app C, no memory or duration row: medians 768 MB and 1 s): in minutes 0, 12 and 24.
 */
function writeTrace(to: string): void {
  const minutes = Array.from({ length: MINUTES }, (_, i) => 480 + i);
  const counts = (f: (m: number) => number): string => minutes.map((_, i) => f(i)).join(',');
  writeFileSync(
    join(to, 'invocations.csv'),
    [
      `HashOwner,HashApp,HashFunction,Trigger,${minutes.join(',')}`,
      `o,A,f0,timer,${counts(() => 1)}`,
      `o,B,f1,http,${counts((m) => (m === 0 ? 1 : 0))}`,
      `o,C,f2,timer,${counts((m) => (m % 12 === 0 ? 1 : 0))}`,
    ].join('\n'),
  );
  const pct =
    'percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100';
  writeFileSync(
    join(to, 'durations.csv'),
    [
      `HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,${pct}`,
      'o,A,f0,1000,30,1000,1000,1000,1000,1000,1000,1000,1000,1000',
      'o,B,f1,1000,1,1000,1000,1000,1000,1000,1000,1000,1000,1000',
    ].join('\n'),
  );
  writeFileSync(
    join(to, 'memory.csv'),
    ['HashFunction,HashOwner,HashApp,SampleCount,AverageAllocatedMb', 'f0,o,A,10,1024', 'f1,o,B,10,512'].join(
      '\n',
    ),
  );
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nimbus-sim-'));
  writeTrace(dir);
  trace = loadTrace(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('trace loading', () => {
  it('reads counts, joins memory by app and durations by function, and fills gaps with medians', () => {
    expect(trace.minutes).toBe(MINUTES);
    expect(trace.firstMinute).toBe(480);
    expect(trace.invocations).toBe(30 + 1 + 3);
    expect(trace.functions.map((f) => [f.trigger, f.memoryMB, f.memoryKnown, f.durationMs, f.total])).toEqual(
      [
        ['timer', 1024, true, 1000, 30],
        ['http', 512, true, 1000, 1],
        ['timer', 768, false, 1000, 3],
      ],
    );
    expect(trace.functions[2]!.durationPercentiles).toBeNull();
  });

  it('--minutes keeps the first N minutes', () => {
    const t = loadTrace(dir, 12);
    expect(t.minutes).toBe(12);
    expect(t.invocations).toBe(12 + 1 + 1);
  });
});

describe('simulate', () => {
  it('accounts cold starts and idle memory-time exactly under a fixed 10-minute keep-alive', () => {
    const r = simulate(trace, new FixedKeepAlive(600_000), 'fixed10', { arrivals: 'even', verify: true });
    // f0 runs at 30 s past every minute: one cold start, then warm every time.
    // f1: one cold start. f2: 12-minute gaps outlive the 10-minute keep-alive: 3 cold starts.
    expect([r.acquires, r.cold, r.warm, r.throttled]).toEqual([34, 5, 29, 0]);
    expect([r.coldFromZero, r.coldScaleOut]).toEqual([5, 0]);
    expect(r.perFunctionColdPct.p50).toBeCloseTo(100, 9);
    expect(r.functionsAlwaysCold).toBe(2);
    // Idle seconds · GB: f0 59 s in each of 29 gaps + 29 s after its last run to the end of the window;
    // f1 600 s; f2 600 + 600 + 329 s (its last keep-alive is cut off at 30 min).
    const expected = (29 * 59 + 29) * 1 + 600 * 0.5 + (600 + 600 + 329) * 0.75;
    expect(r.idleGBs).toBeCloseTo(expected, 6);
    // f1 once, f2 twice; f2's last expiry (at 34.5 min) and f0's fall after the window.
    expect(r.stops['keep-alive']).toBe(3);
    expect(r.peakInstances).toBe(3);
    expect(r.peakMemoryMB).toBe(1024 + 512 + 768);
    // Busy time is 1 s per invocation: allocated = idle + busy.
    expect(r.allocatedGBs).toBeCloseTo(expected + 30 * 1 + 1 * 0.5 + 3 * 0.75, 6);
  });

  it('per-function detail adds up to the totals', () => {
    const r = simulate(trace, new FixedKeepAlive(600_000), 'fixed10', {
      arrivals: 'even',
      perFunction: true,
    });
    expect(r.perFunction!.map((f) => [f.acquires, f.cold])).toEqual([
      [30, 1],
      [1, 1],
      [3, 3],
    ]);
    expect(r.perFunction![1]!.idleGBs).toBeCloseTo(300, 6);
    expect(r.perFunction!.reduce((s, f) => s + f.idleGBs, 0)).toBeCloseTo(r.idleGBs, 6);
  });

  it('a longer keep-alive turns the 12-minute gaps warm and costs the idle time between them', () => {
    const r = simulate(trace, makePolicy('fixed20'), 'fixed20', { arrivals: 'even', verify: true });
    expect(r.cold).toBe(3);
    const expected = (29 * 59 + 29) * 1 + 1200 * 0.5 + (719 + 719 + 329) * 0.75;
    expect(r.idleGBs).toBeCloseTo(expected, 6);
  });

  it('hybrid: pre-warms f2 for its third run and scales it to zero in between', () => {
    const r = simulate(trace, makePolicy('hybrid:minObservations=1'), 'hybrid', {
      arrivals: 'even',
      verify: true,
    });
    // f2's second run teaches it a 12-minute idle time (bin 11): pre-warm at 9.9 min, keep to 13.2 min.
    expect(r.cold).toBe(1 + 1 + 2);
    expect(r.prewarmStarts).toBe(1);
    expect(r.prewarmHits).toBe(1);
    expect(r.stops['scale-to-zero']).toBe(2);
    // f2 now idles 600 s after its first run (no history: fallback) and 125 s as a pre-warmed instance.
    const expected = (29 * 59 + 29) * 1 + 600 * 0.5 + (600 + 125) * 0.75;
    expect(r.idleGBs).toBeCloseTo(expected, 6);
    expect(r.hybridModes).toEqual({ histogram: 2, 'few-observations': 1, flat: 0, 'out-of-bounds': 0 });
  });

  it('a pre-warm with an initialization time holds memory while it starts', () => {
    const r = simulate(trace, makePolicy('hybrid:minObservations=1'), 'hybrid', {
      arrivals: 'even',
      initMs: 5000,
      verify: true,
    });
    expect(r.prewarmHits).toBe(1);
    // Ready 5 s after its start, still before the run: a starting instance counts as idle, so nothing changes.
    const expected = (29 * 59 + 29) * 1 + 600 * 0.5 + (600 + 125) * 0.75;
    expect(r.idleGBs).toBeCloseTo(expected, 6);
  });

  it('a memory budget is respected, with evictions or throttles instead of more memory', () => {
    const r = simulate(trace, new FixedKeepAlive(600_000), 'fixed10', {
      arrivals: 'random',
      memoryBudgetMB: 1536,
      verify: true,
    });
    expect(r.peakMemoryMB).toBeLessThanOrEqual(1536);
    expect(r.stops.evicted + r.throttled).toBeGreaterThan(0);
    expect(r.cold + r.warm + r.throttled).toBe(34);
  });

  it('is deterministic for a seed', () => {
    const a = simulate(trace, makePolicy('fixed10'), 'a', {
      arrivals: 'random',
      durations: 'percentiles',
      seed: 7,
    });
    const b = simulate(trace, makePolicy('fixed10'), 'b', {
      arrivals: 'random',
      durations: 'percentiles',
      seed: 7,
    });
    expect([a.cold, a.idleGBs, a.peakInstances]).toEqual([b.cold, b.idleGBs, b.peakInstances]);
  });
});

describe('main', () => {
  it('runs the policies given and saves JSON and markdown', () => {
    const out = join(dir, 'out');
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const report = main([
        '--trace',
        dir,
        '--policies',
        'fixed10,hybrid',
        '--arrivals',
        'even',
        '--out',
        out,
        '--json',
      ]);
      expect(report!.results.map((r) => [r.policy, r.cold])).toEqual([
        ['fixed10', 5],
        ['hybrid', 5],
      ]);
      const saved = JSON.parse(readFileSync(join(out, `sim-${report!.date}.json`), 'utf8')) as {
        results: unknown[];
      };
      expect(saved.results).toHaveLength(2);
      expect(existsSync(join(out, `sim-${report!.date}.md`))).toBe(true);
      expect(readFileSync(join(out, `sim-${report!.date}.md`), 'utf8')).toContain('| fixed10 |');
    } finally {
      log.mockRestore();
    }
  });

  it('rejects unknown policies and flags', () => {
    expect(() => main(['--trace', dir, '--policies', 'lru'])).toThrow(/unknown policy/);
    expect(() => main(['--trace', dir, '--policies', 'hybrid:bogus=1'])).toThrow(/bad hybrid option/);
    expect(() => main(['--trace', dir, '--arrivals', 'poisson'])).toThrow(/--arrivals/);
  });
});

describe('EventHeap', () => {
  it('pops by time, then completions before arrivals, then first in first out', () => {
    const h = new EventHeap(2);
    h.push(5, EventKind.Arrival, 1);
    h.push(5, EventKind.Completion, 2);
    h.push(1, EventKind.Arrival, 3);
    h.push(5, EventKind.Arrival, 4);
    h.push(3, EventKind.Started, 5);
    const out: number[] = [];
    while (h.size) {
      out.push(h.peekData());
      h.pop();
    }
    expect(out).toEqual([3, 5, 2, 1, 4]);
    expect(h.peekTime()).toBe(Infinity);
  });

  it('sorts many random events', () => {
    const h = new EventHeap();
    const times = Array.from({ length: 5000 }, (_, i) => (i * 7919) % 1000);
    times.forEach((t, i) => h.push(t, EventKind.Arrival, i));
    const popped: number[] = [];
    while (h.size) {
      popped.push(h.peekTime());
      h.pop();
    }
    expect(popped).toEqual([...times].sort((a, b) => a - b));
  });
});

describe('percentile', () => {
  it('is nearest-rank', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 99)).toBe(4);
    expect(percentile([], 50)).toBe(0);
  });
});

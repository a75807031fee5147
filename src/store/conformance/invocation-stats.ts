// InvocationLog.stats conformance: per-bucket counts, nearest-rank percentiles and cost summed in the
// database, the same numbers on every backend, and only the caller's project in them.
import { describe, expect, it } from 'vitest';
import { appendMany, useHarness, type HarnessFactory } from './harness.js';

const MIN = 60_000;

export function invocationStatsConformance(name: string, make: HarnessFactory): void {
  describe(`InvocationLog stats conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const log = () => ctx.store.invocations;
    const T = 1_700_000_000_000;

    it('buckets records by start and gives counts, percentiles and cost per bucket', async () => {
      // Bucket 0: durations 1..10 ms (one an error, one cold); bucket 2: one throttle and one 100 ms run.
      appendMany(log(), 10, (i) => ({
        functionName: 'a',
        start: T + i * 1000,
        durationMs: i + 1,
        status: i === 3 ? 'error' : 'ok',
        cold: i === 0,
        costPicoUsd: 1000 + i,
      }));
      appendMany(log(), 2, (i) => ({
        functionName: 'b',
        start: T + 2 * MIN + i,
        durationMs: i === 0 ? 0 : 100,
        status: i === 0 ? 'throttled' : 'timeout',
        costPicoUsd: i === 0 ? 0 : 7,
        requests: i === 0 ? 0 : 1,
      }));
      // Outside the range, and another project's: neither counts.
      appendMany(log(), 1, () => ({ functionName: 'a', start: T + 3 * MIN }));
      await ctx.store.projects.ensure('other');
      appendMany(log(), 1, () => ({ project: 'other', functionName: 'a', start: T }));
      const rows = await log().stats({ project: 'default', since: T, until: T + 3 * MIN, bucketMs: MIN });
      expect(rows).toEqual([
        {
          bucketStart: T,
          functionName: null,
          invocations: 10,
          errors: 1,
          throttles: 0,
          cold: 1,
          p50Ms: 5,
          p99Ms: 10,
          costPicoUsd: 10_045n,
        },
        {
          bucketStart: T + 2 * MIN,
          functionName: null,
          invocations: 2,
          errors: 1,
          throttles: 1,
          cold: 0,
          // The throttled invocation never ran: it is not a 0 ms duration.
          p50Ms: 100,
          p99Ms: 100,
          costPicoUsd: 7n,
        },
      ]);
    });

    it('splits by function, narrows to one, and answers one row for the whole range unbucketed', async () => {
      appendMany(log(), 4, (i) => ({
        functionName: i % 2 === 0 ? 'a' : 'b',
        start: T + i,
        durationMs: 10 * (i + 1),
      }));
      appendMany(log(), 1, () => ({ functionName: 'b', start: T + 5, status: 'throttled', durationMs: 0 }));
      const by = await log().stats({ project: 'default', since: T, until: T + MIN, byFunction: true });
      expect(by.map((r) => [r.functionName, r.invocations, r.throttles, r.p50Ms, r.p99Ms])).toEqual([
        ['a', 2, 0, 10, 30],
        ['b', 3, 1, 20, 40],
      ]);
      expect(by.every((r) => r.bucketStart === T)).toBe(true);
      const one = await log().stats({ project: 'default', since: T, until: T + MIN, functionName: 'a' });
      expect(one).toHaveLength(1);
      expect(one[0]).toMatchObject({ functionName: null, invocations: 2, p50Ms: 10 });
      const onlyThrottled = await log().stats({
        project: 'default',
        since: T + 5,
        until: T + 6,
      });
      expect(onlyThrottled[0]).toMatchObject({ invocations: 1, throttles: 1, p50Ms: null, p99Ms: null });
      expect(await log().stats({ project: 'default', since: T + MIN, until: T + 2 * MIN })).toEqual([]);
    });
  });
}

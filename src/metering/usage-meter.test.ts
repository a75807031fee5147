// The usage meter on its own: counts stay in memory until a flush, a failed flush keeps them for the next,
// and stop() flushes what is left (a sample of stored bytes included).
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import type { ProjectQuotaUsage, UsageEntry } from '../store/types.js';
import { NO_QUOTA } from '../store/types.js';
import { DEFAULT_USAGE_PRICES, UsageMeter, usagePrices } from './usage-meter.js';

function rig(failures = 0) {
  const clock = new ManualClock(Date.UTC(2026, 11, 3, 10, 0, 0));
  const added: UsageEntry[][] = [];
  let fail = failures;
  const errors: string[] = [];
  const meter = new UsageMeter({
    clock,
    prices: usagePrices(DEFAULT_USAGE_PRICES),
    usage: {
      add: async (entries) => {
        if (fail-- > 0) throw new Error('store unreachable');
        added.push([...entries]);
      },
      list: async () => [],
    },
    quotas: {
      list: async (): Promise<ProjectQuotaUsage[]> => [
        { project: 'default', quota: NO_QUOTA, storageBytes: 1000 },
      ],
      get: async () => {
        throw new Error('unused');
      },
      set: async () => {
        throw new Error('unused');
      },
    },
    onError: (_err, what) => errors.push(what),
  });
  return { clock, added, meter, errors };
}

describe('UsageMeter', () => {
  it('writes nothing per request: counts leave in one batch per flush', async () => {
    const { added, meter } = rig();
    await meter.start();
    for (let i = 0; i < 100; i++) meter.count('default', 'dynamodb', 'orders', 'write');
    meter.count('default', 's3', 'pics', 'tier2');
    expect(added).toEqual([]);
    await meter.flush();
    expect(added).toHaveLength(1);
    expect(added[0]!.map((e) => [e.service, e.quantity, e.costPicoUsd])).toEqual([
      ['dynamodb', 100, 100 * 625_000],
      ['s3', 1, 400_000],
    ]);
    await meter.stop();
  });

  it('keeps the counts of a failed flush and writes them with the next', async () => {
    const { added, meter, errors } = rig(1);
    await meter.start();
    meter.count('default', 'sqs', 'jobs', 'request');
    await meter.flush();
    expect(errors).toEqual(['usage meter: flush']);
    meter.count('default', 'sqs', 'jobs', 'request');
    await meter.flush();
    expect(added.flat().map((e) => e.quantity)).toEqual([2]);
    await meter.stop();
  });

  it('samples stored bytes into byte-seconds and flushes them at stop', async () => {
    const { added, clock, meter } = rig();
    await meter.start();
    clock.advance(30_500);
    await meter.stop();
    const storage = added.flat().filter((e) => e.service === 'storage');
    // 1,000 bytes for 30.5 s, whole byte-seconds: 30,500.
    expect(storage.reduce((t, e) => t + e.quantity, 0)).toBe(30_500);
  });
});

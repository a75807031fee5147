// UsageStore conformance: counters added per (project, hour, service, resource, kind), summed exactly, listed
// in one order by window and project, durable across a reopen, and bad entries refused before anything is added.
import { describe, expect, it } from 'vitest';
import { HOUR_MS, type UsageEntry } from '../types.js';
import { useHarness, type HarnessFactory } from './harness.js';

const H = Date.UTC(2026, 11, 3, 10);

function entry(over: Partial<UsageEntry> = {}): UsageEntry {
  return {
    project: 'default',
    service: 'dynamodb',
    resource: 'orders',
    kind: 'write',
    hour: H,
    quantity: 1,
    costPicoUsd: 625_000,
    ...over,
  };
}

export function usageStoreConformance(name: string, make: HarnessFactory): void {
  describe(`UsageStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const u = () => ctx.store.usage;

    it('adds quantities and costs to the row they name, within a batch and across batches', async () => {
      await u().add([entry(), entry({ quantity: 2, costPicoUsd: 1_250_000 })]);
      await u().add([
        entry({ quantity: 4, costPicoUsd: 2_500_000 }),
        entry({ kind: 'read', costPicoUsd: 125_000 }),
      ]);
      expect(await u().list()).toStrictEqual([
        entry({ kind: 'read', costPicoUsd: 125_000 }),
        entry({ quantity: 7, costPicoUsd: 4_375_000 }),
      ]);
    });

    it('keeps rows apart by project, hour, service and resource, ordered by hour then the rest', async () => {
      await u().add([
        entry({ hour: H + HOUR_MS, resource: 'b' }),
        entry({ project: 'team-a', service: 's3', resource: 'pics', kind: 'tier1' }),
        entry({ resource: 'a' }),
        entry({ service: 'storage', resource: '', kind: 'byte-seconds', quantity: 2 ** 52 }),
      ]);
      const rows = await u().list();
      expect(rows.map((r) => [r.hour - H, r.project, r.service, r.resource])).toEqual([
        [0, 'default', 'dynamodb', 'a'],
        [0, 'default', 'storage', ''],
        [0, 'team-a', 's3', 'pics'],
        [HOUR_MS, 'default', 'dynamodb', 'b'],
      ]);
      expect(rows[1]!.quantity).toBe(2 ** 52);
    });

    it('lists one project and a window of hours: since inclusive, until exclusive', async () => {
      await u().add([
        entry({ hour: H - HOUR_MS }),
        entry(),
        entry({ hour: H + HOUR_MS }),
        entry({ project: 'team-a' }),
      ]);
      const hours = (rows: UsageEntry[]) => rows.map((r) => (r.hour - H) / HOUR_MS);
      expect(hours(await u().list({ project: 'default' }))).toEqual([-1, 0, 1]);
      expect(hours(await u().list({ project: 'default', since: H, until: H + HOUR_MS }))).toEqual([0]);
      expect((await u().list({ since: H, until: H + 1 })).map((r) => r.project)).toEqual([
        'default',
        'team-a',
      ]);
      expect(await u().list({ project: 'nobody' })).toEqual([]);
    });

    it('keeps what was added across a reopen', async () => {
      await u().add([entry({ quantity: 3, costPicoUsd: 9 })]);
      await ctx.reopen();
      await u().add([entry({ quantity: 1, costPicoUsd: 1 })]);
      expect(await u().list()).toStrictEqual([entry({ quantity: 4, costPicoUsd: 10 })]);
    });

    it('refuses a bad entry and adds nothing of its batch', async () => {
      const bad: Partial<UsageEntry>[] = [
        { quantity: -1 },
        { quantity: 1.5 },
        { costPicoUsd: -5 },
        { hour: H + 1 },
        { service: 'ec2' as UsageEntry['service'] },
        { kind: '' },
      ];
      for (const b of bad) {
        await expect(u().add([entry(), entry(b)]), JSON.stringify(b)).rejects.toThrow(/usage/);
      }
      expect(await u().list()).toEqual([]);
      await u().add([]);
      expect(await u().list()).toEqual([]);
    });
  });
}

// QuotaStore conformance: per-project quotas, and the storage usage the database keeps in each write's own
// transaction (objects, upload parts, table items, queue messages), with writes past the quota refused whole.
import { describe, expect, it } from 'vitest';
import { StorageQuotaExceededError } from '../errors.js';
import { NO_QUOTA } from '../types.js';
import { codeOf, deployOf, fn, useHarness, type HarnessFactory } from './harness.js';
import { newObject } from './objects.js';
import { queue } from './queues.js';
import { tableDef } from './tables.js';

export function quotaStoreConformance(name: string, make: HarnessFactory): void {
  describe(`QuotaStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const q = () => ctx.store.quotas;
    const usage = async (project = 'default') => (await q().get(project)).storageBytes;

    it('starts every project with no quota and nothing stored; an unknown project is not found', async () => {
      await ctx.store.projects.ensure('team-a');
      expect(await q().get('default')).toStrictEqual({
        project: 'default',
        quota: NO_QUOTA,
        storageBytes: 0,
      });
      expect((await q().list()).map((x) => x.project)).toEqual(['default', 'team-a']);
      await expect(q().get('nope')).rejects.toMatchObject({ code: 'ProjectNotFound' });
      await expect(q().set('nope', { concurrency: 1 })).rejects.toMatchObject({ code: 'ProjectNotFound' });
    });

    it('sets the given fields, keeps the others, clears with null, and keeps them across a reopen', async () => {
      await q().set('default', { concurrency: 4, memoryMB: 512 });
      const after = await q().set('default', { storageBytes: 1000, memoryMB: null });
      expect(after.quota).toStrictEqual({ concurrency: 4, memoryMB: null, storageBytes: 1000 });
      await ctx.reopen();
      expect((await q().get('default')).quota).toStrictEqual({
        concurrency: 4,
        memoryMB: null,
        storageBytes: 1000,
      });
    });

    it('refuses a value that is not a whole number of at least 1, changing nothing', async () => {
      await q().set('default', { concurrency: 2 });
      for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 60]) {
        await expect(q().set('default', { concurrency: bad })).rejects.toThrow(/whole number/);
      }
      expect((await q().get('default')).quota.concurrency).toBe(2);
    });

    it('counts object sizes exactly: a replace by the difference, a delete frees it', async () => {
      await ctx.store.objects.createBucket('default', 'b', null);
      await ctx.store.objects.putObject('default', newObject('b', 'k1', { size: 100 }));
      await ctx.store.objects.putObject('default', newObject('b', 'k2', { size: 50 }));
      expect(await usage()).toBe(150);
      await ctx.store.objects.putObject('default', newObject('b', 'k1', { size: 30 }));
      expect(await usage()).toBe(80);
      await ctx.store.objects.deleteObjects('default', 'b', ['k1', 'k2']);
      expect(await usage()).toBe(0);
    });

    it('counts table items and queue messages, and frees them when deleted', async () => {
      await ctx.store.tables.createTable('default', tableDef('t'), null);
      const key = { pk: { S: 'a' }, sk: { N: '1' } };
      await ctx.store.tables.write('default', {
        table: 't',
        key,
        decide: () => ({ ...key, data: { S: 'x'.repeat(200) } }),
      });
      const itemBytes = await usage();
      expect(itemBytes).toBeGreaterThan(200);
      await ctx.store.functions.deploy({
        ...deployOf('svc', [fn('f')], codeOf('svc')),
        queues: [queue('jobs')],
      });
      await ctx.store.queues.send('default', 'jobs', [{ body: 'y'.repeat(300) }]);
      const withMessage = await usage();
      expect(withMessage - itemBytes).toBeGreaterThanOrEqual(300);
      await ctx.store.queues.purge('default', 'jobs');
      await ctx.store.tables.write('default', { table: 't', key, decide: () => null });
      expect(await usage()).toBe(0);
    });

    it('refuses a write past the quota whole, names the project, and leaves other projects alone', async () => {
      await ctx.store.projects.ensure('team-b');
      for (const p of ['default', 'team-b']) await ctx.store.objects.createBucket(p, 'b', null);
      await q().set('default', { storageBytes: 100 });
      await ctx.store.objects.putObject('default', newObject('b', 'fits', { size: 100 }));
      const refused = ctx.store.objects.putObject('default', newObject('b', 'over', { size: 1 }));
      await expect(refused).rejects.toBeInstanceOf(StorageQuotaExceededError);
      await expect(refused).rejects.toMatchObject({ project: 'default', quotaBytes: 100, usageBytes: 100 });
      expect(await ctx.store.objects.getObject('default', 'b', 'over')).toBeUndefined();
      expect(await usage()).toBe(100);
      // A message send of several is all or nothing too.
      await ctx.store.functions.deploy({
        ...deployOf('svc', [fn('f')], codeOf('svc')),
        queues: [queue('jobs')],
      });
      await expect(
        ctx.store.queues.send('default', 'jobs', [{ body: 'a' }, { body: 'b' }]),
      ).rejects.toBeInstanceOf(StorageQuotaExceededError);
      expect(await ctx.store.queues.peek('default', 'jobs')).toEqual([]);
      await ctx.store.objects.putObject('team-b', newObject('b', 'big', { size: 10_000 }));
      expect(await usage('team-b')).toBe(10_000);
    });

    it('lets deletes and shrinking writes through over a lowered quota, and raising it lets writes in', async () => {
      await ctx.store.objects.createBucket('default', 'b', null);
      await ctx.store.objects.putObject('default', newObject('b', 'a', { size: 60 }));
      await ctx.store.objects.putObject('default', newObject('b', 'b', { size: 60 }));
      await q().set('default', { storageBytes: 50 });
      await ctx.store.objects.putObject('default', newObject('b', 'a', { size: 10 }));
      await ctx.store.objects.deleteObjects('default', 'b', ['b']);
      expect(await usage()).toBe(10);
      await expect(
        ctx.store.objects.putObject('default', newObject('b', 'c', { size: 41 })),
      ).rejects.toBeInstanceOf(StorageQuotaExceededError);
      await q().set('default', { storageBytes: null });
      await ctx.store.objects.putObject('default', newObject('b', 'c', { size: 41 }));
      expect(await usage()).toBe(51);
    });

    it('moves a message to its dead-letter queue at the quota: a move stores nothing more', async () => {
      await ctx.store.functions.deploy({
        ...deployOf('svc', [fn('f')], codeOf('svc')),
        queues: [
          queue('work', { visibilityTimeout: 1, deadLetterQueue: 'dead', maxReceiveCount: 1 }),
          queue('dead'),
        ],
      });
      await ctx.store.queues.send('default', 'work', [{ body: 'poison' }]);
      const stored = await usage();
      await q().set('default', { storageBytes: stored });
      const opts = { max: 10, visibilityTimeout: 1 };
      expect(await ctx.store.queues.receive('default', 'work', opts)).toHaveLength(1);
      ctx.clock.advance(2000);
      expect(await ctx.store.queues.receive('default', 'work', opts)).toEqual([]);
      expect((await ctx.store.queues.peek('default', 'dead')).map((m) => m.body)).toEqual(['poison']);
      expect(await usage()).toBe(stored);
    });

    it("drops a removed project's quota", async () => {
      await ctx.store.projects.ensure('gone');
      await q().set('gone', { concurrency: 3 });
      expect(await ctx.store.projects.remove('gone')).toBe(true);
      await ctx.store.projects.ensure('gone');
      expect((await q().get('gone')).quota).toStrictEqual(NO_QUOTA);
    });
  });
}

// ScheduleStore conformance: schedules follow deploys, keep their next tick across an unchanged redeploy, and
// a tick moves once however many callers try.
import { describe, expect, it } from 'vitest';
import type { ScheduleDef } from '../types.js';
import { useHarness, type HarnessFactory } from './harness.js';

export function scheduleStoreConformance(name: string, make: HarnessFactory): void {
  describe(`ScheduleStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const s = () => ctx.store.schedules;
    const def = (id: string, over: Partial<ScheduleDef> = {}, firstFireAt = ctx.clock.now() + 60_000) => ({
      id,
      project: 'default',
      functionName: 'tick',
      expression: 'rate(1 minute)',
      timezone: 'UTC',
      input: null,
      firstFireAt,
      ...over,
    });

    it('stores the schedules it is given, with their first tick', async () => {
      const now = ctx.clock.now();
      await s().sync([
        def('a', { input: '{"k":1}' }),
        def('b', { functionName: 'other', project: 'p2' }, now + 5),
      ]);
      expect(await s().list()).toStrictEqual([
        {
          id: 'b',
          project: 'p2',
          functionName: 'other',
          expression: 'rate(1 minute)',
          timezone: 'UTC',
          input: null,
          nextFireAt: now + 5,
          createdAt: now,
        },
        {
          id: 'a',
          project: 'default',
          functionName: 'tick',
          expression: 'rate(1 minute)',
          timezone: 'UTC',
          input: '{"k":1}',
          nextFireAt: now + 60_000,
          createdAt: now,
        },
      ]);
      expect((await s().list('p2')).map((x) => x.id)).toEqual(['b']);
      expect(await s().nextFireAt()).toBe(now + 5);
    });

    it('keeps the next tick of an unchanged schedule and drops the ones no longer given', async () => {
      const now = ctx.clock.now();
      await s().sync([def('keep', {}, now + 1000), def('drop', {}, now + 2000)]);
      ctx.clock.advance(500);
      await s().sync([def('keep', {}, now + 99_999), def('new', {}, now + 3000)]);
      const list = await s().list();
      expect(list.map((x) => [x.id, x.nextFireAt])).toEqual([
        ['keep', now + 1000],
        ['new', now + 3000],
      ]);
      await s().sync([]);
      expect(await s().list()).toEqual([]);
      expect(await s().nextFireAt()).toBeUndefined();
    });

    it('lists due schedules earliest first and moves a tick only from where it is', async () => {
      const now = ctx.clock.now();
      await s().sync([
        def('late', {}, now + 200),
        def('early', {}, now + 100),
        def('future', {}, now + 10_000),
      ]);
      expect(await s().due(10)).toEqual([]);
      ctx.clock.advance(200);
      expect((await s().due(10)).map((x) => x.id)).toEqual(['early', 'late']);
      expect((await s().due(1)).map((x) => x.id)).toEqual(['early']);
      expect(await s().advance('early', now + 100, now + 60_100)).toBe(true);
      // A second node that saw the same tick due loses.
      expect(await s().advance('early', now + 100, now + 60_100)).toBe(false);
      expect(await s().advance('missing', 0, 1)).toBe(false);
      expect((await s().due(10)).map((x) => x.id)).toEqual(['late']);
    });

    it('gives one tick, and its event, to exactly one of many callers at once', async () => {
      const now = ctx.clock.now();
      await s().sync([def('t', {}, now)]);
      const event = (n: number) => ({
        id: `tick-${now}-${n}`,
        project: 'default',
        functionName: 'tick',
        source: 'schedule',
        payload: '{}',
      });
      const wins = await Promise.all(
        Array.from({ length: 8 }, (_, n) => s().advance('t', now, now + 60_000, event(n))),
      );
      expect(wins.filter(Boolean)).toHaveLength(1);
      expect(await ctx.store.events.list({})).toHaveLength(1);
    });

    it('never enqueues a tick again once it moved on, even after its event is done and gone', async () => {
      const now = ctx.clock.now();
      await s().sync([def('t', {}, now)]);
      const ev = {
        id: 'tick-1',
        project: 'default',
        functionName: 'tick',
        source: 'schedule',
        payload: '{}',
      };
      expect(await s().advance('t', now, now + 60_000, ev)).toBe(true);
      const [claimed] = await ctx.store.events.claim({ owner: 'n1', limit: 1, leaseMs: 1000 });
      await ctx.store.events.complete(claimed!.id, 'n1');
      // A slower node that read the same tick as due.
      expect(await s().advance('t', now, now + 60_000, ev)).toBe(false);
      expect(await ctx.store.events.get('tick-1')).toBeUndefined();
    });

    it('keeps schedules and their next tick across a reopen', async () => {
      const now = ctx.clock.now();
      await s().sync([def('kept', {}, now + 42)]);
      await ctx.reopen();
      expect((await s().list()).map((x) => [x.id, x.nextFireAt])).toEqual([['kept', now + 42]]);
    });
  });
}

// EventQueue conformance: durable enqueue, leases that keep two owners from one event, failures that come
// back when due, dead letters, all in store time (a ManualClock), so no test sleeps to see time pass.
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../types.js';
import { useHarness, type HarnessFactory } from './harness.js';

export function eventQueueConformance(name: string, make: HarnessFactory): void {
  describe(`EventQueue conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const q = () => ctx.store.events;
    const ev = (id: string, over: Partial<NewEvent> = {}): NewEvent => ({
      id,
      project: 'default',
      functionName: 'worker',
      source: 'invoke',
      payload: '{}',
      ...over,
    });
    const claim = async (owner: string, limit = 10, leaseMs = 60_000) =>
      (await q().claim({ owner, limit, leaseMs })).map((e) => e.id);

    it('stores every field and answers false to a second enqueue of the same id, changing nothing', async () => {
      const now = ctx.clock.now();
      expect(
        await q().enqueue(
          ev('e1', {
            payload: '{"hello":"wörld"}',
            functionName: 'f',
            trace: 'Root=1-abc;Lineage=0a1b2c3d:3',
          }),
        ),
      ).toBe(true);
      expect(await q().enqueue(ev('e1', { payload: 'second' }))).toBe(false);
      expect(await q().get('e1')).toStrictEqual({
        id: 'e1',
        project: 'default',
        functionName: 'f',
        qualifier: null,
        source: 'invoke',
        payload: '{"hello":"wörld"}',
        trace: 'Root=1-abc;Lineage=0a1b2c3d:3',
        enqueuedAt: now,
        attempts: 0,
        failures: 0,
        nextAttemptAt: now,
        state: 'pending',
        lastError: null,
        leaseOwner: null,
        leaseUntil: null,
      });
      expect(await q().get('missing')).toBeUndefined();
    });

    it('keeps a qualifier and fractional times (jittered retries are due at fractions of a millisecond)', async () => {
      const now = ctx.clock.now();
      await q().enqueue(ev('v', { qualifier: '3', enqueuedAt: now + 0.25, nextAttemptAt: now + 0.5 }));
      expect(await q().get('v')).toMatchObject({
        qualifier: '3',
        enqueuedAt: now + 0.25,
        nextAttemptAt: now + 0.5,
      });
      ctx.clock.advance(1);
      const [c] = await q().claim({ owner: 'n1', limit: 1, leaseMs: 1000.5 });
      expect(c?.leaseUntil).toBe(ctx.clock.now() + 1000.5);
      expect(await q().fail('v', 'n1', { nextAttemptAt: ctx.clock.now() + 1234.56, error: 'e' })).toBe(true);
      expect((await q().get('v'))?.nextAttemptAt).toBe(ctx.clock.now() + 1234.56);
    });

    it('lists 100 events by default and at most 1000', async () => {
      for (let i = 0; i < 1005; i++) await q().enqueue(ev(`e${i}`));
      expect(await q().list({})).toHaveLength(100);
      expect(await q().list({ limit: 5000 })).toHaveLength(1000);
      expect(await q().list({ limit: 3 })).toHaveLength(3);
    });

    it('claims due events oldest first, up to the limit, keeping arrival order within one millisecond', async () => {
      const now = ctx.clock.now();
      await q().enqueue(ev('late', { enqueuedAt: now - 100 }));
      for (const id of ['c', 'a', 'b']) await q().enqueue(ev(id, { enqueuedAt: now - 300 }));
      await q().enqueue(ev('future', { nextAttemptAt: now + 1000 }));
      expect(await claim('n1', 2)).toEqual(['c', 'a']);
      expect(await claim('n1', 10)).toEqual(['b', 'late']);
      expect(await claim('n1', 10)).toEqual([]);
      ctx.clock.advance(1000);
      expect(await claim('n1', 10)).toEqual(['future']);
    });

    it('leaves the events of skipped functions, taking the next ones of other functions', async () => {
      const now = ctx.clock.now();
      await q().enqueue(ev('full-1', { functionName: 'full', enqueuedAt: now - 300 }));
      await q().enqueue(ev('other-p', { functionName: 'full', project: 'other', enqueuedAt: now - 250 }));
      await q().enqueue(ev('full-2', { functionName: 'full', enqueuedAt: now - 200 }));
      await q().enqueue(ev('free-1', { functionName: 'free', enqueuedAt: now - 100 }));
      const skip = [{ project: 'default', name: 'full' }];
      const claimed = await q().claim({ owner: 'n1', limit: 10, leaseMs: 1000, skip });
      // Only default/full is skipped: the same name in another project is another function.
      expect(claimed.map((e) => e.id)).toEqual(['other-p', 'free-1']);
      expect((await q().get('full-1'))?.attempts).toBe(0);
      expect(await claim('n1', 10)).toEqual(['full-1', 'full-2']);
    });

    it('counts an attempt and sets the lease when claimed', async () => {
      await q().enqueue(ev('e'));
      const [claimed] = await q().claim({ owner: 'n1', limit: 1, leaseMs: 5000 });
      expect(claimed).toMatchObject({
        id: 'e',
        attempts: 1,
        leaseOwner: 'n1',
        leaseUntil: ctx.clock.now() + 5000,
      });
      expect(await q().get('e')).toStrictEqual(claimed);
    });

    it('never hands a leased event to another owner until the lease runs out; then the first owner loses it', async () => {
      await q().enqueue(ev('e'));
      expect(await claim('n1', 10, 5000)).toEqual(['e']);
      expect(await claim('n2')).toEqual([]);
      ctx.clock.advance(4999);
      expect(await claim('n2')).toEqual([]);
      ctx.clock.advance(1);
      expect(await claim('n2')).toEqual(['e']);
      expect((await q().get('e'))?.attempts).toBe(2);
      // n1 finished too late: its answers change nothing, n2's do.
      expect(await q().complete('e', 'n1')).toBe(false);
      expect(await q().fail('e', 'n1', { nextAttemptAt: 0, error: 'x' })).toBe(false);
      expect(await q().deadLetter('e', 'n1', 'x')).toBe(false);
      expect(await q().extend('e', 'n1', 1000)).toBe(false);
      expect(await q().release('e', 'n1')).toBe(false);
      expect((await q().get('e'))?.leaseOwner).toBe('n2');
      expect(await q().complete('e', 'n2')).toBe(true);
    });

    it('gives each of many events to exactly one of several owners claiming at once', async () => {
      for (let i = 0; i < 40; i++) await q().enqueue(ev(`e${String(i).padStart(2, '0')}`));
      const rounds = await Promise.all(['a', 'b', 'c', 'd'].flatMap((o) => [claim(o, 7), claim(o, 7)]));
      const all = rounds.flat();
      expect(new Set(all).size).toBe(all.length);
      const rest = await claim('e', 100);
      expect([...all, ...rest].sort()).toEqual(
        Array.from({ length: 40 }, (_, i) => `e${String(i).padStart(2, '0')}`),
      );
    });

    it('removes a completed event', async () => {
      await q().enqueue(ev('e'));
      await claim('n1');
      expect(await q().complete('e', 'n1')).toBe(true);
      expect(await q().get('e')).toBeUndefined();
      expect(await q().complete('e', 'n1')).toBe(false);
      expect(await q().list({})).toEqual([]);
    });

    it('brings a failed event back when it is due, with its error, counting the next attempt', async () => {
      await q().enqueue(ev('e'));
      await claim('n1');
      const at = ctx.clock.now() + 60_000;
      expect(await q().fail('e', 'n1', { nextAttemptAt: at, error: 'Error: boom' })).toBe(true);
      expect(await q().get('e')).toMatchObject({
        state: 'pending',
        attempts: 1,
        failures: 1,
        nextAttemptAt: at,
        lastError: 'Error: boom',
        leaseOwner: null,
        leaseUntil: null,
      });
      expect(await claim('n2')).toEqual([]);
      expect(await q().nextDueAt()).toBe(at);
      ctx.clock.advance(60_000);
      const [again] = await q().claim({ owner: 'n2', limit: 1, leaseMs: 1000 });
      expect(again).toMatchObject({ id: 'e', attempts: 2, lastError: 'Error: boom' });
    });

    it('postpones an attempt that could not run without counting a failure', async () => {
      await q().enqueue(ev('e'));
      await claim('n1');
      const at = ctx.clock.now() + 500;
      expect(await q().postpone('e', 'n1', { nextAttemptAt: at, error: 'throttled' })).toBe(true);
      expect(await q().get('e')).toMatchObject({
        attempts: 1,
        failures: 0,
        nextAttemptAt: at,
        lastError: 'throttled',
        leaseOwner: null,
      });
      expect(await q().postpone('e', 'n1', { nextAttemptAt: at, error: 'x' })).toBe(false);
      ctx.clock.advance(500);
      expect(await claim('n2')).toEqual(['e']);
      expect((await q().get('e'))?.attempts).toBe(2);
    });

    it('revives a dead event: pending, due now, failures cleared, attempts and error kept', async () => {
      await q().enqueue(ev('e'));
      await q().enqueue(ev('live'));
      await claim('n1', 1);
      await q().fail('e', 'n1', { nextAttemptAt: ctx.clock.now(), error: 'boom' });
      await claim('n1', 1);
      await q().deadLetter('e', 'n1', 'RetriesExhausted: boom');
      expect(await q().revive('live')).toBe(false);
      expect(await q().revive('missing')).toBe(false);
      ctx.clock.advance(1000);
      expect(await q().revive('e')).toBe(true);
      expect(await q().get('e')).toMatchObject({
        state: 'pending',
        attempts: 2,
        failures: 0,
        enqueuedAt: ctx.clock.now(),
        nextAttemptAt: ctx.clock.now(),
        lastError: 'RetriesExhausted: boom',
        leaseOwner: null,
      });
      expect(await q().revive('e')).toBe(false);
      expect(await claim('n2', 5)).toEqual(['live', 'e']);
    });

    it('releases an attempt that never started without counting it', async () => {
      await q().enqueue(ev('e'));
      await claim('n1');
      expect(await q().release('e', 'n1')).toBe(true);
      expect(await q().get('e')).toMatchObject({ attempts: 0, leaseOwner: null });
      expect(await claim('n2')).toEqual(['e']);
    });

    it('keeps a dead-lettered event out of claims, listed as dead with its error', async () => {
      await q().enqueue(ev('dead'));
      await q().enqueue(ev('live'));
      await claim('n1', 1);
      expect(await q().deadLetter('dead', 'n1', 'retries exhausted')).toBe(true);
      ctx.clock.advance(10 * 60_000);
      expect(await claim('n2')).toEqual(['live']);
      expect(await claim('n3')).toEqual([]);
      const dead = await q().list({ state: 'dead' });
      expect(dead.map((e) => [e.id, e.state, e.lastError, e.leaseOwner, e.failures])).toEqual([
        ['dead', 'dead', 'retries exhausted', null, 0],
      ]);
      // The last retry failing counts as a failure too.
      expect(await q().deadLetter('live', 'n2', 'RetriesExhausted', true)).toBe(true);
      expect((await q().get('live'))?.failures).toBe(1);
    });

    it('lengthens a lease for its owner', async () => {
      await q().enqueue(ev('e'));
      await claim('n1', 1, 1000);
      ctx.clock.advance(900);
      expect(await q().extend('e', 'n1', 1000)).toBe(true);
      expect((await q().get('e'))?.leaseUntil).toBe(ctx.clock.now() + 1000);
      ctx.clock.advance(900);
      expect(await claim('n2')).toEqual([]);
      expect(await q().extend('e', 'n2', 1000)).toBe(false);
    });

    it('ends every lease of one owner at once (a node restarting under its id)', async () => {
      for (const id of ['a', 'b', 'c']) await q().enqueue(ev(id));
      await claim('old', 2);
      await claim('other', 1);
      expect(await q().releaseOwner('old')).toBe(2);
      expect(await claim('old')).toEqual(['a', 'b']);
      expect((await q().get('a'))?.attempts).toBe(2);
      expect(await q().releaseOwner('nobody')).toBe(0);
    });

    it('says when the next event becomes claimable', async () => {
      expect(await q().nextDueAt()).toBeUndefined();
      const now = ctx.clock.now();
      await q().enqueue(ev('later', { nextAttemptAt: now + 5000 }));
      await q().enqueue(ev('soon', { nextAttemptAt: now + 2000 }));
      expect(await q().nextDueAt()).toBe(now + 2000);
      ctx.clock.advance(2000);
      await claim('n1', 1, 10_000);
      // "soon" is leased until now + 12000; "later" is due at now + 5000.
      expect(await q().nextDueAt()).toBe(now + 5000);
      await q().enqueue(ev('dead'));
      await claim('n1', 5);
      await q().deadLetter('dead', 'n1', 'x');
      ctx.clock.advance(3000);
      expect(await claim('n1', 5, 10_000)).toEqual(['later']);
      // "later" is now leased until now + 15000; a dead event is never due.
      expect(await q().nextDueAt()).toBe(now + 12_000);
    });

    it('lists by project, function, state and due time, oldest due first, up to the limit', async () => {
      const now = ctx.clock.now();
      await q().enqueue(ev('a1', { project: 'a', functionName: 'f', nextAttemptAt: now + 30 }));
      await q().enqueue(ev('a2', { project: 'a', functionName: 'g', nextAttemptAt: now + 10 }));
      await q().enqueue(ev('b1', { project: 'b', functionName: 'f', nextAttemptAt: now + 20 }));
      const ids = async (query: Parameters<ReturnType<typeof q>['list']>[0]) =>
        (await q().list(query)).map((e) => e.id);
      expect(await ids({})).toEqual(['a2', 'b1', 'a1']);
      expect(await ids({ project: 'a' })).toEqual(['a2', 'a1']);
      expect(await ids({ functionName: 'f' })).toEqual(['b1', 'a1']);
      expect(await ids({ dueBy: now + 20 })).toEqual(['a2', 'b1']);
      expect(await ids({ limit: 1 })).toEqual(['a2']);
      expect(await ids({ state: 'dead' })).toEqual([]);
    });

    it('counts per function what waits, what runs and what failed, with the oldest waiting', async () => {
      expect(await q().stats()).toEqual([]);
      const t0 = ctx.clock.now();
      await q().enqueue(ev('a1', { enqueuedAt: t0 - 5000 }));
      await q().enqueue(ev('a2', { enqueuedAt: t0 - 1000 }));
      await q().enqueue(ev('a3'));
      await q().enqueue(ev('b1', { functionName: 'other', project: 'p2' }));
      await claim('n1', 2, 1000);
      await q().deadLetter('a1', 'n1', 'x');
      expect(await q().stats()).toEqual([
        {
          project: 'default',
          functionName: 'worker',
          pending: 2,
          inFlight: 1,
          dead: 1,
          oldestPendingAt: t0 - 1000,
        },
        { project: 'p2', functionName: 'other', pending: 1, inFlight: 0, dead: 0, oldestPendingAt: t0 },
      ]);
      ctx.clock.advance(1000);
      // The lease ran out: still pending, no longer in flight.
      expect((await q().stats('default'))[0]).toMatchObject({ pending: 2, inFlight: 0, dead: 1 });
      expect((await q().stats('p2')).map((x) => x.functionName)).toEqual(['other']);
    });

    it('purges dead events accepted before a time, and nothing pending', async () => {
      const t0 = ctx.clock.now();
      await q().enqueue(ev('old-dead', { enqueuedAt: t0 - 10_000 }));
      await q().enqueue(ev('new-dead', { enqueuedAt: t0 - 10 }));
      await q().enqueue(ev('old-pending', { enqueuedAt: t0 - 20_000, nextAttemptAt: t0 + 60_000 }));
      await claim('n1', 10);
      await q().deadLetter('old-dead', 'n1', 'x');
      await q().deadLetter('new-dead', 'n1', 'x');
      expect(await q().purgeDead(t0 - 1000)).toBe(1);
      expect((await q().list({})).map((e) => e.id).sort()).toEqual(['new-dead', 'old-pending']);
      expect(await q().purgeDead(t0 - 1000)).toBe(0);
    });

    it('keeps pending events, attempts, leases and dead letters across a reopen', async () => {
      for (const id of ['one', 'two', 'three', 'four']) await q().enqueue(ev(id));
      await claim('n1', 3, 60_000);
      await q().complete('two', 'n1');
      await q().deadLetter('three', 'n1', 'gave up');
      await ctx.reopen();
      expect((await q().list({})).map((e) => [e.id, e.state, e.attempts, e.leaseOwner])).toEqual([
        ['one', 'pending', 1, 'n1'],
        ['three', 'dead', 1, null],
        ['four', 'pending', 0, null],
      ]);
      expect(await claim('n2')).toEqual(['four']);
    });
  });
}

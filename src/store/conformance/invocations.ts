// InvocationLog conformance: one record per invocation, batched writes, queries and cursors.
import { describe, expect, it } from 'vitest';
import { appendMany, record, sleep, useHarness, type HarnessFactory } from './harness.js';

export function invocationLogConformance(name: string, make: HarnessFactory): void {
  describe(`InvocationLog conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const reopen = () => ctx.reopen();

    describe('records', () => {
      it('returns a record exactly as appended once flushed, with a seq', async () => {
        const cold = record({
          functionName: 'f',
          cold: true,
          initMs: 12.5,
          status: 'error',
          errorType: 'TypeError',
          errorMessage: 'x is not a function',
          logs: 'START RequestId: 1\nline\nEND\n',
          durationMs: 3.25,
          billedMs: 4,
          maxRssBytes: 52_428_800,
        });
        const warm = record({
          functionName: 'f',
          cold: false,
          initMs: null,
          errorType: null,
          errorMessage: null,
        });
        ctx.store.invocations.write(cold);
        ctx.store.invocations.write(warm);
        await ctx.store.invocations.flush();

        const a = await ctx.store.invocations.get(cold.requestId);
        const b = await ctx.store.invocations.get(warm.requestId);
        expect(a).toStrictEqual({ ...cold, seq: expect.any(Number) });
        expect(b).toStrictEqual({ ...warm, seq: expect.any(Number) });
        expect(b!.seq).toBeGreaterThan(a!.seq);
        expect(await ctx.store.invocations.get('missing')).toBeUndefined();
      });

      it('writes buffered records on its own within the flush interval', async () => {
        const rec = record();
        ctx.store.invocations.write(rec);
        const deadline = Date.now() + 5000;
        while (!(await ctx.store.invocations.get(rec.requestId)) && Date.now() < deadline) await sleep(10);
        expect(await ctx.store.invocations.get(rec.requestId)).toBeDefined();
      });

      it('returns newest first by default and oldest first with ascending', async () => {
        const ids = appendMany(ctx.store.invocations, 5, () => ({}));
        await ctx.store.invocations.flush();
        expect((await ctx.store.invocations.query({})).map((r) => r.requestId)).toEqual([...ids].reverse());
        expect((await ctx.store.invocations.query({ ascending: true })).map((r) => r.requestId)).toEqual(ids);
      });

      it('filters by function, since and after, alone and combined', async () => {
        appendMany(ctx.store.invocations, 6, (i) => ({
          functionName: i % 2 === 0 ? 'even' : 'odd',
          start: 1000 + i * 100,
        }));
        await ctx.store.invocations.flush();
        const all = await ctx.store.invocations.query({ ascending: true });
        expect(all.map((r) => r.start)).toEqual([1000, 1100, 1200, 1300, 1400, 1500]);

        const even = await ctx.store.invocations.query({ functionName: 'even', ascending: true });
        expect(even.map((r) => r.start)).toEqual([1000, 1200, 1400]);
        const since = await ctx.store.invocations.query({ since: 1300, ascending: true });
        expect(since.map((r) => r.start)).toEqual([1300, 1400, 1500]);
        const after = await ctx.store.invocations.query({ after: all[3]!.seq, ascending: true });
        expect(after.map((r) => r.start)).toEqual([1400, 1500]);
        const combined = await ctx.store.invocations.query({
          functionName: 'odd',
          since: 1200,
          after: all[4]!.seq,
        });
        expect(combined.map((r) => r.start)).toEqual([1500]);
        expect(await ctx.store.invocations.query({ functionName: 'none' })).toEqual([]);
      });

      it('pages through everything with the after cursor, no record twice or missed', async () => {
        const ids = appendMany(ctx.store.invocations, 35, () => ({ functionName: 'f' }));
        await ctx.store.invocations.flush();
        const seen: string[] = [];
        let after = 0;
        for (;;) {
          const page = await ctx.store.invocations.query({
            functionName: 'f',
            after,
            ascending: true,
            limit: 10,
          });
          if (page.length === 0) break;
          seen.push(...page.map((r) => r.requestId));
          after = page[page.length - 1]!.seq;
        }
        expect(seen).toEqual(ids);
      });

      it('limits to 100 by default and to at most 1000', async () => {
        appendMany(ctx.store.invocations, 1100, () => ({}));
        await ctx.store.invocations.flush();
        expect(await ctx.store.invocations.query({})).toHaveLength(100);
        expect(await ctx.store.invocations.query({ limit: 7 })).toHaveLength(7);
        expect(await ctx.store.invocations.query({ limit: 5000 })).toHaveLength(1000);
        const newest = await ctx.store.invocations.query({ limit: 1 });
        const oldest = await ctx.store.invocations.query({ limit: 1, ascending: true });
        expect(newest[0]!.seq).toBeGreaterThan(oldest[0]!.seq);
      });

      it('keeps every attempt of one request id; get returns the latest, a query by request id all', async () => {
        const log = ctx.store.invocations;
        const first = record({ trigger: 'event', attempt: 1, status: 'error' });
        log.write(first);
        log.write({ ...first, attempt: 3, status: 'ok' });
        log.write({ ...first, attempt: 2, status: 'timeout' });
        await log.flush();
        expect(await log.get(first.requestId)).toMatchObject({ attempt: 3, status: 'ok' });
        const all = await log.query({ requestId: first.requestId, ascending: true });
        expect(all.map((r) => [r.attempt, r.status])).toEqual([
          [1, 'error'],
          [3, 'ok'],
          [2, 'timeout'],
        ]);
      });

      it('ignores a duplicate (requestId, attempt) without losing the rest of its batch', async () => {
        const first = record({ logs: 'first' });
        const after = record();
        ctx.store.invocations.write(first);
        ctx.store.invocations.write({ ...first, logs: 'duplicate' });
        ctx.store.invocations.write(after);
        await ctx.store.invocations.flush();
        expect((await ctx.store.invocations.get(first.requestId))?.logs).toBe('first');
        expect(await ctx.store.invocations.get(after.requestId)).toBeDefined();
        expect(await ctx.store.invocations.query({})).toHaveLength(2);

        ctx.store.invocations.write({ ...first, logs: 'again, in a later batch' });
        await ctx.store.invocations.flush();
        expect((await ctx.store.invocations.get(first.requestId))?.logs).toBe('first');
      });

      it('loses nothing on close: 1000 buffered records are all there after a reopen', async () => {
        const ids = appendMany(ctx.store.invocations, 1000, () => ({ functionName: 'bulk' }));
        await reopen();
        const back = await ctx.store.invocations.query({
          functionName: 'bulk',
          ascending: true,
          limit: 1000,
        });
        expect(back.map((r) => r.requestId)).toEqual(ids);
        expect(await ctx.store.invocations.query({ after: back[back.length - 1]!.seq })).toEqual([]);
      });

      it('keeps seq increasing across a reopen', async () => {
        ctx.store.invocations.write(record());
        await ctx.store.invocations.flush();
        const [before] = await ctx.store.invocations.query({ limit: 1 });
        await reopen();
        const rec = record();
        ctx.store.invocations.write(rec);
        await ctx.store.invocations.flush();
        expect((await ctx.store.invocations.get(rec.requestId))!.seq).toBeGreaterThan(before!.seq);
      });

      it('filters by project, request id, status and a time range', async () => {
        const log = ctx.store.invocations;
        log.write(record({ project: 'a', functionName: 'f', start: 1000, status: 'ok' }));
        log.write(record({ project: 'b', functionName: 'f', start: 2000, status: 'error' }));
        log.write(record({ project: 'a', functionName: 'f', start: 3000, status: 'timeout' }));
        const target = record({ project: 'a', functionName: 'g', start: 4000, status: 'throttled' });
        log.write(target);
        await log.flush();
        const starts = async (q: Parameters<typeof log.query>[0]) =>
          (await log.query({ ...q, ascending: true })).map((r) => r.start);

        expect(await starts({ project: 'a' })).toEqual([1000, 3000, 4000]);
        expect(await starts({ project: 'a', functionName: 'f' })).toEqual([1000, 3000]);
        expect(await starts({ status: ['error', 'timeout'] })).toEqual([2000, 3000]);
        expect(await starts({ status: [] })).toEqual([]);
        expect(await starts({ since: 2000, until: 4000 })).toEqual([2000, 3000]);
        expect(await starts({ requestId: target.requestId })).toEqual([4000]);
        expect(await starts({ project: 'b', requestId: target.requestId })).toEqual([]);
      });

      it('pages back from the newest with the before cursor', async () => {
        const ids = appendMany(ctx.store.invocations, 25, () => ({}));
        await ctx.store.invocations.flush();
        const seen: string[] = [];
        let before: number | undefined;
        for (;;) {
          const page = await ctx.store.invocations.query({ limit: 10, ...(before ? { before } : {}) });
          if (page.length === 0) break;
          seen.push(...page.map((r) => r.requestId));
          before = page[page.length - 1]!.seq;
        }
        expect(seen).toEqual([...ids].reverse());
      });

      it('keeps the project, trigger and attempt of every record', async () => {
        const rec = record({ project: 'team', trigger: 'event', attempt: 3 });
        ctx.store.invocations.write(rec);
        await ctx.store.invocations.flush();
        expect(await ctx.store.invocations.get(rec.requestId)).toMatchObject({
          project: 'team',
          trigger: 'event',
          attempt: 3,
        });
      });

      it('keeps a malformed record from costing the rest of its batch', async () => {
        const good = record();
        const bad = { ...record(), status: undefined } as unknown as ReturnType<typeof record>;
        ctx.store.invocations.write(bad);
        ctx.store.invocations.write(good);
        await ctx.store.invocations.flush();
        expect(await ctx.store.invocations.get(good.requestId)).toBeDefined();
        expect(await ctx.store.invocations.get(bad.requestId)).toBeUndefined();
      });
    });

    describe('lifecycle', () => {
      it('flush with nothing buffered is harmless', async () => {
        await ctx.store.invocations.flush();
        await ctx.store.invocations.flush();
        expect(await ctx.store.invocations.query({})).toEqual([]);
      });

      it('after close: write is a silent no-op, close again resolves, other calls reject', async () => {
        await ctx.store.close();
        const rec = record();
        expect(() => ctx.store.invocations.write(rec)).not.toThrow();
        await ctx.store.close();
        await expect(ctx.store.functions.getFunction({ project: 'default', name: 'a' })).rejects.toThrow();
        await expect(ctx.store.invocations.query({})).rejects.toThrow();
        await expect(ctx.store.events.nextDueAt()).rejects.toThrow();
        await reopen();
        expect(await ctx.store.invocations.get(rec.requestId)).toBeUndefined();
      });
    });
  });
}

// InvocationLog conformance: one record per invocation, batched writes, queries and cursors.
import { describe, expect, it } from 'vitest';
import { matchesLogPattern, parseLogPattern } from '../log-pattern.js';
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

      it('filters by several functions and by a log pattern, in the query, alone and combined', async () => {
        const log = ctx.store.invocations;
        const logs = [
          'user 42 paid\nERROR card declined',
          'user 7 paid\nok',
          "it's 100% done_ \\ [x]\nERROR timeout",
          'WARN slow\nuser 42',
        ];
        logs.forEach((l, i) =>
          log.write(record({ functionName: ['a', 'b', 'c', 'a'][i]!, start: i, logs: l })),
        );
        await log.flush();
        const starts = async (q: Parameters<typeof log.query>[0]) =>
          (await log.query({ ...q, ascending: true })).map((r) => r.start);
        const pat = (text: string) => parseLogPattern(text);

        expect(await starts({ functionNames: ['a', 'c'] })).toEqual([0, 2, 3]);
        expect(await starts({ functionNames: [] })).toEqual([]);
        expect(await starts({ pattern: pat('ERROR') })).toEqual([0, 2]);
        expect(await starts({ pattern: pat('error') })).toEqual([]);
        expect(await starts({ pattern: pat('"user 42"') })).toEqual([0, 3]);
        expect(await starts({ pattern: pat('user -declined') })).toEqual([1, 3]);
        expect(await starts({ pattern: pat('?WARN ?declined') })).toEqual([0, 3]);
        expect(await starts({ pattern: pat('user ?paid ?nothing -declined') })).toEqual([1]);
        // LIKE's and SQL's special characters are just text.
        expect(await starts({ pattern: pat('100%') })).toEqual([2]);
        expect(await starts({ pattern: pat('done_') })).toEqual([2]);
        expect(await starts({ pattern: pat('%') })).toEqual([2]);
        expect(await starts({ pattern: pat('\\') })).toEqual([2]);
        expect(await starts({ pattern: pat("it's") })).toEqual([2]);
        expect(await starts({ pattern: pat('_') })).toEqual([2]);
        expect(await starts({ functionNames: ['a'], pattern: pat('ERROR'), status: ['ok'] })).toEqual([0]);
        expect(await starts({ functionNames: ['b', 'c'], pattern: pat('ERROR') })).toEqual([2]);
        for (const [i, l] of logs.entries()) {
          expect(matchesLogPattern(pat('user -declined'), l)).toBe([1, 3].includes(i));
        }
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

    describe('usage and retention', () => {
      const DAY = 86_400_000;
      const T = Date.UTC(2026, 2, 1);

      it("keeps each record's metered requests and cost, and derives GB-seconds", async () => {
        const rec = record({ billedMs: 1500, memoryMB: 512, requests: 1, costPicoUsd: 12_700_217 });
        const throttled = record({ status: 'throttled', billedMs: 0, requests: 0, costPicoUsd: 0 });
        ctx.store.invocations.write(rec);
        ctx.store.invocations.write(throttled);
        await ctx.store.invocations.flush();
        const back = await ctx.store.invocations.get(rec.requestId);
        expect(back).toMatchObject({ requests: 1, costPicoUsd: 12_700_217, gbSeconds: 0.75 });
        expect(await ctx.store.invocations.get(throttled.requestId)).toMatchObject({
          requests: 0,
          costPicoUsd: 0,
          gbSeconds: 0,
        });
      });

      it('sums usage in the database, per group and in a time range, exactly', async () => {
        const log = ctx.store.invocations;
        const recs = [
          record({
            project: 'a',
            functionName: 'f',
            trigger: 'http',
            start: T,
            billedMs: 3,
            memoryMB: 128,
            costPicoUsd: 206_250,
          }),
          record({
            project: 'a',
            functionName: 'f',
            trigger: 'event',
            start: T + 1,
            billedMs: 10,
            memoryMB: 128,
            costPicoUsd: 220_834,
          }),
          record({
            project: 'a',
            functionName: 'g',
            trigger: 'http',
            start: T + DAY,
            billedMs: 100,
            memoryMB: 1024,
            costPicoUsd: 1_866_670,
          }),
          record({
            project: 'b',
            functionName: 'f',
            trigger: 'http',
            start: T + DAY + 5,
            billedMs: 7,
            memoryMB: 256,
            costPicoUsd: 229_167,
          }),
          record({
            project: 'a',
            functionName: 'f',
            status: 'throttled',
            start: T + 2,
            billedMs: 0,
            requests: 0,
            costPicoUsd: 0,
          }),
          // Outside the range: before since, and at until.
          record({ project: 'a', functionName: 'f', start: T - 1, costPicoUsd: 999 }),
          record({ project: 'a', functionName: 'f', start: T + 2 * DAY, costPicoUsd: 999 }),
        ];
        for (const r of recs) log.write(r);
        await log.flush();
        const range = { since: T, until: T + 2 * DAY };

        const [all] = await log.usage(range);
        expect(all).toEqual({
          group: '',
          project: null,
          invocations: 5,
          requests: 4,
          billedMs: 120,
          mbMs: 3n * 128n + 10n * 128n + 100n * 1024n + 7n * 256n,
          costPicoUsd: 206_250n + 220_834n + 1_866_670n + 229_167n,
        });
        const byFn = await log.usage({ ...range, by: 'function' });
        expect(byFn.map((r) => [r.project, r.group, r.invocations, r.requests, r.costPicoUsd])).toEqual([
          ['a', 'f', 3, 2, 427_084n],
          ['a', 'g', 1, 1, 1_866_670n],
          ['b', 'f', 1, 1, 229_167n],
        ]);
        const byProject = await log.usage({ ...range, by: 'project' });
        expect(byProject.map((r) => [r.group, r.project, r.billedMs])).toEqual([
          ['a', null, 113],
          ['b', null, 7],
        ]);
        const byDay = await log.usage({ ...range, by: 'day', project: 'a' });
        expect(byDay.map((r) => [r.group, r.invocations, r.costPicoUsd])).toEqual([
          ['2026-03-01', 3, 427_084n],
          ['2026-03-02', 1, 1_866_670n],
        ]);
        const byTrigger = await log.usage({ ...range, by: 'trigger' });
        expect(byTrigger.map((r) => [r.group, r.invocations])).toEqual([
          ['event', 1],
          ['http', 4],
        ]);
        expect(await log.usage({ since: T + 10 * DAY, until: T + 11 * DAY })).toEqual([]);
        expect(await log.usage({ ...range, project: 'nobody', by: 'function' })).toEqual([]);
      });

      it('sums costs past 2^53 picodollars without losing a unit', async () => {
        const big = 2 ** 52 + 1;
        ctx.store.invocations.write(record({ start: T, costPicoUsd: big }));
        ctx.store.invocations.write(record({ start: T, costPicoUsd: big }));
        ctx.store.invocations.write(record({ start: T, costPicoUsd: 1 }));
        await ctx.store.invocations.flush();
        const [all] = await ctx.store.invocations.usage({ since: T, until: T + 1 });
        expect(all!.costPicoUsd).toBe(2n * BigInt(big) + 1n);
      });

      it('prunes records older than a time in bounded batches, oldest first, and says what is left', async () => {
        const log = ctx.store.invocations;
        expect(await log.oldestStart()).toBeNull();
        const old = appendMany(log, 25, (i) => ({ project: i % 2 ? 'a' : 'b', start: T + i }));
        const recent = record({ project: 'a', start: T + DAY });
        log.write(recent);
        await log.flush();
        expect(await log.oldestStart()).toBe(T);
        expect(await log.oldestStart('a')).toBe(T + 1);

        expect(await log.prune(T + 100, 10)).toBe(10);
        expect(await log.oldestStart()).toBe(T + 10);
        expect(await log.prune(T + 100, 10)).toBe(10);
        expect(await log.prune(T + 100, 10)).toBe(5);
        expect(await log.prune(T + 100, 10)).toBe(0);
        for (const id of old) expect(await log.get(id)).toBeUndefined();
        expect(await log.get(recent.requestId)).toBeDefined();
        expect(await log.oldestStart()).toBe(T + DAY);
        expect(await log.oldestStart('b')).toBeNull();
        // The cursor never goes back: a record written after a prune still comes after what was there.
        const later = record({ start: T + DAY + 1 });
        log.write(later);
        await log.flush();
        expect((await log.get(later.requestId))!.seq).toBeGreaterThan((await log.get(recent.requestId))!.seq);
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

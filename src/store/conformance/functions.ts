// The behaviour every Store must show, written once and run against each backend (SQLite now, PostgreSQL
// later) the way Hono runs one router case file against every router. Backend-specific checks (file modes,
// pragmas, storage layout) stay in that backend's own test file.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FunctionConfig } from '../config/manifest.js';
import type { DeployInput, InvocationRecord, QueuedEvent, Store } from './types.js';

export interface StoreHarness {
  store: Store;
  /** Closes the current store if it is still open and opens a new one over the same data. */
  reopen(): Promise<Store>;
  /** Closes whichever store is open and deletes the data. */
  cleanup(): Promise<void>;
}

export function storeConformance(name: string, make: () => Promise<StoreHarness>): void {
  describe(`Store conformance: ${name}`, () => {
    let h: StoreHarness;
    let store: Store;

    beforeEach(async () => {
      h = await make();
      store = h.store;
    });
    afterEach(async () => {
      await h.cleanup();
    });

    const reopen = async (): Promise<Store> => {
      store = await h.reopen();
      return store;
    };

    describe('deploy', () => {
      it('creates version 1 of every function, readable through getFunction and getVersion', async () => {
        const code = codeOf('v1');
        const before = Date.now();
        const res = await store.deploy(deployOf('svc', [fn('a', { memory: 256 }), fn('b')], code));
        const after = Date.now();

        expect(res).toEqual({
          functions: [
            { name: 'a', version: 1, changed: true },
            { name: 'b', version: 1, changed: true },
          ],
          removed: [],
        });
        const a = await store.getFunction('a');
        expect(a).toStrictEqual({
          name: 'a',
          service: 'svc',
          version: 1,
          config: fn('a', { memory: 256 }),
          codeSha256: code.sha256,
          codeSize: code.archive.length,
          deployedAt: expect.any(Number),
        });
        expect(a!.deployedAt).toBeGreaterThanOrEqual(before);
        expect(a!.deployedAt).toBeLessThanOrEqual(after);
        expect(await store.getVersion('a', 1)).toStrictEqual(a);
        expect((await store.getCode(code.sha256))?.equals(code.archive)).toBe(true);
      });

      it('round-trips every config field, including routes, environment and reserved concurrency', async () => {
        const config = fn('full', {
          handler: 'dist/handlers/items.get',
          memory: 1024,
          timeout: 30,
          environment: { TABLE: 'items', EMPTY: '', UNICODE: 'héllo ✓' },
          reservedConcurrency: 5,
          routes: [
            { method: 'GET', path: '/items/{id}', payload: '2.0' },
            { method: 'ANY', path: '/proxy/{rest+}', payload: '1.0' },
          ],
        });
        await store.deploy(deployOf('svc', [config, fn('zero', { reservedConcurrency: 0 })], codeOf('x')));
        expect((await store.getFunction('full'))?.config).toStrictEqual(config);
        expect((await store.getFunction('zero'))?.config.reservedConcurrency).toBe(0);
      });

      it('reports an identical redeploy as unchanged and keeps the version', async () => {
        const code = codeOf('same');
        await store.deploy(deployOf('svc', [fn('a', { environment: { A: '1', B: '2' } })], code));
        const first = await store.getFunction('a');
        // Same environment built in another key order: equal configs, so still unchanged.
        const res = await store.deploy(deployOf('svc', [fn('a', { environment: { B: '2', A: '1' } })], code));
        expect(res).toEqual({ functions: [{ name: 'a', version: 1, changed: false }], removed: [] });
        expect(await store.getFunction('a')).toStrictEqual(first);
        expect(await store.getVersion('a', 2)).toBeUndefined();
      });

      it('creates version 2 only for the function whose config changed, keeping version 1 readable', async () => {
        const code = codeOf('c');
        await store.deploy(deployOf('svc', [fn('a'), fn('b')], code));
        const res = await store.deploy(deployOf('svc', [fn('a', { timeout: 10 }), fn('b')], code));
        expect(res.functions).toEqual([
          { name: 'a', version: 2, changed: true },
          { name: 'b', version: 1, changed: false },
        ]);
        expect((await store.getFunction('a'))?.version).toBe(2);
        expect((await store.getFunction('a'))?.config.timeout).toBe(10);
        expect((await store.getVersion('a', 1))?.config.timeout).toBe(3);
        expect((await store.getFunction('b'))?.version).toBe(1);
      });

      it('creates a new version of every function when the code changes, keeping old code for old versions', async () => {
        const v1 = codeOf('one');
        const v2 = codeOf('two');
        await store.deploy(deployOf('svc', [fn('a'), fn('b')], v1));
        const res = await store.deploy(deployOf('svc', [fn('a'), fn('b')], v2));
        expect(res.functions.map((f) => [f.name, f.version, f.changed])).toEqual([
          ['a', 2, true],
          ['b', 2, true],
        ]);
        expect((await store.getFunction('a'))?.codeSha256).toBe(v2.sha256);
        expect((await store.getVersion('a', 1))?.codeSha256).toBe(v1.sha256);
        expect((await store.getCode(v1.sha256))?.equals(v1.archive)).toBe(true);
        expect((await store.getCode(v2.sha256))?.equals(v2.archive)).toBe(true);
      });

      it('shares one archive between services and keeps it while any version still uses it', async () => {
        const shared = codeOf('shared');
        await store.deploy(deployOf('one', [fn('a')], shared));
        await store.deploy(deployOf('two', [fn('b')], shared));
        expect((await store.getFunction('b'))?.codeSha256).toBe(shared.sha256);

        expect(await store.removeFunction('a')).toBe(true);
        expect((await store.getCode(shared.sha256))?.equals(shared.archive)).toBe(true);
        expect(await store.removeFunction('b')).toBe(true);
        expect(await store.getCode(shared.sha256)).toBeUndefined();
      });

      it('removes functions of the same service that the new deploy no longer declares', async () => {
        const old = codeOf('old');
        await store.deploy(deployOf('svc', [fn('a'), fn('b'), fn('c')], old));
        await store.deploy(deployOf('other', [fn('x')], codeOf('other')));
        const next = codeOf('next');
        const res = await store.deploy(deployOf('svc', [fn('a')], next));

        expect(res.removed).toEqual(['b', 'c']);
        expect(await store.getFunction('b')).toBeUndefined();
        expect(await store.getVersion('b', 1)).toBeUndefined();
        expect((await store.listFunctions()).map((f) => f.name)).toEqual(['a', 'x']);
        // Only a's version 1 still uses the old archive.
        expect((await store.getCode(old.sha256))?.equals(old.archive)).toBe(true);
      });

      it('collects an archive once no version refers to it', async () => {
        const old = codeOf('old');
        await store.deploy(deployOf('svc', [fn('a')], old));
        await store.deploy(deployOf('svc', [fn('b')], codeOf('new')));
        expect(await store.getFunction('a')).toBeUndefined();
        expect(await store.getCode(old.sha256)).toBeUndefined();
      });

      it('restarts at version 1 when a removed function is deployed again', async () => {
        await store.deploy(deployOf('svc', [fn('a')], codeOf('1')));
        await store.deploy(deployOf('svc', [fn('a')], codeOf('2')));
        await store.removeFunction('a');
        const res = await store.deploy(deployOf('svc', [fn('a')], codeOf('3')));
        expect(res.functions).toEqual([{ name: 'a', version: 1, changed: true }]);
      });

      it('rejects a function owned by another service with FunctionOwnedByOtherService and writes nothing', async () => {
        const mine = codeOf('mine');
        await store.deploy(deployOf('owner', [fn('a')], mine));
        await store.deploy(deployOf('intruder', [fn('c')], codeOf('c')));
        const before = await store.listFunctions();
        const theirs = codeOf('theirs');

        const err: unknown = await store
          .deploy(deployOf('intruder', [fn('b'), fn('a', { memory: 512 })], theirs))
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(err).toBeInstanceOf(Error);
        expect((err as { code?: unknown }).code).toBe('FunctionOwnedByOtherService');

        // Not even the parts that came before the conflict, nor the removal of "c".
        expect(await store.getFunction('b')).toBeUndefined();
        expect(await store.listFunctions()).toStrictEqual(before);
        expect(await store.getCode(theirs.sha256)).toBeUndefined();
        expect((await store.getFunction('a'))?.service).toBe('owner');
      });

      it('rejects an archive whose sha256 is not the one given, writing nothing', async () => {
        const code = { sha256: codeOf('real').sha256, archive: Buffer.from('forged') };
        await expect(store.deploy(deployOf('svc', [fn('a')], code))).rejects.toThrow(/sha256/);
        expect(await store.getFunction('a')).toBeUndefined();
      });

      it('rejects a deploy that names a function twice, writing nothing', async () => {
        await expect(store.deploy(deployOf('svc', [fn('a'), fn('a')], codeOf('x')))).rejects.toThrow();
        expect(await store.listFunctions()).toEqual([]);
      });

      it('removes every function of a service deployed with none', async () => {
        await store.deploy(deployOf('svc', [fn('a'), fn('b')], codeOf('x')));
        const res = await store.deploy(deployOf('svc', [], codeOf('x')));
        expect(res).toEqual({ functions: [], removed: ['a', 'b'] });
        expect(await store.listFunctions()).toEqual([]);
      });

      it('keeps deploys across a reopen', async () => {
        const code = codeOf('durable');
        await store.deploy(deployOf('svc', [fn('a'), fn('b')], code));
        const before = await store.listFunctions();
        await reopen();
        expect(await store.listFunctions()).toStrictEqual(before);
        expect((await store.getCode(code.sha256))?.equals(code.archive)).toBe(true);
      });

      it('stores and returns a 60 MB archive', { timeout: 120_000 }, async () => {
        const big = codeOf(randomBytes(60 * 1024 * 1024));
        await store.deploy(deployOf('svc', [fn('big')], big));
        expect((await store.getFunction('big'))?.codeSize).toBe(big.archive.length);
        const back = await store.getCode(big.sha256);
        expect(back?.length).toBe(big.archive.length);
        expect(back && sha256(back)).toBe(big.sha256);
      });
    });

    describe('functions', () => {
      it('lists the latest version of every function, by name', async () => {
        await store.deploy(deployOf('s1', [fn('zeta'), fn('alpha')], codeOf('1')));
        await store.deploy(deployOf('s2', [fn('mid')], codeOf('2')));
        await store.deploy(deployOf('s1', [fn('zeta', { memory: 512 }), fn('alpha')], codeOf('1')));
        const list = await store.listFunctions();
        expect(list.map((f) => [f.name, f.service, f.version])).toEqual([
          ['alpha', 's1', 1],
          ['mid', 's2', 1],
          ['zeta', 's1', 2],
        ]);
        expect(list[2]).toStrictEqual(await store.getFunction('zeta'));
      });

      it('returns undefined for unknown functions, versions and code', async () => {
        await store.deploy(deployOf('svc', [fn('a')], codeOf('a')));
        expect(await store.getFunction('nope')).toBeUndefined();
        expect(await store.getVersion('a', 2)).toBeUndefined();
        expect(await store.getVersion('nope', 1)).toBeUndefined();
        expect(await store.getCode('0'.repeat(64))).toBeUndefined();
        expect(await store.listFunctions()).toHaveLength(1);
      });

      it('removeFunction deletes the function and all its versions, and reports whether it existed', async () => {
        await store.deploy(deployOf('svc', [fn('a'), fn('b')], codeOf('1')));
        await store.deploy(deployOf('svc', [fn('a'), fn('b')], codeOf('2')));
        expect(await store.removeFunction('a')).toBe(true);
        expect(await store.getFunction('a')).toBeUndefined();
        expect(await store.getVersion('a', 1)).toBeUndefined();
        expect(await store.getVersion('a', 2)).toBeUndefined();
        expect((await store.getFunction('b'))?.version).toBe(2);
        expect(await store.removeFunction('a')).toBe(false);
        expect(await store.removeFunction('never')).toBe(false);
      });

      it('lets another service claim a name once its owner removed it', async () => {
        await store.deploy(deployOf('one', [fn('a')], codeOf('1')));
        await store.removeFunction('a');
        const res = await store.deploy(deployOf('two', [fn('a')], codeOf('2')));
        expect(res.functions).toEqual([{ name: 'a', version: 1, changed: true }]);
        expect((await store.getFunction('a'))?.service).toBe('two');
      });
    });

    describe('events', () => {
      it('returns pending events oldest first, up to the limit, until completed', async () => {
        await store.enqueueEvent(event('late', 300));
        await store.enqueueEvent(event('early', 100));
        await store.enqueueEvent(event('mid', 200));
        expect((await store.pendingEvents(10)).map((e) => e.id)).toEqual(['early', 'mid', 'late']);
        expect((await store.pendingEvents(2)).map((e) => e.id)).toEqual(['early', 'mid']);

        await store.completeEvent('mid');
        expect((await store.pendingEvents(10)).map((e) => e.id)).toEqual(['early', 'late']);
        await store.completeEvent('unknown');
        expect(await store.pendingEvents(10)).toHaveLength(2);
      });

      it('keeps arrival order between events enqueued in the same millisecond', async () => {
        for (const id of ['c', 'a', 'b']) await store.enqueueEvent(event(id, 1000));
        expect((await store.pendingEvents(10)).map((e) => e.id)).toEqual(['c', 'a', 'b']);
      });

      it('returns every field as enqueued', async () => {
        const ev: QueuedEvent = {
          id: randomUUID(),
          functionName: 'worker',
          payload: JSON.stringify({ hello: 'wörld', n: [1, 2] }),
          enqueuedAt: 1_700_000_000_123,
          attempts: 0,
        };
        await store.enqueueEvent(ev);
        expect(await store.pendingEvents(1)).toStrictEqual([ev]);
      });

      it('ignores a second enqueue of the same id', async () => {
        await store.enqueueEvent(event('dup', 1, 'first'));
        await store.enqueueEvent(event('dup', 2, 'second'));
        const pending = await store.pendingEvents(10);
        expect(pending).toHaveLength(1);
        expect(pending[0]?.payload).toBe('first');
      });

      it('counts attempts durably', async () => {
        await store.enqueueEvent(event('e', 1));
        expect(await store.recordEventAttempt('e')).toBe(1);
        expect(await store.recordEventAttempt('e')).toBe(2);
        expect(await store.recordEventAttempt('unknown')).toBe(0);
        await reopen();
        expect((await store.pendingEvents(1))[0]?.attempts).toBe(2);
      });

      it('keeps pending events and completions across a reopen', async () => {
        await store.enqueueEvent(event('one', 1));
        await store.enqueueEvent(event('two', 2));
        await store.enqueueEvent(event('three', 3));
        await store.completeEvent('two');
        await reopen();
        expect((await store.pendingEvents(10)).map((e) => e.id)).toEqual(['one', 'three']);
      });
    });

    describe('invocation records', () => {
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
        store.appendInvocation(cold);
        store.appendInvocation(warm);
        await store.flush();

        const a = await store.getInvocation(cold.requestId);
        const b = await store.getInvocation(warm.requestId);
        expect(a).toStrictEqual({ ...cold, seq: expect.any(Number) });
        expect(b).toStrictEqual({ ...warm, seq: expect.any(Number) });
        expect(b!.seq).toBeGreaterThan(a!.seq);
        expect(await store.getInvocation('missing')).toBeUndefined();
      });

      it('writes buffered records on its own within the flush interval', async () => {
        const rec = record();
        store.appendInvocation(rec);
        const deadline = Date.now() + 5000;
        while (!(await store.getInvocation(rec.requestId)) && Date.now() < deadline) await sleep(10);
        expect(await store.getInvocation(rec.requestId)).toBeDefined();
      });

      it('returns newest first by default and oldest first with ascending', async () => {
        const ids = appendMany(store, 5, () => ({}));
        await store.flush();
        expect((await store.queryInvocations({})).map((r) => r.requestId)).toEqual([...ids].reverse());
        expect((await store.queryInvocations({ ascending: true })).map((r) => r.requestId)).toEqual(ids);
      });

      it('filters by function, since and after, alone and combined', async () => {
        appendMany(store, 6, (i) => ({ functionName: i % 2 === 0 ? 'even' : 'odd', start: 1000 + i * 100 }));
        await store.flush();
        const all = await store.queryInvocations({ ascending: true });
        expect(all.map((r) => r.start)).toEqual([1000, 1100, 1200, 1300, 1400, 1500]);

        const even = await store.queryInvocations({ functionName: 'even', ascending: true });
        expect(even.map((r) => r.start)).toEqual([1000, 1200, 1400]);
        const since = await store.queryInvocations({ since: 1300, ascending: true });
        expect(since.map((r) => r.start)).toEqual([1300, 1400, 1500]);
        const after = await store.queryInvocations({ after: all[3]!.seq, ascending: true });
        expect(after.map((r) => r.start)).toEqual([1400, 1500]);
        const combined = await store.queryInvocations({
          functionName: 'odd',
          since: 1200,
          after: all[4]!.seq,
        });
        expect(combined.map((r) => r.start)).toEqual([1500]);
        expect(await store.queryInvocations({ functionName: 'none' })).toEqual([]);
      });

      it('pages through everything with the after cursor, no record twice or missed', async () => {
        const ids = appendMany(store, 35, () => ({ functionName: 'f' }));
        await store.flush();
        const seen: string[] = [];
        let after = 0;
        for (;;) {
          const page = await store.queryInvocations({ functionName: 'f', after, ascending: true, limit: 10 });
          if (page.length === 0) break;
          seen.push(...page.map((r) => r.requestId));
          after = page[page.length - 1]!.seq;
        }
        expect(seen).toEqual(ids);
      });

      it('limits to 100 by default and to at most 1000', async () => {
        appendMany(store, 1100, () => ({}));
        await store.flush();
        expect(await store.queryInvocations({})).toHaveLength(100);
        expect(await store.queryInvocations({ limit: 7 })).toHaveLength(7);
        expect(await store.queryInvocations({ limit: 5000 })).toHaveLength(1000);
        const newest = await store.queryInvocations({ limit: 1 });
        const oldest = await store.queryInvocations({ limit: 1, ascending: true });
        expect(newest[0]!.seq).toBeGreaterThan(oldest[0]!.seq);
      });

      it('ignores a duplicate requestId without losing the rest of its batch', async () => {
        const first = record({ logs: 'first' });
        const after = record();
        store.appendInvocation(first);
        store.appendInvocation({ ...first, logs: 'duplicate' });
        store.appendInvocation(after);
        await store.flush();
        expect((await store.getInvocation(first.requestId))?.logs).toBe('first');
        expect(await store.getInvocation(after.requestId)).toBeDefined();
        expect(await store.queryInvocations({})).toHaveLength(2);

        store.appendInvocation({ ...first, logs: 'again, in a later batch' });
        await store.flush();
        expect((await store.getInvocation(first.requestId))?.logs).toBe('first');
      });

      it('loses nothing on close: 1000 buffered records are all there after a reopen', async () => {
        const ids = appendMany(store, 1000, () => ({ functionName: 'bulk' }));
        await reopen();
        const back = await store.queryInvocations({ functionName: 'bulk', ascending: true, limit: 1000 });
        expect(back.map((r) => r.requestId)).toEqual(ids);
        expect(await store.queryInvocations({ after: back[back.length - 1]!.seq })).toEqual([]);
      });

      it('keeps seq increasing across a reopen', async () => {
        store.appendInvocation(record());
        await store.flush();
        const [before] = await store.queryInvocations({ limit: 1 });
        await reopen();
        const rec = record();
        store.appendInvocation(rec);
        await store.flush();
        expect((await store.getInvocation(rec.requestId))!.seq).toBeGreaterThan(before!.seq);
      });
    });

    describe('lifecycle', () => {
      it('flush with nothing buffered is harmless', async () => {
        await store.flush();
        await store.flush();
        expect(await store.queryInvocations({})).toEqual([]);
      });

      it('after close: appendInvocation is a silent no-op, close again resolves, other calls reject', async () => {
        await store.close();
        const rec = record();
        expect(() => store.appendInvocation(rec)).not.toThrow();
        await store.close();
        await expect(store.getFunction('a')).rejects.toThrow();
        await expect(store.queryInvocations({})).rejects.toThrow();
        await reopen();
        expect(await store.getInvocation(rec.requestId)).toBeUndefined();
      });
    });
  });
}

// --- fixtures ---

/** A function config with defaults, for store tests. */
export function fn(name: string, over: Partial<FunctionConfig> = {}): FunctionConfig {
  return {
    name,
    handler: 'src/index.handler',
    runtime: 'nodejs',
    memory: 128,
    timeout: 3,
    environment: {},
    reservedConcurrency: undefined,
    routes: [],
    ...over,
  };
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

function codeOf(content: string | Buffer): DeployInput['code'] {
  const archive = typeof content === 'string' ? Buffer.from(`archive:${content}`) : content;
  return { sha256: sha256(archive), archive };
}

function deployOf(service: string, functions: FunctionConfig[], code: DeployInput['code']): DeployInput {
  return { service, functions, code };
}

function event(id: string, enqueuedAt: number, payload = '{}'): QueuedEvent {
  return { id, functionName: 'worker', payload, enqueuedAt, attempts: 0 };
}

/** An invocation record with defaults, for store tests. */
export function record(over: Partial<InvocationRecord> = {}): InvocationRecord {
  return {
    requestId: randomUUID(),
    functionName: 'fn',
    version: '1',
    trigger: 'http',
    start: Date.now(),
    durationMs: 1.5,
    billedMs: 2,
    memoryMB: 128,
    maxRssBytes: 0,
    cold: false,
    initMs: null,
    status: 'ok',
    errorType: null,
    errorMessage: null,
    logs: '',
    ...over,
  };
}

/** Appends n records in order and returns their requestIds in that order. */
function appendMany(store: Store, n: number, over: (i: number) => Partial<InvocationRecord>): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const rec = record(over(i));
    store.appendInvocation(rec);
    ids.push(rec.requestId);
  }
  return ids;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// FunctionStore conformance: deploys, versions, code and projects, the same on every backend.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PROJECT } from '../types.js';
import { codeOf, deployOf, fn, ref, sha256, useHarness, type HarnessFactory } from './harness.js';

/** What a deploy that declares no queues, and had none, reports for them. */
const NO_QUEUES = { created: [], updated: [], unchanged: [], removed: [] };

export function functionStoreConformance(name: string, make: HarnessFactory): void {
  describe(`FunctionStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const reopen = () => ctx.reopen();

    describe('deploy', () => {
      it('creates version 1 of every function, readable through getFunction and getVersion', async () => {
        const code = codeOf('v1');
        const res = await ctx.store.functions.deploy(
          deployOf('svc', [fn('a', { memory: 256 }), fn('b')], code),
        );

        expect(res).toEqual({
          functions: [
            { name: 'a', version: 1, changed: true },
            { name: 'b', version: 1, changed: true },
          ],
          removed: [],
          queues: NO_QUEUES,
        });
        const a = await ctx.store.functions.getFunction(ref('a'));
        expect(a).toStrictEqual({
          project: DEFAULT_PROJECT,
          name: 'a',
          service: 'svc',
          version: 1,
          config: fn('a', { memory: 256 }),
          codeSha256: code.sha256,
          codeSize: code.archive.length,
          deployedAt: ctx.clock.now(),
        });
        expect(await ctx.store.functions.getVersion(ref('a'), 1)).toStrictEqual(a);
        expect((await ctx.store.functions.getCode(code.sha256))?.equals(code.archive)).toBe(true);
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
        await ctx.store.functions.deploy(
          deployOf('svc', [config, fn('zero', { reservedConcurrency: 0 })], codeOf('x')),
        );
        expect((await ctx.store.functions.getFunction(ref('full')))?.config).toStrictEqual(config);
        expect((await ctx.store.functions.getFunction(ref('zero')))?.config.reservedConcurrency).toBe(0);
      });

      it('reports an identical redeploy as unchanged and keeps the version', async () => {
        const code = codeOf('same');
        await ctx.store.functions.deploy(
          deployOf('svc', [fn('a', { environment: { A: '1', B: '2' } })], code),
        );
        const first = await ctx.store.functions.getFunction(ref('a'));
        // Same environment built in another key order: equal configs, so still unchanged.
        const res = await ctx.store.functions.deploy(
          deployOf('svc', [fn('a', { environment: { B: '2', A: '1' } })], code),
        );
        expect(res).toEqual({
          functions: [{ name: 'a', version: 1, changed: false }],
          removed: [],
          queues: NO_QUEUES,
        });
        expect(await ctx.store.functions.getFunction(ref('a'))).toStrictEqual(first);
        expect(await ctx.store.functions.getVersion(ref('a'), 2)).toBeUndefined();
      });

      it('creates version 2 only for the function whose config changed, keeping version 1 readable', async () => {
        const code = codeOf('c');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], code));
        const res = await ctx.store.functions.deploy(
          deployOf('svc', [fn('a', { timeout: 10 }), fn('b')], code),
        );
        expect(res.functions).toEqual([
          { name: 'a', version: 2, changed: true },
          { name: 'b', version: 1, changed: false },
        ]);
        expect((await ctx.store.functions.getFunction(ref('a')))?.version).toBe(2);
        expect((await ctx.store.functions.getFunction(ref('a')))?.config.timeout).toBe(10);
        expect((await ctx.store.functions.getVersion(ref('a'), 1))?.config.timeout).toBe(3);
        expect((await ctx.store.functions.getFunction(ref('b')))?.version).toBe(1);
      });

      it('creates a new version of every function when the code changes, keeping old code for old versions', async () => {
        const v1 = codeOf('one');
        const v2 = codeOf('two');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], v1));
        const res = await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], v2));
        expect(res.functions.map((f) => [f.name, f.version, f.changed])).toEqual([
          ['a', 2, true],
          ['b', 2, true],
        ]);
        expect((await ctx.store.functions.getFunction(ref('a')))?.codeSha256).toBe(v2.sha256);
        expect((await ctx.store.functions.getVersion(ref('a'), 1))?.codeSha256).toBe(v1.sha256);
        expect((await ctx.store.functions.getCode(v1.sha256))?.equals(v1.archive)).toBe(true);
        expect((await ctx.store.functions.getCode(v2.sha256))?.equals(v2.archive)).toBe(true);
      });

      it('keeps the version a deploy names in keep, with its old code, while its config is unchanged', async () => {
        const v1 = codeOf('k1');
        const v2 = codeOf('k2');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b'), fn('c')], v1));
        const res = await ctx.store.functions.deploy({
          ...deployOf('svc', [fn('a'), fn('b'), fn('c', { timeout: 9 })], v2),
          // b names a version that is not its latest, c's config changed: neither is kept.
          keep: { a: 1, b: 7, c: 1 },
        });
        expect(res.functions.map((f) => [f.name, f.version, f.changed])).toEqual([
          ['a', 1, false],
          ['b', 2, true],
          ['c', 2, true],
        ]);
        expect((await ctx.store.functions.getFunction(ref('a')))?.codeSha256).toBe(v1.sha256);
        expect((await ctx.store.functions.getFunction(ref('b')))?.codeSha256).toBe(v2.sha256);
        await ctx.store.functions.pruneVersions();
        // a's version still runs the first archive, so pruning keeps it.
        expect((await ctx.store.functions.getCode(v1.sha256))?.equals(v1.archive)).toBe(true);
      });

      it('stores no archive when keep leaves every function unchanged', async () => {
        const v1 = codeOf('n1');
        const v2 = codeOf('n2');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a')], v1));
        const res = await ctx.store.functions.deploy({ ...deployOf('svc', [fn('a')], v2), keep: { a: 1 } });
        expect(res.functions).toEqual([{ name: 'a', version: 1, changed: false }]);
        expect(await ctx.store.functions.getCode(v2.sha256)).toBeUndefined();
      });

      it('prunes superseded versions and the archives only they used; numbering goes on', async () => {
        const v1 = codeOf('p1');
        const v2 = codeOf('p2');
        const shared = codeOf('p-shared');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], v1));
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], v2));
        await ctx.store.functions.deploy(deployOf('keep', [fn('k')], shared));
        await ctx.store.functions.deploy(deployOf('keep', [fn('k', { timeout: 9 })], shared));
        expect(await ctx.store.functions.pruneVersions()).toEqual([v1.sha256]);
        expect(await ctx.store.functions.getCode(v1.sha256)).toBeUndefined();
        expect(await ctx.store.functions.getVersion(ref('a'), 1)).toBeUndefined();
        expect((await ctx.store.functions.getVersion(ref('a'), 2))?.codeSha256).toBe(v2.sha256);
        // k's version 1 is gone, but its archive is version 2's too.
        expect(await ctx.store.functions.getVersion(ref('k'), 1)).toBeUndefined();
        expect((await ctx.store.functions.getCode(shared.sha256))?.equals(shared.archive)).toBe(true);
        await reopen();
        expect(await ctx.store.functions.pruneVersions()).toEqual([]);
        const res = await ctx.store.functions.deploy(deployOf('svc', [fn('a')], codeOf('p3')));
        expect(res.functions).toEqual([{ name: 'a', version: 3, changed: true }]);
        expect(res.removed).toEqual(['b']);
        expect(await ctx.store.functions.pruneVersions()).toEqual([v2.sha256]);
        expect((await ctx.store.functions.listFunctions()).map((f) => [f.name, f.version])).toEqual([
          ['a', 3],
          ['k', 2],
        ]);
      });

      it('shares one archive between services and keeps it while any version still uses it', async () => {
        const shared = codeOf('shared');
        await ctx.store.functions.deploy(deployOf('one', [fn('a')], shared));
        await ctx.store.functions.deploy(deployOf('two', [fn('b')], shared));
        expect((await ctx.store.functions.getFunction(ref('b')))?.codeSha256).toBe(shared.sha256);

        expect(await ctx.store.functions.removeFunction(ref('a'))).toBe(true);
        expect((await ctx.store.functions.getCode(shared.sha256))?.equals(shared.archive)).toBe(true);
        expect(await ctx.store.functions.removeFunction(ref('b'))).toBe(true);
        expect(await ctx.store.functions.getCode(shared.sha256)).toBeUndefined();
      });

      it('removes functions of the same service that the new deploy no longer declares', async () => {
        const old = codeOf('old');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b'), fn('c')], old));
        await ctx.store.functions.deploy(deployOf('other', [fn('x')], codeOf('other')));
        const next = codeOf('next');
        const res = await ctx.store.functions.deploy(deployOf('svc', [fn('a')], next));

        expect(res.removed).toEqual(['b', 'c']);
        expect(await ctx.store.functions.getFunction(ref('b'))).toBeUndefined();
        expect(await ctx.store.functions.getVersion(ref('b'), 1)).toBeUndefined();
        expect((await ctx.store.functions.listFunctions()).map((f) => f.name)).toEqual(['a', 'x']);
        // Only a's version 1 still uses the old archive.
        expect((await ctx.store.functions.getCode(old.sha256))?.equals(old.archive)).toBe(true);
      });

      it('collects an archive once no version refers to it', async () => {
        const old = codeOf('old');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a')], old));
        await ctx.store.functions.deploy(deployOf('svc', [fn('b')], codeOf('new')));
        expect(await ctx.store.functions.getFunction(ref('a'))).toBeUndefined();
        expect(await ctx.store.functions.getCode(old.sha256)).toBeUndefined();
      });

      it('restarts at version 1 when a removed function is deployed again', async () => {
        await ctx.store.functions.deploy(deployOf('svc', [fn('a')], codeOf('1')));
        await ctx.store.functions.deploy(deployOf('svc', [fn('a')], codeOf('2')));
        await ctx.store.functions.removeFunction(ref('a'));
        const res = await ctx.store.functions.deploy(deployOf('svc', [fn('a')], codeOf('3')));
        expect(res.functions).toEqual([{ name: 'a', version: 1, changed: true }]);
      });

      it('rejects a function owned by another service with FunctionOwnedByOtherService and writes nothing', async () => {
        const mine = codeOf('mine');
        await ctx.store.functions.deploy(deployOf('owner', [fn('a')], mine));
        await ctx.store.functions.deploy(deployOf('intruder', [fn('c')], codeOf('c')));
        const before = await ctx.store.functions.listFunctions();
        const theirs = codeOf('theirs');

        const err: unknown = await ctx.store.functions
          .deploy(deployOf('intruder', [fn('b'), fn('a', { memory: 512 })], theirs))
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(err).toBeInstanceOf(Error);
        expect((err as { code?: unknown }).code).toBe('FunctionOwnedByOtherService');

        // Not even the parts that came before the conflict, nor the removal of "c".
        expect(await ctx.store.functions.getFunction(ref('b'))).toBeUndefined();
        expect(await ctx.store.functions.listFunctions()).toStrictEqual(before);
        expect(await ctx.store.functions.getCode(theirs.sha256)).toBeUndefined();
        expect((await ctx.store.functions.getFunction(ref('a')))?.service).toBe('owner');
      });

      it('writes nothing when the database fails part way through a deploy', async () => {
        const v1 = codeOf('v1');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], v1));
        const before = await ctx.store.functions.listFunctions();
        await ctx.injectVersionFailure('boom');
        const v2 = codeOf('v2');
        // a's new version is written first, then boom's insert fails; b was to be removed.
        await expect(
          ctx.store.functions.deploy(deployOf('svc', [fn('a', { timeout: 9 }), fn('boom')], v2)),
        ).rejects.toThrow(/injected failure/);
        expect(await ctx.store.functions.listFunctions()).toStrictEqual(before);
        expect(await ctx.store.functions.getVersion(ref('a'), 2)).toBeUndefined();
        expect(await ctx.store.functions.getCode(v2.sha256)).toBeUndefined();
        expect((await ctx.store.functions.getCode(v1.sha256))?.equals(v1.archive)).toBe(true);
      });

      it('rejects an archive whose sha256 is not the one given, writing nothing', async () => {
        const code = { sha256: codeOf('real').sha256, archive: Buffer.from('forged') };
        await expect(ctx.store.functions.deploy(deployOf('svc', [fn('a')], code))).rejects.toThrow(/sha256/);
        expect(await ctx.store.functions.getFunction(ref('a'))).toBeUndefined();
      });

      it('rejects a deploy that names a function twice, writing nothing', async () => {
        await expect(
          ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('a')], codeOf('x'))),
        ).rejects.toThrow();
        expect(await ctx.store.functions.listFunctions()).toEqual([]);
      });

      it('removes every function of a service deployed with none', async () => {
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], codeOf('x')));
        const res = await ctx.store.functions.deploy(deployOf('svc', [], codeOf('x')));
        expect(res).toEqual({ functions: [], removed: ['a', 'b'], queues: NO_QUEUES });
        expect(await ctx.store.functions.listFunctions()).toEqual([]);
      });

      it('keeps deploys across a reopen', async () => {
        const code = codeOf('durable');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], code));
        const before = await ctx.store.functions.listFunctions();
        await reopen();
        expect(await ctx.store.functions.listFunctions()).toStrictEqual(before);
        expect((await ctx.store.functions.getCode(code.sha256))?.equals(code.archive)).toBe(true);
      });

      it('stores and returns a 60 MB archive', { timeout: 120_000 }, async () => {
        const big = codeOf(randomBytes(60 * 1024 * 1024));
        await ctx.store.functions.deploy(deployOf('svc', [fn('big')], big));
        expect((await ctx.store.functions.getFunction(ref('big')))?.codeSize).toBe(big.archive.length);
        const back = await ctx.store.functions.getCode(big.sha256);
        expect(back?.length).toBe(big.archive.length);
        expect(back && sha256(back)).toBe(big.sha256);
      });
    });

    describe('functions', () => {
      it('lists the latest version of every function, by name', async () => {
        await ctx.store.functions.deploy(deployOf('s1', [fn('zeta'), fn('alpha')], codeOf('1')));
        await ctx.store.functions.deploy(deployOf('s2', [fn('mid')], codeOf('2')));
        await ctx.store.functions.deploy(
          deployOf('s1', [fn('zeta', { memory: 512 }), fn('alpha')], codeOf('1')),
        );
        const list = await ctx.store.functions.listFunctions();
        expect(list.map((f) => [f.name, f.service, f.version])).toEqual([
          ['alpha', 's1', 1],
          ['mid', 's2', 1],
          ['zeta', 's1', 2],
        ]);
        expect(list[2]).toStrictEqual(await ctx.store.functions.getFunction(ref('zeta')));
      });

      it('returns undefined for unknown functions, versions and code', async () => {
        await ctx.store.functions.deploy(deployOf('svc', [fn('a')], codeOf('a')));
        expect(await ctx.store.functions.getFunction(ref('nope'))).toBeUndefined();
        expect(await ctx.store.functions.getVersion(ref('a'), 2)).toBeUndefined();
        expect(await ctx.store.functions.getVersion(ref('nope'), 1)).toBeUndefined();
        expect(await ctx.store.functions.getCode('0'.repeat(64))).toBeUndefined();
        expect(await ctx.store.functions.listFunctions()).toHaveLength(1);
      });

      it('removeFunction deletes the function and all its versions, and reports whether it existed', async () => {
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], codeOf('1')));
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], codeOf('2')));
        expect(await ctx.store.functions.removeFunction(ref('a'))).toBe(true);
        expect(await ctx.store.functions.getFunction(ref('a'))).toBeUndefined();
        expect(await ctx.store.functions.getVersion(ref('a'), 1)).toBeUndefined();
        expect(await ctx.store.functions.getVersion(ref('a'), 2)).toBeUndefined();
        expect((await ctx.store.functions.getFunction(ref('b')))?.version).toBe(2);
        expect(await ctx.store.functions.removeFunction(ref('a'))).toBe(false);
        expect(await ctx.store.functions.removeFunction(ref('never'))).toBe(false);
      });

      it('lets another service claim a name once its owner removed it', async () => {
        await ctx.store.functions.deploy(deployOf('one', [fn('a')], codeOf('1')));
        await ctx.store.functions.removeFunction(ref('a'));
        const res = await ctx.store.functions.deploy(deployOf('two', [fn('a')], codeOf('2')));
        expect(res.functions).toEqual([{ name: 'a', version: 1, changed: true }]);
        expect((await ctx.store.functions.getFunction(ref('a')))?.service).toBe('two');
      });
    });

    describe('async configuration set through the API', () => {
      it('sets, replaces and removes it, only for functions that exist, and drops it with the function', async () => {
        await ctx.store.functions.deploy(deployOf('svc', [fn('a'), fn('b')], codeOf('1')));
        const at = ctx.clock.now();
        expect(await ctx.store.functions.setAsyncConfig(ref('a'), { maximumRetryAttempts: 0 })).toBe(true);
        expect(await ctx.store.functions.setAsyncConfig(ref('nope'), { maximumRetryAttempts: 1 })).toBe(
          false,
        );
        expect(await ctx.store.functions.listAsyncConfigs()).toStrictEqual([
          { project: 'default', name: 'a', config: { maximumRetryAttempts: 0 }, updatedAt: at },
        ]);
        ctx.clock.advance(10);
        const next = { maximumEventAgeInSeconds: 120, onFailure: { function: 'b' } };
        await ctx.store.functions.setAsyncConfig(ref('a'), next);
        expect(await ctx.store.functions.listAsyncConfigs('default')).toStrictEqual([
          { project: 'default', name: 'a', config: next, updatedAt: at + 10 },
        ]);
        expect(await ctx.store.functions.listAsyncConfigs('other')).toEqual([]);
        await reopen();
        expect((await ctx.store.functions.listAsyncConfigs())[0]?.config).toStrictEqual(next);
        await ctx.store.functions.setAsyncConfig(ref('b'), { maximumRetryAttempts: 2 });
        expect(await ctx.store.functions.setAsyncConfig(ref('b'), null)).toBe(true);
        expect(await ctx.store.functions.removeFunction(ref('a'))).toBe(true);
        expect(await ctx.store.functions.listAsyncConfigs()).toEqual([]);
        // A function the manifest drops loses its configuration too.
        await ctx.store.functions.setAsyncConfig(ref('b'), { maximumRetryAttempts: 1 });
        await ctx.store.functions.deploy(deployOf('svc', [fn('c')], codeOf('2')));
        expect(await ctx.store.functions.listAsyncConfigs()).toEqual([]);
      });
    });

    describe('projects', () => {
      it('keeps functions of the same name in two projects apart', async () => {
        await ctx.store.projects.ensure('team-b');
        await ctx.store.functions.deploy(deployOf('svc', [fn('a', { memory: 256 })], codeOf('1')));
        await ctx.store.functions.deploy(deployOf('svc', [fn('a', { memory: 512 })], codeOf('2'), 'team-b'));

        expect((await ctx.store.functions.getFunction(ref('a')))?.config.memory).toBe(256);
        const b = await ctx.store.functions.getFunction(ref('a', 'team-b'));
        expect(b?.config.memory).toBe(512);
        expect(b?.project).toBe('team-b');
        expect((await ctx.store.functions.listFunctions()).map((f) => [f.project, f.name])).toEqual([
          ['default', 'a'],
          ['team-b', 'a'],
        ]);
        expect((await ctx.store.functions.listFunctions('team-b')).map((f) => f.project)).toEqual(['team-b']);

        // A deploy of the same service name in one project removes nothing in the other.
        const res = await ctx.store.functions.deploy(deployOf('svc', [fn('other')], codeOf('3'), 'team-b'));
        expect(res.removed).toEqual(['a']);
        expect((await ctx.store.functions.getFunction(ref('a')))?.config.memory).toBe(256);
        expect(await ctx.store.functions.removeFunction(ref('other'))).toBe(false);
        expect(await ctx.store.functions.removeFunction(ref('other', 'team-b'))).toBe(true);
      });

      it('refuses a deploy into a project that does not exist, writing nothing', async () => {
        const code = codeOf('orphan');
        const err: unknown = await ctx.store.functions
          .deploy(deployOf('svc', [fn('a')], code, 'nowhere'))
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect((err as { code?: unknown }).code).toBe('ProjectNotFound');
        expect(await ctx.store.functions.listFunctions()).toEqual([]);
        expect(await ctx.store.functions.getCode(code.sha256)).toBeUndefined();
      });

      it('lets two projects own the same function name in services of the same name', async () => {
        await ctx.store.projects.ensure('p2');
        await ctx.store.functions.deploy(deployOf('one', [fn('x')], codeOf('1')));
        await ctx.store.functions.deploy(deployOf('two', [fn('x')], codeOf('2'), 'p2'));
        expect((await ctx.store.functions.getFunction(ref('x')))?.service).toBe('one');
        expect((await ctx.store.functions.getFunction(ref('x', 'p2')))?.service).toBe('two');
      });
    });
  });
}

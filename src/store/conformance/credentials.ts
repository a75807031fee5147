// CredentialStore conformance: issued access keys, one project's apart from another's, a function's own key
// found by the function, and the encrypted secret only where a signature check needs it.
import { describe, expect, it } from 'vitest';
import type { NewCredential } from '../types.js';
import { useHarness, type HarnessFactory } from './harness.js';

function user(accessKeyId: string, name: string, project = 'default'): NewCredential {
  return {
    accessKeyId,
    project,
    name,
    kind: 'user',
    functionName: null,
    permissions: null,
    secretCiphertext: `sealed:${accessKeyId}`,
  };
}

function functionKey(accessKeyId: string, fn: string, tables: string[], project = 'default'): NewCredential {
  return {
    accessKeyId,
    project,
    name: `function:${fn}`,
    kind: 'function',
    functionName: fn,
    permissions: { tables },
    secretCiphertext: `sealed:${accessKeyId}`,
  };
}

export function credentialStoreConformance(name: string, make: HarnessFactory): void {
  describe(`CredentialStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const c = () => ctx.store.credentials;

    it('creates a key and gets it back with its encrypted secret', async () => {
      const t0 = ctx.clock.now();
      const created = await c().create(user('AKIDALICE', 'alice'));
      expect(created).toStrictEqual({
        accessKeyId: 'AKIDALICE',
        project: 'default',
        name: 'alice',
        kind: 'user',
        functionName: null,
        permissions: null,
        createdAt: t0,
      });
      expect(await c().get('AKIDALICE')).toStrictEqual({ ...created, secretCiphertext: 'sealed:AKIDALICE' });
      expect(await c().get('AKIDNOBODY')).toBeUndefined();
      await expect(c().create(user('AKIDALICE', 'again'))).rejects.toThrow(/exists already/);
      expect((await c().get('AKIDALICE'))?.name).toBe('alice');
    });

    it("lists one project's keys by name then id, without secrets", async () => {
      await ctx.store.projects.ensure('p2');
      await c().create(user('AKID3', 'ci'));
      await c().create(user('AKID1', 'zed'));
      await c().create(user('AKID2', 'ci'));
      await c().create(functionKey('AKIDF', 'worker', ['orders']));
      await c().create(user('AKIDP2', 'ci', 'p2'));
      const listed = await c().list('default');
      expect(listed.map((k) => [k.name, k.accessKeyId])).toEqual([
        ['ci', 'AKID2'],
        ['ci', 'AKID3'],
        ['function:worker', 'AKIDF'],
        ['zed', 'AKID1'],
      ]);
      for (const k of listed) expect(k).not.toHaveProperty('secretCiphertext');
      expect((await c().list('p2')).map((k) => k.accessKeyId)).toEqual(['AKIDP2']);
      expect(await c().list('p3')).toEqual([]);
    });

    it('removes a key only in its own project', async () => {
      await ctx.store.projects.ensure('p2');
      await c().create(user('AKID1', 'ci'));
      expect(await c().remove('p2', 'AKID1')).toBe(false);
      expect(await c().get('AKID1')).toBeDefined();
      expect(await c().remove('default', 'AKID1')).toBe(true);
      expect(await c().remove('default', 'AKID1')).toBe(false);
      expect(await c().get('AKID1')).toBeUndefined();
    });

    it("finds a function's key, allows one per function, and replaces its permissions", async () => {
      await ctx.store.projects.ensure('p2');
      const created = await c().create(functionKey('AKIDF', 'worker', ['orders']));
      expect(created).toMatchObject({
        kind: 'function',
        functionName: 'worker',
        permissions: { tables: ['orders'] },
      });
      // The same function name in another project is another function.
      await c().create(functionKey('AKIDG', 'worker', [], 'p2'));
      await expect(c().create(functionKey('AKIDH', 'worker', ['x']))).rejects.toThrow(/worker/);
      expect(await c().forFunction('default', 'worker')).toStrictEqual({
        ...created,
        secretCiphertext: 'sealed:AKIDF',
      });
      expect((await c().forFunction('p2', 'worker'))?.accessKeyId).toBe('AKIDG');
      expect(await c().forFunction('default', 'other')).toBeUndefined();

      expect(await c().setPermissions('AKIDF', { tables: ['orders', 'users'] })).toBe(true);
      expect((await c().get('AKIDF'))?.permissions).toStrictEqual({ tables: ['orders', 'users'] });
      expect(await c().setPermissions('AKIDF', null)).toBe(true);
      expect((await c().forFunction('default', 'worker'))?.permissions).toBeNull();
      expect(await c().setPermissions('AKIDNONE', { tables: [] })).toBe(false);

      // Removed with its function (by the caller), the function can get a new one.
      expect(await c().remove('default', 'AKIDF')).toBe(true);
      await c().create(functionKey('AKIDH', 'worker', ['x']));
      expect((await c().forFunction('default', 'worker'))?.accessKeyId).toBe('AKIDH');
    });

    it('keeps keys across a reopen', async () => {
      await c().create(functionKey('AKIDF', 'worker', ['orders']));
      const before = await c().get('AKIDF');
      await ctx.reopen();
      expect(await c().get('AKIDF')).toStrictEqual(before);
    });
  });
}

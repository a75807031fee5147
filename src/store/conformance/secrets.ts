// SecretStore conformance: a secret is set, replaced (its first date kept), listed without its ciphertext,
// and removed, each only within its own project; a bad name is refused and nothing is stored.
import { describe, expect, it } from 'vitest';
import { useHarness, type HarnessFactory } from './harness.js';

export function secretStoreConformance(name: string, make: HarnessFactory): void {
  describe(`SecretStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const s = () => ctx.store.secrets;

    it('creates a secret, replaces its ciphertext keeping createdAt, and gets it back', async () => {
      const t0 = ctx.clock.now();
      const first = await s().put('default', 'db-password', 'sealed:1');
      expect(first).toStrictEqual({
        created: true,
        secret: { project: 'default', name: 'db-password', createdAt: t0, updatedAt: t0 },
      });
      ctx.clock.advance(5000);
      const second = await s().put('default', 'db-password', 'sealed:2');
      expect(second).toStrictEqual({
        created: false,
        secret: { project: 'default', name: 'db-password', createdAt: t0, updatedAt: t0 + 5000 },
      });
      expect(await s().get('default', 'db-password')).toStrictEqual({
        ...second.secret,
        ciphertext: 'sealed:2',
      });
      expect(await s().get('default', 'other')).toBeUndefined();
    });

    it('lists one project by name (code point order), without ciphertexts', async () => {
      for (const n of ['zeta', 'Alpha', 'app/db.password', 'app/api-key', 'a_b']) {
        await s().put('default', n, `sealed:${n}`);
      }
      const listed = await s().list('default');
      expect(listed.map((x) => x.name)).toEqual(['Alpha', 'a_b', 'app/api-key', 'app/db.password', 'zeta']);
      for (const x of listed) expect(x).not.toHaveProperty('ciphertext');
      expect(await s().list('empty')).toEqual([]);
    });

    it("keeps projects apart: one project's secret is invisible to another, which may have its own", async () => {
      await ctx.store.projects.ensure('p2');
      await s().put('default', 'shared-name', 'sealed:default');
      expect(await s().get('p2', 'shared-name')).toBeUndefined();
      expect(await s().list('p2')).toEqual([]);
      expect(await s().remove('p2', 'shared-name')).toBe(false);
      expect((await s().get('default', 'shared-name'))?.ciphertext).toBe('sealed:default');

      expect((await s().put('p2', 'shared-name', 'sealed:p2')).created).toBe(true);
      expect((await s().get('p2', 'shared-name'))?.ciphertext).toBe('sealed:p2');
      expect((await s().get('default', 'shared-name'))?.ciphertext).toBe('sealed:default');
      expect(await s().remove('default', 'shared-name')).toBe(true);
      expect((await s().get('p2', 'shared-name'))?.ciphertext).toBe('sealed:p2');
    });

    it('removes a secret; removing it again answers false', async () => {
      await s().put('default', 'gone', 'sealed');
      expect(await s().remove('default', 'gone')).toBe(true);
      expect(await s().remove('default', 'gone')).toBe(false);
      expect(await s().get('default', 'gone')).toBeUndefined();
      expect(await s().list('default')).toEqual([]);
    });

    it('refuses names outside 1..128 of [A-Za-z0-9_.-/], storing nothing', async () => {
      for (const bad of ['', 'has space', 'semi;colon', 'x'.repeat(129), 'dollar$', 'new\nline']) {
        await expect(s().put('default', bad, 'sealed')).rejects.toThrow(/not valid/);
      }
      expect((await s().put('default', 'x'.repeat(128), 'sealed')).created).toBe(true);
      expect((await s().list('default')).map((x) => x.name)).toEqual(['x'.repeat(128)]);
    });

    it('keeps secrets across a restart', async () => {
      await s().put('default', 'durable', 'sealed:d');
      await ctx.reopen();
      expect((await s().get('default', 'durable'))?.ciphertext).toBe('sealed:d');
    });
  });
}

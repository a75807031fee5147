// ApiKeyStore and AuditLog conformance: keys of one project apart from another's, rotation replacing the
// secret in place, keys leaving with their project; the audit log append-only, newest first, filtered.
import { describe, expect, it } from 'vitest';
import type { NewApiKey } from '../types.js';
import { codeOf, deployOf, fn, useHarness, type HarnessFactory } from './harness.js';

function key(id: string, project = 'default', role: NewApiKey['role'] = 'admin'): NewApiKey {
  return { id, project, name: `key ${id}`, role, keyHash: `hash:${id}`, sigv4Ciphertext: `sealed:${id}` };
}

export function apiKeyStoreConformance(name: string, make: HarnessFactory): void {
  describe(`ApiKeyStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const k = () => ctx.store.apiKeys;

    it('creates a key and gets it back, once', async () => {
      const t0 = ctx.clock.now();
      const created = await k().create(key('K1', 'default', 'deploy'));
      expect(created).toStrictEqual({
        id: 'K1',
        project: 'default',
        name: 'key K1',
        role: 'deploy',
        keyHash: 'hash:K1',
        sigv4Ciphertext: 'sealed:K1',
        createdAt: t0,
        rotatedAt: null,
      });
      expect(await k().get('K1')).toStrictEqual(created);
      expect(await k().get('K2')).toBeUndefined();
      await expect(k().create(key('K1'))).rejects.toThrow(/exists/);
    });

    it('refuses a key of a project that does not exist, and a role that is not one', async () => {
      await expect(k().create(key('K1', 'nowhere'))).rejects.toThrow();
      await expect(k().create({ ...key('K2'), role: 'root' as never })).rejects.toThrow();
      expect(await k().list('default')).toEqual([]);
    });

    it("lists, removes and rotates a project's keys only", async () => {
      await ctx.store.projects.ensure('team-b');
      await k().create(key('A1'));
      ctx.clock.advance(10);
      await k().create(key('A2', 'default', 'read'));
      await k().create(key('B1', 'team-b'));
      expect((await k().list('default')).map((x) => x.id)).toEqual(['A1', 'A2']);
      expect((await k().list('team-b')).map((x) => x.id)).toEqual(['B1']);
      // Another project's key is as absent as one that never existed.
      expect(await k().remove('default', 'B1')).toBe(false);
      expect(await k().rotate('default', 'B1', 'x', 'y')).toBeUndefined();
      expect(await k().get('B1')).toMatchObject({ keyHash: 'hash:B1' });
      ctx.clock.advance(5);
      const rotated = await k().rotate('default', 'A2', 'hash:new', 'sealed:new');
      expect(rotated).toMatchObject({
        id: 'A2',
        role: 'read',
        keyHash: 'hash:new',
        rotatedAt: ctx.clock.now(),
      });
      expect(await k().get('A2')).toStrictEqual(rotated);
      expect(await k().remove('default', 'A1')).toBe(true);
      expect(await k().remove('default', 'A1')).toBe(false);
      expect((await k().list('default')).map((x) => x.id)).toEqual(['A2']);
    });

    it('removes keys with their project, and a project holding more than keys says what it holds', async () => {
      await ctx.store.projects.ensure('gone');
      await k().create(key('G1', 'gone'));
      expect(await ctx.store.projects.remove('gone')).toBe(true);
      expect(await k().get('G1')).toBeUndefined();
      await ctx.store.projects.ensure('holds');
      await k().create(key('H1', 'holds'));
      await ctx.store.credentials.create({
        accessKeyId: 'AKIDHOLDS',
        project: 'holds',
        name: 'ci',
        kind: 'user',
        functionName: null,
        permissions: null,
        secretCiphertext: 'sealed',
      });
      await expect(ctx.store.projects.remove('holds')).rejects.toMatchObject({
        code: 'ProjectNotEmpty',
        message: expect.stringMatching(/still holds/),
      });
      // Refused as a whole: its keys are still there.
      expect(await k().get('H1')).toBeDefined();
      await ctx.store.functions.deploy(deployOf('svc', [fn('a')], codeOf('1'), 'holds'));
      await expect(ctx.store.projects.remove('holds')).rejects.toThrow(/1 function/);
    });

    it('keeps keys across a reopen', async () => {
      await k().create(key('KEPT'));
      await ctx.reopen();
      expect(await k().get('KEPT')).toMatchObject({ id: 'KEPT', role: 'admin' });
    });
  });

  describe(`AuditLog conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const a = () => ctx.store.audit;

    it('appends entries in order and lists them newest first, filtered', async () => {
      const t0 = ctx.clock.now();
      const first = await a().append({
        project: 'default',
        actor: 'nimbus',
        action: 'deploy',
        target: 'svc',
        detail: { functions: ['a', 'b'] },
      });
      expect(first).toMatchObject({
        at: t0,
        project: 'default',
        actor: 'nimbus',
        action: 'deploy',
        target: 'svc',
      });
      expect(first.detail).toEqual({ functions: ['a', 'b'] });
      ctx.clock.advance(1000);
      const second = await a().append({
        project: 'team-b',
        actor: 'K1',
        action: 'key.create',
        target: 'K2',
        detail: null,
      });
      ctx.clock.advance(1000);
      const third = await a().append({
        project: 'default',
        actor: 'K3',
        action: 'function.remove',
        target: 'a',
        detail: null,
      });
      expect(second.seq).toBeGreaterThan(first.seq);
      expect(third.seq).toBeGreaterThan(second.seq);
      expect((await a().list({})).map((e) => e.seq)).toEqual([third.seq, second.seq, first.seq]);
      expect((await a().list({ project: 'default' })).map((e) => e.action)).toEqual([
        'function.remove',
        'deploy',
      ]);
      expect((await a().list({ since: t0 + 1000 })).map((e) => e.seq)).toEqual([third.seq, second.seq]);
      expect((await a().list({ action: 'deploy' })).map((e) => e.seq)).toEqual([first.seq]);
      expect((await a().list({ limit: 1 })).map((e) => e.seq)).toEqual([third.seq]);
      await ctx.reopen();
      expect(await a().list({ project: 'team-b' })).toStrictEqual([second]);
    });
  });
}

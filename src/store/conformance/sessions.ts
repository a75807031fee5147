// SessionStore conformance: a session found only by its id hash while neither expiry has passed, touched
// forward, ended by sign-out, by its key's revocation and with its project, and pruned when stale.
import { describe, expect, it } from 'vitest';
import type { NewSession } from '../types.js';
import { useHarness, type HarnessFactory } from './harness.js';

const HOUR = 3_600_000;

function session(idHash: string, over: Partial<NewSession> = {}): NewSession {
  return {
    idHash,
    project: 'default',
    keyId: 'nimbus',
    keyFingerprint: 'fp1',
    expiresAt: 0,
    ...over,
  };
}

export function sessionStoreConformance(name: string, make: HarnessFactory): void {
  describe(`SessionStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const s = () => ctx.store.sessions;

    it('creates a session and finds it by its id hash until it expires', async () => {
      const t0 = ctx.clock.now();
      const created = await s().create(session('h1', { expiresAt: t0 + 12 * HOUR }));
      expect(created).toStrictEqual({
        idHash: 'h1',
        project: 'default',
        keyId: 'nimbus',
        keyFingerprint: 'fp1',
        createdAt: t0,
        lastSeenAt: t0,
        expiresAt: t0 + 12 * HOUR,
      });
      expect(await s().get('h1', t0)).toStrictEqual(created);
      expect(await s().get('h2', t0)).toBeUndefined();
      await expect(s().create(session('h1', { expiresAt: t0 + HOUR }))).rejects.toThrow(/exists/);
      // The absolute expiry holds however recently it was seen.
      ctx.clock.advance(12 * HOUR - 1);
      expect(await s().touch('h1')).toBe(true);
      expect(await s().get('h1', ctx.clock.now() - HOUR)).toMatchObject({ lastSeenAt: ctx.clock.now() });
      ctx.clock.advance(1);
      expect(await s().get('h1', ctx.clock.now() - HOUR)).toBeUndefined();
    });

    it('answers an idle session as absent, and touching keeps it alive', async () => {
      const t0 = ctx.clock.now();
      await s().create(session('idle', { expiresAt: t0 + 100 * HOUR }));
      await s().create(session('busy', { expiresAt: t0 + 100 * HOUR }));
      ctx.clock.advance(20 * 60_000);
      expect(await s().touch('busy')).toBe(true);
      ctx.clock.advance(20 * 60_000);
      const idleSince = ctx.clock.now() - 30 * 60_000;
      expect(await s().get('idle', idleSince)).toBeUndefined();
      expect(await s().get('busy', idleSince)).toMatchObject({ lastSeenAt: t0 + 20 * 60_000 });
      expect(await s().touch('nothing')).toBe(false);
    });

    it('removes one session on sign-out and all of a key on revocation', async () => {
      const t0 = ctx.clock.now();
      const far = t0 + HOUR;
      await s().create(session('a1', { keyId: 'K1', expiresAt: far }));
      await s().create(session('a2', { keyId: 'K1', expiresAt: far }));
      await s().create(session('b1', { keyId: 'K2', expiresAt: far }));
      expect(await s().remove('a1')).toBe(true);
      expect(await s().remove('a1')).toBe(false);
      expect(await s().get('a1', t0)).toBeUndefined();
      await s().create(session('a3', { keyId: 'K1', expiresAt: far }));
      expect(await s().removeForKey('K1')).toBe(2);
      expect(await s().get('a2', t0)).toBeUndefined();
      expect(await s().get('a3', t0)).toBeUndefined();
      expect(await s().get('b1', t0)).toMatchObject({ keyId: 'K2' });
      expect(await s().removeForKey('K1')).toBe(0);
    });

    it('refuses a session of a project that does not exist, and leaves with its project', async () => {
      const t0 = ctx.clock.now();
      await expect(s().create(session('x', { project: 'nowhere', expiresAt: t0 + HOUR }))).rejects.toThrow();
      await ctx.store.projects.ensure('team-b');
      await s().create(session('tb', { project: 'team-b', keyId: 'KB', expiresAt: t0 + HOUR }));
      expect(await ctx.store.projects.remove('team-b')).toBe(true);
      expect(await s().get('tb', t0)).toBeUndefined();
    });

    it('prunes expired and idle sessions only, and keeps the rest across a reopen', async () => {
      const t0 = ctx.clock.now();
      await s().create(session('expired', { expiresAt: t0 + HOUR }));
      await s().create(session('idle', { expiresAt: t0 + 10 * HOUR }));
      await s().create(session('live', { expiresAt: t0 + 10 * HOUR }));
      ctx.clock.advance(2 * HOUR);
      await s().touch('live');
      expect(await s().prune(ctx.clock.now() - HOUR)).toBe(2);
      expect(await s().prune(ctx.clock.now() - HOUR)).toBe(0);
      await ctx.reopen();
      expect(await s().get('live', ctx.clock.now() - HOUR)).toMatchObject({ idHash: 'live' });
      expect(await s().get('idle', 0)).toBeUndefined();
    });
  });
}

// GatewayKeyStore conformance: keys per project, gone with their counters when removed or with their project;
// reservations that never pass the limit (also when many are asked at once), settling, and counters per period.
import { describe, expect, it } from 'vitest';
import type { NewGatewayKey } from '../types.js';
import { useHarness, type HarnessFactory } from './harness.js';

function key(id: string, project = 'default', plan = 'free'): NewGatewayKey {
  return { id, project, name: `key ${id}`, plan, keyHash: `hash:${id}` };
}

export function gatewayKeyStoreConformance(name: string, make: HarnessFactory): void {
  describe(`GatewayKeyStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const g = () => ctx.store.gatewayKeys;
    const DAY = 'DAY 2026-01-01';

    it('creates a key and gets it back, once', async () => {
      const t0 = ctx.clock.now();
      const created = await g().create(key('G1'));
      expect(created).toStrictEqual({
        id: 'G1',
        project: 'default',
        name: 'key G1',
        plan: 'free',
        keyHash: 'hash:G1',
        createdAt: t0,
      });
      expect(await g().get('G1')).toStrictEqual(created);
      expect(await g().get('G2')).toBeUndefined();
      await expect(g().create(key('G1'))).rejects.toThrow(/exists/);
      await expect(g().create(key('G3', 'nowhere'))).rejects.toThrow();
      expect((await g().list('default')).map((k) => k.id)).toEqual(['G1']);
    });

    it("lists and removes a project's keys only, with their counters", async () => {
      await ctx.store.projects.ensure('team-b');
      await g().create(key('A1'));
      ctx.clock.advance(10);
      await g().create(key('A2', 'default', 'pro'));
      await g().create(key('B1', 'team-b'));
      expect((await g().list('default')).map((k) => [k.id, k.plan])).toEqual([
        ['A1', 'free'],
        ['A2', 'pro'],
      ]);
      expect((await g().list('team-b')).map((k) => k.id)).toEqual(['B1']);
      expect(await g().reserve('team-b', 'B1', DAY, 2, 10)).toBe(2);
      // Another project's key is as absent as one that never existed.
      expect(await g().remove('default', 'B1')).toBe(false);
      expect(await g().reserve('default', 'B1', DAY, 1, 10)).toBe(0);
      expect(await g().usage('default')).toEqual([]);
      expect(await g().remove('team-b', 'B1')).toBe(true);
      expect(await g().remove('team-b', 'B1')).toBe(false);
      expect(await g().get('B1')).toBeUndefined();
      expect(await g().usage('team-b')).toEqual([]);
      // A removed key gets nothing more.
      expect(await g().reserve('team-b', 'B1', DAY, 1, 10)).toBe(0);
    });

    it('reserves up to the limit, settles what was used and takes back what was released', async () => {
      await g().create(key('Q'));
      expect(await g().reserve('default', 'Q', DAY, 4, 10)).toBe(4);
      expect(await g().reserve('default', 'Q', DAY, 4, 10)).toBe(4);
      expect(await g().reserve('default', 'Q', DAY, 4, 10)).toBe(2);
      expect(await g().reserve('default', 'Q', DAY, 4, 10)).toBe(0);
      expect(await g().usage('default', 'Q')).toEqual([{ keyId: 'Q', period: DAY, used: 0, reserved: 10 }]);
      // 3 of the first block used, 1 given back: that one is free for anyone again.
      await g().settle('default', 'Q', DAY, 3, 1);
      expect(await g().usage('default', 'Q')).toEqual([{ keyId: 'Q', period: DAY, used: 3, reserved: 6 }]);
      expect(await g().reserve('default', 'Q', DAY, 4, 10)).toBe(1);
      // A lower limit (a redeploy) grants nothing while more than it is out.
      expect(await g().reserve('default', 'Q', DAY, 4, 5)).toBe(0);
      // A limit of 0 never grants.
      await g().create(key('Z'));
      expect(await g().reserve('default', 'Z', DAY, 1, 0)).toBe(0);
    });

    it('counts each period apart, and keeps counters across a reopen', async () => {
      await g().create(key('P'));
      expect(await g().reserve('default', 'P', DAY, 5, 5)).toBe(5);
      await g().settle('default', 'P', DAY, 5, 0);
      expect(await g().reserve('default', 'P', DAY, 1, 5)).toBe(0);
      expect(await g().reserve('default', 'P', 'DAY 2026-01-02', 5, 5)).toBe(5);
      await ctx.reopen();
      expect(await g().usage('default', 'P')).toEqual([
        { keyId: 'P', period: DAY, used: 5, reserved: 0 },
        { keyId: 'P', period: 'DAY 2026-01-02', used: 0, reserved: 5 },
      ]);
      expect(await g().get('P')).toMatchObject({ plan: 'free' });
    });

    it('never grants more than the limit to reservations made at once', async () => {
      await g().create(key('C'));
      const grants = await Promise.all(
        Array.from({ length: 20 }, () => g().reserve('default', 'C', DAY, 3, 25)),
      );
      expect(grants.reduce((a, b) => a + b, 0)).toBe(25);
      expect(await g().usage('default', 'C')).toEqual([{ keyId: 'C', period: DAY, used: 0, reserved: 25 }]);
    });

    it('removes keys and counters with their project', async () => {
      await ctx.store.projects.ensure('gone');
      await g().create(key('X', 'gone'));
      expect(await g().reserve('gone', 'X', DAY, 1, 5)).toBe(1);
      expect(await ctx.store.projects.remove('gone')).toBe(true);
      expect(await g().get('X')).toBeUndefined();
      expect(await g().usage('gone')).toEqual([]);
    });
  });
}

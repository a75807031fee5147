// ProjectStore and NodeRegistry conformance: the namespace every entity lives in, and the nodes sharing a store.
import { describe, expect, it } from 'vitest';
import { codeOf, deployOf, fn, ref, useHarness, type HarnessFactory } from './harness.js';

export function projectStoreConformance(name: string, make: HarnessFactory): void {
  describe(`ProjectStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const p = () => ctx.store.projects;

    it('has the default project from the start', async () => {
      expect((await p().list()).map((x) => x.name)).toEqual(['default']);
      expect(await p().get('default')).toMatchObject({ name: 'default' });
    });

    it('creates a project once and returns the same one after', async () => {
      const created = await p().ensure('team-a');
      expect(created).toStrictEqual({ name: 'team-a', createdAt: ctx.clock.now() });
      ctx.clock.advance(1000);
      expect(await p().ensure('team-a')).toStrictEqual(created);
      expect((await p().list()).map((x) => x.name)).toEqual(['default', 'team-a']);
      expect(await p().get('unknown')).toBeUndefined();
    });

    it('refuses names that are not lowercase identifiers', async () => {
      for (const bad of ['', 'Team', 'a b', '-x', 'x'.repeat(64), "x'; drop table projects"]) {
        await expect(p().ensure(bad)).rejects.toThrow(/project name/);
      }
      expect((await p().list()).map((x) => x.name)).toEqual(['default']);
    });

    it('removes an empty project, refuses one with functions, and never removes default', async () => {
      await p().ensure('gone');
      await p().ensure('busy');
      await ctx.store.functions.deploy(deployOf('svc', [fn('a')], codeOf('1'), 'busy'));
      expect(await p().remove('gone')).toBe(true);
      expect(await p().remove('gone')).toBe(false);
      await expect(p().remove('busy')).rejects.toMatchObject({ code: 'ProjectNotEmpty' });
      await expect(p().remove('default')).rejects.toThrow(/default/);
      await ctx.store.functions.removeFunction(ref('a', 'busy'));
      expect(await p().remove('busy')).toBe(true);
      expect((await p().list()).map((x) => x.name)).toEqual(['default']);
    });

    it('keeps projects across a reopen', async () => {
      await p().ensure('kept');
      await ctx.reopen();
      expect((await p().list()).map((x) => x.name)).toEqual(['default', 'kept']);
    });
  });
}

export function nodeRegistryConformance(name: string, make: HarnessFactory): void {
  describe(`NodeRegistry conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const n = () => ctx.store.nodes;
    const node = (id: string, host = 'host-1') => ({
      id,
      host,
      pid: 4242,
      gatewayUrl: 'http://127.0.0.1:8080',
      apiUrl: null,
    });

    it('registers a node with its start and heartbeat at now', async () => {
      const now = ctx.clock.now();
      const info = await n().register(node('n1'));
      expect(info).toStrictEqual({ ...node('n1'), startedAt: now, heartbeatAt: now });
      expect(await n().list()).toStrictEqual([info]);
    });

    it('renews heartbeats and lists only the nodes alive within a window', async () => {
      await n().register(node('n1'));
      await n().register(node('n2'));
      ctx.clock.advance(10_000);
      expect(await n().heartbeat('n2')).toBe(true);
      expect(await n().heartbeat('unknown')).toBe(false);
      expect((await n().list({ aliveWithinMs: 5000 })).map((x) => x.id)).toEqual(['n2']);
      expect((await n().list()).map((x) => [x.id, x.heartbeatAt - x.startedAt])).toEqual([
        ['n1', 0],
        ['n2', 10_000],
      ]);
    });

    it('replaces a node registered again under the same id, and removes one', async () => {
      await n().register(node('n1', 'old-host'));
      ctx.clock.advance(5000);
      const again = await n().register(node('n1', 'new-host'));
      expect(again.startedAt).toBe(ctx.clock.now());
      expect((await n().list()).map((x) => x.host)).toEqual(['new-host']);
      expect(await n().remove('n1')).toBe(true);
      expect(await n().remove('n1')).toBe(false);
      expect(await n().list()).toEqual([]);
    });

    it('keeps nodes across a reopen', async () => {
      await n().register(node('n1'));
      await ctx.reopen();
      expect((await n().list()).map((x) => x.id)).toEqual(['n1']);
    });
  });
}

// Sandboxes are forked by the spawner helper, never by the host itself (src/sandbox/spawner.ts). The host
// must outlive the helper: killed, it takes its sandboxes along, and the next cold start brings a new helper.
// Nothing the helper started may outlive Nimbus.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FIXTURES,
  bubblewrapAvailable,
  eventually,
  sandboxedNodes,
  slirpChildren,
  spawnerHelpers,
  startTestNimbus,
  type TestNimbus,
} from './helpers.js';

const BWRAP = bubblewrapAvailable();
const MODES = [
  { mode: 'bubblewrap', opts: {} },
  { mode: 'fallback', opts: { disableBwrap: true, disableCgroup: true } },
];

/** Parent pid of every live process, from /proc. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      out.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Live processes below pid. */
function below(pid: number): number[] {
  const tree = parents();
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [c, pp] of tree) {
      if (pp !== p) continue;
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

const alive = (pid: number): boolean => parents().has(pid);

function ancestors(pid: number): number[] {
  const tree = parents();
  const out: number[] = [];
  for (let p = tree.get(pid); p !== undefined && p > 1; p = tree.get(p)) out.push(p);
  return out;
}

describe.each(MODES)('the spawner helper at the $mode level', ({ mode, opts }) => {
  const skip = mode === 'bubblewrap' && !BWRAP;
  let n: TestNimbus;
  let cleaned = false;

  beforeAll(async () => {
    if (skip) return;
    n = await startTestNimbus(opts);
    await n.deploy(join(FIXTURES, 'spawner'));
  });
  afterAll(async () => {
    if (!cleaned) await n?.cleanup();
  });

  const invoke = async (fn: string) => {
    const r = await n.client.invoke(fn, '{}', {});
    return { status: r.statusCode, ...(JSON.parse(r.payload) as { fn: string; calls: number }) };
  };

  it.skipIf(skip)('forks every sandbox: none is a child of the host', async () => {
    expect(await invoke('first')).toMatchObject({ fn: 'first', calls: 1 });
    const helpers = spawnerHelpers(process.pid);
    expect(helpers).toHaveLength(1);
    // The instance of `first` and the stem cells behind it: each node runtime descends from the helper.
    const nodes = sandboxedNodes(join(n.dataDir, 'sandboxes'));
    expect(nodes.length).toBeGreaterThan(1);
    for (const node of nodes) expect(ancestors(node)).toContain(helpers[0]);
  });

  it.skipIf(skip)(
    'outlives a killed helper: its sandboxes go with it, and warm and cold calls answer from a new one',
    async () => {
      await invoke('first');
      expect((await invoke('first')).calls).toBeGreaterThan(1);
      const [old] = spawnerHelpers(process.pid);
      const forked = below(old!);
      const nats = slirpChildren().map((s) => s.pid);
      if (mode === 'bubblewrap') expect(nats.length).toBeGreaterThan(0);
      process.kill(old!, 'SIGKILL');
      // Everything it had started is gone: bubblewrap's --die-with-parent, or the host's kill by pid.
      await eventually(async () => [...forked, ...nats].every((p) => !alive(p)));
      // Until Nimbus has reaped the helper it cannot know; a call sent before that fails like any crash.
      await eventually(async () => !existsSync(`/proc/${old}`));
      // The instance of `first` died with it: its next call is a cold start, on a new helper.
      expect(await invoke('first')).toMatchObject({ status: 200, fn: 'first', calls: 1 });
      expect(await invoke('second')).toMatchObject({ status: 200, fn: 'second', calls: 1 });
      expect(await invoke('second')).toMatchObject({ status: 200, fn: 'second', calls: 2 });
      const now = spawnerHelpers(process.pid);
      expect(now).toHaveLength(1);
      expect(now[0]).not.toBe(old);
    },
  );

  it.skipIf(skip)('leaves nothing it started behind when Nimbus stops', async () => {
    expect(await invoke('first')).toMatchObject({ status: 200, fn: 'first' });
    const [helper] = spawnerHelpers(process.pid);
    const forked = below(helper!);
    const nats = slirpChildren().map((s) => s.pid);
    expect(forked.length).toBeGreaterThan(0);
    cleaned = true;
    await n.cleanup();
    expect(alive(helper!)).toBe(false);
    await eventually(async () => [...forked, ...nats].every((p) => !alive(p)));
  });
});

// The stem-cell pool with real processes: sized to the recent cold-start rate, bounded, and rationed.
import { afterAll, expect, it } from 'vitest';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectSandbox } from '../src/sandbox/detect.js';
import { StemCellPool } from '../src/sandbox/pool.js';
import { SandboxInstance } from '../src/sandbox/instance.js';
import { HelperSpawner } from '../src/sandbox/spawner.js';
import { eventually } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'nimbus-pool-'));
chmodSync(root, 0o711);
const runtimeFile = join(root, 'bootstrap.cjs');
copyFileSync(join(import.meta.dirname, '..', 'dist', 'runtime', 'bootstrap.cjs'), runtimeFile);
chmodSync(runtimeFile, 0o644);
const caps = detectSandbox({ disableCgroup: true });
const spawner = new HelperSpawner();
const pool = new StemCellPool({
  env: { caps, sandboxRoot: root, runtimeFile, spawner },
  target: 1,
  maxTarget: 6,
  maxBooting: 2,
});

afterAll(async () => {
  pool.close();
  await spawner.close();
  rmSync(root, { recursive: true, force: true });
});

it('keeps the minimum ready, grows with the cold-start rate up to its cap, and rations boots', async () => {
  pool.ensure(128);
  await eventually(async () => pool.stats()[0]?.ready === 1);
  expect(pool.target(128)).toBe(1);
  // 60 cold starts within the rate window: enough for 3 in half a second.
  const taken = [];
  for (let i = 0; i < 60; i++) {
    const inst = pool.take(128);
    if (inst) taken.push(inst);
  }
  expect(pool.target(128)).toBe(3);
  for (let i = 0; i < 300; i++) pool.take(128);
  expect(pool.target(128)).toBe(6);
  // Refills start a moment after the takes; never more than two processes boot at once.
  let most = 0;
  const sampler = setInterval(() => (most = Math.max(most, pool.bootingNow)), 2);
  await eventually(async () => pool.stats()[0]?.ready === 6, 20_000);
  clearInterval(sampler);
  expect(most).toBe(2);
  for (const inst of taken) inst.stop();
});

it('refuses a network: none stem cell where sandboxes share the host network, instead of starting one with it', async () => {
  const fallback = detectSandbox({ disableBwrap: true, disableCgroup: true });
  const env = { caps: fallback, sandboxRoot: root, runtimeFile, spawner };
  await expect(SandboxInstance.start(env, 128, 512, 'none')).rejects.toThrow(
    /network: none needs bubblewrap/,
  );
  const outbound = await SandboxInstance.start(env, 128, 512, 'outbound');
  outbound.stop();
});

// The SQLite store's deploy of a 15 MB archive, alone: the longest the event loop was held while
// FunctionStore.deploy ran, seen by a 1 ms timer (what a gateway request waiting on that thread would wait).
// The machine's noise moves the gateway's figures in deploy-stall.mjs by hundreds of ms; this isolates the
// store write. `node bench/archive-write.mjs [other checkout's dist]` compares another build (e.g. main's)
// in the same run, interleaved.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { machine, ROOT, saveResult } from './lib.mjs';

const MB = Number(process.env.BENCH_DEPLOY_MB ?? 15);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

/** Resolves with the longest gap between 1 ms timer ticks while fn runs, and fn's own time. */
async function heldWhile(fn) {
  let last = performance.now();
  let longest = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const t0 = performance.now();
  await fn();
  const ms = performance.now() - t0;
  clearInterval(probe);
  longest = Math.max(longest, performance.now() - last);
  return { longestMs: +longest.toFixed(1), deployMs: +ms.toFixed(1) };
}

async function once(dist) {
  const { openSqliteStore } = await import(pathToFileURL(join(dist, 'store', 'sqlite', 'index.js')).href);
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-bench-archive-'));
  const store = openSqliteStore({ path: join(dir, 'nimbus.db') });
  try {
    const archive = randomBytes(MB * 1024 * 1024);
    const sha256 = createHash('sha256').update(archive).digest('hex');
    const fn = {
      name: 'big',
      handler: 'index.handler',
      memory: 128,
      timeout: 3,
      environment: {},
      routes: [],
    };
    const input = { project: 'default', service: 'big', functions: [fn], code: { sha256, archive } };
    return await heldWhile(() => store.functions.deploy(input));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runArchiveWrite(other) {
  const builds = { this: join(ROOT, 'dist'), ...(other ? { other } : {}) };
  const runs = Object.fromEntries(Object.keys(builds).map((k) => [k, []]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, dist] of Object.entries(builds)) runs[name].push(await once(dist));
  }
  const result = { machine: machine(), date: new Date().toISOString(), deployMB: MB, builds, runs };
  for (const [name, rs] of Object.entries(runs)) {
    const held = rs.map((r) => r.longestMs).sort((a, b) => a - b);
    const median = held[Math.floor(held.length / 2)];
    result[`${name}MedianHeldMs`] = median;
    console.log(
      `${name} (${builds[name]}): longest event-loop hold during a ${MB} MB deploy, median of ${rs.length}: ${median} ms (all: ${held.join(', ')})`,
    );
  }
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await runArchiveWrite(process.argv[2]);
  console.log(`saved ${saveResult('archive-write', r)}`);
}

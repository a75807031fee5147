// Core benchmark (issue: core platform). In one run:
//  (a) cold start: the first request to each of 60 never-invoked functions, end to end through the gateway,
//      each followed by a warm request to the previous one after the same pause (the floor of a cold start);
//  (b) warm hello world through the gateway under autocannon -c 50, beside the same handler in a bare
//      node:http server and in the minimal two-process hop (bench/hop-server.mjs: the isolation ceiling),
//      measured in turns (BENCH_WARM_ROUNDS rounds of each), with the CPU time each spends per request from
//      /proc (the server process, its children: sandboxes or the hop's child, and autocannon).
// (a) and (b) run twice: on the default SQLite store and on PostgreSQL (a fresh schema on
// NIMBUS_BENCH_POSTGRES, default 127.0.0.1:5432/test; skipped when none answers, or BENCH_POSTGRES=off).
// BENCH_COLD_FUNCTIONS=0 skips (a). BENCH_COMPARE_BIN=<another checkout>/bin/nimbus.js adds that build as one
// more warm target in the same turns (an A/B of two builds on one machine state).
// Figures, not pass/fail: absolute numbers drift on a shared 2-core machine, the ratio is what compares.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  BIN,
  ROOT,
  autocannon,
  autocannonWithCpu,
  machine,
  percentile,
  saveResult,
  sleep,
  startJsonProcess,
  startNimbus,
  stop,
} from './lib.mjs';

const COLD_FUNCTIONS = Number(process.env.BENCH_COLD_FUNCTIONS ?? 60);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
// Cold requests are paced so the stem-cell pool refills between them, as it would between real arrivals.
const COLD_GAP_MS = Number(process.env.BENCH_COLD_GAP_MS ?? 150);
// BENCH_COLD_NETWORK=none deploys the cold functions with `network: none` (no slirp4netns per stem cell).
const COLD_NETWORK = process.env.BENCH_COLD_NETWORK;
const WARM_ROUNDS = Math.max(1, Number(process.env.BENCH_WARM_ROUNDS ?? 2));
const COMPARE_BIN = process.env.BENCH_COMPARE_BIN;

export async function runCore() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-'));
  const data = join(work, 'data');
  const coldDir = join(work, 'cold');
  mkdirSync(coldDir);
  const fns = Array.from({ length: COLD_FUNCTIONS }, (_, i) => `cold${i}`);
  writeFileSync(
    join(coldDir, 'nimbus.yaml'),
    `service: coldbench\nfunctions:\n${fns.map((f) => `  ${f}:\n    handler: handler.handler\n${COLD_NETWORK ? `    network: ${COLD_NETWORK}\n` : ''}    events:\n      - http: GET /${f}\n`).join('')}`,
  );
  writeFileSync(join(coldDir, 'handler.js'), "exports.handler = async () => ({ message: 'hello world' });\n");

  const env = { ...process.env, NIMBUS_DATA: data, NIMBUS_LOG_LEVEL: 'warn', NIMBUS_MAX_CONCURRENCY: '200' };
  const result = { machine: machine(), date: new Date().toISOString(), loadBefore: loadavg() };
  // The baselines run for the whole benchmark and are measured in turns with each Nimbus.
  const bare = await startJsonProcess(process.execPath, [join(ROOT, 'bench', 'bare-server.mjs')]);
  const hop = await startJsonProcess(process.execPath, [join(ROOT, 'bench', 'hop-server.mjs')]);
  const baselines = [
    { name: 'bare', url: `http://127.0.0.1:${bare.info.port}/`, pid: bare.proc.pid },
    { name: 'hop', url: `http://127.0.0.1:${hop.info.port}/`, pid: hop.proc.pid },
  ];
  let other;
  try {
    if (COMPARE_BIN) {
      other = await startNimbus({ ...env, NIMBUS_DATA: join(work, 'data-other') }, COMPARE_BIN);
      baselines.push({ name: 'compare', url: `${other.info.gatewayUrl}/bench/hello`, pid: other.proc.pid });
    }
    const sqlite = await measureNimbus(env, fns, coldDir, 'sqlite', baselines);
    Object.assign(result, { sandbox: sqlite.sandbox, cold: sqlite.cold, nimbus: sqlite.warm });
    result.bare = sqlite.baselines.bare;
    result.hop = sqlite.baselines.hop;
    if (other) result.compare = { bin: COMPARE_BIN, ...sqlite.baselines.compare };

    // The same measurements on PostgreSQL, in the same run, so the two stores compare on one machine state.
    const pgUrl = process.env.BENCH_POSTGRES === 'off' ? null : await benchPostgres();
    if (pgUrl) {
      const pgEnv = { ...env, NIMBUS_DATA: join(work, 'data-pg'), NIMBUS_STORE: pgUrl.url };
      try {
        const pg = await measureNimbus(pgEnv, fns, coldDir, 'postgresql', baselines.slice(0, 1));
        result.postgresql = { cold: pg.cold, nimbus: pg.warm, bare: pg.baselines.bare };
      } finally {
        await pgUrl.drop();
      }
    } else {
      console.log('postgresql: skipped (BENCH_POSTGRES=off, or nothing answered at NIMBUS_BENCH_POSTGRES)');
    }
  } finally {
    await stop(bare.proc);
    await stop(hop.proc);
    if (other) await stop(other.proc);
  }

  // Start to first response: a fresh `nimbus up` over the same data (functions already deployed), spawn to
  // the first 200 from a function, polled every 10 ms, as the peers benchmark measures workerd.
  {
    const t0 = performance.now();
    const again = await startNimbus(env);
    try {
      for (;;) {
        const res = await fetch(`${again.info.gatewayUrl}/bench/hello`).catch(() => null);
        if (res?.status === 200) break;
        await sleep(10);
      }
      result.startToFirstResponseMs = Math.round(performance.now() - t0);
      console.log(`nimbus start to first response: ${result.startToFirstResponseMs} ms`);
    } finally {
      await stop(again.proc);
    }
  }
  result.warmRatio = round(result.nimbus.reqPerSec / result.bare.reqPerSec, 3);
  result.hopRatio = round(result.hop.reqPerSec / result.bare.reqPerSec, 3);
  result.warmToHop = round(result.nimbus.reqPerSec / result.hop.reqPerSec, 3);
  console.log(
    `warm ratio nimbus/bare: ${result.warmRatio} (two-process hop/bare: ${result.hopRatio}; nimbus/hop: ${result.warmToHop})`,
  );
  if (result.compare) {
    result.compareRatio = round(result.compare.reqPerSec / result.bare.reqPerSec, 3);
    console.log(`warm ratio of ${COMPARE_BIN}/bare: ${result.compareRatio}`);
  }
  if (result.postgresql) {
    result.postgresql.warmRatio = round(
      result.postgresql.nimbus.reqPerSec / result.postgresql.bare.reqPerSec,
      3,
    );
    console.log(`warm ratio nimbus on postgresql/bare: ${result.postgresql.warmRatio}`);
  }
  result.loadAfter = loadavg();
  rmSync(work, { recursive: true, force: true });
  return result;
}

/**
 * Warm throughput of every target in turns: WARM_ROUNDS rounds, each target DURATION / WARM_ROUNDS seconds
 * a round after a short warm-up (3 s the first time: Nimbus scales out to -c instances), so a change in the
 * machine's load spreads over all of them. Requests per second are summed over the rounds' totals; p50 and
 * p99 are the rounds' medians; CPU per request is total CPU over total requests.
 */
function warmInTurns(targets) {
  const per = Math.max(1, Math.round(DURATION / WARM_ROUNDS));
  const runs = new Map(targets.map((t) => [t.name, []]));
  for (let round = 0; round < WARM_ROUNDS; round++) {
    for (const t of targets) {
      autocannon(t.url, { connections: CONNECTIONS, duration: round === 0 ? 3 : 1 });
      runs.get(t.name).push(autocannonWithCpu(t.url, t.pid, { connections: CONNECTIONS, duration: per }));
    }
  }
  const out = {};
  for (const [name, rs] of runs) {
    const total = rs.reduce((a, r) => a + r.total, 0);
    const cpu = (k) =>
      round(rs.reduce((a, r) => a + r.cpuUsPerRequest[k] * r.total, 0) / Math.max(1, total), 1);
    const mid = (k) => [...rs.map((r) => r[k])].sort((a, b) => a - b)[Math.floor(rs.length / 2)];
    out[name] = {
      reqPerSec: Math.round(total / (per * rs.length)),
      rounds: rs.map((r) => r.reqPerSec),
      p50: mid('p50'),
      p99: mid('p99'),
      non2xx: rs.reduce((a, r) => a + r.non2xx, 0),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      total,
      cpuUsPerRequest: { server: cpu('server'), children: cpu('children'), load: cpu('load') },
    };
    const c = out[name].cpuUsPerRequest;
    console.log(
      `  ${name.padEnd(10)} ${out[name].reqPerSec} req/s (rounds ${out[name].rounds.join(', ')}), p50 ${out[name].p50} ms, p99 ${out[name].p99} ms; CPU per request: server ${c.server} µs, children ${c.children} µs, autocannon ${c.load} µs`,
    );
  }
  return out;
}

/** Starts a Nimbus with env, deploys hello and the cold functions, measures cold starts, then warm req/s in
 *  turns with the baselines (which keep running). */
async function measureNimbus(env, fns, coldDir, label, baselines) {
  const nimbus = await startNimbus(env);
  const out = { sandbox: nimbus.info.sandboxLevel };
  try {
    const deploy = (dir) => execFileSync(process.execPath, [BIN, 'deploy', dir], { env, stdio: 'ignore' });
    deploy(join(ROOT, 'bench', 'fixtures', 'hello'));
    if (fns.length > 0) deploy(coldDir);
    await sleep(1000);

    // (a) cold starts. The platform is warmed first (the gateway, the client's connection, the JIT of the
    // request path) with requests to another function: what is measured is a function's cold start, not
    // the first request a freshly started Nimbus process ever handles.
    for (let i = 0; i < 50; i++) await (await fetch(`${nimbus.info.gatewayUrl}/bench/hello`)).text();
    if (fns.length > 0) {
      // Each cold request is followed by a warm one to the function before it, after the same pause: a warm call
      // after the same idle time (its instance frozen meanwhile, as any idle one) is the floor a cold start is
      // judged against, measured in the same conditions.
      const get = async (f) => {
        const t0 = performance.now();
        const res = await fetch(`${nimbus.info.gatewayUrl}/${f}`);
        await res.text();
        if (res.status !== 200) throw new Error(`request to ${f} answered ${res.status}`);
        return performance.now() - t0;
      };
      const cold = [];
      const warmIdle = [];
      for (let i = 0; i < fns.length; i++) {
        await sleep(COLD_GAP_MS);
        cold.push(await get(fns[i]));
        if (i === 0) continue;
        await sleep(COLD_GAP_MS);
        warmIdle.push(await get(fns[i - 1]));
      }
      // A warm request for contrast, measured the same way.
      const warmSingle = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        await (await fetch(`${nimbus.info.gatewayUrl}/cold0`)).text();
        warmSingle.push(performance.now() - t0);
      }
      out.cold = {
        functions: fns.length,
        gapMs: COLD_GAP_MS,
        p50: round(percentile(cold, 50)),
        p99: round(percentile(cold, 99)),
        max: round(Math.max(...cold)),
        warmAfterIdleP50: round(percentile(warmIdle, 50)),
        warmAfterIdleP99: round(percentile(warmIdle, 99)),
        coldMinusWarmP50: round(percentile(cold, 50) - percentile(warmIdle, 50)),
        warmSequentialP50: round(percentile(warmSingle, 50)),
      };
      console.log(
        `[${label}] cold start (first request to ${fns.length} functions, end to end): p50 ${out.cold.p50} ms, p99 ${out.cold.p99} ms; a warm request after the same ${COLD_GAP_MS} ms idle: p50 ${out.cold.warmAfterIdleP50} ms, p99 ${out.cold.warmAfterIdleP99} ms; cold - warm p50 ${out.cold.coldMinusWarmP50} ms; back to back warm p50 ${out.cold.warmSequentialP50} ms`,
      );
    }

    // (b) warm throughput, the same autocannon settings for every target, in turns.
    const compare = baselines.find((t) => t.name === 'compare');
    if (compare && COMPARE_BIN) {
      const otherEnv = { ...env, NIMBUS_DATA: join(dirname(env.NIMBUS_DATA), 'data-other') };
      execFileSync(process.execPath, [COMPARE_BIN, 'deploy', join(ROOT, 'bench', 'fixtures', 'hello')], {
        env: otherEnv,
        stdio: 'ignore',
      });
      await sleep(1000);
      // Warmed the same way as the Nimbus under test, so both have learnt how short the handler is.
      for (let i = 0; i < 50; i++) await (await fetch(compare.url)).text();
    }
    console.log(`[${label}] warm hello world, autocannon -c ${CONNECTIONS}, ${WARM_ROUNDS} rounds in turns:`);
    const warm = warmInTurns([
      ...baselines,
      { name: 'nimbus', url: `${nimbus.info.gatewayUrl}/bench/hello`, pid: nimbus.proc.pid },
    ]);
    out.warm = warm.nimbus;
    out.baselines = warm;
  } finally {
    await stop(nimbus.proc);
  }
  return out;
}

/** A fresh schema on the benchmark's PostgreSQL, or null when none answers; drop() removes it. */
export async function benchPostgres(schema = `nimbus_bench_${Date.now()}`) {
  const base = process.env.NIMBUS_BENCH_POSTGRES ?? 'postgresql://127.0.0.1:5432/test';
  const { default: pg } = await import('pg');
  const { parsePostgresUrl } = await import('../dist/store/postgres/index.js');
  const client = new pg.Client({
    connectionString: parsePostgresUrl(base).connectionString,
    connectionTimeoutMillis: 2000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch {
    return null;
  }
  await client.query(`CREATE SCHEMA ${schema}`);
  return {
    url: `${base}${base.includes('?') ? '&' : '?'}schema=${schema}`,
    drop: async () => {
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
      await client.end();
    },
  };
}

function round(v, digits = 2) {
  return Math.round(v * 10 ** digits) / 10 ** digits;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runCore();
  console.log(`saved ${saveResult('core', r)}`);
}

// Core benchmark (issue: core platform). In one run:
//  (a) cold start: the first request to each of 60 never-invoked functions, end to end through the gateway;
//  (b) warm hello world through the gateway under autocannon -c 50, beside the same handler in a bare
//      node:http server measured in the same run, and their ratio.
// (a) and (b) run twice: on the default SQLite store and on PostgreSQL (a fresh schema on
// NIMBUS_BENCH_POSTGRES, default 127.0.0.1:5432/test; skipped when none answers).
// Figures, not pass/fail: absolute numbers drift on a shared 2-core machine, the ratio is what compares.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  BIN,
  ROOT,
  autocannon,
  machine,
  percentile,
  saveResult,
  sleep,
  startJsonProcess,
  stop,
} from './lib.mjs';

const COLD_FUNCTIONS = Number(process.env.BENCH_COLD_FUNCTIONS ?? 60);
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
// Cold requests are paced so the stem-cell pool refills between them, as it would between real arrivals.
const COLD_GAP_MS = Number(process.env.BENCH_COLD_GAP_MS ?? 150);
// BENCH_COLD_NETWORK=none deploys the cold functions with `network: none` (no slirp4netns per stem cell).
const COLD_NETWORK = process.env.BENCH_COLD_NETWORK;

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
  const result = { machine: machine(), date: new Date().toISOString() };
  const sqlite = await measureNimbus(env, fns, coldDir);
  Object.assign(result, { sandbox: sqlite.sandbox, cold: sqlite.cold, nimbus: sqlite.warm });

  // The same measurements on PostgreSQL, in the same run, so the two stores compare on one machine state.
  const pgUrl = await benchPostgres();
  if (pgUrl) {
    const pgEnv = { ...env, NIMBUS_DATA: join(work, 'data-pg'), NIMBUS_STORE: pgUrl.url };
    try {
      const pg = await measureNimbus(pgEnv, fns, coldDir, 'postgresql');
      result.postgresql = { cold: pg.cold, nimbus: pg.warm };
    } finally {
      await pgUrl.drop();
    }
  } else {
    console.log('postgresql: skipped (nothing answered at NIMBUS_BENCH_POSTGRES or 127.0.0.1:5432/test)');
  }

  // Start to first response: a fresh `nimbus up` over the same data (functions already deployed), spawn to
  // the first 200 from a function, polled every 10 ms, as the peers benchmark measures workerd.
  {
    const t0 = performance.now();
    const again = await startJsonProcess(
      process.execPath,
      [BIN, 'up', '--port', '0', '--api-port', '0', '--json'],
      {
        env,
      },
    );
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
  const bare = await startJsonProcess(process.execPath, [join(ROOT, 'bench', 'bare-server.mjs')]);
  try {
    const url = `http://127.0.0.1:${bare.info.port}/`;
    autocannon(url, { connections: CONNECTIONS, duration: 3 });
    result.bare = autocannon(url, { connections: CONNECTIONS, duration: DURATION });
    console.log(
      `bare node:http: ${result.bare.reqPerSec} req/s, p50 ${result.bare.p50} ms, p99 ${result.bare.p99} ms`,
    );
  } finally {
    await stop(bare.proc);
  }
  result.warmRatio = round(result.nimbus.reqPerSec / result.bare.reqPerSec, 3);
  console.log(`warm ratio nimbus/bare: ${result.warmRatio}`);
  if (result.postgresql) {
    result.postgresql.warmRatio = round(result.postgresql.nimbus.reqPerSec / result.bare.reqPerSec, 3);
    console.log(`warm ratio nimbus on postgresql/bare: ${result.postgresql.warmRatio}`);
  }
  rmSync(work, { recursive: true, force: true });
  return result;
}

/** Starts a Nimbus with env, deploys hello and the cold functions, and measures cold starts and warm req/s. */
async function measureNimbus(env, fns, coldDir, label = 'sqlite') {
  const nimbus = await startJsonProcess(
    process.execPath,
    [BIN, 'up', '--port', '0', '--api-port', '0', '--json'],
    { env },
  );
  const out = { sandbox: nimbus.info.sandboxLevel };
  try {
    const deploy = (dir) => execFileSync(process.execPath, [BIN, 'deploy', dir], { env, stdio: 'ignore' });
    deploy(join(ROOT, 'bench', 'fixtures', 'hello'));
    deploy(coldDir);
    await sleep(1000);

    // (a) cold starts. The platform is warmed first (the gateway, the client's connection, the JIT of the
    // request path) with requests to another function: what is measured is a function's cold start, not
    // the first request a freshly started Nimbus process ever handles.
    for (let i = 0; i < 50; i++) await (await fetch(`${nimbus.info.gatewayUrl}/bench/hello`)).text();
    const cold = [];
    for (const f of fns) {
      await sleep(COLD_GAP_MS);
      const t0 = performance.now();
      const res = await fetch(`${nimbus.info.gatewayUrl}/${f}`);
      await res.text();
      cold.push(performance.now() - t0);
      if (res.status !== 200) throw new Error(`cold request to ${f} answered ${res.status}`);
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
      warmSequentialP50: round(percentile(warmSingle, 50)),
    };
    console.log(
      `[${label}] cold start (first request to ${fns.length} functions, end to end): p50 ${out.cold.p50} ms, p99 ${out.cold.p99} ms; a warm request: p50 ${out.cold.warmSequentialP50} ms`,
    );

    // (b) warm throughput, same autocannon settings as the bare baseline.
    const url = `${nimbus.info.gatewayUrl}/bench/hello`;
    autocannon(url, { connections: CONNECTIONS, duration: 3 }); // warm-up: scale out to -c instances
    out.warm = autocannon(url, { connections: CONNECTIONS, duration: DURATION });
    console.log(
      `[${label}] nimbus warm: ${out.warm.reqPerSec} req/s, p50 ${out.warm.p50} ms, p99 ${out.warm.p99} ms, non-2xx ${out.warm.non2xx}`,
    );
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

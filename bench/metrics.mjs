// Metrics benchmark (issue: see and pay, Metrics): what the Prometheus metrics cost on the warm path. Warm hello
// world through the gateway under autocannon -c 50, on a Nimbus with metrics on and one with NIMBUS_METRICS=off,
// in the same run and interleaved (on, off, off, on, ...) so that drift on a shared machine falls on both alike.
// Also one scrape of /metrics after the load: its size and how long it took. Figures, not pass/fail.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, autocannon, machine, saveResult, sleep, startJsonProcess, stop } from './lib.mjs';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** Pairs of runs; each pair measures both settings, the order flipping from pair to pair. */
const PAIRS = Number(process.env.BENCH_METRICS_PAIRS ?? 2);

export async function runMetrics() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-metrics-'));
  const result = { machine: machine(), date: new Date().toISOString(), connections: CONNECTIONS };
  const runs = { on: [], off: [] };
  try {
    const nodes = {};
    for (const setting of ['on', 'off']) nodes[setting] = await startNode(work, setting);
    try {
      for (let pair = 0; pair < PAIRS; pair++) {
        const order = pair % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
        for (const setting of order) {
          const r = autocannon(nodes[setting].url, { connections: CONNECTIONS, duration: DURATION });
          runs[setting].push(r);
          console.log(
            `[metrics ${setting}] warm: ${r.reqPerSec} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, non-2xx ${r.non2xx}`,
          );
        }
      }
      result.scrape = await scrape(nodes.on);
    } finally {
      for (const n of Object.values(nodes)) await stop(n.proc);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const mean = (rs, k) => Math.round(rs.reduce((s, r) => s + r[k], 0) / rs.length);
  result.on = { reqPerSec: mean(runs.on, 'reqPerSec'), p50: mean(runs.on, 'p50'), runs: runs.on };
  result.off = { reqPerSec: mean(runs.off, 'reqPerSec'), p50: mean(runs.off, 'p50'), runs: runs.off };
  result.costPercent = Math.round((1 - result.on.reqPerSec / result.off.reqPerSec) * 1000) / 10;
  result.hotPath = await hotPathCost();
  // The gateway's event loop is what saturates: each request has about 1/reqPerSec s of it.
  result.hotPath.percentOfRequest =
    Math.round(((result.hotPath.nsPerRequest * result.off.reqPerSec) / 1e9) * 1000) / 10;
  console.log(
    `metrics work per warm request, measured alone: ${result.hotPath.nsPerRequest} ns (sink + gateway counter), ${result.hotPath.percentOfRequest} % of a request at ${result.off.reqPerSec} req/s`,
  );
  console.log(
    `metrics cost on warm gateway throughput: ${result.costPercent} % (on ${result.on.reqPerSec} req/s, off ${result.off.reqPerSec} req/s, mean of ${PAIRS} runs each)`,
  );
  console.log(`one scrape after the load: ${result.scrape.bytes} bytes in ${result.scrape.ms} ms`);
  return result;
}

/** A Nimbus with hello deployed and warmed up (its instances scaled out to -c). */
async function startNode(work, setting) {
  const env = {
    ...process.env,
    NIMBUS_DATA: join(work, `data-${setting}`),
    NIMBUS_LOG_LEVEL: 'warn',
    NIMBUS_MAX_CONCURRENCY: '200',
    NIMBUS_METRICS: setting,
  };
  const n = await startJsonProcess(
    process.execPath,
    [BIN, 'up', '--port', '0', '--api-port', '0', '--json'],
    {
      env,
    },
  );
  execFileSync(process.execPath, [BIN, 'deploy', join(ROOT, 'bench', 'fixtures', 'hello')], {
    env,
    stdio: 'ignore',
  });
  await sleep(1000);
  const url = `${n.info.gatewayUrl}/bench/hello`;
  autocannon(url, { connections: CONNECTIONS, duration: 3 });
  return { proc: n.proc, url, apiUrl: n.info.apiUrl, key: readFileSync(n.info.keyFile, 'utf8').trim() };
}

/**
 * What metrics add to one warm HTTP invocation, timed in this process with nothing else on the event loop:
 * the invocation sink's write of an ok record and the gateway's request counter. Less noisy than the
 * throughput difference on a shared machine, which it bounds from below.
 */
async function hotPathCost() {
  const { Metrics } = await import('../dist/observability/metrics.js');
  const m = new Metrics('sqlite');
  const rec = {
    requestId: 'r',
    project: 'default',
    functionName: 'benchhello',
    version: '1',
    trigger: 'http',
    attempt: 1,
    start: Date.now(),
    durationMs: 0.4,
    billedMs: 1,
    memoryMB: 128,
    maxRssBytes: 0,
    cold: false,
    initMs: null,
    status: 'ok',
    errorType: null,
    errorMessage: null,
    logs: '',
  };
  const match = { route: {}, routeKey: 'GET /bench/hello' };
  const N = 1_000_000;
  const round = () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      m.write(rec);
      m.request(match, 200);
    }
    return Number(process.hrtime.bigint() - t0) / N;
  };
  round(); // JIT warm-up
  const ns = Math.min(round(), round(), round());
  return { nsPerRequest: Math.round(ns) };
}

async function scrape(node) {
  const t0 = performance.now();
  const res = await fetch(`${node.apiUrl}/metrics`, { headers: { authorization: `Bearer ${node.key}` } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${body}`);
  return { ms: Math.round((performance.now() - t0) * 10) / 10, bytes: body.length };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runMetrics();
  console.log(`saved ${saveResult('metrics', r)}`);
}

// Tracing benchmark (issue: see and pay, Traces): what OpenTelemetry tracing costs on the warm path. Warm hello
// world through the gateway under autocannon -c 50, on three Nimbus nodes in the same run: tracing off
// (NIMBUS_TRACES=off, no OTLP endpoint), on with 10 % of traces sampled, and on with every trace sampled; "on"
// keeps spans in the local store and exports them over OTLP/HTTP to a receiver in its own process. Runs are
// interleaved (the order rotates each round) so that drift on a shared machine falls on all three alike.
// Figures, not pass/fail.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, autocannon, machine, saveResult, sleep, startJsonProcess, stop } from './lib.mjs';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** Rounds; each measures every setting once, the order rotating from round to round. */
const ROUNDS = Number(process.env.BENCH_TRACING_ROUNDS ?? 2);
const SETTINGS = ['off', 'sampled10', 'sampled100'];

export async function runTracing() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-tracing-'));
  const result = { machine: machine(), date: new Date().toISOString(), connections: CONNECTIONS };
  const runs = Object.fromEntries(SETTINGS.map((s) => [s, []]));
  const sink = await startJsonProcess(process.execPath, [join(ROOT, 'bench', 'otlp-sink.mjs')]);
  try {
    const nodes = {};
    for (const s of SETTINGS) nodes[s] = await startNode(work, s, sink.info.url);
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const order = SETTINGS.map((_, i) => SETTINGS[(i + round) % SETTINGS.length]);
        for (const s of order) {
          const cpu0 = cpuMs(nodes[s].proc.pid);
          const r = autocannon(nodes[s].url, { connections: CONNECTIONS, duration: DURATION });
          // CPU the Nimbus process spent per answered request: less swayed by a busy machine than req/s.
          r.cpuUsPerRequest = Math.round(((cpuMs(nodes[s].proc.pid) - cpu0) * 1000) / Math.max(1, r.total));
          runs[s].push(r);
          console.log(
            `[tracing ${s}] warm: ${r.reqPerSec} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, non-2xx ${r.non2xx}, ${r.cpuUsPerRequest} µs CPU/request`,
          );
        }
      }
    } finally {
      for (const n of Object.values(nodes)) await stop(n.proc);
    }
    result.exportedSpans = (await (await fetch(`${sink.info.url}/count`)).json()).spans;
  } finally {
    await stop(sink.proc);
    rmSync(work, { recursive: true, force: true });
  }
  const mean = (rs, k) => Math.round(rs.reduce((s, r) => s + r[k], 0) / rs.length);
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const s of SETTINGS)
    result[s] = { reqPerSec: mean(runs[s], 'reqPerSec'), p50: mean(runs[s], 'p50'), runs: runs[s] };
  const cost = (s) => Math.round((1 - result[s].reqPerSec / result.off.reqPerSec) * 1000) / 10;
  result.costPercent = { sampled10: cost('sampled10'), sampled100: cost('sampled100') };
  const cpu = Object.fromEntries(SETTINGS.map((s) => [s, median(runs[s].map((r) => r.cpuUsPerRequest))]));
  const cpuCost = (s) => Math.round((cpu[s] / cpu.off - 1) * 1000) / 10;
  result.cpuUsPerRequest = cpu;
  result.cpuCostPercent = { sampled10: cpuCost('sampled10'), sampled100: cpuCost('sampled100') };
  result.hotPath = {
    unsampledNs: await hotPathCost('always_off'),
    sampledNs: await hotPathCost('always_on'),
  };
  console.log(
    `tracing work per warm request, measured alone (spans made and ended, not exported): ${result.hotPath.unsampledNs} ns unsampled, ${result.hotPath.sampledNs} ns sampled`,
  );
  console.log(
    `tracing cost on warm gateway throughput: ${result.costPercent.sampled10} % at 10 % sampling, ${result.costPercent.sampled100} % at 100 % (off ${result.off.reqPerSec} req/s, 10 % ${result.sampled10.reqPerSec} req/s, 100 % ${result.sampled100.reqPerSec} req/s, mean of ${ROUNDS} runs each); ${result.exportedSpans} spans reached the OTLP receiver`,
  );
  console.log(
    `tracing cost in CPU per warm request (median of ${ROUNDS}): ${result.cpuCostPercent.sampled10} % at 10 % sampling, ${result.cpuCostPercent.sampled100} % at 100 % (off ${cpu.off} µs, 10 % ${cpu.sampled10} µs, 100 % ${cpu.sampled100} µs)`,
  );
  return result;
}

/** User and system CPU time of a process so far, ms (Linux /proc; clock ticks of 10 ms). */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A Nimbus with hello deployed and warmed up (its instances scaled out to -c). */
async function startNode(work, setting, otlpUrl) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
  Object.assign(env, {
    NIMBUS_DATA: join(work, `data-${setting}`),
    NIMBUS_LOG_LEVEL: 'warn',
    NIMBUS_MAX_CONCURRENCY: '200',
  });
  if (setting === 'off') env.NIMBUS_TRACES = 'off';
  else {
    Object.assign(env, {
      NIMBUS_TRACES: 'on',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: setting === 'sampled10' ? '0.1' : '1',
    });
  }
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
  return { proc: n.proc, url };
}

/**
 * What tracing adds to one warm HTTP invocation, timed in this process: the gateway's span, the invocation's
 * span with its headers, the warm admission and both ends; the batch export is left out (a store whose write
 * does nothing). Less noisy than the throughput difference on a shared machine.
 */
async function hotPathCost(sampler) {
  process.env.OTEL_TRACES_SAMPLER = sampler;
  const { Tracing } = await import('../dist/observability/tracing.js');
  const t = new Tracing({ otlp: false, store: { write: async () => {} } });
  delete process.env.OTEL_TRACES_SAMPLER;
  const headers = { host: 'localhost' };
  const route = { routeKey: 'GET /bench/hello', functionName: 'benchhello' };
  const outcome = {
    version: '1',
    status: 'ok',
    cold: false,
    record: { memoryMB: 128, billedMs: 1, initMs: null },
  };
  const N = 100_000;
  const round = async () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      const r = t.request(headers, 'GET', '/bench/hello', '127.0.0.1');
      const inv = t.invocation(
        { fn: { project: 'default', name: 'benchhello' }, trigger: 'http', parent: r.parent },
        'r',
      );
      inv.admitted('warm', performance.now());
      inv.end(outcome);
      r.end('default', route, 200);
    }
    const ns = Number(process.hrtime.bigint() - t0) / N;
    // Lets the batch processor drain, so a full queue's drops do not flatter the figure.
    await t.flushLocal();
    return ns;
  };
  await round(); // JIT warm-up
  const ns = Math.min(await round(), await round(), await round());
  await t.stop();
  return Math.round(ns);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runTracing();
  console.log(`saved ${saveResult('tracing', r)}`);
}

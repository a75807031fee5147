// The gateway while a large service deploys: requests to a warm function are sent back to back, four at a
// time, before and during a 15 MB deploy, and their latencies compared. A deploy that unpacks on the event
// loop shows as a p99 (and max) the size of the unpack; one that does not leaves the p99 near the baseline.
// `node bench/deploy-stall.mjs [path/to/bin/nimbus.js]` measures another checkout's build (e.g. main's) too.
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, machine, percentile, saveResult, sleep, startJsonProcess, stop } from './lib.mjs';

const WORKERS = 4;
const MB = Number(process.env.BENCH_DEPLOY_MB ?? 15);

function service(dir, files) {
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

/** Sends GETs back to back from WORKERS loops until stopped; every latency with its start time. */
function load(url) {
  const samples = [];
  let running = true;
  const worker = async () => {
    while (running) {
      const t0 = performance.now();
      const res = await fetch(url);
      await res.arrayBuffer();
      samples.push({ at: t0, ms: performance.now() - t0, status: res.status });
    }
  };
  const done = Promise.all(Array.from({ length: WORKERS }, worker));
  return {
    samples,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

function figures(samples) {
  const ms = samples.map((s) => s.ms);
  return {
    requests: ms.length,
    p50: +percentile(ms, 50).toFixed(2),
    p99: +percentile(ms, 99).toFixed(2),
    max: +Math.max(...ms).toFixed(2),
    non200: samples.filter((s) => s.status !== 200).length,
  };
}

export async function runDeployStall(bin = BIN) {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-stall-'));
  const ping = service(join(work, 'ping'), {
    'nimbus.yaml':
      'service: ping\nfunctions:\n  ping:\n    handler: index.handler\n    events:\n      - http: GET /ping\n',
    'index.js': "exports.handler = async () => ({ statusCode: 200, body: 'pong' });\n",
  });
  // Incompressible, in many files, as node_modules are: 15 MB compressed and uncompressed.
  const files = { 'nimbus.yaml': 'service: big\nfunctions:\n  big:\n    handler: index.handler\n' };
  files['index.js'] = 'exports.handler = async () => 1;\n';
  for (let i = 0; i < MB * 8; i++) files[`node_modules/blob/part-${i}.bin`] = randomBytes(128 * 1024);
  const big = service(join(work, 'big'), files);

  const env = { ...process.env, NIMBUS_DATA: join(work, 'data'), NIMBUS_LOG_LEVEL: 'warn' };
  const nimbus = await startJsonProcess(
    process.execPath,
    [bin, 'up', '--port', '0', '--api-port', '0', '--json'],
    {
      env,
    },
  );
  const result = { machine: machine(), date: new Date().toISOString(), bin, deployMB: MB };
  try {
    execFileSync(process.execPath, [bin, 'deploy', ping], { env, stdio: 'ignore' });
    const url = `${nimbus.info.gatewayUrl}/ping`;
    for (let i = 0; i < 50; i++) await (await fetch(url)).arrayBuffer();

    const baseline = load(url);
    await sleep(3000);
    await baseline.stop();

    const during = load(url);
    await sleep(200);
    const t0 = performance.now();
    // The deploy runs in its own process (the CLI), as a user's would: packaging does not load this one.
    await new Promise((resolve, reject) => {
      import('node:child_process').then(({ execFile }) =>
        execFile(process.execPath, [bin, 'deploy', big], { env }, (err) => (err ? reject(err) : resolve())),
      );
    });
    const t1 = performance.now();
    await during.stop();
    // Packaging (in the CLI) comes first; what the server does is in the window, so all of it counts.
    const inWindow = during.samples.filter((s) => s.at >= t0 && s.at <= t1);
    result.deployMs = Math.round(t1 - t0);
    result.baseline = figures(baseline.samples);
    result.duringDeploy = figures(inWindow);
  } finally {
    await stop(nimbus.proc);
    rmSync(work, { recursive: true, force: true });
  }
  console.log(
    `gateway during a ${MB} MB deploy (${result.deployMs} ms): p50 ${result.duringDeploy.p50} ms, p99 ${result.duringDeploy.p99} ms, max ${result.duringDeploy.max} ms` +
      ` (baseline p50 ${result.baseline.p50} ms, p99 ${result.baseline.p99} ms, max ${result.baseline.max} ms)`,
  );
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bin = process.argv[2] ?? BIN;
  const r = await runDeployStall(bin);
  console.log(`saved ${saveResult(bin === BIN ? 'deploy-stall' : 'deploy-stall-other', r)}`);
}

// CPU of a stem cell's first real invocation (BENCH_ONLY=coldcpu): the runtime driven directly over its channel,
// as the host drives it, with the time each process spent on a CPU read from /proc/<pid>/task/*/schedstat
// (nanoseconds, all threads) around the first invocation, after the same 150 ms idle as a pooled stem cell.
// CPU time, not wall time: the machine is shared, and another process's work does not count against it.
// Interleaved in one run, one cell of each variant per round:
//   baseline       the runtime of another build (BENCH_BASELINE_RUNTIME, default /work/main's dist), no entry
//   rehearsed      this build's runtime (which rehearses before ready), finding the handler itself
//   entry          the same, with the entry the host resolves (FunctionInit.entry)
//   esm baseline   an ES module hello world (.mjs) on the other build's runtime
//   esm entry      the same on this build's runtime, with the entry
//   bundle         a 1.3 MB esbuild bundle with client-dynamodb and lib-dynamodb, entry given, no code cache
//   bundle+cache   the same with the V8 code cache a deploy check would have produced
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { ROOT, machine, percentile, saveResult, sleep } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_COLD_CPU_ROUNDS ?? 15);
const BASELINE = process.env.BENCH_BASELINE_RUNTIME ?? '/work/main/dist/runtime/bootstrap.cjs';
const NODE_ARGS = [
  '--max-old-space-size=108',
  '--enable-source-maps',
  '--disable-warning=ExperimentalWarning',
];

const { HostChannel } = await import(join(ROOT, 'dist', 'sandbox', 'channel.js'));
const { resolveEntry, scanTree } = await import(join(ROOT, 'dist', 'sandbox', 'code-tree.js'));

function cpuNs(pid) {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
  }
  return ns;
}

function cell(runtime) {
  const proc = spawn(process.execPath, [...NODE_ARGS, runtime], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH },
  });
  const waiting = [];
  const messages = [];
  const channel = new HostChannel(proc.stdio[3], (m) => {
    messages.push(m);
    for (const w of waiting.splice(0)) w();
  });
  const waitFor = (pred) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`timed out: ${JSON.stringify(messages).slice(0, 500)}`)),
        30_000,
      );
      const check = () => {
        const m = messages.find(pred);
        if (m) {
          clearTimeout(t);
          resolve(m);
        } else waiting.push(check);
      };
      check();
    });
  return { proc, channel, waitFor };
}

function init(handler, codeDir, extra = {}) {
  return {
    functionName: 'bench',
    functionVersion: '1',
    handler,
    codeDir,
    memoryMB: 128,
    timeoutSec: 10,
    region: 'us-east-1',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:bench',
    logGroupName: '/aws/lambda/bench',
    logStreamName: 'x',
    env: { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y' },
    ...extra,
  };
}

/** One cold start: boot, idle 150 ms, then the CPU and wall time of the first invocation. */
async function once(runtime, fi) {
  const c = cell(runtime);
  try {
    await c.waitFor((m) => m.t === 'ready');
    await sleep(150);
    const before = cpuNs(c.proc.pid);
    const t0 = performance.now();
    c.channel.sendNow({
      t: 'invoke',
      id: 'first',
      event: {},
      deadline: Date.now() + 10_000,
      timeoutMs: 10_000,
      init: fi,
    });
    const r = await c.waitFor((m) => m.t === 'result' && m.id === 'first');
    const wall = performance.now() - t0;
    const cpu = (cpuNs(c.proc.pid) - before) / 1e6;
    if (!r.ok) throw new Error(`first invocation failed: ${JSON.stringify(r.error)}`);
    return { cpu, wall, initMs: r.initMs, codeCache: r.codeCache };
  } finally {
    c.proc.kill('SIGKILL');
  }
}

async function produceCache(runtime, fi) {
  const c = cell(runtime);
  try {
    await c.waitFor((m) => m.t === 'ready');
    c.channel.sendNow({
      t: 'invoke',
      id: 'check',
      event: null,
      deadline: 0,
      warmup: true,
      init: { ...fi, produceCodeCache: true },
    });
    return (await c.waitFor((m) => m.t === 'codecache')).data;
  } finally {
    c.proc.kill('SIGKILL');
  }
}

export async function runColdCpu() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-coldcpu-'));
  const runtime = join(ROOT, 'dist', 'runtime', 'bootstrap.cjs');
  const hello = join(work, 'hello');
  mkdirSync(hello);
  writeFileSync(join(hello, 'handler.js'), "exports.handler = async () => ({ message: 'hello world' });\n");
  const sdk = join(work, 'sdk');
  mkdirSync(sdk);
  await build({
    stdin: {
      contents: `const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const { DynamoDBDocumentClient, GetCommand } = require('@aws-sdk/lib-dynamodb');
const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ maxAttempts: 1 }));
exports.handler = async () => ({ ok: typeof doc.send, get: typeof GetCommand });
`,
      resolveDir: ROOT,
      loader: 'js',
    },
    outfile: join(sdk, 'bundle.js'),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'error',
  });
  const esm = join(work, 'esm');
  mkdirSync(esm);
  writeFileSync(
    join(esm, 'handler.mjs'),
    "export const handler = async () => ({ message: 'hello world' });\n",
  );
  const helloEntry = resolveEntry(scanTree(hello), 'handler.handler', hello);
  const esmEntry = resolveEntry(scanTree(esm), 'handler.handler', esm);
  const sdkEntry = resolveEntry(scanTree(sdk), 'bundle.handler', sdk);
  const sdkInit = init('bundle.handler', sdk, { entry: sdkEntry });
  const cache = await produceCache(runtime, sdkInit);
  const variants = {
    ...(existsSync(BASELINE) ? { baseline: () => once(BASELINE, init('handler.handler', hello)) } : {}),
    rehearsed: () => once(runtime, init('handler.handler', hello)),
    entry: () => once(runtime, init('handler.handler', hello, { entry: helloEntry })),
    ...(existsSync(BASELINE) ? { 'esm baseline': () => once(BASELINE, init('handler.handler', esm)) } : {}),
    'esm entry': () => once(runtime, init('handler.handler', esm, { entry: esmEntry })),
    bundle: () => once(runtime, sdkInit),
    'bundle+cache': () => once(runtime, { ...sdkInit, codeCache: cache }),
  };
  const got = Object.fromEntries(Object.keys(variants).map((v) => [v, []]));
  for (let i = 0; i < ROUNDS; i++) for (const [v, run] of Object.entries(variants)) got[v].push(await run());
  const result = {
    machine: machine(),
    date: new Date().toISOString(),
    rounds: ROUNDS,
    baselineRuntime: existsSync(BASELINE) ? BASELINE : null,
    bundleBytes: readFileSync(join(sdk, 'bundle.js')).length,
    cacheBytes: Buffer.from(cache, 'base64').length,
    variants: {},
  };
  for (const [v, rs] of Object.entries(got)) {
    const f = (k) => rs.map((r) => r[k]).filter((x) => typeof x === 'number');
    result.variants[v] = {
      cpuP50: round(percentile(f('cpu'), 50)),
      cpuMin: round(Math.min(...f('cpu'))),
      wallP50: round(percentile(f('wall'), 50)),
      initP50: round(percentile(f('initMs'), 50)),
      codeCache: [...new Set(rs.map((r) => r.codeCache ?? 'none'))].join(','),
    };
    const x = result.variants[v];
    console.log(
      `[coldcpu] ${v.padEnd(13)} first invocation CPU p50 ${x.cpuP50} ms (min ${x.cpuMin}), wall p50 ${x.wallP50} ms, init p50 ${x.initP50} ms, cache ${x.codeCache}`,
    );
  }
  rmSync(work, { recursive: true, force: true });
  console.log(`saved ${saveResult('coldcpu', result)}`);
  return result;
}

function round(x) {
  return Math.round(x * 100) / 100;
}

if (import.meta.url === `file://${process.argv[1]}`) await runColdCpu();

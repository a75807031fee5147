// DynamoDB API benchmark (issue: DynamoDB-compatible API). In one run, with one client for every target
// (@aws-sdk/client-dynamodb, keep-alive agent, maxAttempts 1) in a process of its own (bench/dynamodb-load.mjs):
//  PutItem (new items), GetItem (an existing item) and Query (a partition of 100 items, Limit 100) at
//  BENCH_DYNAMO_CONCURRENCY (16) in flight: ops/s, p50, p99; then one in flight: p50, p99; then each of them
//  again without the SDK (requests it signed, replayed over node:http), which leaves HTTP and the server;
// against
//  - floor: a bare node:http server answering canned DynamoDB responses (what the client and HTTP cost alone),
//  - dynalite (npm `dynalite`, in memory, its default; BENCH_DYNAMO_TARGETS=...,dynalite-disk adds LevelDB),
//  - Nimbus on SQLite, and on PostgreSQL (a fresh schema bench_dynamo_<pid> on NIMBUS_BENCH_POSTGRES, default
//    127.0.0.1:5432/test, dropped afterwards; skipped when nothing answers there).
// All targets stay up and are measured in turns, operation by operation. The server's CPU per operation
// comes from /proc/<pid>/stat around each measurement.
// Figures, not pass/fail: absolute numbers drift on a shared 2-core machine; compare within one run.
//
// `node bench/dynamodb.mjs --profile [seconds] [operation]` instead runs Nimbus on SQLite under
// `node --cpu-prof` with one operation's load only (GetItem by default), and prints where its CPU time goes:
// by stage of the request, and self and inclusive time per function and per file.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, machine, saveResult, sleep, startJsonProcess, stop } from './lib.mjs';
import { benchPostgres } from './core.mjs';

const SETTINGS = {
  concurrency: Number(process.env.BENCH_DYNAMO_CONCURRENCY ?? 16),
  seconds: Number(process.env.BENCH_DYNAMO_SECONDS ?? 2.5),
  sequentialSeconds: Number(process.env.BENCH_DYNAMO_SEQUENTIAL_SECONDS ?? 1.25),
  rawSeconds: Number(process.env.BENCH_DYNAMO_RAW_SECONDS ?? 2),
  warmupSeconds: Number(process.env.BENCH_DYNAMO_WARMUP_SECONDS ?? 1),
  partitions: 20,
  itemsPerPartition: 100,
};
const TARGETS = (process.env.BENCH_DYNAMO_TARGETS ?? 'floor,dynalite,sqlite,postgresql').split(',');
const OPS = ['PutItem', 'GetItem', 'Query'];
const OP_TITLE = { PutItem: 'PutItem', GetItem: 'GetItem', Query: 'Query (100 items)' };
/** Table rows: each operation through the SDK, then its signed requests replayed without it. */
const ROWS = [
  ...OPS.map((op) => [OP_TITLE[op], op, 'sdk']),
  ...OPS.map((op) => [`${OP_TITLE[op].split(' ')[0]}, no SDK`, op, 'raw']),
];
const TITLE = {
  floor: 'floor (canned)',
  dynalite: 'dynalite (memory)',
  'dynalite-disk': 'dynalite (LevelDB)',
  sqlite: 'Nimbus, SQLite',
  postgresql: 'Nimbus, PostgreSQL',
};

/** The load generator for one target, as a child process taking one command at a time. */
function loadClient(label, target, extra = {}) {
  const cfg = { ...SETTINGS, label, ...target, ...extra };
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'dynamodb-load.mjs'), JSON.stringify(cfg)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  const waiting = [];
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    out += d;
    for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
      const msg = JSON.parse(out.slice(0, nl));
      out = out.slice(nl + 1);
      const w = waiting.shift();
      if (msg.error) w?.reject(new Error(`load generator for ${label}: ${msg.error}`));
      else w?.resolve(msg);
    }
  });
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`load generator for ${label} exited with ${code}`));
  });
  return {
    send: (cmd) =>
      new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        child.stdin.write(`${JSON.stringify(cmd)}\n`);
      }),
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', resolve);
        child.stdin.write(`${JSON.stringify({ cmd: 'exit' })}\n`);
      }),
  };
}

async function startNimbus(work, name, store, nodeArgs = []) {
  const env = {
    ...process.env,
    NIMBUS_DATA: join(work, name),
    NIMBUS_LOG_LEVEL: 'warn',
    ...(store ? { NIMBUS_STORE: store } : {}),
  };
  const main = nodeArgs.length ? join(ROOT, 'dist', 'cli', 'main.js') : BIN;
  const nimbus = await startJsonProcess(
    process.execPath,
    [...nodeArgs, main, 'up', '--port', '0', '--api-port', '0', '--json'],
    { env },
  );
  return {
    proc: nimbus.proc,
    target: {
      endpoint: nimbus.info.apiUrl,
      accessKeyId: 'nimbus',
      secretAccessKey: readFileSync(join(work, name, 'api-key'), 'utf8').trim(),
      serverPid: nimbus.proc.pid,
    },
  };
}

async function startPlain(script, args = []) {
  const s = await startJsonProcess(process.execPath, [join(ROOT, 'bench', script), ...args]);
  return {
    proc: s.proc,
    target: {
      endpoint: `http://127.0.0.1:${s.info.port}`,
      accessKeyId: 'bench',
      secretAccessKey: 'bench',
      serverPid: s.proc.pid,
    },
  };
}

export async function runDynamo() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-dynamo-'));
  const result = {
    machine: machine(),
    date: new Date().toISOString(),
    settings: { ...SETTINGS, client: '@aws-sdk/client-dynamodb, keep-alive agent, maxAttempts 1' },
    dynaliteVersion: JSON.parse(readFileSync(join(ROOT, 'node_modules', 'dynalite', 'package.json'), 'utf8'))
      .version,
    build: buildInfo(),
    // The machine is shared: its 1-minute load average before and after says whether a run was quiet.
    loadAverage: { before: loadavg()[0] },
    targets: {},
  };
  console.log(
    `DynamoDB API: PutItem, GetItem, Query through @aws-sdk/client-dynamodb at ${SETTINGS.concurrency} in flight (${SETTINGS.seconds} s each after ${SETTINGS.warmupSeconds} s of warm-up) and at 1 in flight (${SETTINGS.sequentialSeconds} s); then their signed requests without the SDK (${SETTINGS.rawSeconds} s, ${SETTINGS.sequentialSeconds} s)`,
  );
  // Every target is up for the whole run and they are measured in turns, operation by operation (each
  // operation starting from another target), so a change in the machine's load spreads over all of them.
  const up = [];
  let pg;
  try {
    for (const name of TARGETS) {
      let server;
      if (name === 'floor') server = await startPlain('dynamodb-floor-server.mjs');
      else if (name === 'dynalite') server = await startPlain('dynalite-server.mjs');
      else if (name === 'dynalite-disk')
        server = await startPlain('dynalite-server.mjs', [join(work, 'leveldb')]);
      else if (name === 'sqlite') server = await startNimbus(work, 'data-sqlite');
      else if (name === 'postgresql') {
        pg = await benchPostgres(`bench_dynamo_${process.pid}`);
        if (!pg) {
          console.log(
            'postgresql: skipped (nothing answered at NIMBUS_BENCH_POSTGRES or 127.0.0.1:5432/test)',
          );
          continue;
        }
        server = await startNimbus(work, 'data-pg', pg.url);
      } else throw new Error(`unknown target ${name}`);
      up.push({ name, server, load: loadClient(name, server.target) });
    }
    await sleep(1000); // let the servers settle after their start before measuring
    for (const t of up) {
      result.targets[t.name] = {
        setUpSeconds: (await t.load.send({ cmd: 'setup' })).setUpSeconds,
        operations: {},
      };
    }
    for (const [i, op] of OPS.entries()) {
      for (const t of [...up.slice(i % up.length), ...up.slice(0, i % up.length)]) {
        result.targets[t.name].operations[op] = await t.load.send({ cmd: 'op', name: op });
      }
    }
  } finally {
    for (const t of up) {
      await t.load.close();
      await stop(t.server.proc);
    }
    await pg?.drop();
    rmSync(work, { recursive: true, force: true });
  }
  result.loadAverage.after = loadavg()[0];
  printTable(result);
  console.log(
    `\nmachine load average (1 min) before / after: ${result.loadAverage.before.toFixed(2)} / ${result.loadAverage.after.toFixed(2)} on ${result.machine.cpus} cores (the benchmark itself keeps about 2 busy)`,
  );
  return result;
}

function printTable(result) {
  const names = TARGETS.filter((n) => result.targets[n]);
  const pad = (s, n) => String(s).padEnd(n);
  const col = 26;
  const header = `  ${pad('', 19)}${names.map((n) => pad(TITLE[n], col)).join('')}`;
  const table = (title, cell) => {
    console.log(`\n${title}`);
    console.log(header);
    for (const [label, op, via] of ROWS) {
      const cells = names.map((n) => result.targets[n].operations[op]?.[via]);
      if (cells.every((c) => !c)) continue;
      console.log(`  ${pad(label, 19)}${cells.map((c) => pad(c ? cell(c) : '-', col)).join('')}`);
    }
  };
  table(
    `at ${SETTINGS.concurrency} in flight: ops/s  p50 / p99 ms`,
    (m) => `${m.concurrent.opsPerSec}  ${m.concurrent.p50} / ${m.concurrent.p99}`,
  );
  table('one in flight: p50 / p99 ms', (m) => `${m.sequential.p50} / ${m.sequential.p99}`);
  table(
    `CPU per operation at ${SETTINGS.concurrency} in flight, µs: server / client`,
    (m) => `${m.concurrent.serverCpuUsPerOp ?? '-'} / ${m.concurrent.clientCpuUsPerOp}`,
  );
  for (const n of names) {
    for (const [label, op, via] of ROWS) {
      const m = result.targets[n].operations[op]?.[via];
      if (m && m.concurrent.errors + m.sequential.errors > 0) {
        console.log(
          `  errors: ${TITLE[n]}, ${label}: ${m.concurrent.errors + m.sequential.errors} (${m.concurrent.firstError ?? m.sequential.firstError})`,
        );
      }
    }
  }
  const d = result.targets.dynalite;
  if (!d) return;
  result.againstDynalite = {};
  for (const n of ['sqlite', 'postgresql']) {
    const t = result.targets[n];
    if (!t) continue;
    const ratios = {};
    for (const [label, op, via] of ROWS) {
      const a = t.operations[op]?.[via];
      const b = d.operations[op]?.[via];
      if (!a || !b) continue;
      ratios[`${op}${via === 'raw' ? 'NoSdk' : ''}`] = {
        throughput: round(a.concurrent.opsPerSec / b.concurrent.opsPerSec),
        sequentialP50: round(a.sequential.p50 / b.sequential.p50),
        label,
      };
    }
    result.againstDynalite[n] = ratios;
    console.log(
      `\n${TITLE[n]} ÷ dynalite (ops/s at ${SETTINGS.concurrency} in flight; p50 at one in flight):`,
    );
    for (const r of Object.values(ratios)) {
      console.log(`  ${pad(r.label, 19)}${r.throughput}x ops/s, ${r.sequentialP50}x p50`);
    }
  }
}

/** What was measured: the commit, whether src/ had changes on top of it, and when dist/ was built. */
function buildInfo() {
  const git = (...args) => {
    try {
      return execFileSync('git', args, {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return undefined;
    }
  };
  return {
    commit: git('rev-parse', '--short', 'HEAD'),
    srcChanged: (git('status', '--porcelain', '--', 'src') ?? '') !== '',
    distBuiltAt: statSync(join(ROOT, 'dist', 'cli', 'main.js')).mtime.toISOString(),
  };
}

const round = (v) => Math.round(v * 100) / 100;

/** --profile [seconds] [operation]: Nimbus on SQLite under --cpu-prof, one operation's load (GetItem by
 *  default) through the SDK; self and inclusive time, and time by stage of the request. */
async function profile(seconds, op) {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-dynamo-prof-'));
  const profDir = join(work, 'prof');
  const server = await startNimbus(work, 'data', undefined, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  let figures;
  try {
    await sleep(1000);
    const load = loadClient('profile', server.target, { seconds, sequentialSeconds: 0.5, rawSeconds: 0 });
    await load.send({ cmd: 'setup' });
    figures = await load.send({ cmd: 'op', name: op });
    await load.close();
  } finally {
    await stop(server.proc);
  }
  const file = readdirSync(profDir).find((f) => f.includes(`.${server.proc.pid}.`));
  if (process.env.BENCH_DYNAMO_KEEP_PROFILE) {
    // For a look in Chrome's DevTools or speedscope: the whole profile, start-up and shutdown included.
    copyFileSync(join(profDir, file), process.env.BENCH_DYNAMO_KEEP_PROFILE);
    console.log(`profile kept in ${process.env.BENCH_DYNAMO_KEEP_PROFILE}`);
  }
  const summary = {
    operation: op,
    ...summarize(JSON.parse(readFileSync(join(profDir, file), 'utf8')), figures),
  };
  rmSync(work, { recursive: true, force: true });
  return summary;
}

/** The stages of a request a sample belongs to: the nearest Nimbus frame above it decides (a HMAC inside
 *  verifySigV4 is SigV4, a writev under the server's write() is the answer's write); samples with no Nimbus
 *  frame on their stack are Node's HTTP parsing and sockets, the garbage collector or V8 itself. */
const STAGES = [
  [/dist\/api\/(sigv4|auth)\.js$/, () => 'SigV4: parse, canonical request, HMAC, SHA-256'],
  [
    /dist\/store\/rows\.js$/,
    (fn) => (fn === 'toTable' ? 'table definition: SELECT and parse (twice)' : 'other Nimbus code'),
  ],
  [/dist\/api\/dynamodb\/tables\.js$/, () => 'table definition: SELECT and parse (twice)'],
  [
    /dist\/store\/(sqlite|postgres)\/tables\.js$/,
    (fn) =>
      /^(getTable|table|tableIn|tableRow)$/.test(fn)
        ? 'table definition: SELECT and parse (twice)'
        : 'item: key encoding, SQL statements, JSON',
  ],
  [/dist\/store\/(sqlite|postgres)\/db\.js$/, () => 'commit: transaction, group commit, WAL fdatasync'],
  [/dist\/store\/table-rules\.js$/, () => 'item: key encoding, SQL statements, JSON'],
  [/dist\/tables\//, () => 'item: key encoding, SQL statements, JSON'],
  [
    /dist\/api\/dynamodb\/(items|expressions|values)\.js$/,
    () => 'operation: key checks, expressions, page assembly and item sizes',
  ],
  [/dist\/api\/dynamodb\/protocol\.js$/, () => 'request JSON.parse; answer JSON.stringify and CRC32'],
  [
    /dist\/api\/server\.js$/,
    (fn) =>
      fn === 'write' ? 'answer written: writeHead, end, writev' : 'API server: routing, body, dispatch',
  ],
  [/dist\/(http|api)\//, () => 'API server: routing, body, dispatch'],
  [/dist\//, () => 'other Nimbus code'],
];
function stageOf(id, byId, parent) {
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const f = byId.get(cur).callFrame;
    for (const [re, name] of STAGES) if (re.test(f.url)) return name(f.functionName);
  }
  const f = byId.get(id).callFrame;
  if (f.functionName === '(garbage collector)') return 'garbage collector';
  if (f.functionName === '(program)') return 'V8 and native, unattributed (program)';
  if (f.functionName === '(idle)') return '(idle)';
  return 'Node: HTTP parsing, sockets, timers (no Nimbus frame on the stack)';
}

/** Self time and inclusive time (each function counted once per sample's stack) of a .cpuprofile. */
function summarize(prof, figures) {
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Only the samples inside the measured GetItem window (the profile also spans start-up and shutdown).
  const [from, to] = figures.sdk.concurrent.window;
  const dt = new Map(); // node id → µs
  let ts = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    ts += prof.timeDeltas[i] ?? 0;
    if (ts < from || ts > to) continue;
    dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const total = [...dt.values()].reduce((a, b) => a + b, 0);
  const key = (n) => {
    const f = n.callFrame;
    const url = f.url.replace(`file://${ROOT}`, '').replace(/^node:/, 'node:');
    return `${f.functionName || '(anonymous)'} ${url ? `${url}:${f.lineNumber + 1}` : ''}`.trim();
  };
  const fileOf = (n) => {
    const u = n.callFrame.url.replace(`file://${ROOT}`, '');
    if (!u) return n.callFrame.functionName.startsWith('(') ? n.callFrame.functionName : '(native)';
    if (u.startsWith('node:')) return u;
    return u.replace(/^node_modules\/((@[^/]+\/)?[^/]+).*$/, 'node_modules/$1');
  };
  const self = new Map();
  const selfFile = new Map();
  const incl = new Map();
  const inclFile = new Map();
  const stages = new Map();
  for (const [id, t] of dt) {
    const n = byId.get(id);
    const st = stageOf(id, byId, parent);
    stages.set(st, (stages.get(st) ?? 0) + t);
    self.set(key(n), (self.get(key(n)) ?? 0) + t);
    selfFile.set(fileOf(n), (selfFile.get(fileOf(n)) ?? 0) + t);
    const seen = new Set();
    const seenFile = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const c = byId.get(cur);
      const k = key(c);
      if (!seen.has(k)) {
        seen.add(k);
        incl.set(k, (incl.get(k) ?? 0) + t);
      }
      const fk = fileOf(c);
      if (!seenFile.has(fk)) {
        seenFile.add(fk);
        inclFile.set(fk, (inclFile.get(fk) ?? 0) + t);
      }
    }
  }
  const get = figures.sdk.concurrent;
  const idle = self.get('(idle)') ?? 0;
  const busy = total - idle;
  const ops = get.ops;
  const top = (m, n) =>
    [...m.entries()]
      .filter(([name]) => name !== '(idle)' && name !== '(root)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, pctOfBusy: round((us / busy) * 100), usPerOp: round(us / ops) }));
  return {
    measured: get,
    profileSeconds: round(total / 1e6),
    busyPct: round((busy / total) * 100),
    busyUsPerOp: round(busy / ops),
    note: 'samples inside the measured GetItem window only; usPerOp divides by the operations measured in it',
    byStage: top(stages, 20),
    selfByFunction: top(self, 40),
    selfByFile: top(selfFile, 30),
    inclusiveByFunction: top(incl, 60),
    inclusiveByFile: top(inclFile, 30),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === '--profile') {
    const s = await profile(Number(process.argv[3] ?? 10), process.argv[4] ?? 'GetItem');
    const show = (title, rows) => {
      console.log(`\n${title}`);
      for (const r of rows)
        console.log(
          `  ${String(r.pctOfBusy).padStart(6)} %  ${String(r.usPerOp).padStart(7)} µs/op  ${r.name}`,
        );
    };
    console.log(
      `\n${s.operation} under the profiler: ${s.measured.opsPerSec} ops/s, server CPU ${s.measured.serverCpuUsPerOp} µs/op (/proc); in the profile's ${s.profileSeconds} s window the main thread was ${s.busyPct} % busy, ${s.busyUsPerOp} µs/op; shares below are of that busy time`,
    );
    show('by stage of the request', s.byStage);
    show('self time by file', s.selfByFile.slice(0, 20));
    show('self time by function', s.selfByFunction.slice(0, 30));
    show('inclusive time by function', s.inclusiveByFunction.slice(0, 45));
    console.log(`saved ${saveResult('dynamodb-profile', s)}`);
  } else {
    const r = await runDynamo();
    console.log(`saved ${saveResult('dynamodb', r)}`);
  }
}

// Peer benchmark: the same hello-world handler ({"message":"hello world"}) on other serverless runtimes, measured
// on this machine with the same autocannon settings as bench/core.mjs, so their figures sit beside Nimbus's:
//  - workerd (Cloudflare's runtime, npm package `workerd`), config and worker under bench/fixtures/workerd/;
//  - serverless-offline 13 on serverless 3, service under bench/fixtures/serverless-offline/.
// For each: start-to-first-response (spawn -> first 200, polled), warm req/s, p50/p99, and the RSS of the target's
// process tree before, during and after the load (serverless-offline was seen leaking memory).
// A peer that cannot start or be measured gives { error } instead of throwing: the rest of the bench run goes on.
// Every process started here is stopped before runPeers returns, also on failure or on Ctrl-C.
import { spawn, execFile } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, autocannonArgs, autocannonFigures, machine, saveResult, sleep } from './lib.mjs';

const FIXTURES = join(ROOT, 'bench', 'fixtures');
// The peers are installed in bench/ (bench/setup.mjs), apart from Nimbus's own dependencies.
const PEERS = join(ROOT, 'bench', 'node_modules');
const require = createRequire(join(ROOT, 'bench', 'package.json'));
const WARMUP_SECONDS = 3; // as core.mjs
const POLL_MS = 10; // readiness poll period: the resolution of start-to-first-response
const WORKERD_START_TIMEOUT_MS = 20_000;
const SLS_START_TIMEOUT_MS = 60_000;
const SLS_PRIME_TIMEOUT_MS = 60_000;

// serverless 3 must not reach the network: no telemetry (it is otherwise cached on every run and sent on errors and
// at random), no notifications/upgrade checks, no deprecation lookups, no interactive setup, no instance-metadata
// credential probing. HOME is a directory of our own so nothing is read from or written to the user's ~/.aws,
// ~/.serverlessrc or ~/.serverless; it persists across runs (in the OS temp dir) so that, like on a developer's
// machine, serverless's compiled config-schema cache is warm when the start is timed.
const SLS_HOME = join(tmpdir(), 'nimbus-bench-serverless-home');
const SLS_ENV = {
  HOME: SLS_HOME,
  SLS_TELEMETRY_DISABLED: '1',
  SLS_TRACKING_DISABLED: '1',
  SLS_NOTIFICATIONS_MODE: 'off',
  SLS_DEPRECATION_DISABLE: '*',
  SLS_INTERACTIVE_SETUP_DISABLE: '1',
  AWS_EC2_METADATA_DISABLED: 'true',
  NO_UPDATE_NOTIFIER: '1',
  FORCE_COLOR: '0',
};

/** Processes started by this module and not yet stopped; killed on exit or on an interrupt, whatever happens. */
const live = new Set();
/** Running autocannon processes (in our own process group), killed likewise on an interrupt. */
const liveLoad = new Set();

export async function runPeers({ connections = 50, duration = 10 } = {}) {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-peers-'));
  const onExit = () => {
    for (const t of live) killGroup(t.proc.pid, 'SIGKILL');
    for (const p of liveLoad) p.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (signal) => {
    onExit();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const result = { machine: machine(), date: new Date().toISOString(), connections, duration };
  try {
    result.workerd = await guarded('workerd', () => measureWorkerd(work, { connections, duration }));
    result.serverlessOffline = await guarded('serverless-offline', () =>
      measureServerlessOffline(work, { connections, duration }),
    );
  } finally {
    await Promise.all([...live].map((t) => stopTree(t)));
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}

async function guarded(name, fn) {
  try {
    return await fn();
  } catch (err) {
    const error = oneLine(err?.message ?? String(err));
    console.log(`${name}: not measured: ${error}`);
    return { error };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// workerd

async function measureWorkerd(work, { connections, duration }) {
  let bin;
  let version;
  try {
    bin = require('workerd').default; // the platform binary shipped in @cloudflare/workerd-<platform>
    version = require('workerd').version;
  } catch (err) {
    throw new Error(
      `workerd package not installed or no binary for this platform (${oneLine(err.message)})`,
      {
        cause: err,
      },
    );
  }
  const [port] = await freePorts(1);
  const url = `http://127.0.0.1:${port}/`;
  // The fixture's config listens on a default address; the run's free port replaces it on the command line.
  const args = [
    'serve',
    join(FIXTURES, 'workerd', 'config.capnp'),
    '--socket-addr',
    `http=127.0.0.1:${port}`,
  ];
  const target = startTarget('workerd', bin, args, {
    cwd: join(FIXTURES, 'workerd'),
    logFile: join(work, 'workerd.log'),
  });
  try {
    const startToFirstResponseMs = await firstResponse(target, url, WORKERD_START_TIMEOUT_MS);
    const r = await measureLoad(target, url, { connections, duration });
    const out = { version, startToFirstResponseMs, ...r };
    console.log(
      `workerd ${version}: start to first response ${out.startToFirstResponseMs} ms; warm ${out.reqPerSec} req/s, p50 ${out.p50} ms, p99 ${out.p99} ms, non-2xx ${out.non2xx}; RSS ${rssLine(out)}`,
    );
    return out;
  } finally {
    await stopTree(target);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// serverless-offline

async function measureServerlessOffline(work, { connections, duration }) {
  const slsBin = join(PEERS, 'serverless', 'bin', 'serverless.js');
  if (!existsSync(slsBin) || !existsSync(join(PEERS, 'serverless-offline', 'package.json'))) {
    throw new Error('serverless / serverless-offline not installed (npm run bench:setup)');
  }
  const version = {
    serverless: readJson(join(PEERS, 'serverless', 'package.json')).version,
    serverlessOffline: readJson(join(PEERS, 'serverless-offline', 'package.json')).version,
  };
  const cwd = join(FIXTURES, 'serverless-offline');
  const env = { ...process.env, ...SLS_ENV };
  mkdirSync(SLS_HOME, { recursive: true });
  await primeServerless(slsBin, cwd, env, work);

  const [httpPort, lambdaPort] = await freePorts(2);
  const url = `http://127.0.0.1:${httpPort}/hello`;
  const args = [
    slsBin,
    'offline',
    'start',
    '--httpPort',
    String(httpPort),
    '--lambdaPort',
    String(lambdaPort),
  ];
  const target = startTarget('serverless-offline', process.execPath, args, {
    cwd,
    env,
    logFile: join(work, 'serverless-offline.log'),
  });
  try {
    const startToFirstResponseMs = await firstResponse(target, url, SLS_START_TIMEOUT_MS);
    const r = await measureLoad(target, url, { connections, duration });
    const out = { version, startToFirstResponseMs, ...r };
    console.log(
      `serverless-offline ${version.serverlessOffline} (serverless ${version.serverless}): start to first response ${out.startToFirstResponseMs} ms; warm ${out.reqPerSec} req/s, p50 ${out.p50} ms, p99 ${out.p99} ms, non-2xx ${out.non2xx}; RSS ${rssLine(out)}`,
    );
    return out;
  } finally {
    await stopTree(target);
  }
}

/** serverless compiles its config schema into ~/.serverless on first use (~2 s); do that once, untimed. */
async function primeServerless(slsBin, cwd, env, work) {
  if (existsSync(join(SLS_HOME, '.serverless', 'artifacts'))) return;
  const target = startTarget('serverless print', process.execPath, [slsBin, 'print'], {
    cwd,
    env,
    logFile: join(work, 'serverless-print.log'),
  });
  try {
    await within(target.exited, SLS_PRIME_TIMEOUT_MS);
  } finally {
    await stopTree(target);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// shared measurement

/** Warm-up, then the measured run; RSS of the target's process tree before, sampled during, and after. */
async function measureLoad(target, url, { connections, duration }) {
  const before = treeRssKiB(target.proc.pid);
  const warmup = await autocannonBounded(url, { connections, duration: WARMUP_SECONDS });
  const afterWarmup = treeRssKiB(target.proc.pid);
  const samples = []; // RSS every 250 ms of the measured run
  const t0 = performance.now();
  const sampler = setInterval(
    () => samples.push({ s: (performance.now() - t0) / 1000, kib: treeRssKiB(target.proc.pid) }),
    250,
  );
  let load;
  try {
    load = await autocannonBounded(url, { connections, duration });
  } finally {
    clearInterval(sampler);
  }
  const after = treeRssKiB(target.proc.pid);
  const peak = Math.max(before, afterWarmup, after, ...samples.map((x) => x.kib));
  // Mid-run RSS: a leak keeps growing through the second half; a heap or pool that merely warms up has levelled off.
  const mid = samples.filter((x) => x.s <= duration / 2).at(-1)?.kib ?? afterWarmup;
  const perSecond = [];
  for (let sec = 1; sec <= duration; sec++) {
    const x = samples.filter((y) => y.s <= sec).at(-1);
    if (x) perSecond.push(x.kib);
  }
  if (target.proc.exitCode !== null || target.proc.signalCode !== null) {
    throw new Error(`${target.name} died under load: ${target.tail()}`);
  }
  const mib = (kib) => round(kib / 1024, 1);
  return {
    ...load,
    duration,
    requestsSinceStart: 1 + warmup.total + load.total,
    rssMiB: {
      beforeLoad: mib(before),
      afterWarmup: mib(afterWarmup),
      midRun: mib(mid),
      afterLoad: mib(after),
      peak: mib(peak),
    },
    // From idle (after the first response) to after warm-up plus the measured run; over the measured run alone,
    // once warm-up has grown caches and pools; and over its second half, the part that points at a leak.
    rssGrowthMiB: mib(after - before),
    rssGrowthMeasuredRunMiB: mib(after - afterWarmup),
    rssGrowthSecondHalfMiB: mib(after - mid),
    rssPerSecondMiB: perSecond.map(mib), // during the measured run
  };
}

/**
 * The same autocannon invocation as lib.mjs's autocannon() (own process, -c/-d/-j, same fields), but asynchronous
 * so RSS can be sampled meanwhile, and bounded by a timeout in case a target stops answering.
 */
function autocannonBounded(url, { connections, duration }) {
  const args = autocannonArgs(url, { connections, duration });
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      args,
      { maxBuffer: 64 * 1024 * 1024, timeout: (duration + 30) * 1000, killSignal: 'SIGKILL' },
      (err, stdout) => {
        liveLoad.delete(child);
        if (err) return reject(new Error(`autocannon against ${url} failed: ${oneLine(err.message)}`));
        try {
          resolve(autocannonFigures(stdout));
        } catch {
          reject(new Error(`autocannon against ${url} printed no JSON`));
        }
      },
    );
    liveLoad.add(child);
  });
}

/** Polls url every POLL_MS from the spawn until a 200; returns the milliseconds from spawn to that response. */
async function firstResponse(target, url, timeoutMs) {
  const deadline = target.t0 + timeoutMs;
  for (;;) {
    if (target.spawnError)
      throw new Error(`${target.name} could not be started: ${target.spawnError.message}`);
    if (target.proc.exitCode !== null || target.proc.signalCode !== null) {
      throw new Error(
        `${target.name} exited (${target.proc.exitCode ?? target.proc.signalCode}) before answering: ${target.tail()}`,
      );
    }
    try {
      const res = await fetch(url, {
        signal: AbortSignal.timeout(Math.max(100, Math.min(2000, deadline - performance.now()))),
      });
      const body = await res.text();
      if (res.status === 200) {
        const ms = round(performance.now() - target.t0, 1);
        if (!body.includes('hello world'))
          throw new Error(`${target.name} answered 200 with an unexpected body: ${oneLine(body)}`);
        return ms;
      }
    } catch (err) {
      if (err?.message?.includes('unexpected body')) throw err;
      // not listening yet
    }
    if (performance.now() > deadline)
      throw new Error(`${target.name}: no 200 from ${url} within ${timeoutMs} ms: ${target.tail()}`);
    await sleep(POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// processes

/**
 * Spawns a target in its own process group (so its whole tree can be stopped), output to a log file, not a pipe:
 * the targets log every request, and a pipe the parent is slow to drain would throttle them.
 */
function startTarget(name, cmd, args, { cwd, env = process.env, logFile }) {
  const fd = openSync(logFile, 'w');
  const t0 = performance.now();
  let proc;
  try {
    proc = spawn(cmd, args, { cwd, env, stdio: ['ignore', fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise((resolve) => {
    proc.once('exit', resolve);
    proc.once('error', resolve);
  });
  const target = {
    name,
    proc,
    t0,
    exited,
    tail: () => {
      let log = '';
      try {
        log = readFileSync(logFile, 'utf8');
      } catch {
        // no log
      }
      const lines = log
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      return lines.length ? lines.slice(-3).join(' | ').slice(-400) : '(no output)';
    },
  };
  proc.once('error', (err) => {
    target.spawnError = err;
  });
  live.add(target);
  return target;
}

/** SIGTERM to the target's process group, SIGKILL after 5 s; waits (bounded) for it to go. */
async function stopTree(target) {
  const { proc } = target;
  if (proc.pid !== undefined) {
    if (proc.exitCode === null && proc.signalCode === null) {
      killGroup(proc.pid, 'SIGTERM');
      const gone = await within(
        target.exited.then(() => true),
        5000,
        false,
      );
      if (!gone) {
        killGroup(proc.pid, 'SIGKILL');
        await within(target.exited, 2000);
      }
    }
    killGroup(proc.pid, 'SIGKILL'); // anything the target left behind in its group
  }
  live.delete(target);
}

/** promise, or `fallback` after ms; the timer is cleared so it never holds the process open. */
function within(promise, ms, fallback) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function killGroup(pid, signal) {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Resident memory of pid and all its descendants, in KiB (Linux /proc; 0 elsewhere). */
function treeRssKiB(rootPid) {
  let entries;
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return 0;
  }
  const children = new Map();
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  let total = 0;
  const queue = [rootPid];
  while (queue.length) {
    const pid = queue.pop();
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {
      // exited meanwhile
    }
    queue.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** n distinct free loopback ports (held together while picked, so they differ). */
async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      await new Promise((resolve, reject) => {
        s.once('error', reject);
        s.listen(0, '127.0.0.1', resolve);
      });
      servers.push(s);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

function rssLine(o) {
  const r = o.rssMiB;
  return `${r.beforeLoad} MiB idle -> ${r.afterWarmup} after warm-up -> ${r.midRun} mid-run -> ${r.afterLoad} after load (+${o.rssGrowthMiB} MiB over ${o.requestsSinceStart} requests, +${o.rssGrowthSecondHalfMiB} MiB in the last ${o.duration / 2} s)`;
}

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

function oneLine(s) {
  return String(s).replace(/\s+/g, ' ').trim().slice(0, 500);
}

function round(v, digits = 2) {
  return Math.round(v * 10 ** digits) / 10 ** digits;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runPeers({
    connections: Number(process.env.BENCH_CONNECTIONS ?? 50),
    duration: Number(process.env.BENCH_DURATION ?? 10),
  });
  console.log(`saved ${saveResult('peers', r)}`);
}

// Shared pieces of the benchmarks: child processes, autocannon runs, percentiles, result files.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, totalmem } from 'node:os';

export const ROOT = new URL('..', import.meta.url).pathname;
export const BIN = join(ROOT, 'bin', 'nimbus.js');

/** Starts a process that prints one JSON line when ready; resolves with that line and the process. */
export function startJsonProcess(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ proc, info: JSON.parse(out.slice(0, nl)) });
    });
    proc.stderr.on('data', (d) => (err += d));
    proc.on('exit', (code) =>
      reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`)),
    );
  });
}

/** `nimbus up` of a build (this one by default) on free ports, with env; resolves once it prints its URLs. */
export function startNimbus(env, bin = BIN) {
  return startJsonProcess(process.execPath, [bin, 'up', '--port', '0', '--api-port', '0', '--json'], { env });
}

export function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
    setTimeout(() => proc.kill('SIGKILL'), 10_000).unref();
  });
}

/** The autocannon command line every target is measured with: its own process, JSON out. */
export function autocannonArgs(url, { connections = 50, duration = 10, method, headers = {}, body } = {}) {
  return [
    join(ROOT, 'node_modules', 'autocannon', 'autocannon.js'),
    '-c',
    String(connections),
    '-d',
    String(duration),
    ...(method ? ['-m', method] : []),
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]),
    ...(body !== undefined ? ['-b', body] : []),
    '-j',
    url,
  ];
}

/** The figures kept from autocannon's JSON output. */
export function autocannonFigures(stdout) {
  const r = JSON.parse(stdout.toString());
  return {
    reqPerSec: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    total: r.requests.total,
  };
}

/** autocannon as its own process, so the load generator does not share an event loop with a target. */
export function autocannon(url, opts = {}) {
  const out = execFileSync(process.execPath, autocannonArgs(url, opts), {
    maxBuffer: 64 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return autocannonFigures(out);
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export function machine() {
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
  };
}

export function saveResult(name, result) {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(dir, `${stamp}-${name}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(dir, `latest-${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const TICK_US = 1e6 / 100; // USER_HZ: /proc counts CPU time in 1/100 s on Linux

/** User + system CPU time of every process now, µs, with its parent: one pass over /proc. */
export function processTable() {
  const table = new Map();
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // The command name is in parentheses and may hold spaces: fields are counted after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    table.set(Number(name), { ppid: Number(f[1]), us: (Number(f[11]) + Number(f[12])) * TICK_US });
  }
  return table;
}

/** pid and its descendants in a process table. */
export function descendants(table, pid) {
  const children = new Map();
  for (const [p, { ppid }] of table) {
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(p);
  }
  const out = [];
  const todo = [...(children.get(pid) ?? [])];
  while (todo.length > 0) {
    const p = todo.pop();
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU this process's reaped children used so far (cutime + cstime), µs: the load generator's share. */
export function childrenCpuUs() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * TICK_US;
}

/**
 * autocannon against url while counting the CPU time of the server process `pid` (its own) and of its
 * descendants (sandboxes, children) from /proc, and of autocannon itself: each divided by the requests
 * served, in µs per request. Processes that exit during the run lose their share (none do in a warm run).
 */
export function autocannonWithCpu(url, pid, opts = {}) {
  const before = processTable();
  const tree0 = new Set(descendants(before, pid));
  const load0 = childrenCpuUs();
  const r = autocannon(url, opts);
  const load = childrenCpuUs() - load0;
  const after = processTable();
  const host = (after.get(pid)?.us ?? 0) - (before.get(pid)?.us ?? 0);
  let others = 0;
  for (const p of new Set([...tree0, ...descendants(after, pid)])) {
    const a = after.get(p)?.us;
    if (a !== undefined) others += a - (before.get(p)?.us ?? 0);
  }
  const n = Math.max(1, r.total);
  return {
    ...r,
    cpuUsPerRequest: { server: round1(host / n), children: round1(others / n), load: round1(load / n) },
  };
}

const round1 = (v) => Math.round(v * 10) / 10;

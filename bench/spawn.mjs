// Who forks the sandboxes, measured A/B in one run (spawning issue): stem cells booted by the spawner helper
// against the same stem cells spawned from the host process itself, in alternating rounds from a process
// grown to the size of a serving host (BENCH_HOST_MB, default 135). Per mode: the host's event-loop delay
// while booting (monitorEventLoopDelay at 1 ms resolution), the CPU time per boot of the host, of the helper
// and of the sandbox processes (/proc/<pid>/stat, so other engineers' load on the machine does not count),
// and the wall time per boot. Nothing here passes or fails.
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ROOT, machine, saveResult, sleep } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_SPAWN_ROUNDS ?? 4);
const PER_ROUND = Number(process.env.BENCH_SPAWN_BOOTS ?? 24);
/** Boots at once, as the pool rations them (maxBooting). */
const AT_ONCE = Number(process.env.BENCH_SPAWN_AT_ONCE ?? 8);
const HOST_MB = Number(process.env.BENCH_HOST_MB ?? 135);
const NETWORK = process.env.BENCH_SPAWN_NETWORK ?? 'outbound';
const TICK_MS = 1000 / 100;

/** utime + stime of a process in ms (clock ticks of 10 ms), or 0 once it is gone. */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}

/** Every live descendant of pid, with its command name, leaving out the subtree under skip. */
function descendants(pid, skip) {
  const parents = new Map();
  const names = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parents.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      names.set(Number(d), stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')));
    } catch {
      // gone
    }
  }
  const out = [];
  const walk = (p) => {
    for (const [c, pp] of parents) {
      if (pp !== p || c === skip) continue;
      out.push({ pid: c, name: names.get(c) });
      walk(c);
    }
  };
  walk(pid);
  return out;
}

export async function runSpawn() {
  const { detectSandbox, releaseCgroupParent } = await import(`${ROOT}/dist/sandbox/detect.js`);
  const { SandboxInstance } = await import(`${ROOT}/dist/sandbox/instance.js`);
  const { HelperSpawner, InProcessSpawner } = await import(`${ROOT}/dist/sandbox/spawner.js`);
  const root = mkdtempSync(join(tmpdir(), 'nimbus-spawn-'));
  chmodSync(root, 0o711);
  const runtimeFile = join(root, 'bootstrap.cjs');
  copyFileSync(join(ROOT, 'dist', 'runtime', 'bootstrap.cjs'), runtimeFile);
  chmodSync(runtimeFile, 0o644);
  const caps = detectSandbox({});
  // A host of a serving Nimbus's size: a fork copies the page tables of everything it has touched.
  const ballast = [];
  while (process.memoryUsage.rss() < HOST_MB * 1024 * 1024) ballast.push(Buffer.alloc(1 << 20, 1));
  const helper = new HelperSpawner();
  const modes = { helper, host: new InProcessSpawner() };
  const totals = Object.fromEntries(
    Object.keys(modes).map((m) => [
      m,
      { boots: 0, failed: 0, wallMs: 0, hostCpuMs: 0, helperCpuMs: 0, sandboxCpuMs: 0, delays: [] },
    ]),
  );
  const byName = {};
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [mode, spawner] of Object.entries(modes)) {
        const t = totals[mode];
        const env = { caps, sandboxRoot: root, runtimeFile, spawner };
        const h = monitorEventLoopDelay({ resolution: 1 });
        const helperBefore = helper.helperPid ? cpuMs(helper.helperPid) : 0;
        const c0 = process.cpuUsage();
        const w0 = performance.now();
        h.enable();
        const insts = [];
        let next = 0;
        const worker = async () => {
          while (next < PER_ROUND) {
            next++;
            // The pool tries a failed boot again (bwrap's loopback setup fails now and then under load).
            for (let attempt = 0; attempt < 4; attempt++) {
              try {
                insts.push(await SandboxInstance.start(env, 128, 512, NETWORK));
                break;
              } catch {
                t.failed++;
              }
            }
          }
        };
        await Promise.all(Array.from({ length: AT_ONCE }, worker));
        h.disable();
        t.wallMs += performance.now() - w0;
        const c = process.cpuUsage(c0);
        t.hostCpuMs += (c.user + c.system) / 1000;
        if (helper.helperPid && mode === 'helper') t.helperCpuMs += cpuMs(helper.helperPid) - helperBefore;
        t.boots += insts.length;
        t.delays.push({ p50: h.percentile(50), p99: h.percentile(99), max: h.max });
        // The sandboxes' own CPU: every process of their chains, live now (bwrap, node, slirp4netns).
        const parentOf = mode === 'helper' ? helper.helperPid : process.pid;
        for (const p of descendants(parentOf, helper.helperPid)) {
          const ms = cpuMs(p.pid);
          t.sandboxCpuMs += ms;
          byName[p.name] = (byName[p.name] ?? 0) + ms;
        }
        for (const i of insts) i.stop();
        await sleep(1500);
      }
    }
  } finally {
    await helper.close();
    await releaseCgroupParent(caps);
    rmSync(root, { recursive: true, force: true });
  }
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  const result = {
    machine: machine(),
    date: new Date().toISOString(),
    sandbox: caps.level,
    hostRssMB: Math.round(process.memoryUsage.rss() / 1e6),
    network: NETWORK,
    boots: ROUNDS * PER_ROUND,
    atOnce: AT_ONCE,
    sandboxCpuMsByProcess: Object.fromEntries(
      Object.entries(byName).map(([k, v]) => [k, Math.round((v / (2 * ROUNDS * PER_ROUND)) * 10) / 10]),
    ),
  };
  for (const [mode, t] of Object.entries(totals)) {
    const worst = (k) => ms(Math.max(...t.delays.map((d) => d[k])));
    const median = (k) => ms(t.delays.map((d) => d[k]).sort((a, b) => a - b)[t.delays.length >> 1]);
    result[mode] = {
      boots: t.boots,
      failedAttempts: t.failed,
      wallMsPerBoot: Math.round((t.wallMs / t.boots) * 10) / 10,
      hostCpuMsPerBoot: Math.round((t.hostCpuMs / t.boots) * 100) / 100,
      helperCpuMsPerBoot: Math.round((t.helperCpuMs / t.boots) * 100) / 100,
      sandboxCpuMsPerBoot: Math.round((t.sandboxCpuMs / t.boots) * 10) / 10,
      loopDelayMs: { p50: median('p50'), p99: median('p99'), worstP99: worst('p99'), max: worst('max') },
    };
    console.log(
      `spawn from the ${mode === 'helper' ? 'spawner helper' : 'host itself  '}: ${t.boots} boots, host loop delay p50 ${result[mode].loopDelayMs.p50} ms, p99 ${result[mode].loopDelayMs.p99} ms, max ${result[mode].loopDelayMs.max} ms; CPU per boot: host ${result[mode].hostCpuMsPerBoot} ms, helper ${result[mode].helperCpuMsPerBoot} ms, sandbox ${result[mode].sandboxCpuMsPerBoot} ms; wall ${result[mode].wallMsPerBoot} ms per boot`,
    );
  }
  console.log(`sandbox CPU per boot by process: ${JSON.stringify(result.sandboxCpuMsByProcess)}`);
  void ballast;
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runSpawn();
  console.log(`saved ${saveResult('spawn', r)}`);
}

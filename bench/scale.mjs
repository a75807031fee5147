// Burst and density (scaling-engine issue). Burst: 1,000 concurrent requests to a never-invoked function with
// reserved concurrency 1,000 and memory to spare; every answer is counted by status and the time to serve all
// is reported, with the CPU the boots took (/proc) and the host's event-loop delay meanwhile. Density: the instances the burst left warm and idle are measured by private memory (USS) and
// proportional share (PSS), beside an idle plain `node` process measured the same way in the same run.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:http';
import { request } from 'node:http';
import { BIN, ROOT, machine, percentile, saveResult, sleep, startNimbus, stop } from './lib.mjs';

const BURST = Number(process.env.BENCH_BURST ?? 1000);
/** Warm idle function instances the density measurement holds at least. */
const DENSITY = Number(process.env.BENCH_DENSITY ?? BURST);

function memoryOf(pid) {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { rss: kb('Rss'), pss: kb('Pss'), uss: kb('Private_Clean') + kb('Private_Dirty') };
}

/** utime + stime of a process in ms (/proc/<pid>/stat, clock ticks of 10 ms), 0 once it is gone. */
function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * The processes below Nimbus by role: the spawner helper, the node runtimes, the bubblewrap processes around
 * them, and the slirp4netns beside each outbound sandbox (bash and setpriv exec into bwrap: same pids).
 */
function sandboxProcesses(nimbusPid) {
  const parents = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2);
      if (rest.startsWith('Z')) continue;
      parents.set(Number(d), {
        ppid: Number(rest.split(' ')[1]),
        comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      });
    } catch {
      // gone
    }
  }
  const out = { helper: [], node: [], other: [], slirp: [] };
  const walk = (p) => {
    for (const [c, v] of parents) {
      if (v.ppid !== p) continue;
      let cmd;
      try {
        cmd = readFileSync(`/proc/${c}/cmdline`, 'utf8');
      } catch {
        continue;
      }
      if (cmd.includes('spawner-helper.js')) out.helper.push(c);
      else if (v.comm === 'slirp4netns') out.slirp.push(c);
      else if (cmd.includes('bootstrap.cjs')) (v.comm === 'node' ? out.node : out.other).push(c);
      walk(c);
    }
  };
  walk(nimbusPid);
  return out;
}

/** The host's event-loop delay since the last scrape (prom-client resets its histogram when scraped). */
async function loopLag(apiUrl, key) {
  const text = await (
    await fetch(`${apiUrl}/metrics`, { headers: { authorization: `Bearer ${key}` } })
  ).text();
  const v = (name) =>
    Number(new RegExp(`^nimbus_nodejs_eventloop_lag_${name}_seconds (\\S+)`, 'm').exec(text)?.[1]);
  return { p50Ms: round(v('p50') * 1000), p99Ms: round(v('p99') * 1000), maxMs: round(v('max') * 1000) };
}

export async function runScale() {
  const data = mkdtempSync(join(tmpdir(), 'nimbus-scale-'));
  const env = {
    ...process.env,
    NIMBUS_DATA: join(data, 'd'),
    NIMBUS_LOG_LEVEL: 'warn',
    // The fixture reserves 2,000 (two functions of 1,000), and reservations must leave a tenth unreserved.
    NIMBUS_MAX_CONCURRENCY: String(Math.max(BURST + 100, 2300)),
    // Idle instances use a few MB, not their configured 128: the budget is set to admit the whole burst.
    NIMBUS_MEMORY_BUDGET_MB: String((BURST + DENSITY) * 128 + 4096),
  };
  const nimbus = await startNimbus(env);
  const result = {
    machine: machine(),
    date: new Date().toISOString(),
    sandbox: nimbus.info.sandboxLevel,
    burst: BURST,
  };
  try {
    execFileSync(process.execPath, [BIN, 'deploy', join(ROOT, 'bench', 'fixtures', 'burst')], {
      env,
      stdio: 'ignore',
    });
    await sleep(500);
    const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
    const url = `${nimbus.info.apiUrl}/2015-03-31/functions/burst/invocations`;
    const key = readFileSync(join(env.NIMBUS_DATA, 'api-key'), 'utf8').trim();
    const invokeAt = (target) =>
      new Promise((resolve) => {
        const s = performance.now();
        const req = request(
          target,
          { method: 'POST', agent, headers: { authorization: `Bearer ${key}` } },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - s }));
          },
        );
        req.on('error', (e) => resolve({ status: `error ${e.code}`, ms: performance.now() - s }));
        req.end('{}');
      });
    await loopLag(nimbus.info.apiUrl, key);
    const before = sandboxProcesses(nimbus.proc.pid);
    const hostCpu0 = cpuMs(nimbus.proc.pid);
    const helperCpu0 = before.helper.reduce((t, p) => t + cpuMs(p), 0);
    const sandboxCpu0 = [...before.node, ...before.other, ...before.slirp].reduce((t, p) => t + cpuMs(p), 0);
    const b0 = performance.now();
    const burst = await Promise.all(Array.from({ length: BURST }, () => invokeAt(url)));
    const servedAllMs = performance.now() - b0;
    const lag = await loopLag(nimbus.info.apiUrl, key);
    // CPU of everything the burst started, from /proc (other engineers' load does not count): the host, the
    // helper, and the sandboxes alive now (booted for the burst; the handler sleeps, so this is their boot).
    const after = sandboxProcesses(nimbus.proc.pid);
    const booted = after.node.filter((p) => !before.node.includes(p)).length;
    const sandboxCpu =
      [...after.node, ...after.other, ...after.slirp].reduce((t, p) => t + cpuMs(p), 0) - sandboxCpu0;
    const hostCpu = cpuMs(nimbus.proc.pid) - hostCpu0;
    const helperCpu = after.helper.reduce((t, p) => t + cpuMs(p), 0) - helperCpu0;
    const perBoot = (ms) => round(ms / Math.max(1, booted));
    result.bootCpu = {
      booted,
      sandboxMsPerBoot: perBoot(sandboxCpu),
      hostMsPerBoot: perBoot(hostCpu),
      helperMsPerBoot: perBoot(helperCpu),
      totalMsPerBoot: perBoot(sandboxCpu + hostCpu + helperCpu),
      // What two cores need at the least to boot them all, at that CPU per boot.
      floorForBurstMs: Math.round((((sandboxCpu + hostCpu + helperCpu) / Math.max(1, booted)) * BURST) / 2),
    };
    result.hostLoopDelayDuringBurst = lag;
    const statuses = {};
    for (const a of burst) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
    const ms = burst.map((a) => a.ms);
    result.burstResult = {
      statuses,
      servedAllMs: Math.round(servedAllMs),
      latencyP50: Math.round(percentile(ms, 50)),
      latencyP99: Math.round(percentile(ms, 99)),
    };
    console.log(
      `burst: ${BURST} concurrent requests to a cold function: ${JSON.stringify(statuses)}, all served in ${result.burstResult.servedAllMs} ms (p50 ${result.burstResult.latencyP50} ms, p99 ${result.burstResult.latencyP99} ms)`,
    );
    console.log(
      `boot CPU per instance: ${result.bootCpu.totalMsPerBoot} ms (sandbox ${result.bootCpu.sandboxMsPerBoot}, host ${result.bootCpu.hostMsPerBoot}, spawner helper ${result.bootCpu.helperMsPerBoot}) over ${booted} boots: at least ${result.bootCpu.floorForBurstMs} ms for ${BURST} on two cores; host event-loop delay during the burst p50 ${lag.p50Ms} ms, p99 ${lag.p99Ms} ms, max ${lag.maxMs} ms`,
    );

    await sleep(1500);
    const list = async () =>
      (
        await fetch(`${nimbus.info.apiUrl}/v1/functions`, { headers: { authorization: `Bearer ${key}` } })
      ).json();
    let listed = await list();
    const idleOf = (name) => listed.functions.find((f) => f.name === name)?.scaling?.idle ?? 0;
    result.afterBurst = {
      ...listed.functions.find((f) => f.name === 'burst')?.scaling,
      stemCells: listed.stemCells,
    };
    console.log(`after the burst: ${JSON.stringify(result.afterBurst)}`);
    // A few burst requests may have reused an instance that had finished; top the idle instances up past
    // the target with another function so density is measured over at least DENSITY instances.
    const missing = DENSITY - idleOf('burst');
    if (missing > 0) {
      await Promise.all(
        Array.from({ length: missing + 10 }, () => invokeAt(url.replace('/burst/', '/spare/'))),
      );
      await sleep(1000);
      listed = await list();
    }
    result.idleInstances = idleOf('burst') + idleOf('spare');
    const procs = sandboxProcesses(nimbus.proc.pid);
    const nodes = procs.node.map(memoryOf);
    const wrappers = procs.other.map(memoryOf);
    const nats = procs.slirp.map(memoryOf);
    const helpers = procs.helper.map(memoryOf);
    const sum = (xs, k) => xs.reduce((s, x) => s + x[k], 0);
    const plain = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await sleep(800);
    const plainMem = memoryOf(plain.pid);
    plain.kill();
    const hostMem = memoryOf(nimbus.proc.pid);
    const instances = nodes.length;
    result.density = {
      idleRuntimes: instances,
      idleFunctionInstances: result.idleInstances,
      perInstanceUssMB: round((sum(nodes, 'uss') + sum(wrappers, 'uss')) / instances / 1024),
      perInstancePssMB: round((sum(nodes, 'pss') + sum(wrappers, 'pss')) / instances / 1024),
      // With the NAT of `network: outbound` and the spawner helper's share: all an instance costs.
      perInstanceAllUssMB: round(
        (sum(nodes, 'uss') + sum(wrappers, 'uss') + sum(nats, 'uss') + sum(helpers, 'uss')) /
          instances /
          1024,
      ),
      nodeUssMB: round(sum(nodes, 'uss') / instances / 1024),
      wrapperUssMB: round(sum(wrappers, 'uss') / instances / 1024),
      slirpUssMB: round(sum(nats, 'uss') / Math.max(1, nats.length) / 1024),
      slirpProcesses: nats.length,
      helperUssMB: round(sum(helpers, 'uss') / 1024),
      plainIdleNodeUssMB: round(plainMem.uss / 1024),
      totalUssGB: round((sum(nodes, 'uss') + sum(wrappers, 'uss')) / 1024 / 1024),
      hostRssMB: round(hostMem.rss / 1024),
    };
    console.log(
      `density: ${result.idleInstances} warm idle function instances (${instances} idle runtimes with the stem cells); private memory (USS) per instance ${result.density.perInstanceUssMB} MB (node ${result.density.nodeUssMB} MB + bubblewrap ${result.density.wrapperUssMB} MB), PSS ${result.density.perInstancePssMB} MB; with slirp4netns (${result.density.slirpUssMB} MB each, ${result.density.slirpProcesses} of them) and the spawner helper (${result.density.helperUssMB} MB in all): ${result.density.perInstanceAllUssMB} MB; an idle plain node process: ${result.density.plainIdleNodeUssMB} MB USS; total ${result.density.totalUssGB} GB`,
    );
  } finally {
    await stop(nimbus.proc);
    rmSync(data, { recursive: true, force: true });
  }
  return result;
}

function round(v) {
  return Math.round(v * 100) / 100;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runScale();
  console.log(`saved ${saveResult('scale', r)}`);
}

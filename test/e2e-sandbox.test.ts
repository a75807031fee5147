// Faults and isolation, through the public surface: a misbehaving function fails only its own invocation,
// the platform and other functions carry on, and a function sees only its own code, tmp and env.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import {
  BACKENDS,
  FIXTURES,
  bubblewrapAvailable,
  eventually,
  startTestNimbus,
  type Backend,
  type TestNimbus,
} from './helpers.js';

// Every guarantee must hold at the strongest level and at the fallback (no bubblewrap, no memory cgroup), and
// whichever store records it.
const BWRAP = bubblewrapAvailable();
const MODES = [
  { mode: 'bubblewrap + cgroup', backend: 'sqlite' as Backend, opts: {} },
  {
    mode: 'permission model + RSS polling',
    backend: 'sqlite' as Backend,
    opts: { disableBwrap: true, disableCgroup: true },
  },
  ...(BACKENDS.includes('postgresql')
    ? [
        BWRAP
          ? { mode: 'bubblewrap + cgroup', backend: 'postgresql' as Backend, opts: {} }
          : {
              mode: 'permission model + RSS polling',
              backend: 'postgresql' as Backend,
              opts: { disableBwrap: true, disableCgroup: true },
            },
      ]
    : []),
];

/** Processes in this server's per-instance cpu cgroups, with the cpu.shares of each one's cgroup. */
function sandboxPids(): Map<number, string> {
  const found = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const line = readFileSync(`/proc/${name}/cgroup`, 'utf8')
        .split('\n')
        .find((l) => /^\d+:([^:]*,)?cpu(,[^:]*)?:/.test(l));
      const path = line?.split(':')[2];
      if (!path?.includes(`/nimbus-${process.pid}/`)) continue;
      const shares = readFileSync(join('/sys/fs/cgroup/cpu', path, 'cpu.shares'), 'utf8').trim();
      found.set(Number(name), shares);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Bytes the files under a folder take (a function's /tmp used to be one of them). */
function diskUsed(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    try {
      total += statSync(join(e.parentPath ?? e.path, e.name)).size;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

describe.each(MODES)('$mode on $backend', ({ mode, backend, opts }) => {
  let n: TestNimbus;
  const needsBwrap = mode.startsWith('bubblewrap');

  beforeAll(async () => {
    if (needsBwrap && !BWRAP) return;
    n = await startTestNimbus({ ...opts, backend });
    if (needsBwrap && !n.sandboxLevel.startsWith('bubblewrap')) {
      throw new Error(`bubblewrap is not working on this machine: ${n.sandboxLevel}`);
    }
    await n.deploy(join(FIXTURES, 'behave'));
    await n.deploy(join(FIXTURES, 'other'));
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  const invoke = async (fn: string, payload: unknown = {}) => {
    const r = await n.client.invoke(fn, JSON.stringify(payload), {});
    return { ...r, value: JSON.parse(r.payload) as any };
  };

  async function record(requestId: string): Promise<any> {
    return eventually(async () => {
      const res = await fetch(`${n.apiUrl}/v1/invocations/${requestId}`, {
        headers: { authorization: `Bearer ${n.apiKey}` },
      });
      return res.status === 200 ? res.json() : undefined;
    });
  }

  async function healthy(same?: string): Promise<void> {
    if (same) expect((await invoke(same, { calm: true })).value).toEqual({ calm: true });
    expect((await invoke('counter')).value.count).toBeGreaterThan(0);
    expect((await invoke('echo', { again: true })).statusCode).toBe(200);
  }

  describe.skipIf(needsBwrap && !BWRAP)('faults', () => {
    it('kills a function at its timeout, reports it, and serves the next call', async () => {
      const r = await invoke('sleepy', { ms: 5000 });
      expect(r.functionError).toBe('Unhandled');
      expect(r.value.errorMessage).toMatch(/Task timed out after 1\.00 seconds/);
      const rec = await record(r.requestId);
      expect(rec.status).toBe('timeout');
      expect(rec.logs).toContain('going to sleep');
      expect((await invoke('sleepy', { ms: 10 })).value).toEqual({ slept: true });
      await healthy();
    });

    it('stops a function over its memory limit with Runtime.OutOfMemory', async () => {
      const r = await invoke('hog');
      expect(r.functionError).toBe('Unhandled');
      expect(r.value.errorType).toBe('Runtime.OutOfMemory');
      expect((await record(r.requestId)).status).toBe('oom');
      await healthy('hog');
    });

    it('survives process.exit in a handler', async () => {
      const r = await invoke('quitter');
      expect(r.value.errorType).toBe('Runtime.ExitError');
      expect(r.value.errorMessage).toContain('exit status 3');
      const rec = await record(r.requestId);
      expect(rec.status).toBe('unhandled');
      await healthy('quitter');
    });

    it('survives an uncaught exception and an unhandled rejection', async () => {
      const thrown = await invoke('thrower');
      expect(thrown.functionError).toBe('Unhandled');
      expect(thrown.value.errorMessage).toContain('uncaught in a timer');
      await healthy('thrower');
      const rejected = await invoke('rejecter');
      expect(rejected.value.errorType).toBe('Runtime.UnhandledPromiseRejection');
      expect((await record(rejected.requestId)).status).toBe('unhandled');
      await healthy('rejecter');
    });

    it('refuses a response over 6 MB as the function error Lambda gives', async () => {
      const r = await invoke('huge');
      expect(r.functionError).toBe('Unhandled');
      expect(r.value.errorType).toBe('Function.ResponseSizeTooLarge');
      await healthy();
    });

    it('returns handled errors as {errorType, errorMessage, trace}', async () => {
      const r = await invoke('fail');
      expect(r.functionError).toBe('Unhandled');
      expect(r.value.errorType).toBe('TypeError');
      expect(r.value.errorMessage).toBe('the function failed on purpose');
      expect(Array.isArray(r.value.trace)).toBe(true);
      expect((await record(r.requestId)).status).toBe('error');
    });
  });

  describe.skipIf(needsBwrap && !BWRAP)('the channel to the host', () => {
    it('stops a function that floods it, and the platform carries on', async () => {
      const r = await invoke('flooder');
      expect(r.functionError).toBe('Unhandled');
      // Stopped for the flood, not left to run into its timeout.
      expect(r.value.errorType).toBe('Runtime.ExitError');
      await healthy('flooder');
    });

    it('ignores answers a function forges for other invocations', async () => {
      const slow = invoke('sleepy', { ms: 300 });
      await new Promise((res) => setTimeout(res, 100));
      const inflight = (await (
        await fetch(`${n.apiUrl}/v1/health`, { headers: { authorization: `Bearer ${n.apiKey}` } })
      ).json()) as { inFlight: number };
      expect(inflight.inFlight).toBeGreaterThan(0);
      const forged = await invoke('forger', { victim: 'anything' });
      expect(forged.value).toEqual({ wrote: true });
      expect((await slow).value).toEqual({ slept: true });
    });

    it('records what the host measured, whatever the function reports about itself', async () => {
      const liar = await invoke('rssliar');
      expect(liar.value).toEqual({ lied: true });
      const rec = await record(liar.requestId);
      expect(rec.status).toBe('ok');
      expect(Number.isFinite(rec.maxRssBytes)).toBe(true);
      expect(rec.maxRssBytes).toBeGreaterThan(1024 * 1024);
      expect(rec.logs).toContain('rssliar ran');
      // Its next invocation (the patched rss still in place) is recorded too.
      const again = await record((await invoke('rssliar')).requestId);
      expect(again.maxRssBytes).toBeGreaterThan(1024 * 1024);

      const forged = await invoke('selfforger');
      expect(forged.statusCode).toBe(200);
      const frec = await record(forged.requestId);
      expect(frec.status).toBe('ok');
      expect(frec.maxRssBytes).toBeGreaterThan(1024 * 1024);
      expect(frec.initMs === null || frec.initMs >= 0).toBe(true);
      expect(typeof frec.logs).toBe('string');
      await healthy();
    });
  });

  describe.skipIf(needsBwrap && !BWRAP)('warm instances', () => {
    it('keeps module scope between invocations and records cold then warm', async () => {
      const a = await invoke('counter');
      const b = await invoke('counter');
      expect(b.value.count).toBe(a.value.count + 1);
      const recB = await record(b.requestId);
      expect(recB.cold).toBe(false);
      expect(recB.billedMs).toBeGreaterThanOrEqual(1);
      expect(recB.billedMs).toBe(Math.max(1, Math.ceil(recB.durationMs)));
      expect(recB.memoryMB).toBe(128);
      expect(recB.maxRssBytes).toBeGreaterThan(0);
      expect(recB.trigger).toBe('invoke');
    });
  });

  describe.skipIf(needsBwrap)('the fallback level', () => {
    it('says plainly that it does not isolate functions from each other', () => {
      expect(n.sandboxLevel).toContain('WARNING: functions are not isolated from each other at this level');
    });

    it('says that instances get no CPU share without a cpu cgroup', () => {
      expect(n.sandboxLevel).toContain('no CPU share (no cpu cgroup; idle instances still frozen)');
    });
  });

  describe.skipIf(!needsBwrap || !BWRAP)('/tmp quota', () => {
    it('stops a function filling /tmp at 512 MB with ENOSPC, off the data disk', async () => {
      const before = diskUsed(n.dataDir);
      const r = await invoke('filler');
      expect(r.value).toEqual({ mb: 512, code: 'ENOSPC' });
      // The bytes were in the sandbox's own tmpfs, never in the data dir.
      expect(diskUsed(n.dataDir) - before).toBeLessThan(100 * 1024 * 1024);
      expect((await invoke('filler')).value.code).toBe('ENOSPC');
      await healthy();
    });

    it('sizes /tmp by ephemeralStorage: 600 MB fit, ENOSPC past them, and the function view says 600', async () => {
      expect((await invoke('filler600', { upTo: 700 })).value).toEqual({ mb: 600, code: 'ENOSPC' });
      expect(((await n.client.get('filler600')) as any).ephemeralStorage).toBe(600);
      expect(((await n.client.get('filler')) as any).ephemeralStorage).toBe(512);
    });
  });

  describe.skipIf(needsBwrap && !BWRAP)('idle instances', () => {
    it('cannot burn CPU between invocations: a loop left behind does not run while idle', async () => {
      expect((await invoke('spinner')).value).toEqual({ spinning: true });
      // Idle for longer than the loop would spin; frozen, it never gets the CPU to start.
      await new Promise((r) => setTimeout(r, 1500));
      const { cpuMs } = (await invoke('spinner', { report: true })).value as { cpuMs: number };
      // CPU accounting, not timing: unfrozen the loop would have used about 1,200 ms of CPU.
      expect(cpuMs).toBeLessThan(400);
      await healthy();
    });
  });

  describe.skipIf(!needsBwrap || !BWRAP)('CPU share', () => {
    it('gives an instance CPU in proportion to its memory when instances contend for a core', async () => {
      // Warm one instance of each, then put every process of this server's sandboxes on one core, so the two
      // burners below must share it; the cgroup's cpu.shares decide how.
      await invoke('burnsmall');
      await invoke('burnbig');
      const pids = sandboxPids();
      expect(pids.size).toBeGreaterThanOrEqual(2);
      const shares = [...pids.values()].map(Number).sort((a, b) => a - b);
      expect(shares).toContain(74); // 128 MB of 1,769 MB per vCPU, as cpu.shares of 1,024
      expect(shares).toContain(593); // 1,024 MB
      const all = `0-${availableParallelism() - 1}`;
      try {
        for (const pid of pids.keys()) execFileSync('taskset', ['-a', '-p', '-c', '0', String(pid)]);
        const [small, big] = await Promise.all([
          invoke('burnsmall', { ms: 2000 }),
          invoke('burnbig', { ms: 2000 }),
        ]);
        // CPU accounting, not timing: with equal shares both would get about half the core (measured here
        // with shares: about 1,700 ms against 200 ms).
        expect(big.value.cpuMs).toBeGreaterThan(3 * small.value.cpuMs);
      } finally {
        for (const pid of pids.keys()) {
          try {
            execFileSync('taskset', ['-a', '-p', '-c', all, String(pid)]);
          } catch {
            // gone meanwhile
          }
        }
      }
      await healthy();
    });
  });

  describe.skipIf(needsBwrap && !BWRAP)('isolation', () => {
    it('cannot read other functions, the data dir, the API key or /etc/shadow', async () => {
      const code = join(n.dataDir, 'code');
      const paths = [
        join(n.dataDir, 'api-key'),
        join(n.dataDir, 'nimbus.db'),
        '/etc/shadow',
        `/proc/1/environ`,
      ];
      const r = await invoke('reader', { paths });
      const reads = r.value.reads as Record<string, { ok: boolean; content?: string }>;
      for (const p of paths) expect(reads[p]?.ok, p).toBe(false);
      // The other service's extracted code: find its path on the host, then ask the function to read it.
      const other = await n.client.get('secretkeeper');
      const otherFile = join(code, (other as any).codeSha256, 'keeper.js');
      expect(readFileSync(otherFile, 'utf8')).toContain('other-function-code-secret');
      const r2 = await invoke('reader', { paths: [otherFile] });
      expect(r2.value.reads[otherFile].ok).toBe(false);
      expect(JSON.stringify(r2.value)).not.toContain('other-function-code-secret');
      expect(JSON.stringify(r2.value)).not.toContain(n.apiKey);
    });

    it('sees its own code read-only, its own tmp writable, and only its own env', async () => {
      const r = await invoke('reader', { paths: [] });
      expect(r.value.tmpWritable).toBe(true);
      // Under bubblewrap /tmp is the instance's own; without it, /tmp is the host's and must stay closed.
      expect(r.value.slashTmpWritable).toBe(mode.startsWith('bubblewrap') ? true : 'ERR_ACCESS_DENIED');
      expect(r.value.codeWrite).not.toBe('WROTE');
      expect(r.value.env.SECRET_OF_READER).toBe('reader-only');
      expect(r.value.env.OTHER_SECRET).toBeUndefined();
      expect(r.value.env.AWS_LAMBDA_FUNCTION_NAME).toBe('reader');
      expect(Object.keys(r.value.env).some((k) => k.startsWith('NIMBUS'))).toBe(false);
      if (process.getuid?.() === 0) expect(r.value.uid).not.toBe(0);
      const own = await invoke('reader', { paths: [r.value.file] });
      expect(own.value.reads[r.value.file].ok).toBe(true);
    });
  });

  describe.skipIf(needsBwrap && !BWRAP)('concurrency', () => {
    it('throttles a sync call beyond reserved concurrency with 429 and records it', async () => {
      const slow = invoke('single');
      await new Promise((r) => setTimeout(r, 200));
      const res = await fetch(`${n.apiUrl}/2015-03-31/functions/single/invocations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${n.apiKey}` },
        body: '{}',
      });
      expect(res.status).toBe(429);
      expect(res.headers.get('x-amzn-errortype')).toBe('TooManyRequestsException');
      const body = (await res.json()) as { Reason: string };
      expect(body.Reason).toBe('ReservedFunctionConcurrentInvocationLimitExceeded');
      expect((await slow).value).toEqual({ done: true });
      const rec = await record(res.headers.get('x-amzn-requestid')!);
      expect(rec.status).toBe('throttled');
    });
  });
});

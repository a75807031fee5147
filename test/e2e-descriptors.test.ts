// A sandbox gets stdio and its host channel (fd 3), nothing else: a descriptor Nimbus itself inherited
// without close-on-exec (a pipe or a file of whatever started `nimbus up`) must not reach any function.
// Checked from inside (a hostile function fstat-ing every descriptor) and from the host (/proc/<pid>/fd of
// every sandboxed node process), at both levels.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NimbusClient } from '../src/client/index.js';
import { packageService } from '../src/build/package.js';
import {
  FIXTURES,
  bubblewrapAvailable,
  eventually,
  exited,
  sandboxedNodes,
  startUpProcess,
  type UpProcess,
} from './helpers.js';

const BWRAP = bubblewrapAvailable();
const LEVELS = [
  { level: 'bubblewrap', env: {} },
  { level: 'fallback', env: { NIMBUS_DISABLE_BWRAP: '1', NIMBUS_DISABLE_CGROUP: '1' } },
];
/** Where the inherited pipe and file sit in `nimbus up`: high numbers, as a shell's leaked ones are. */
const PIPE_FD = 200;
const FILE_FD = 201;

/** socket:[inode] of the TCP sockets listening on 127.0.0.1 in the process's network namespace. */
function loopbackListeners(pid: number): Set<string> {
  const rows = readFileSync(`/proc/${pid}/net/tcp`, 'utf8').trim().split('\n').slice(1);
  const out = new Set<string>();
  for (const row of rows) {
    const f = row.trim().split(/\s+/);
    if (f[1]?.startsWith('0100007F:') && f[3] === '0A') out.add(`socket:[${f[9]}]`);
  }
  return out;
}

function fdLinks(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const n of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.set(Number(n), readlinkSync(`/proc/${pid}/fd/${n}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

describe.each(LEVELS)('descriptors at the $level level', ({ level, env }) => {
  const skip = level === 'bubblewrap' && !BWRAP;
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-fds-'));
  // Traversable, so the sandbox root is <data>/sandboxes and its path marks this Nimbus's processes.
  chmodSync(dataDir, 0o711);
  const secretFile = join(dataDir, 'inherited-secret');
  const fifo = join(dataDir, 'inherited-pipe');
  writeFileSync(secretFile, 'inherited-secret-contents');
  let up: UpProcess;
  let client: NimbusClient;
  let pipeLink: string;

  beforeAll(async () => {
    if (skip) return;
    execFileSync('mkfifo', [fifo]);
    // A shell opens a pipe and a file without close-on-exec, then execs Nimbus: both are Nimbus's to leak.
    const launcher = [
      'bash',
      '-c',
      `exec ${PIPE_FD}<>"$0" ${FILE_FD}<"$1"; shift; exec "$@"`,
      fifo,
      secretFile,
    ];
    const upEnv = { NIMBUS_DATA: dataDir, NIMBUS_LOG_LEVEL: 'error', NIMBUS_API_URL: '', NIMBUS_API_KEY: '' };
    up = await startUpProcess({ ...process.env, ...upEnv, ...env }, [], launcher);
    expect(up.info.sandboxLevel.startsWith('bubblewrap')).toBe(level === 'bubblewrap');
    // Nimbus itself holds them: the test sets up what it claims to.
    pipeLink = readlinkSync(`/proc/${up.proc.pid}/fd/${PIPE_FD}`);
    expect(pipeLink).toBe(fifo);
    expect(readlinkSync(`/proc/${up.proc.pid}/fd/${FILE_FD}`)).toBe(secretFile);
    client = new NimbusClient({
      apiUrl: up.info.apiUrl,
      apiKey: readFileSync(join(dataDir, 'api-key'), 'utf8').trim(),
    });
    await client.deploy((await packageService(join(FIXTURES, 'hostile'))).archive);
  });
  afterAll(async () => {
    if (up) {
      up.proc.kill('SIGTERM');
      await exited(up.proc);
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it.skipIf(skip)('a function sees only stdio, its channel and what node opened itself', async () => {
    const r = await client.invoke('fds', '{}', {});
    const { open, listing } = JSON.parse(r.payload) as {
      open: { fd: number; ino: number; type: string }[];
      listing: unknown;
    };
    const pipeIno = statSync(fifo).ino;
    const fileIno = statSync(secretFile).ino;
    expect(open.filter((o) => o.ino === pipeIno)).toEqual([]);
    expect(open.filter((o) => o.type === 'file' && o.ino === fileIno)).toEqual([]);
    expect(open.slice(0, 4).map((o) => o.type)).toEqual(['char', 'socket', 'socket', 'socket']);
    // Nothing of the function's own making either: no regular file is open.
    expect(open.filter((o) => o.type === 'file')).toEqual([]);
    // The permission model keeps /proc/self/fd closed to it, so the host looks (below).
    expect(listing).toBe('ERR_ACCESS_DENIED');
  });

  it.skipIf(skip)(
    'the host sees no inherited descriptor in any sandboxed process, stem cells included',
    async () => {
      const root = join(dataDir, 'sandboxes');
      const nodes = await eventually(async () => {
        const found = sandboxedNodes(root);
        return found.length >= 2 ? found : undefined;
      });
      for (const pid of nodes) {
        const links = fdLinks(pid);
        const listeners = loopbackListeners(pid);
        const all = [...links.values()];
        expect(all, `pid ${pid}`).not.toContain(pipeLink);
        expect(all, `pid ${pid}`).not.toContain(secretFile);
        expect(links.get(0)).toBe('/dev/null');
        for (const fd of [1, 2, 3]) expect(links.get(fd), `pid ${pid} fd ${fd}`).toMatch(/^socket:/);
        for (const [fd, link] of links) {
          if (fd <= 3) continue;
          // What node opens itself: epoll, eventfds and the like, its own pipe pairs (both ends in this process).
          if (link.startsWith('anon_inode:')) continue;
          // Under bubblewrap, the runtime's forwarder of the AWS endpoint: a TCP listener on the sandbox's 127.0.0.1.
          if (link.startsWith('socket:') && listeners.has(link)) continue;
          if (link.startsWith('pipe:')) {
            expect(all.filter((l) => l === link).length, `pid ${pid} fd ${fd} ${link}`).toBe(2);
            continue;
          }
          expect(link, `pid ${pid} fd ${fd}`).toBe('/dev/null');
        }
      }
    },
  );
});

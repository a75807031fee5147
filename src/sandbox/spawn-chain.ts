// Starting one sandbox's process chain and, for `network: outbound`, the slirp4netns beside it. This runs in
// the spawner helper (spawner-helper.ts), so the host never forks on the event loop that serves requests;
// the same code runs in-process for the benchmark's baseline. It imports only Node's own modules: the helper
// must stay small, since every fork copies its page tables.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

/** Stands for `/proc/<sandbox pid>/ns/net` in SpawnRequest.nat.args until bwrap reports the pid. */
export const NETNS_PLACEHOLDER = '{netns}';

export interface SpawnRequest {
  cmd: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  uid?: number;
  gid?: number;
  /**
   * slirp4netns for `network: outbound`: the child gets bwrap's info descriptor as fd 4, and this command is
   * started with the sandbox's network namespace once bwrap writes the sandbox's pid there.
   */
  nat?: { cmd: string; args: string[] };
}

export interface ChainEvents {
  /** The process runs: its stdout, stderr and host channel (fd 3), which the caller now owns. */
  spawned(pid: number, stdout: Socket, stderr: Socket, channel: Socket): void;
  /** It could not be started at all (no 'spawned' before or after). */
  failed(message: string): void;
  natStarted(pid: number): void;
  natReady(): void;
  /** slirp4netns ended (or could not start): the sandbox has lost its network. */
  natExit(code: number | null, signal: string | null, tail: string): void;
  exit(code: number | null, signal: string | null): void;
}

export interface Chain {
  kill(signal: NodeJS.Signals): void;
  killNat(): void;
}

/** What to do with the sockets right after spawn, before the event loop reads from them. */
export type TakeSockets = (sockets: [Socket, Socket, Socket]) => void;

export function startChain(req: SpawnRequest, ev: ChainEvents, take?: TakeSockets): Chain {
  let nat: ChildProcess | null = null;
  let dead = false;
  let child: ChildProcess;
  try {
    child = spawn(req.cmd, req.args, {
      // fd 3 is the host channel (a socket pair): our own framing, not Node's IPC (see channel.ts).
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', ...(req.nat ? (['pipe'] as const) : [])],
      env: req.env,
      cwd: req.cwd,
      ...(req.uid !== undefined && req.gid !== undefined ? { uid: req.uid, gid: req.gid } : {}),
    });
  } catch (err) {
    ev.failed((err as Error).message);
    return { kill: () => undefined, killNat: () => undefined };
  }
  const sockets = [child.stdio[1], child.stdio[2], child.stdio[3]] as [Socket, Socket, Socket];
  take?.(sockets);
  let started = false;
  child.once('spawn', () => {
    started = true;
    ev.spawned(child.pid!, ...sockets);
  });
  child.on('error', (err) => {
    if (!started) {
      dead = true;
      ev.failed(err.message);
    }
  });
  child.on('exit', (code, signal) => {
    if (!started) return;
    dead = true;
    nat?.kill('SIGKILL');
    ev.exit(code, signal);
  });
  if (req.nat) {
    const spec = req.nat;
    const info = child.stdio[4] as Socket;
    let text = '';
    info.setEncoding('utf8');
    info.on('error', () => undefined);
    info.on('data', (d: string) => {
      text += d;
      const pid = /"child-pid"\s*:\s*(\d+)/.exec(text)?.[1];
      if (!pid || nat || dead) return;
      nat = startNat(spec, `/proc/${pid}/ns/net`, ev);
    });
  }
  return {
    kill: (signal) => {
      if (!dead) child.kill(signal);
    },
    killNat: () => nat?.kill('SIGKILL'),
  };
}

/**
 * slirp4netns with its ready descriptor (fd 3) and exit descriptor (fd 4): it reports on the first once the
 * NAT is configured, and ends when the second closes, that is when whoever started it dies.
 */
function startNat(spec: { cmd: string; args: string[] }, netns: string, ev: ChainEvents): ChildProcess {
  const nat = spawn(
    spec.cmd,
    spec.args.map((a) => (a === NETNS_PLACEHOLDER ? netns : a)),
    {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' },
    },
  );
  let tail = '';
  let ready = false;
  let ended = false;
  const end = (code: number | null, signal: string | null): void => {
    if (ended) return;
    ended = true;
    ev.natExit(code, signal, tail.trim());
  };
  nat.stderr!.setEncoding('utf8');
  nat.stderr!.on('data', (e: string) => (tail = (tail + e).slice(-1000)));
  const readyFd = nat.stdio[3] as Socket;
  readyFd.on('error', () => undefined);
  readyFd.once('data', () => {
    if (ready) return;
    ready = true;
    ev.natReady();
  });
  (nat.stdio[4] as Socket).on('error', () => undefined);
  nat.once('spawn', () => ev.natStarted(nat.pid!));
  nat.on('error', (err) => {
    tail = err.message;
    end(null, null);
  });
  nat.on('exit', (code, signal) => end(code, signal));
  return nat;
}

// Who forks the sandboxes. The host asks a small helper process (spawner-helper.ts) to start each one, so the
// fork, which blocks the forking process's event loop for milliseconds, never happens on the loop that serves
// requests. The helper hands back each sandbox's stdout, stderr and host channel as descriptors; from then on
// the host talks to the sandbox directly, exactly as if it had spawned it. A helper that dies takes its
// sandboxes with it (bubblewrap's --die-with-parent): they are reported dead, and the next spawn starts a new
// helper.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChain, type Chain, type SpawnRequest } from './spawn-chain.js';
import type { HelperEvent, HelperRequest } from './spawner-helper.js';

export type { SpawnRequest } from './spawn-chain.js';
export { NETNS_PLACEHOLDER } from './spawn-chain.js';

export interface ProcessEvents {
  /** The process is dying with its helper: nothing new should be sent to it (close follows). */
  lost(): void;
  natReady(): void;
  /** slirp4netns ended or failed to start. */
  natExit(code: number | null, signal: string | null, tail: string): void;
  /** The process exited and its stdout, stderr and channel have been read to their end (ChildProcess 'close'). */
  close(code: number | null, signal: NodeJS.Signals | null): void;
}

/** A running sandbox process as the host sees it. */
export interface SandboxProcess {
  readonly pid: number;
  readonly stdout: Socket;
  readonly stderr: Socket;
  /** fd 3 of the process: the host channel. */
  readonly channel: Socket;
  /** The slirp4netns process, while it runs. */
  readonly natPid: number | undefined;
  /** Events so far are replayed to the listener, so none is lost between spawn and listening. */
  listen(events: ProcessEvents): void;
  kill(signal: NodeJS.Signals): void;
  killNat(): void;
}

export interface Spawner {
  spawn(req: SpawnRequest): Promise<SandboxProcess>;
  /** Waits (a while) for the processes still running to end, then stops the helper. */
  close(): Promise<void>;
  /** The helper's pid while one runs (tests and measurements look at it). */
  readonly helperPid: number | undefined;
}

/** How long a spawn may wait for the helper's answer. */
const SPAWN_TIMEOUT_MS = 15_000;
/** How long close() waits for sandboxes still running to end before stopping the helper regardless. */
const CLOSE_WAIT_MS = 2000;

/** One sandbox process: its descriptors once spawned, and the events that arrive for it. */
class HostProcess implements SandboxProcess {
  pid = 0;
  stdout!: Socket;
  stderr!: Socket;
  channel!: Socket;
  natPid: number | undefined;
  private fds: (Socket | undefined)[] = [];
  private openSockets = 3;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private closed = false;
  private events: ProcessEvents | null = null;
  private buffered: ((ev: ProcessEvents) => void)[] = [];
  private settle: { resolve: (p: SandboxProcess) => void; reject: (e: Error) => void } | null = null;
  /** Given up on (a spawn that timed out): killed as soon as it turns up. */
  abandoned = false;
  readonly started: Promise<SandboxProcess>;

  constructor(
    readonly id: number,
    readonly owner: ChildProcess | null,
    private readonly doKill: (signal: NodeJS.Signals) => void,
    private readonly doKillNat: () => void,
  ) {
    this.started = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  fd(n: 1 | 2 | 3, socket: Socket, pid: number): void {
    this.fds[n] = socket;
    this.pid = pid;
  }

  /** A spawn that was under way when its helper died: whatever of it arrived is closed. */
  discard(): void {
    for (const s of this.fds) s?.destroy();
    try {
      if (this.pid > 0) process.kill(this.pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }

  spawned(pid: number, stdout?: Socket, stderr?: Socket, channel?: Socket): void {
    this.pid = pid;
    const [o, e, c] = [stdout ?? this.fds[1], stderr ?? this.fds[2], channel ?? this.fds[3]];
    if (!o || !e || !c) {
      this.kill('SIGKILL');
      this.failed('the spawner did not hand over the sandbox descriptors');
      return;
    }
    [this.stdout, this.stderr, this.channel] = [o, e, c];
    for (const s of [o, e, c]) s.once('close', () => this.socketClosed());
    if (this.abandoned) this.kill('SIGKILL');
    this.settle?.resolve(this);
    this.settle = null;
  }

  failed(message: string): void {
    this.settle?.reject(new Error(`sandbox could not be started: ${message}`));
    this.settle = null;
  }

  get pending(): boolean {
    return this.settle !== null;
  }

  emit(fn: (ev: ProcessEvents) => void): void {
    if (this.events) fn(this.events);
    else this.buffered.push(fn);
  }

  listen(events: ProcessEvents): void {
    this.events = events;
    for (const fn of this.buffered.splice(0)) fn(events);
  }

  exit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = { code, signal };
    this.maybeClose();
  }

  private socketClosed(): void {
    this.openSockets--;
    this.maybeClose();
  }

  private maybeClose(): void {
    if (this.closed || !this.exited || this.openSockets > 0) return;
    this.closed = true;
    const { code, signal } = this.exited;
    this.emit((ev) => ev.close(code, signal));
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.exited) this.doKill(signal);
  }

  killNat(): void {
    this.doKillNat();
  }
}

/** Where the built helper is: beside this file in dist/, or in dist/ when running from src/ (tests). */
function helperFile(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const p of [
    join(here, 'spawner-helper.js'),
    join(here, '..', '..', 'dist', 'sandbox', 'spawner-helper.js'),
  ]) {
    if (existsSync(p)) return p;
  }
  throw new Error('the spawner helper is not built (dist/sandbox/spawner-helper.js); run `npm run build`');
}

export class HelperSpawner implements Spawner {
  private helper: ChildProcess | null = null;
  private procs = new Map<number, HostProcess>();
  private nextId = 1;
  private closing = false;
  private readonly file: string;

  constructor(private readonly opts: { onError?: (err: Error) => void } = {}) {
    this.file = helperFile();
  }

  get helperPid(): number | undefined {
    return this.helper?.pid;
  }

  spawn(req: SpawnRequest): Promise<SandboxProcess> {
    if (this.closing) return Promise.reject(new Error('the spawner is stopping'));
    const helper = this.helper ?? this.startHelper();
    const id = this.nextId++;
    const proc = new HostProcess(
      id,
      helper,
      (signal) => this.kill(proc, signal),
      () => this.request(helper, { t: 'kill-nat', id }),
    );
    this.procs.set(id, proc);
    this.refWhileBusy();
    this.request(helper, { t: 'spawn', id, req });
    const timer = setTimeout(() => {
      if (!proc.pending) return;
      proc.abandoned = true;
      proc.failed(`the spawner did not answer within ${SPAWN_TIMEOUT_MS} ms`);
    }, SPAWN_TIMEOUT_MS);
    timer.unref();
    return proc.started.finally(() => clearTimeout(timer));
  }

  private request(helper: ChildProcess, m: HelperRequest): void {
    if (helper.connected) helper.send(m);
  }

  private kill(proc: HostProcess, signal: NodeJS.Signals): void {
    if (proc.owner && proc.owner === this.helper && proc.owner.connected) {
      this.request(proc.owner, { t: 'kill', id: proc.id, signal });
      return;
    }
    // Its helper is gone (and with it, under bubblewrap, the process): a signal by pid is all that is left.
    try {
      if (proc.pid > 0) process.kill(proc.pid, signal);
    } catch {
      // Gone already.
    }
  }

  private startHelper(): ChildProcess {
    const helper = spawn(process.execPath, [this.file], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { PATH: process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' },
    });
    this.helper = helper;
    let tail = '';
    helper.stderr!.setEncoding('utf8');
    helper.stderr!.on('data', (d: string) => (tail = (tail + d).slice(-2000)));
    helper.on('message', (m: HelperEvent, handle: unknown) => this.onEvent(m, handle as Socket | undefined));
    helper.on('error', (err) => this.opts.onError?.(err));
    helper.on('exit', (code, signal) => {
      if (this.helper === helper) this.helper = null;
      if (!this.closing)
        this.opts.onError?.(
          new Error(`the sandbox spawner exited (${signal ?? code})${tail ? `: ${tail.trim()}` : ''}`),
        );
      this.helperGone(helper);
    });
    return helper;
  }

  private onEvent(m: HelperEvent, handle: Socket | undefined): void {
    const proc = this.procs.get(m.id);
    if (!proc) {
      // A spawn given up on (its helper died, or it timed out) that turned up after all: it must not live.
      handle?.destroy();
      if ((m.t === 'fd' || m.t === 'spawned') && m.pid > 0) {
        try {
          process.kill(m.pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
      }
      return;
    }
    switch (m.t) {
      case 'fd':
        if (handle) proc.fd(m.n, handle, m.pid);
        return;
      case 'spawned':
        proc.spawned(m.pid);
        return;
      case 'failed':
        this.procs.delete(m.id);
        proc.failed(m.message);
        this.refWhileBusy();
        return;
      case 'nat-started':
        proc.natPid = m.pid;
        return;
      case 'nat-ready':
        proc.emit((ev) => ev.natReady());
        return;
      case 'nat-exit':
        proc.natPid = undefined;
        proc.emit((ev) => ev.natExit(m.code, m.signal, m.tail));
        return;
      case 'exit':
        this.exited(proc, m.code, m.signal as NodeJS.Signals | null);
        return;
    }
  }

  private exited(proc: HostProcess, code: number | null, signal: NodeJS.Signals | null): void {
    this.procs.delete(proc.id);
    proc.exit(code, signal);
    this.refWhileBusy();
  }

  /**
   * The helper died: bubblewrap's --die-with-parent kills its sandboxes, and those without bubblewrap are
   * killed here by pid (reparented now, so the helper cannot). Each is reported as killed once its
   * descriptors close; spawns it had not answered fail, and the pool boots them again on a new helper.
   */
  private helperGone(helper: ChildProcess): void {
    for (const proc of [...this.procs.values()]) {
      if (proc.owner !== helper) continue;
      if (proc.pending) {
        this.procs.delete(proc.id);
        proc.discard();
        proc.failed('the spawner exited');
        continue;
      }
      proc.emit((ev) => ev.lost());
      try {
        if (proc.pid > 0) process.kill(proc.pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
      proc.emit((ev) => ev.natExit(null, 'SIGKILL', ''));
      this.exited(proc, null, 'SIGKILL');
    }
    this.refWhileBusy();
  }

  /** The helper keeps the host alive only while sandboxes are starting or running. */
  private refWhileBusy(): void {
    const h = this.helper;
    if (!h) return;
    const channel = h.channel as unknown as { ref(): void; unref(): void } | undefined;
    if (this.procs.size > 0) {
      h.ref();
      channel?.ref();
    } else {
      h.unref();
      channel?.unref();
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    const until = Date.now() + CLOSE_WAIT_MS;
    while (this.procs.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const helper = this.helper;
    if (!helper) return;
    const gone = new Promise<void>((r) => helper.once('exit', () => r()));
    if (helper.exitCode === null && helper.signalCode === null) {
      // Closing the channel ends it (see spawner-helper.ts), and with it whatever it still ran.
      if (helper.connected) helper.disconnect();
      const kill = setTimeout(() => helper.kill('SIGKILL'), 1000);
      await gone;
      clearTimeout(kill);
    }
  }
}

/**
 * Spawns from the calling process itself, as the host did before the helper: kept for the benchmark, which
 * measures what the helper saves against it in the same run.
 */
export class InProcessSpawner implements Spawner {
  private nextId = 1;
  readonly helperPid = undefined;

  spawn(req: SpawnRequest): Promise<SandboxProcess> {
    let chain: Chain | null = null;
    const proc: HostProcess = new HostProcess(
      this.nextId++,
      null,
      (signal) => chain?.kill(signal),
      () => chain?.killNat(),
    );
    chain = startChain(req, {
      spawned: (pid, stdout, stderr, channel) => proc.spawned(pid, stdout, stderr, channel),
      failed: (message) => proc.failed(message),
      natStarted: (pid) => (proc.natPid = pid),
      natReady: () => proc.emit((ev) => ev.natReady()),
      natExit: (code, signal, tail) => {
        proc.natPid = undefined;
        proc.emit((ev) => ev.natExit(code, signal, tail));
      },
      exit: (code, signal) => proc.exit(code, signal as NodeJS.Signals | null),
    });
    return proc.started;
  }

  async close(): Promise<void> {}
}

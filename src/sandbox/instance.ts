// The host side of one sandboxed runtime process. It starts generic (a stem cell: Node booted, no user code),
// is assigned one function version, and then serves one invocation at a time until it is stopped or dies.
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  readSandboxMessage,
  type HandlerShape,
  type InvokeMessage,
  type SandboxMessage,
  type SerializedError,
} from '../protocol/messages.js';
import { cpuSharesFor, readIfExists, type SandboxCapabilities } from './detect.js';
import { HostChannel } from './channel.js';
import { linkTree, type CodeTree } from './code-tree.js';
import { PROVIDED_SDK_INSIDE, providedSdkDir } from './provided-sdk.js';
import { NETNS_PLACEHOLDER, type SandboxProcess, type SpawnRequest, type Spawner } from './spawner.js';

/** What a sandbox may reach beyond its own loopback and the Nimbus endpoint (the manifest's `network`). */
export type NetworkMode = 'outbound' | 'none';

export interface InstanceEnv {
  caps: SandboxCapabilities;
  /**
   * Host folder holding the AWS endpoint's unix socket (aws.sock), bound into every bubblewrap sandbox: in a
   * network namespace of its own a function cannot reach the host's loopback listener, so the runtime
   * forwards AWS_ENDPOINT_URL's port on the sandbox's own loopback to this socket. A folder, not the socket:
   * stem cells start before the API listens.
   */
  endpointDir?: string;
  /** Host directory holding one subdirectory per instance (task/ and tmp/). Must be traversable by the sandbox uid. */
  sandboxRoot: string;
  /** Host path of the bundled runtime (dist/runtime/bootstrap.cjs copied somewhere the sandbox uid can read). */
  runtimeFile: string;
  /** Who forks the sandboxes: the spawner helper (spawner.ts), so the host's event loop never forks. */
  spawner: Spawner;
}

/** What became of a V8 code cache at the invocation that loaded the function (see FunctionInit.codeCache). */
export interface CodeCacheOutcome {
  /** The runtime used the cache it was given, or V8 refused it. */
  used?: 'accepted' | 'rejected';
  /** A deploy check's cache, produced before the function's code ran (base64). */
  produced?: string;
}

export type InvocationResult =
  | {
      kind: 'ok';
      payload: string;
      logs: string;
      rss: number;
      initMs: number | undefined;
      codeCache?: CodeCacheOutcome;
      /** A warm-up with FunctionInit.describeHandler: what the sandbox said the handler looks like. */
      handler?: HandlerShape;
    }
  | { kind: 'requeue'; logs: string; rss: number; initMs: number | undefined; codeCache?: undefined }
  | {
      kind: 'error' | 'init' | 'unhandled' | 'timeout' | 'oom';
      error: SerializedError;
      logs: string;
      rss: number;
      initMs: number | undefined;
      /** kind 'init' with a handler not found: the module's function-valued exports. */
      exports?: string[];
      codeCache?: CodeCacheOutcome;
    };

/** A result with how long the invocation ran (from when it started running, not when it was sent). */
export type TimedResult = InvocationResult & { durationMs: number };

/**
 * The first link of every sandbox's spawn chain (bash): it closes every descriptor above `keep`, joins the
 * cgroups it is given, and execs the rest. A descriptor Nimbus inherited without close-on-exec (a pipe of
 * whatever started it) would otherwise reach every sandbox: Node's spawn, sh, setpriv and bwrap close
 * nothing they did not open. Closed before setpriv, bwrap and node run, so no link of the chain holds one
 * and user code cannot get it back. Bash, not dash: dash cannot name a descriptor above 9.
 */
const CLOSER =
  'for f in /proc/$$/fd/*; do n=${f##*/}; if [ "$n" -gt "$0" ] && [ -e "$f" ]; then exec {n}>&-; fi; done; ' +
  'k=$1; shift; while [ "$k" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; k=$((k - 1)); done; ' +
  'exec "$@"';

function closerArgs(keep: number, cgroups: readonly string[]): string[] {
  return ['-c', CLOSER, String(keep), String(cgroups.length), ...cgroups];
}

/** stdio and the host channel (fd 3): all a sandbox is given. */
const KEEP_FDS = 3;

/** A stem cell for `nimbus dev --inspect`: its node may open an inspector (see start()). */
export interface StartOptions {
  inspect?: boolean;
}

/** Where an inspectable sandbox's runtime serves its inspector (a unix socket), inside and on the host. */
export const INSPECT_SOCKET = 'inspector.sock';
const BWRAP_INSPECT_DIR = '/var/runtime/inspect';

/** Paths as the process inside the sandbox sees them. */
const BWRAP_TASK = '/var/task';
const BWRAP_RUNTIME = '/var/runtime/bootstrap.cjs';
const BWRAP_ENDPOINT_DIR = '/var/runtime/endpoint';
export const ENDPOINT_SOCKET = 'aws.sock';
const READY_TIMEOUT_MS = 15_000;
const MAX_LOG_BYTES = 256 * 1024;

interface Pending {
  id: string;
  logs: string;
  /** Set once this invocation is the one running (the head of the queue). */
  timer: NodeJS.Timeout | null;
  timeoutSec: number;
  /** performance.now() when it started running. */
  startedAt: number;
  resolveTimed: (r: TimedResult) => void;
  /** A deploy check's init asked for the code cache: only the first message from the sandbox may carry it. */
  wantsCache: boolean;
  producedCache?: string;
}

/** The invocation never started (the process died or stopped first); the invoker runs it elsewhere. */
const REQUEUE: InvocationResult = { kind: 'requeue', logs: '', rss: 0, initMs: undefined };

let counter = 0;

interface Prepared {
  id: string;
  dir: string;
  cgroup: string | null;
  cpuCgroup: string | null;
  /** For `nimbus dev --inspect`: no permission model, and the inspector's socket dir bound in. */
  inspect: boolean;
}

/**
 * Folders and the memory cgroup of a new instance, made asynchronously: creating a cgroup can take
 * milliseconds in the kernel, and the event loop serves invocations meanwhile.
 */
async function prepare(env: InstanceEnv, memoryMB: number, inspect = false): Promise<Prepared> {
  const id = `${(++counter).toString(36)}-${randomBytes(6).toString('hex')}`;
  const dir = join(env.sandboxRoot, id);
  const { caps } = env;
  await fsp.mkdir(join(dir, 'task'), { recursive: true, mode: 0o755 });
  await fsp.mkdir(join(dir, 'tmp'), { mode: 0o700 });
  if (caps.uid !== null && caps.gid !== null) await fsp.chown(join(dir, 'tmp'), caps.uid, caps.gid);
  if (inspect) {
    // Where the runtime binds its inspector's socket: the sandbox's uid only, bound in read-write.
    await fsp.mkdir(join(dir, 'inspect'), { mode: 0o700 });
    if (caps.uid !== null && caps.gid !== null) await fsp.chown(join(dir, 'inspect'), caps.uid, caps.gid);
  }
  const cgroup = caps.memoryCgroup ? join(caps.memoryCgroup, id) : null;
  if (cgroup) {
    const bytes = String(memoryMB * 1024 * 1024);
    await fsp.mkdir(cgroup);
    await fsp.writeFile(join(cgroup, 'memory.limit_in_bytes'), bytes);
    // Without swap accounting this file is absent; where present, forbid escaping the limit into swap.
    await fsp.writeFile(join(cgroup, 'memory.memsw.limit_in_bytes'), bytes).catch(() => undefined);
  }
  // A CPU share proportional to memory, as Lambda allots CPU: under contention a 1,769 MB instance gets about
  // fourteen times the CPU of a 128 MB one; with cores to spare each runs unthrottled.
  const cpuCgroup = caps.cpuCgroup ? join(caps.cpuCgroup, id) : null;
  if (cpuCgroup) {
    await fsp.mkdir(cpuCgroup);
    await fsp.writeFile(join(cpuCgroup, 'cpu.shares'), String(cpuSharesFor(memoryMB)));
  }
  return { id, dir, cgroup, cpuCgroup, inspect };
}

/** The sandbox's process chain (docs/ARCHITECTURE.md, The sandbox): what the spawner helper runs. */
function chainCommand(
  env: InstanceEnv,
  prepared: Prepared,
  memoryMB: number,
  tmpMB: number,
  nat: boolean,
): { cmd: string; args: string[]; uidOpts: { uid?: number; gid?: number } } {
  const { caps, runtimeFile } = env;
  const taskDir = join(prepared.dir, 'task');
  const tmpDir = join(prepared.dir, 'tmp');
  const heapMB = Math.max(32, Math.floor(memoryMB * 0.85));
  const bw = caps.bwrap !== null;
  const task = bw ? BWRAP_TASK : taskDir;
  const tmp = bw ? '/tmp' : tmpDir;
  const runtime = bw ? BWRAP_RUNTIME : runtimeFile;
  const sdk = bw ? PROVIDED_SDK_INSIDE : providedSdkDir(env.sandboxRoot);
  const permission = [
    '--experimental-permission',
    `--allow-fs-read=${task}/*`,
    `--allow-fs-read=${runtime}`,
    `--allow-fs-read=${sdk}/*`,
    `--allow-fs-read=${tmp}/*`,
    `--allow-fs-write=${tmp}/*`,
  ];
  const nodeArgs = [
    // Node 20's permission model has no flag that allows the inspector (see SandboxInstance.start()).
    ...(prepared.inspect ? [] : permission),
    `--max-old-space-size=${heapMB}`,
    // Deployed TypeScript is bundled with inline source maps; traces should point at the user's .ts lines.
    '--enable-source-maps',
    '--disable-warning=ExperimentalWarning',
    runtime,
  ];
  let cmd = process.execPath;
  let args = nodeArgs;
  if (bw) {
    const nodeDir = dirname(process.execPath);
    const binds = ['/usr', '/lib', '/lib64', '/lib32', '/bin', '/sbin'];
    const etc = [
      '/etc/resolv.conf',
      '/etc/hosts',
      '/etc/nsswitch.conf',
      '/etc/ssl',
      '/etc/ca-certificates',
      '/etc/localtime',
    ];
    args = [
      // A network namespace of its own (--unshare-all includes it): only its loopback, plus the NAT
      // attached for `network: outbound`; never the host's loopback services.
      '--unshare-all',
      '--die-with-parent',
      '--new-session',
      ...(nat ? ['--info-fd', '4'] : []),
      ...binds.flatMap((p) => ['--ro-bind-try', p, p]),
      ...etc.flatMap((p) => ['--ro-bind-try', p, p]),
      ...(binds.some((b) => nodeDir.startsWith(`${b}/`)) ? [] : ['--ro-bind', nodeDir, nodeDir]),
      '--ro-bind',
      taskDir,
      BWRAP_TASK,
      '--ro-bind',
      runtimeFile,
      BWRAP_RUNTIME,
      // -try: a pool started without the provided SDK (a unit test) runs functions that do not need it.
      '--ro-bind-try',
      providedSdkDir(env.sandboxRoot),
      PROVIDED_SDK_INSIDE,
      ...(env.endpointDir ? ['--ro-bind', env.endpointDir, BWRAP_ENDPOINT_DIR] : []),
      ...(prepared.inspect ? ['--bind', join(prepared.dir, 'inspect'), BWRAP_INSPECT_DIR] : []),
      // /tmp is a size-limited tmpfs, not the data disk: a function filling it gets ENOSPC and cannot grow the
      // host's data dir (the function's ephemeralStorage). It counts against the cgroup's memory, so writing
      // past the memory limit ends the instance as out of memory before ENOSPC (docs/security.md).
      '--size',
      String(tmpMB * 1024 * 1024),
      '--tmpfs',
      '/tmp',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '--chdir',
      BWRAP_TASK,
      '--setenv',
      'HOME',
      '/tmp',
      process.execPath,
      ...nodeArgs,
    ];
    cmd = caps.bwrap!;
  }
  const cgroups = cgroupsOf(prepared);
  // Join the instance's cgroups before exec so every process of the sandbox is inside its memory limit and
  // CPU share; as root we must join first and drop privileges after (setpriv), since cgroup files are root's.
  const drop =
    cgroups.length > 0 && caps.uid !== null
      ? ['setpriv', `--reuid=${caps.uid}`, `--regid=${caps.gid}`, '--clear-groups', '--']
      : [];
  const uidOpts =
    cgroups.length === 0 && caps.uid !== null && caps.gid !== null ? { uid: caps.uid, gid: caps.gid } : {};
  if (caps.fdCloser) {
    // bwrap needs its info descriptor (fd 4) and closes it before node runs.
    const keep = nat ? KEEP_FDS + 1 : KEEP_FDS;
    return {
      cmd: caps.fdCloser,
      args: [...closerArgs(keep, cgroups), ...drop, cmd, ...args],
      uidOpts,
    };
  }
  if (cgroups.length > 0) {
    const enter = cgroups.map((_, i) => `echo $$ > "$${i}/cgroup.procs"`).join(' && ');
    return {
      cmd: '/bin/sh',
      args: ['-c', `${enter} && shift ${cgroups.length - 1} && exec "$@"`, ...cgroups, ...drop, cmd, ...args],
      uidOpts,
    };
  }
  return { cmd, args, uidOpts };
}

/** The instance's memory and cpu cgroups (those there are): every process of the sandbox joins them. */
function cgroupsOf(prepared: Prepared): string[] {
  return [prepared.cgroup, prepared.cpuCgroup].filter((g): g is string => g !== null);
}

/**
 * The whole spawn chain of a sandbox, and for `network: outbound` its slirp4netns: --disable-host-loopback
 * keeps 10.0.2.2 from reaching the host's 127.0.0.1; --enable-sandbox and --enable-seccomp confine it (it
 * runs as root, without capabilities once set up). It starts with the stem cell, off the cold path, joins the
 * instance's cgroups and dies with the instance: killed on every exit path, and ended by its exit descriptor
 * (fd 4) if whoever started it dies.
 */
function spawnRequest(
  env: InstanceEnv,
  prepared: Prepared,
  memoryMB: number,
  tmpMB: number,
  nat: boolean,
): SpawnRequest {
  const { cmd, args, uidOpts } = chainCommand(env, prepared, memoryMB, tmpMB, nat);
  const req: SpawnRequest = {
    cmd,
    args,
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' },
    cwd: env.caps.bwrap ? '/' : join(prepared.dir, 'task'),
    ...uidOpts,
  };
  if (nat) {
    const slirp = env.caps.slirp4netns!;
    const slirpArgs = [
      '--configure',
      '--mtu=65520',
      '--disable-host-loopback',
      '--enable-sandbox',
      '--enable-seccomp',
      '--ready-fd=3',
      '--exit-fd=4',
      '--netns-type=path',
      NETNS_PLACEHOLDER,
      'tap0',
    ];
    const closer = env.caps.fdCloser;
    req.nat = closer
      ? { cmd: closer, args: [...closerArgs(4, cgroupsOf(prepared)), slirp, ...slirpArgs] }
      : { cmd: slirp, args: slirpArgs };
  }
  return req;
}

/** Undoes prepare() for a sandbox that never started. */
function removePrepared(prepared: Prepared): void {
  rmSync(prepared.dir, { recursive: true, force: true });
  for (const cg of [prepared.cgroup, prepared.cpuCgroup]) {
    try {
      if (cg) rmdirSync(cg);
    } catch {
      // Swept with the parent at stop.
    }
  }
}

/**
 * Without a memory cgroup the limit is enforced by polling: busy instances' RSS is read from /proc every
 * 100 ms and an instance over its limit is killed as out of memory. One timer for all instances.
 */
const polled = new Set<SandboxInstance>();
let poller: NodeJS.Timeout | null = null;
function watchMemory(inst: SandboxInstance, on: boolean): void {
  if (on) polled.add(inst);
  else polled.delete(inst);
  // The timer stays once started: creating one per invocation would cost more than an idle tick.
  if (!poller) {
    poller = setInterval(() => {
      for (const i of polled) {
        const rss = i.readRss();
        if (rss > i.polledRss) i.polledRss = rss;
        if (rss > i.memoryMB * 1024 * 1024) i.kill('oom');
      }
    }, 100);
    poller.unref();
  }
}

/**
 * Idle instances are frozen by one shared timer, not at the end of each invocation: stopping and resuming a
 * process costs the scheduler far more than two syscalls (warm throughput fell by 45 % when every invocation
 * paid it), and an instance under load is never idle long enough to need it. A function's leftover work gets
 * at most FREEZE_AFTER_MS plus one tick of CPU after it answers.
 */
const FREEZE_AFTER_MS = 20;
const idle = new Set<SandboxInstance>();
let freezer: NodeJS.Timeout | null = null;
function idleWatch(inst: SandboxInstance): void {
  idle.add(inst);
  freezer ??= setInterval(() => {
    const now = performance.now();
    for (const i of idle) if (i.freezeIfIdle(now)) idle.delete(i);
    if (idle.size === 0 && freezer) {
      clearInterval(freezer);
      freezer = null;
    }
  }, FREEZE_AFTER_MS).unref();
}

export class SandboxInstance {
  readonly id: string;
  readonly dir: string;
  readonly taskDir: string;
  readonly tmpDir: string;
  /** The path the runtime should treat as its code directory. */
  readonly codeDirInside: string;
  /** The instance's own writable directory as the function sees it: /tmp under bubblewrap, else its own dir. */
  readonly tmpDirInside: string;
  /** The AWS endpoint's unix socket as the function sees it; set when the sandbox has its own network. */
  readonly awsSocketInside: string | undefined;
  /** Inspectable only: the inspector's unix socket on the host, and as the runtime sees it. */
  readonly inspectSocket: string | undefined;
  readonly inspectSocketInside: string | undefined;
  /** While a debugger is attached, invocations run without a timeout (suspendTimeouts). */
  private timeoutsSuspended = false;
  /** Set by the scaler when the instance is given to a function version. */
  assignedTo: string | null = null;
  /** Invocations the runtime runs at once (perInstance concurrency; 1 is the Lambda model). */
  concurrency = 1;
  /** The code it was given (assign), from which the host resolves the handler's file. */
  code: CodeTree | null = null;
  lastUsed = Date.now();
  dead = false;
  /** Peak RSS polled while busy (bytes), when no cgroup enforces the limit. */
  polledRss = 0;
  private child: SandboxProcess;
  private channel: HostChannel;
  private pending: Pending[] = [];
  private readonly cgroup: string | null;
  private readonly cpuCgroup: string | null;
  private stderrTail = '';
  private killedBy: 'timeout' | 'oom' | 'stop' | null = null;
  /** Stopped with SIGSTOP while idle (see freeze). */
  private frozen = false;
  /** When the last invocation ended (performance.now()); the freezer stops instances idle past FREEZE_AFTER_MS. */
  idleSince = 0;
  /** The invocation whose timeout killed the process. */
  private timedOut: string | null = null;
  private fatal: SerializedError | null = null;
  private exitListeners: ((inst: SandboxInstance) => void)[] = [];
  private leafPid: number | null = null;

  private constructor(
    private readonly env: InstanceEnv,
    readonly memoryMB: number,
    /** Size of the tmpfs at /tmp under bubblewrap (the function's ephemeralStorage, MB). */
    readonly tmpMB: number,
    readonly network: NetworkMode,
    prepared: Prepared,
    proc: SandboxProcess,
    nat: boolean,
    whenReady: (err?: Error) => void,
    private readonly inspectable = false,
  ) {
    this.id = prepared.id;
    this.dir = prepared.dir;
    this.inspectSocket = inspectable ? join(this.dir, 'inspect', INSPECT_SOCKET) : undefined;
    this.inspectSocketInside = inspectable ? `${BWRAP_INSPECT_DIR}/${INSPECT_SOCKET}` : undefined;
    this.taskDir = join(this.dir, 'task');
    this.tmpDir = join(this.dir, 'tmp');
    this.cgroup = prepared.cgroup;
    this.cpuCgroup = prepared.cpuCgroup;
    this.child = proc;
    const { caps } = env;
    this.codeDirInside = caps.bwrap ? BWRAP_TASK : this.taskDir;
    this.tmpDirInside = caps.bwrap ? '/tmp' : this.tmpDir;
    this.awsSocketInside =
      caps.bwrap && env.endpointDir ? `${BWRAP_ENDPOINT_DIR}/${ENDPOINT_SOCKET}` : undefined;
    // Ready once the runtime has booted and, with NAT, the network is configured (they proceed in parallel).
    let parts = nat ? 2 : 1;
    let settled = false;
    const ready = (err?: Error): void => {
      if (settled) return;
      if (err || --parts === 0) {
        settled = true;
        clearTimeout(readyTimer);
        whenReady(err);
      }
    };
    const readyTimer = setTimeout(() => {
      ready(new Error(`sandbox did not start within ${READY_TIMEOUT_MS} ms: ${this.stderrTail.slice(-500)}`));
      this.kill('stop');
    }, READY_TIMEOUT_MS);
    let isReady = false;
    this.channel = new HostChannel(
      proc.channel,
      (raw) => {
        const m = readSandboxMessage(raw);
        if (!m) return;
        if (!isReady && m.t === 'ready') {
          isReady = true;
          ready();
          return;
        }
        this.onMessage(m);
        // Flooding the channel is treated like a crash: the process goes, its invocations fail.
      },
      () => this.kill('stop'),
    );
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d: string) => this.onOutput(d));
    proc.stderr.on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-4096);
      this.onOutput(d);
    });
    for (const s of [proc.stdout, proc.stderr]) s.on('error', () => undefined);
    let natReady = false;
    proc.listen({
      // Invocations sent from now on never start: the invoker runs them elsewhere (REQUEUE).
      lost: () => (this.dead = true),
      natReady: () => {
        natReady = true;
        ready();
      },
      natExit: (code, signal, tail) => {
        if (!natReady) ready(new Error(`slirp4netns exited during start (${signal ?? code}): ${tail}`));
        // An instance whose network went away is broken: it goes, and its invocations fail as a crash.
        if (!this.dead) this.kill('stop');
      },
      // After the channel and pipes are drained, so a fatal message written just before the process died is
      // read before its death is reported.
      close: (code, signal) => {
        if (!isReady)
          ready(new Error(`sandbox exited during start (${signal ?? code}): ${this.stderrTail.slice(-500)}`));
        this.onExit(code, signal);
      },
    });
  }

  /** Starts a stem cell and resolves once its runtime has booted (and its network is configured). */
  static async start(
    env: InstanceEnv,
    memoryMB: number,
    tmpMB: number,
    network: NetworkMode = 'outbound',
    opts: StartOptions = {},
  ): Promise<SandboxInstance> {
    // A debugger runs any code in the process, and Node's permission model forbids the inspector: an
    // inspectable instance runs without the permission model, so only bubblewrap's mounts and network
    // namespace may confine it (and keep its inspector off the host's ports).
    if (opts.inspect && env.caps.bwrap === null) {
      throw new Error('an inspector needs bubblewrap, which this node lacks');
    }
    // Fail closed: without bubblewrap the sandbox shares the host's network (a function deployed as
    // `network: none` by another node, sharing a PostgreSQL store, must not run here with it).
    if (network === 'none' && env.caps.bwrap === null) {
      throw new Error(
        'network: none needs bubblewrap, which this node lacks (functions here share its network)',
      );
    }
    const prepared = await prepare(env, memoryMB, opts.inspect === true);
    // Outbound traffic leaves a bubblewrap sandbox's own network namespace through slirp4netns (user-mode
    // NAT), attached once bwrap reports the sandbox's pid on its info descriptor (fd 4).
    const nat = env.caps.bwrap !== null && env.caps.slirp4netns !== null && network === 'outbound';
    let proc: SandboxProcess;
    try {
      proc = await env.spawner.spawn(spawnRequest(env, prepared, memoryMB, tmpMB, nat));
    } catch (err) {
      removePrepared(prepared);
      throw err;
    }
    return new Promise((resolve, reject) => {
      const inst: SandboxInstance = new SandboxInstance(
        env,
        memoryMB,
        tmpMB,
        network,
        prepared,
        proc,
        nat,
        (err) => (err ? reject(err) : resolve(inst)),
        opts.inspect === true,
      );
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The slirp4netns process's pid, while it runs (tests and measurements look at it). */
  get natPid(): number | undefined {
    return this.child.natPid;
  }

  /**
   * AWS_ENDPOINT_URL as this sandbox must use it: in a network namespace of its own, the runtime serves the
   * endpoint on the sandbox's 127.0.0.1 at the same port (forwarded to the socket), whatever the host
   * listener's address.
   */
  endpointInside(url: string | undefined): string | undefined {
    if (url === undefined || this.awsSocketInside === undefined) return url;
    try {
      const port = Number(new URL(url).port || 80);
      // node in the sandbox has no capability to bind a port below 1024.
      return `http://127.0.0.1:${port < 1024 ? 4566 : port}`;
    } catch {
      return url;
    }
  }

  get busy(): boolean {
    return this.pending.length > 0;
  }

  /** Invocations sent and not yet answered (the running one and any queued behind it). */
  get queued(): number {
    return this.pending.length;
  }

  onExitOnce(fn: (inst: SandboxInstance) => void): void {
    this.exitListeners.push(fn);
  }

  /** Gives this stem cell a function's code: hard links of the version's files appear in its read-only task dir. */
  async assign(functionKey: string, code: CodeTree, concurrency = 1): Promise<void> {
    await linkTree(code, this.taskDir);
    this.code = code;
    this.assignedTo = functionKey;
    this.concurrency = concurrency;
  }

  /**
   * Sends an invocation. The process runs one invocation at a time; a second one sent while the first runs is
   * queued inside the runtime and starts when the first ends (its timeout clock starts then too). Sending it
   * ahead saves a wake-up per invocation when the scaler decides a short wait beats a cold start.
   */
  invoke(msg: InvokeMessage, timeoutSec: number): Promise<TimedResult> {
    if (this.dead) return Promise.resolve({ ...REQUEUE, durationMs: 0 });
    this.thaw();
    return new Promise((resolveTimed) => {
      const p: Pending = {
        id: msg.id,
        resolveTimed,
        logs: '',
        timer: null,
        timeoutSec,
        startedAt: 0,
        wantsCache: msg.init?.produceCodeCache === true && this.pending.length === 0,
      };
      this.pending.push(p);
      if (this.pending.length <= this.concurrency) this.startWaiting();
      msg.timeoutMs = timeoutSec * 1000;
      try {
        // A cold start's init and event leave now, in one write, rather than at the end of this turn.
        if (msg.init) this.channel.sendNow(msg);
        else this.channel.send(msg);
      } catch (err) {
        this.settle(p, {
          kind: 'error',
          error: {
            errorType: 'InvalidRequestContentException',
            errorMessage: (err as Error).message,
            trace: [],
          },
          logs: '',
          rss: 0,
          initMs: undefined,
        });
      }
    });
  }

  /**
   * The first `concurrency` unanswered invocations are the ones running (the runtime starts them in the
   * order sent): their timeouts and the memory watch start here.
   */
  private startWaiting(): void {
    let running = 0;
    for (const p of this.pending) {
      if (running >= this.concurrency) break;
      running++;
      if (p.startedAt === 0) p.startedAt = performance.now();
      if (p.timer || this.timeoutsSuspended) continue;
      p.timer = setTimeout(() => this.kill('timeout', p.id), p.timeoutSec * 1000);
      if (running === 1) this.polledRss = 0;
    }
    if (running > 0 && !this.cgroup) watchMemory(this, true);
  }

  /**
   * While a debugger is attached (true), running invocations have no timeout, since a breakpoint holds them;
   * once it detaches (false) each running one gets its whole timeout again, counted from then.
   */
  suspendTimeouts(suspended: boolean): void {
    if (this.timeoutsSuspended === suspended) return;
    this.timeoutsSuspended = suspended;
    // The runtime follows, so that getRemainingTimeInMillis agrees with the timeouts here.
    if (!this.dead) this.channel.send({ t: 'deadline', suspended });
    for (const p of this.pending) {
      if (p.timer) clearTimeout(p.timer);
      p.timer = null;
    }
    if (!suspended) this.startWaiting();
  }

  private settle(p: Pending, r: InvocationResult): void {
    const at = this.pending.indexOf(p);
    if (at < 0) return;
    this.pending.splice(at, 1);
    if (p.timer) clearTimeout(p.timer);
    if (this.pending.length === 0) {
      if (!this.cgroup) watchMemory(this, false);
      this.idleSince = performance.now();
      idleWatch(this);
    } else if (at < this.concurrency) {
      this.startWaiting();
    }
    this.lastUsed = Date.now();
    const durationMs = p.startedAt === 0 ? 0 : performance.now() - p.startedAt;
    // Results are fresh objects except the shared REQUEUE marker, which must not be written to.
    if (r === REQUEUE) p.resolveTimed({ ...r, durationMs });
    else {
      (r as TimedResult).durationMs = durationMs;
      p.resolveTimed(r as TimedResult);
    }
  }

  private find(id: string): Pending | undefined {
    const head = this.pending[0];
    return head?.id === id ? head : this.pending.find((x) => x.id === id);
  }

  private onMessage(m: SandboxMessage): void {
    // The code cache is taken only as the first message after the init that asked for it: the runtime writes
    // it before the function's code runs, so nothing the function sends can come first.
    const head = this.pending[0];
    if (head?.wantsCache) {
      head.wantsCache = false;
      if (m.t === 'codecache' && m.id === head.id) {
        if (m.data !== undefined) head.producedCache = m.data;
        return;
      }
    }
    switch (m.t) {
      case 'result': {
        const p = this.find(m.id);
        if (!p) return;
        const logs = m.logs ? appendCapped(p.logs, m.logs) : p.logs;
        // Only the invocation that loaded the function has one: the warm path builds no extra object.
        const codeCache =
          m.codeCache !== undefined || p.producedCache !== undefined
            ? {
                ...(m.codeCache !== undefined ? { used: m.codeCache } : {}),
                ...(p.producedCache !== undefined ? { produced: p.producedCache } : {}),
              }
            : undefined;
        if (m.ok) {
          const r: InvocationResult = {
            kind: 'ok',
            payload: m.payload ?? 'null',
            logs,
            rss: this.peakRss(),
            initMs: m.initMs,
          };
          if (codeCache) r.codeCache = codeCache;
          if (m.handler) r.handler = m.handler;
          this.settle(p, r);
        } else {
          this.settle(p, {
            kind: m.errorKind === 'init' ? 'init' : m.errorKind === 'unhandled' ? 'unhandled' : 'error',
            error: m.error ?? { errorType: 'Error', errorMessage: 'unknown error', trace: [] },
            logs,
            rss: this.peakRss(),
            initMs: m.initMs,
            ...(m.exports ? { exports: m.exports } : {}),
            ...(codeCache ? { codeCache } : {}),
          });
        }
        return;
      }
      case 'log': {
        const p = this.find(m.id);
        if (p) p.logs = appendCapped(p.logs, m.data);
        return;
      }
      case 'fatal': {
        this.fatal = m.error;
        const p = m.id === null ? this.pending[0] : this.find(m.id);
        if (p && m.logs) p.logs = appendCapped(p.logs, m.logs);
        return;
      }
      default:
        return;
    }
  }

  private onOutput(d: string): void {
    const head = this.pending[0];
    if (head) head.logs = appendCapped(head.logs, d);
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.dead = true;
    const oom = this.killedBy !== 'timeout' && (this.killedBy === 'oom' || this.sawOom());
    const how = signal ? `signal: ${signal.replace('SIG', '').toLowerCase()}` : `exit status ${code ?? 0}`;
    // Every invocation that was running fails with the reason the process died; with perInstance > 1 the
    // others running beside a timed-out one fail too, since they shared its process.
    for (const p of this.pending.filter((x) => x.timer !== null)) {
      this.settle(p, this.deathResult(p, oom, how));
    }
    // Invocations queued behind them never started: they can safely run elsewhere.
    for (const q of this.pending.splice(0)) {
      if (q.timer) clearTimeout(q.timer);
      q.resolveTimed({ ...REQUEUE, durationMs: 0 });
    }
    if (!this.cgroup) watchMemory(this, false);
    this.channel.close();
    this.child.killNat();
    this.cleanup();
    for (const fn of this.exitListeners.splice(0)) fn(this);
  }

  private deathResult(p: Pending, oom: boolean, how: string): InvocationResult {
    const base = { logs: p.logs, rss: this.polledRss, initMs: undefined };
    if (this.killedBy === 'timeout' && (this.timedOut === null || this.timedOut === p.id)) {
      const message = `${new Date().toISOString()} ${p.id} Task timed out after ${p.timeoutSec.toFixed(2)} seconds`;
      return {
        ...base,
        kind: 'timeout',
        error: { errorType: 'Sandbox.Timedout', errorMessage: message, trace: [] },
      };
    }
    if (oom) {
      return {
        ...base,
        kind: 'oom',
        rss: Math.max(this.polledRss, this.memoryMB * 1024 * 1024),
        error: {
          errorType: 'Runtime.OutOfMemory',
          errorMessage: `RequestId: ${p.id} Error: Runtime exited with error: signal: killed (memory limit of ${this.memoryMB} MB exceeded)`,
          trace: [],
        },
      };
    }
    if (this.fatal) return { ...base, kind: 'unhandled', error: this.fatal };
    return {
      ...base,
      kind: 'unhandled',
      error: {
        errorType: 'Runtime.ExitError',
        errorMessage: `RequestId: ${p.id} Error: Runtime exited with error: ${how}`,
        trace: [],
      },
    };
  }

  /** The V8 heap limit aborts with a recognisable message; the cgroup limit shows up as an oom_kill count. */
  private sawOom(): boolean {
    if (/heap out of memory|Reached heap limit|Allocation failed/.test(this.stderrTail)) return true;
    if (!this.cgroup) return false;
    try {
      return /oom_kill [1-9]/.test(readFileSync(join(this.cgroup, 'memory.oom_control'), 'utf8'));
    } catch {
      return false;
    }
  }

  /**
   * The instance's peak memory (bytes) as the host measures it, never as the sandbox reports it: the memory
   * cgroup's high-water mark where there is one, else the process's VmHWM from /proc, and at least the
   * polled peak. Like Lambda's Max Memory Used, it is the instance's peak so far, not this invocation's.
   */
  peakRss(): number {
    // Read at most every 100 ms: three syscalls per invocation cost warm throughput, and a high-water mark
    // read a moment ago is still the peak, short of what the last 100 ms added.
    const now = performance.now();
    if (now - this.peakReadAt < 100) return Math.max(this.peakCached, this.polledRss);
    this.peakReadAt = now;
    this.peakCached = this.readPeak();
    return this.peakCached;
  }

  private peakReadAt = -Infinity;
  private peakCached = 0;

  private readPeak(): number {
    let peak = this.polledRss;
    if (this.cgroup) {
      const v = Number(readIfExists(join(this.cgroup, 'memory.max_usage_in_bytes')));
      if (Number.isFinite(v) && v > peak) peak = v;
      return peak;
    }
    const pid = this.nodePid();
    if (pid === null) return peak;
    const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readIfExists(`/proc/${pid}/status`) ?? '')?.[1]);
    return Number.isFinite(kb) && kb * 1024 > peak ? kb * 1024 : peak;
  }

  /** Reads the sandboxed node's RSS (bytes) from /proc, for hosts without a memory cgroup. */
  readRss(): number {
    const pid = this.nodePid();
    if (pid === null) return 0;
    try {
      const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
      return pages * 4096;
    } catch {
      return 0;
    }
  }

  /**
   * An idle instance is stopped (SIGSTOP) between invocations, as Lambda freezes its execution environment:
   * a timer or loop a function leaves behind cannot burn CPU or do work after it answered, and runs on only
   * when the next invocation thaws it (SIGCONT). Works at every level, with or without cgroups; a signal
   * costs a syscall. Only the sandboxed node process is stopped, and only while it is alive.
   */
  /** Stops the instance if it is still idle since `idleSince`; true once it needs no more watching. */
  freezeIfIdle(now: number): boolean {
    // A stopped process cannot answer its debugger.
    if (this.dead || this.frozen || this.pending.length > 0 || this.inspectable) return true;
    if (now - this.idleSince < FREEZE_AFTER_MS) return false;
    this.freeze();
    return true;
  }

  private freeze(): void {
    if (this.dead || this.frozen) return;
    const pid = this.nodePid();
    // Without bubblewrap the child is node itself; under it, node is a descendant that must have been found.
    if (pid === null || (this.env.caps.bwrap !== null && pid === this.child.pid)) return;
    try {
      process.kill(pid, 'SIGSTOP');
      this.frozen = true;
    } catch {
      // Gone already: its exit handler reports it.
    }
  }

  private thaw(): void {
    if (!this.frozen) return;
    this.frozen = false;
    const pid = this.nodePid();
    try {
      if (pid !== null) process.kill(pid, 'SIGCONT');
    } catch {
      // Gone already.
    }
  }

  /** Under bubblewrap the node process is a grandchild; follow /proc children links to the leaf once. */
  private nodePid(): number | null {
    if (this.leafPid !== null) return this.leafPid;
    let pid = this.child.pid;
    if (pid === undefined) return null;
    for (let depth = 0; depth < 5; depth++) {
      let children: string[];
      try {
        children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
          .trim()
          .split(/\s+/)
          .filter(Boolean);
      } catch {
        break;
      }
      if (children.length === 0) break;
      pid = Number(children[0]);
    }
    this.leafPid = pid;
    return pid;
  }

  kill(reason: 'timeout' | 'oom' | 'stop', invocationId?: string): void {
    if (this.dead) return;
    this.killedBy ??= reason;
    if (reason === 'timeout' && invocationId) this.timedOut ??= invocationId;
    this.child.kill('SIGKILL');
  }

  /** Graceful stop for idle instances: ask the runtime to exit, kill if it lingers. */
  stop(): void {
    if (this.dead) return;
    this.killedBy ??= 'stop';
    this.thaw();
    this.channel.send({ t: 'shutdown' });
    setTimeout(() => this.kill('stop'), 500).unref();
  }

  private cleanup(): void {
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // best effort: a leftover directory holds nothing secret and is swept at next start
    }
    for (const cg of [this.cgroup, this.cpuCgroup]) {
      if (!cg) continue;
      // The kernel needs a moment after the last task leaves before the directory can go.
      const tryRemove = (attempt: number): void => {
        try {
          rmdirSync(cg);
        } catch {
          if (attempt < 20) setTimeout(() => tryRemove(attempt + 1), 50).unref();
        }
      };
      tryRemove(0);
    }
  }
}

function appendCapped(current: string, more: string): string {
  const next = current + more;
  return next.length > MAX_LOG_BYTES ? next.slice(next.length - MAX_LOG_BYTES) : next;
}

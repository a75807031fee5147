// Starts a real Nimbus (real ports, real sandbox processes, SQLite in a temp dir or PostgreSQL in a schema of
// its own) for end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNimbus, type RunningNimbus, type StartOptions } from '../src/server.js';
import { NimbusClient } from '../src/client/index.js';
import { packageService } from '../src/build/package.js';
import { detectSandbox } from '../src/sandbox/detect.js';
import { afterAll } from 'vitest';
import { createTestSchema, storeBackends, type TestSchema } from './support/postgres.js';

export const FIXTURES = join(import.meta.dirname, 'fixtures', 'services');

// Every `nimbus up` and CLI process a test file starts inherits this: servers are recorded in a temporary
// state folder of the file's own, never in the user's ~/.local/state, and files running side by side do not
// find each other's servers.
export const STATE_HOME = mkdtempSync(join(tmpdir(), 'nimbus-test-state-'));
process.env['XDG_STATE_HOME'] = STATE_HOME;
afterAll(() => rmSync(STATE_HOME, { recursive: true, force: true }));

export type Backend = 'sqlite' | 'postgresql';

/** The backends every e2e suite that touches state runs on: SQLite, and PostgreSQL when it is reachable
 *  (always in CI, where an unreachable server fails the run instead). */
export const BACKENDS: Backend[] = await storeBackends();

export interface TestNimbus extends RunningNimbus {
  client: NimbusClient;
  backend: Backend;
  /** Packages and deploys a folder; `verify: false` skips loading its handlers first (`--no-verify`). */
  deploy(dir: string, opts?: { verify?: boolean }): Promise<unknown>;
  /** Stops and deletes the data (temp dir and, on PostgreSQL, the schema). */
  cleanup(): Promise<void>;
}

export interface TestOptions extends StartOptions {
  backend?: Backend;
  /** A PostgreSQL URL to reuse (a restart over the same data); a fresh schema otherwise. */
  storeUrl?: string;
}

export async function startTestNimbus(opts: TestOptions = {}): Promise<TestNimbus> {
  const { backend = 'sqlite', storeUrl, ...rest } = opts;
  const dataDir = rest.dataDir ?? mkdtempSync(join(tmpdir(), 'nimbus-test-'));
  const schema = backend === 'postgresql' && !storeUrl ? await createTestSchema('e2e') : undefined;
  const store = backend === 'postgresql' ? (storeUrl ?? schema!.url) : 'sqlite';
  let n: RunningNimbus;
  try {
    n = await startNimbus({
      port: 0,
      apiPort: 0,
      smtpPort: 0,
      dataDir,
      logLevel: 'silent',
      stemCells: 2,
      store,
      ...rest,
    });
  } catch (err) {
    await schema?.drop();
    throw err;
  }
  const client = new NimbusClient({ apiUrl: n.apiUrl, apiKey: n.apiKey });
  return {
    ...n,
    client,
    backend,
    deploy: async (dir, o) => client.deploy((await packageService(dir)).archive, undefined, o),
    cleanup: async () => {
      await n.stop();
      if (!rest.dataDir) rmSync(dataDir, { recursive: true, force: true });
      await schema?.drop();
    },
  };
}

/**
 * Whether bubblewrap works here. Tests that need it skip with a message when it does not, except under
 * CI=true, where CI installs it and its absence must fail the run rather than hide a weaker sandbox.
 */
export function bubblewrapAvailable(): boolean {
  const caps = detectSandbox({ disableBwrap: false, disableCgroup: true });
  if (caps.bwrap) return true;
  if (process.env.CI === 'true') {
    throw new Error(
      'bubblewrap is missing or does not work, and CI must test with it: apt-get install bubblewrap',
    );
  }
  console.warn(
    'bubblewrap tests skipped: bwrap is missing or does not work here (apt-get install bubblewrap)',
  );
  return false;
}

/** Polls until fn returns a truthy value (records are written off the hot path). */
/**
 * The host's first non-loopback IPv4 address, or undefined: under bubblewrap a sandbox has its own network
 * namespace and reaches the host only there (outbound through NAT), never on the host's 127.0.0.1. A test
 * server that functions must call listens on it.
 */
export const HOST_OUTSIDE: string | undefined = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

/** The secret part of a key `<prefix>_<id>_<secret>`: the secret's own alphabet may hold `_` too. */
export function secretOf(key: string): string {
  return key.slice(key.indexOf('_', key.indexOf('_') + 1) + 1);
}

export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  ms = 10_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const BIN = join(import.meta.dirname, '..', 'bin', 'nimbus.js');

export interface UpProcess {
  proc: ChildProcess;
  info: { gatewayUrl: string; apiUrl: string; keyFile: string; sandboxLevel: string };
  stderr: () => string;
}

/**
 * `nimbus up --json` as its own process, resolved once it prints where it listens. `launcher` is a command
 * that execs it (a shell that opens descriptors first, as whatever starts Nimbus might).
 */
export function startUpProcess(
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  launcher: string[] = [],
): Promise<UpProcess> {
  return new Promise((resolve, reject) => {
    const node = [process.execPath, BIN, 'up', '--port', '0', '--api-port', '0', '--json', ...args];
    const [cmd, ...rest] = [...launcher, ...node];
    const proc = spawn(cmd!, rest, { env, cwd: join(import.meta.dirname, '..') });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve({ proc, info: JSON.parse(line), stderr: () => err });
    });
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.on('exit', (code) => reject(new Error(`nimbus up exited with ${code}: ${err}`)));
  });
}

export function exited(p: ChildProcess): Promise<number | null> {
  return p.exitCode !== null || p.signalCode !== null
    ? Promise.resolve(p.exitCode)
    : new Promise((r) => p.on('exit', (c) => r(c)));
}

/**
 * A `nimbus up` process on a data dir (and, on PostgreSQL, a schema) of its own, for tests that SIGKILL it and
 * start it again on the same data. Call it in a describe block: the process, the dir and the schema go after
 * the block's tests.
 */
export function upProcessRig(backend: Backend, label: string) {
  const dataDir = mkdtempSync(join(tmpdir(), `nimbus-${label}-`));
  let schema: TestSchema | undefined;
  let current: UpProcess | undefined;
  afterAll(async () => {
    if (current) {
      current.proc.kill('SIGKILL');
      await exited(current.proc);
    }
    rmSync(dataDir, { recursive: true, force: true });
    await schema?.drop();
  });
  return {
    dataDir,
    /** Starts `nimbus up` (the first time on a new schema); the process and the API key it keeps. */
    async start(): Promise<{ up: UpProcess; key: string }> {
      if (backend === 'postgresql' && !schema)
        schema = await createTestSchema(label.replace(/[^a-z0-9]/g, ''));
      current = await startUpProcess({
        ...process.env,
        NIMBUS_DATA: dataDir,
        NIMBUS_STORE: schema?.url ?? 'sqlite',
        NIMBUS_LOG_LEVEL: 'error',
        NIMBUS_API_URL: '',
        NIMBUS_API_KEY: '',
      });
      return { up: current, key: readFileSync(join(dataDir, 'api-key'), 'utf8').trim() };
    },
  };
}

/** How many object byte files the data dir holds (the file ByteStore's layout: objects/bytes/<2 hex>/...). */
export function byteFiles(dataDir: string): number {
  const root = join(dataDir, 'objects', 'bytes');
  return readdirSync(root).reduce((n, d) => n + readdirSync(join(root, d)).length, 0);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (bin/nimbus.js) with this environment on top of the test's, and stdin when given. */
export function runNimbus(env: NodeJS.ProcessEnv, args: string[], stdin?: string): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, NIMBUS_DATA: '', ...env },
      cwd: join(import.meta.dirname, '..'),
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolvePromise({ code: code ?? 1, stdout, stderr }));
    p.stdin.end(stdin ?? '');
  });
}

/** Every process whose command line names this sandbox root, followed down to its leaf: the sandboxed node. */
export function sandboxedNodes(root: string): number[] {
  const pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  const leaves = new Set<number>();
  for (const pid of pids) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmdline.includes(root)) continue;
    let leaf = pid;
    for (;;) {
      let children: string[] = [];
      try {
        children = readFileSync(`/proc/${leaf}/task/${leaf}/children`, 'utf8')
          .trim()
          .split(/\s+/)
          .filter(Boolean);
      } catch {
        // gone
      }
      if (children.length === 0) break;
      leaf = children[0]!;
    }
    try {
      if (readlinkSync(`/proc/${leaf}/exe`) === process.execPath) leaves.add(Number(leaf));
    } catch {
      // gone meanwhile
    }
  }
  return [...leaves];
}

/** The sandbox spawner helpers (src/sandbox/spawner-helper.ts) a process started: they fork its sandboxes. */
export function spawnerHelpers(parent: number): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== parent) continue;
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('spawner-helper.js')) out.push(Number(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const slirpsSeen = new Set<number>();

/**
 * slirp4netns processes started for this process (an in-process Nimbus) by its spawner helper, with the
 * sandbox pid each serves.
 */
export function slirpChildren(): { pid: number; target: number }[] {
  const out: { pid: number; target: number }[] = [];
  const spawners = new Set([process.pid, ...spawnerHelpers(process.pid)]);
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      // One seen before still counts once its helper is gone (reparented): it must not outlive Nimbus.
      if (!spawners.has(ppid) && !slirpsSeen.has(Number(pid))) continue;
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!cmdline[0]?.endsWith('slirp4netns')) continue;
      slirpsSeen.add(Number(pid));
      const target = /^\/proc\/(\d+)\/ns\/net$/.exec(cmdline.find((a) => a.startsWith('/proc/')) ?? '');
      out.push({ pid: Number(pid), target: Number(target?.[1]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

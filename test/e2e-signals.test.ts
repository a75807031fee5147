// Stopping as users stop Nimbus: SIGTERM to `npm start` (what a supervisor or a terminal's kill does), to
// the shell npx runs nimbus under, and SIGINT to `nimbus up` itself. Each must leave no process of its tree
// behind and free its ports, and `nimbus up` must have stopped cleanly (records removed, exit 0).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, eventually, exited } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const root = mkdtempSync(join(tmpdir(), 'nimbus-signals-'));
const started: ChildProcess[] = [];
afterAll(async () => {
  for (const p of started) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await exited(p);
    }
  }
  rmSync(root, { recursive: true, force: true });
});

/** A port free right now: the test chooses the ports, as a user passing --port does. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function env(home: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('NIMBUS_') && !k.startsWith('npm_')) e[k] = v;
  // npm writes its logs and cache under HOME, and nimbus up its record under XDG_STATE_HOME: both temporary.
  return { ...e, HOME: home, XDG_STATE_HOME: join(home, 'state'), NIMBUS_LOG_LEVEL: 'warn' };
}

/** Every descendant of pid, from /proc's parent links. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command name is in parentheses and may hold spaces: the fields after it are fixed.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(Number(name), ppid);
    } catch {
      // Gone while we looked.
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [child, parent] of parents) {
      if (parent === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

/** A process that is gone, or a zombie waiting for its parent (it holds no ports or files). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Starts cmd, resolved once nimbus up says it is up. */
function start(
  cmd: string,
  args: string[],
  home: string,
): Promise<{ proc: ChildProcess; out: () => string }> {
  const proc = spawn(cmd, args, { cwd: ROOT, env: env(home) });
  started.push(proc);
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Press Ctrl+C to stop.')) resolve({ proc, out: () => out + err });
    });
    proc.on('exit', (code) => reject(new Error(`${cmd} exited with ${code} before it was up: ${out}${err}`)));
  });
}

async function expectAllGone(tree: number[], ports: number[], home: string): Promise<void> {
  await eventually(async () => tree.every(gone), 30_000);
  for (const port of ports) {
    expect(await refused(port)).toBe(true);
    expect(await bindable(port)).toBe(true);
  }
  // A clean stop removes its record from the user's state folder.
  const records = join(home, 'state', 'nimbus', 'servers');
  expect(existsSync(records) ? readdirSync(records) : []).toEqual([]);
}

describe('stopping on signals', () => {
  it('npm start: SIGTERM to npm stops Nimbus cleanly, exit 0, no process left, ports free', async () => {
    const home = mkdtempSync(join(root, 'npm-'));
    const [port, apiPort] = [await freePort(), await freePort()];
    const args = ['start', '--', '--port', String(port), '--api-port', String(apiPort), '--smtp-port', '0'];
    const { proc, out } = await start('npm', [...args, '--data', join(home, 'data')], home);
    expect(out()).toContain(`http://127.0.0.1:${port}`);
    const res = await fetch(`http://127.0.0.1:${port}/hello?name=npm`);
    expect(await res.json()).toEqual({ message: 'Hello, npm!' });
    const tree = descendants(proc.pid!);
    // npm, and below it nimbus up with its sandboxes.
    expect(tree.length).toBeGreaterThan(1);

    proc.kill('SIGTERM');
    expect(await exited(proc)).toBe(0);
    expect(out()).toContain('Stopping (SIGTERM)');
    await expectAllGone(tree, [port, apiPort], home);
  });

  it('npx: SIGTERM to the shell npm runs nimbus under (which dies without passing it on) stops Nimbus too', async () => {
    const home = mkdtempSync(join(root, 'npx-'));
    const [port, apiPort] = [await freePort(), await freePort()];
    // What `npx nimbus up` runs: npm exec starts the bin through `sh -c`, with npm's variables set.
    const command = `"${process.execPath}" "${BIN}" up --port ${port} --api-port ${apiPort} --smtp-port 0 --data "${join(home, 'data')}"`;
    const proc = spawn('sh', ['-c', command], {
      cwd: ROOT,
      env: { ...env(home), npm_lifecycle_event: 'npx', npm_lifecycle_script: 'nimbus' },
    });
    started.push(proc);
    await eventually(async () => !(await refused(apiPort)), 60_000);
    const tree = descendants(proc.pid!);
    expect(tree.length).toBeGreaterThan(0);

    proc.kill('SIGTERM');
    await exited(proc);
    await expectAllGone(tree, [port, apiPort], home);
  });

  it('nimbus up: SIGINT (Ctrl+C) stops it cleanly with exit 0 and frees its ports', async () => {
    const home = mkdtempSync(join(root, 'up-'));
    const [port, apiPort] = [await freePort(), await freePort()];
    const { proc } = await start(
      process.execPath,
      [
        BIN,
        'up',
        '--port',
        String(port),
        '--api-port',
        String(apiPort),
        '--smtp-port',
        '0',
        '--data',
        join(home, 'd'),
      ],
      home,
    );
    const tree = descendants(proc.pid!);
    proc.kill('SIGINT');
    expect(await exited(proc)).toBe(0);
    await expectAllGone(tree, [port, apiPort], home);
  });
});

// The data dir lock between real processes: children run a bundle of src/datadir (built here, so the test
// does not depend on dist/), take or try the lock when told, and report what happened as JSON lines.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { DataDirInUseError, lockDataDir, type DataDirLock } from '../src/datadir/lock.js';
import { nodeIdFor } from '../src/datadir/node-id.js';

const SRC = join(import.meta.dirname, '..', 'src', 'datadir');
const RACERS = 6;
const ONE_LINE =
  /^data dir .+ is in use by (Nimbus \(pid \d+ on host .+, started .+\)|another Nimbus process); stop that one, or choose another folder with --data DIR \(or NIMBUS_DATA\)$/;

const CHILD_SOURCE = `
import { createInterface } from 'node:readline';
import { lockDataDir } from ${JSON.stringify(join(SRC, 'lock.ts'))};
import { nodeIdFor } from ${JSON.stringify(join(SRC, 'node-id.ts'))};

const [action, dir] = process.argv.slice(2);
const say = (o: object) => process.stdout.write(JSON.stringify({ pid: process.pid, ...o }) + '\\n');
let lock: { release(): void } | undefined;
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line === 'go' && action === 'lock') {
    try {
      lock = lockDataDir(dir!);
      say({ ok: true });
    } catch (err: any) {
      say({ ok: false, name: err.name, code: err.code, holder: err.holder ?? null, message: err.message });
    }
  } else if (line === 'go' && action === 'node-id') {
    say({ ok: true, id: nodeIdFor(dir!) });
  }
});
// The parent going away (or ending stdin) ends the child, so no test leaves a holder behind.
rl.on('close', () => {
  lock?.release();
  process.exit(0);
});
say({ ready: true });
`;

let work: string;
let childScript: string;
const children = new Set<Child>();
const locks: DataDirLock[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nimbus-lock-'));
  writeFileSync(join(work, 'child.ts'), CHILD_SOURCE);
  childScript = join(work, 'child.mjs');
  // better-sqlite3 is native and stays outside the bundle; the bundle lives in a temp dir with no
  // node_modules, so it imports the project's copy by absolute URL.
  const sqlite = pathToFileURL(createRequire(import.meta.url).resolve('better-sqlite3')).href;
  await build({
    entryPoints: [join(work, 'child.ts')],
    outfile: childScript,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    plugins: [
      {
        name: 'project-better-sqlite3',
        setup(b) {
          b.onResolve({ filter: /^better-sqlite3$/ }, () => ({ path: sqlite, external: true }));
        },
      },
    ],
  });
});

afterEach(async () => {
  for (const l of locks.splice(0)) l.release();
  await Promise.all([...children].map((c) => c.stop()));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  private readonly messages: any[] = [];
  private readonly waiters: ((m: any) => void)[] = [];

  constructor(action: 'lock' | 'node-id', dir: string) {
    this.proc = spawn(process.execPath, [childScript, action, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(this);
    this.exited = new Promise((res) => this.proc.once('exit', () => res()));
    void this.exited.then(() => children.delete(this));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line);
      const w = this.waiters.shift();
      if (w) w(m);
      else this.messages.push(m);
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  next(): Promise<any> {
    const m = this.messages.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((res, rej) => {
      this.waiters.push(res);
      void this.exited.then(() => rej(new Error(`child ${this.pid} exited before answering`)));
    });
  }

  go(): void {
    this.proc.stdin!.write('go\n');
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.stdin!.end();
    await this.exited;
  }

  async kill9(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

async function spawnReady(n: number, action: 'lock' | 'node-id', dir: string): Promise<Child[]> {
  const cs = Array.from({ length: n }, () => new Child(action, dir));
  for (const c of cs) expect(await c.next()).toMatchObject({ ready: true });
  return cs;
}

/** A child that holds the lock on dir until stopped or killed. */
async function holder(dir: string): Promise<Child> {
  const [c] = await spawnReady(1, 'lock', dir);
  c!.go();
  expect(await c!.next()).toMatchObject({ ok: true });
  return c!;
}

function lock(dir: string): DataDirLock {
  const l = lockDataDir(dir);
  locks.push(l);
  return l;
}

function refusal(dir: string): DataDirInUseError {
  try {
    lock(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(DataDirInUseError);
    return err as DataDirInUseError;
  }
  throw new Error(`locking ${dir} should have been refused`);
}

function freshDir(): string {
  return join(mkdtempSync(join(work, 'case-')), 'data');
}

async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '']);
  await new Promise((res) => p.once('exit', res));
  return p.pid!;
}

/** Starts RACERS children on dir, lets them all try at once, and checks exactly one won. */
async function race(dir: string, stalePid?: number): Promise<number> {
  const cs = await spawnReady(RACERS, 'lock', dir);
  for (const c of cs) c.go();
  const results = await Promise.all(cs.map((c) => c.next()));
  const winners = results.filter((r) => r.ok);
  expect(winners).toHaveLength(1);
  const winner = winners[0].pid as number;
  for (const r of results.filter((r) => !r.ok)) {
    expect(r).toMatchObject({ name: 'DataDirInUseError', code: 'DataDirInUse' });
    expect(r.message).toMatch(ONE_LINE);
    // Named only if lock.json was believable; then it must be the winner, never the dead holder.
    if (r.holder !== null) expect(r.holder.pid).toBe(winner);
    if (stalePid !== undefined) expect(r.message).not.toContain(`pid ${stalePid} `);
  }
  expect(JSON.parse(readFileSync(join(dir, 'lock.json'), 'utf8')).pid).toBe(winner);
  await Promise.all(cs.map((c) => c.stop()));
  return winner;
}

describe('lockDataDir', () => {
  it('refuses a second lock in the same process, naming this pid', () => {
    const dir = freshDir();
    const first = lock(dir);
    expect(first.dataDir).toBe(dir);
    const err = refusal(dir);
    expect(err.code).toBe('DataDirInUse');
    expect(err.dataDir).toBe(dir);
    expect(err.holder).toMatchObject({ pid: process.pid, host: hostname() });
    expect(err.message).toMatch(ONE_LINE);
    expect(err.message).toContain(`data dir ${dir} is in use by Nimbus (pid ${process.pid} on host `);
    // The same dir reached through another path is the same dir.
    const alias = join(work, `alias-${process.pid}-${Date.now()}`);
    symlinkSync(dir, alias);
    expect(refusal(alias).holder?.pid).toBe(process.pid);
  });

  it('writes a private lock.json naming the holder, and removes it on release', () => {
    const dir = freshDir();
    const l = lock(dir);
    const info = join(dir, 'lock.json');
    expect(statSync(info).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'lock.db')).mode & 0o777).toBe(0o600);
    const parsed = JSON.parse(readFileSync(info, 'utf8'));
    expect(parsed).toMatchObject({ pid: process.pid, host: hostname() });
    expect(new Date(parsed.startedAt).toISOString()).toBe(parsed.startedAt);
    l.release();
    expect(existsSync(info)).toBe(false);
  });

  it('can be taken again after release, which is idempotent', async () => {
    const dir = freshDir();
    const l = lock(dir);
    l.release();
    l.release();
    lock(dir).release();
    const c = await holder(dir);
    expect(refusal(dir).holder?.pid).toBe(c.pid);
  });

  it('refuses while another process holds the dir, naming that process', async () => {
    const dir = freshDir();
    const c = await holder(dir);
    const err = refusal(dir);
    expect(err.holder).toMatchObject({ pid: c.pid, host: hostname() });
    expect(err.message).toMatch(ONE_LINE);
    expect(err.message).toContain(`pid ${c.pid} on host ${hostname()}`);
    expect(err.message).toContain('--data');
  });

  it('lets another process lock once this one releases', async () => {
    const dir = freshDir();
    const l = lock(dir);
    const [c] = await spawnReady(1, 'lock', dir);
    c!.go();
    expect(await c!.next()).toMatchObject({ ok: false, code: 'DataDirInUse', holder: { pid: process.pid } });
    await c!.stop();
    l.release();
    await holder(dir);
  });

  it('takes over at once from a holder killed with SIGKILL', async () => {
    const dir = freshDir();
    const c = await holder(dir);
    expect(refusal(dir).holder?.pid).toBe(c.pid);
    await c.kill9();
    // The dead holder's lock.json is still there; it must not matter.
    expect(JSON.parse(readFileSync(join(dir, 'lock.json'), 'utf8')).pid).toBe(c.pid);
    lock(dir);
    expect(JSON.parse(readFileSync(join(dir, 'lock.json'), 'utf8')).pid).toBe(process.pid);
  });

  it('still refuses, without a name, when lock.json is missing or garbled', async () => {
    const dir = freshDir();
    await holder(dir);
    rmSync(join(dir, 'lock.json'));
    const missing = refusal(dir);
    expect(missing.holder).toBeNull();
    expect(missing.message).toMatch(ONE_LINE);
    expect(missing.message).toContain(`data dir ${dir} is in use by another Nimbus process;`);
    writeFileSync(join(dir, 'lock.json'), '{"pid": "not a pid"');
    expect(refusal(dir).holder).toBeNull();
  });

  it('lets exactly one of several processes starting together win a fresh dir', async () => {
    for (let round = 0; round < 3; round++) await race(freshDir());
  });

  it('lets exactly one of several processes win a dir left by a killed holder', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = freshDir();
      const dead = await holder(dir);
      await dead.kill9();
      await race(dir, dead.pid);
    }
  });

  it('lets exactly one win over a leftover lock.json of a dead pid with no lock.db', async () => {
    const dir = freshDir();
    await holder(dir).then((c) => c.stop());
    rmSync(join(dir, 'lock.db'));
    const pid = await deadPid();
    writeFileSync(
      join(dir, 'lock.json'),
      JSON.stringify({ pid, host: hostname(), startedAt: new Date().toISOString() }),
    );
    await race(dir, pid);
  });
});

describe('nodeIdFor', () => {
  it('creates a private, sanitized id once and returns it afterwards', () => {
    const dir = freshDir();
    const id = nodeIdFor(dir);
    expect(id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*-[0-9a-f]{8}$/);
    expect(statSync(join(dir, 'node-id')).mode & 0o777).toBe(0o600);
    expect(nodeIdFor(dir)).toBe(id);
    expect(nodeIdFor(join(dir, '.'))).toBe(id);
  });

  it('is the same id in other processes', async () => {
    const dir = freshDir();
    const id = nodeIdFor(dir);
    const cs = await spawnReady(2, 'node-id', dir);
    for (const c of cs) c.go();
    for (const c of cs) expect(await c.next()).toMatchObject({ ok: true, id });
  });

  it('agrees on one id when several processes create it at once', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = freshDir();
      const cs = await spawnReady(RACERS, 'node-id', dir);
      for (const c of cs) c.go();
      const ids = new Set((await Promise.all(cs.map((c) => c.next()))).map((r) => r.id));
      expect(ids.size).toBe(1);
      expect(nodeIdFor(dir)).toBe([...ids][0]);
      await Promise.all(cs.map((c) => c.stop()));
    }
  });

  it('refuses a node-id file it cannot read as an id rather than replacing it', () => {
    const dir = freshDir();
    nodeIdFor(dir);
    writeFileSync(join(dir, 'node-id'), 'Not An Id!\n');
    expect(() => nodeIdFor(dir)).toThrow(/does not hold a node id/);
  });
});

// One data dir, one owner. Two Nimbus processes on one data dir would fight over its sandboxes and
// database, so the first to start holds a lock for its whole life and later ones refuse to start.
//
// The lock is an OS file lock, not a pid file: SQLite takes POSIX record locks on <dataDir>/lock.db, and
// the kernel drops those the moment the holder dies (exit, crash, SIGKILL). A lock left by a dead process
// therefore needs no detection and no cleanup, and taking it over is one atomic kernel operation, so two
// starting processes can never both win. lock.json beside it only names the holder for the refusal
// message; nothing decides ownership from it.
//
// POSIX locks belong to the process and vanish when the process closes ANY descriptor of the file. SQLite
// knows this and keeps its own descriptors open while a lock is held, so lock.db must only ever be opened
// through SQLite (never read, copied or archived with node:fs from inside a running Nimbus). lock.db is
// never deleted either: a waiter could lock the old inode while a newcomer locks a fresh file at the path.
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

export interface DataDirHolder {
  pid: number;
  host: string;
  startedAt: string;
}

export interface DataDirLock {
  readonly dataDir: string;
  /** Gives the data dir up (idempotent). Also runs on process exit. */
  release(): void;
}

/** Another Nimbus (possibly this very process) already owns the data dir. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
  readonly code = 'DataDirInUse' as const;
  constructor(
    readonly dataDir: string,
    readonly holder: DataDirHolder | null,
  ) {
    const by = holder
      ? `Nimbus (pid ${holder.pid} on host ${oneLine(holder.host)}, started ${oneLine(holder.startedAt)})`
      : 'another Nimbus process';
    super(
      `data dir ${oneLine(dataDir)} is in use by ${by}; stop that one, or choose another folder with --data DIR (or NIMBUS_DATA)`,
    );
  }
}

interface LockInfo extends DataDirHolder {
  token: string;
  argv: string[];
}

// How long a refused start keeps looking for a believable lock.json. The holder writes it right after
// taking the lock, so a missing or dead-pid file is normally a window of microseconds; meanwhile the lock
// itself is retried, in case its holder has just gone.
const INFO_WAIT_MS = 2000;
const RETRY_MS = 25;

const LOCK_DB = 'lock.db';
const INFO = 'lock.json';
const TMP_INFO = /^lock\.json\..+\.tmp$/;

// Locks held by this process, keyed by the real path of lock.db. Kept on globalThis so that two copies of
// this module (say src and a bundle, each with its own better-sqlite3 and so its own SQLite) still see each
// other: a second SQLite opening and closing lock.db would silently drop the first one's POSIX lock.
const REGISTRY = Symbol.for('nimbus.datadir.locks');
type Registry = Map<string, LockInfo>;
function registry(): Registry {
  const g = globalThis as { [REGISTRY]?: Registry };
  return (g[REGISTRY] ??= new Map());
}

export function lockDataDir(dataDir: string): DataDirLock {
  const dir = resolve(dataDir);
  if (mkdirSync(dir, { recursive: true, mode: 0o711 }) !== undefined) chmodSync(dir, 0o711);
  const dbPath = join(realpathSync(dir), LOCK_DB);
  const infoPath = join(dir, INFO);

  const mine = registry().get(dbPath);
  if (mine) throw new DataDirInUseError(dir, holderOf(mine));

  // Created here rather than by SQLite so it is private from the start: anyone who can open lock.db can
  // hold a read lock on it and keep every Nimbus from starting. A brand-new file carries no lock of ours,
  // so closing this descriptor cannot drop one.
  try {
    closeSync(openSync(dbPath, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }

  const db = new BetterSqlite3(dbPath, { timeout: 0 });
  try {
    let modeSet = false;
    const tryLock = (): boolean => {
      try {
        // Rollback-journal mode keeps the whole lock in lock.db itself (no -wal/-shm files to reason about).
        if (!modeSet) db.pragma('journal_mode = DELETE');
        modeSet = true;
        // The transaction stays open for the life of the process: that is the lock. Nothing is ever written
        // in it, so no hot journal is left behind when the holder dies.
        db.exec('BEGIN EXCLUSIVE');
        return true;
      } catch (err) {
        if (isBusy(err)) return false;
        throw err;
      }
    };

    const deadline = Date.now() + INFO_WAIT_MS;
    while (!tryLock()) {
      const info = readInfo(infoPath);
      if (info && believable(info)) throw new DataDirInUseError(dir, holderOf(info));
      if (Date.now() >= deadline) throw new DataDirInUseError(dir, null);
      sleep(RETRY_MS);
    }
  } catch (err) {
    db.close();
    throw err;
  }

  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(16).toString('hex'),
    argv: argvSummary(),
  };
  try {
    // Only the holder writes these, so leftovers from a holder that died mid-write are safe to remove.
    for (const name of readdirSync(dir)) if (TMP_INFO.test(name)) unlinkSync(join(dir, name));
    writeInfo(infoPath, info);
  } catch (err) {
    db.exec('ROLLBACK');
    db.close();
    throw err;
  }
  registry().set(dbPath, info);

  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.off('exit', release);
    // Removed while still holding the lock, so it can never delete the next holder's file.
    try {
      if (readInfo(infoPath)?.token === info.token) unlinkSync(infoPath);
    } catch {
      // Already gone, or the dir itself was removed: nothing left to clean up.
    }
    try {
      db.exec('ROLLBACK');
    } finally {
      db.close();
      registry().delete(dbPath);
    }
  };
  // An ordinary exit leaves no lock.json naming a process that is gone (the lock itself goes anyway).
  process.on('exit', release);
  return { dataDir: dir, release };
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * Whether lock.json plausibly describes the live holder rather than a dead one (a new holder may not have
 * replaced it yet). Only a process on this host can be checked; one elsewhere (a shared filesystem) is
 * taken at its word.
 */
function believable(info: LockInfo): boolean {
  if (info.host !== hostname()) return true;
  // Our own pid that is not in the registry is a previous life of this pid (containers reuse pid 1).
  if (info.pid === process.pid) return false;
  try {
    process.kill(info.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readInfo(path: string): LockInfo | null {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  if (!Number.isSafeInteger(r['pid']) || (r['pid'] as number) <= 0) return null;
  if (typeof r['host'] !== 'string' || typeof r['startedAt'] !== 'string') return null;
  return {
    pid: r['pid'] as number,
    host: r['host'],
    startedAt: r['startedAt'],
    token: typeof r['token'] === 'string' ? r['token'] : '',
    argv: Array.isArray(r['argv']) ? r['argv'].filter((a): a is string => typeof a === 'string') : [],
  };
}

// Written whole under a temporary name and renamed, so a refused process never reads half a file.
function writeInfo(path: string, info: LockInfo): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // Never created, or already renamed.
    }
    throw err;
  }
}

function holderOf(info: LockInfo): DataDirHolder {
  return { pid: info.pid, host: info.host, startedAt: info.startedAt };
}

// Enough to tell which command holds the dir; lock.json is private, but there is no reason to keep more.
function argvSummary(): string[] {
  const [, script, ...args] = process.argv;
  return [script ? basename(script) : 'node', ...args.slice(0, 20)].map((a) =>
    a.length > 200 ? a.slice(0, 200) + '…' : a,
  );
}

// Keeps the refusal to one line whatever a path, a hostname or a hand-edited lock.json contains.
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f]/g, '?');
}

// Synchronous on purpose: lockDataDir runs once, before anything else is started.
function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

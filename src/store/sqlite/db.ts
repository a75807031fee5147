// What every SQLite part shares: the one better-sqlite3 connection, the clock, and how writes reach the disk.
//
// Durability: the connection runs synchronous=NORMAL, which in WAL mode survives a process crash and only
// loses the last commits on power loss or an OS crash. That is fine for invocation records, event claims and
// completions, and queue receives and deletes (a lost completion or delete delivers again, a lost claim or
// receive undercounts one attempt: events and queue messages are at-least-once anyway). What is acknowledged
// to someone must survive power loss too: an accepted event (its 202), a sent message (its id), a deploy;
// and so do an event's failure count and its dead-letter state, which decide whether it runs again.
//
// Two ways to get there. durably() switches to synchronous=FULL for one transaction: simple, and the fsync
// blocks the event loop, which is fine for rare writes (deploys, removals). The hot acknowledged writes go
// through grouped(op, true) instead: ops from one turn of the event loop share one transaction, committed
// with NORMAL, and their promises resolve only after an fdatasync of the WAL file that runs on libuv's thread
// pool, so the event loop keeps serving while the disk syncs, and one sync covers every op that committed
// before it started. (The WAL holds every committed frame until a checkpoint, and SQLite syncs the WAL
// before it checkpoints, so syncing the file makes those commits as durable as FULL would.)
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Database } from 'better-sqlite3';
import type { Clock } from '../../clock/clock.js';
import { STORAGE_QUOTA_MARK, storageQuotaError } from '../errors.js';

interface GroupedOp {
  op: () => unknown;
  durable: boolean;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class SqliteDb {
  closed = false;
  private group: GroupedOp[] = [];
  private groupTimer: NodeJS.Immediate | undefined;
  private walFd: number | undefined;
  private syncing: Promise<void> | null = null;
  private syncAgain: Promise<void> | null = null;

  constructor(
    readonly db: Database,
    readonly clock: Clock,
    /** The database file, or ":memory:" (nothing to sync). */
    readonly path = ':memory:',
  ) {}

  assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }

  /** Runs fn with synchronous=FULL, so its commit is fsynced before the caller is told it happened. */
  durably<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try {
      return fn();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** An IMMEDIATE transaction (the write lock taken up front, so it never fails half way on a busy upgrade).
   *  Inside another transaction (a grouped op) it is a savepoint: the op is still all or nothing. */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      throw typedError(err);
    }
  }

  /**
   * Group commit: runs op in a transaction shared with every op grouped in the same turn of the event loop,
   * and resolves with its result once that transaction has committed, and with `durable` once the WAL is
   * synced as well. An op that throws rejects alone (wrap a multi-statement op in transaction() so it rolls
   * back alone too); the others still commit.
   */
  grouped<T>(op: () => T, durable = false): Promise<T> {
    this.assertOpen();
    return new Promise<T>((resolve, reject) => {
      this.group.push({ op, durable, resolve: resolve as (v: unknown) => void, reject });
      this.groupTimer ??= setImmediate(this.commitGroup);
    });
  }

  /** Commits the ops still waiting for their turn and syncs the WAL, synchronously (close() calls it). */
  flushSync(): void {
    if (this.groupTimer) clearImmediate(this.groupTimer);
    this.commitGroup();
    if (this.walFd !== undefined) fdatasyncSync(this.walFd);
  }

  /** After flushSync, when the connection is closed: the WAL file's descriptor goes once no sync uses it. */
  release(): void {
    const fd = this.walFd;
    if (fd === undefined) return;
    this.walFd = undefined;
    void Promise.allSettled([this.syncing, this.syncAgain]).then(() => closeSync(fd));
  }

  private readonly commitGroup = (): void => {
    this.groupTimer = undefined;
    const batch = this.group;
    this.group = [];
    if (batch.length === 0) return;
    const results: unknown[] = [];
    const failed: (unknown | undefined)[] = [];
    try {
      this.assertOpen();
      this.transaction(() => {
        for (const [i, b] of batch.entries()) {
          try {
            results[i] = b.op();
          } catch (err) {
            failed[i] = err ?? new Error('store operation failed');
          }
        }
      });
    } catch (err) {
      // The commit itself failed (a full disk, a closed store): nothing was written, every caller hears it.
      for (const b of batch) b.reject(err);
      return;
    }
    const settle = (b: GroupedOp, i: number): void => {
      if (failed[i] !== undefined) b.reject(failed[i]);
      else b.resolve(results[i]);
    };
    const durable = batch.filter((b) => b.durable);
    batch.forEach((b, i) => {
      if (!b.durable) settle(b, i);
    });
    if (durable.length === 0) return;
    this.syncWal().then(
      () => batch.forEach((b, i) => b.durable && settle(b, i)),
      (err: unknown) => {
        for (const b of durable) b.reject(err);
      },
    );
  };

  private checkpointPauses = 0;

  /**
   * Holds off SQLite's automatic checkpoints, which run on this thread inside whichever commit crosses
   * 1,000 WAL pages (measured up to 77 ms each while a 15 MB archive went in), until the returned function
   * is called. Pair with checkpointOffThread.
   */
  pauseCheckpoints(): () => void {
    if (this.checkpointPauses++ === 0) this.db.pragma('wal_autocheckpoint = 0');
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.checkpointPauses === 0 && !this.closed) this.db.pragma('wal_autocheckpoint = 1000');
    };
  }

  /** A PASSIVE checkpoint on a connection of its own in a worker thread: it copies the WAL into the
   *  database file (and syncs both) without taking the write lock, so this thread keeps writing. */
  checkpointOffThread(): Promise<void> {
    if (this.path === ':memory:') return Promise.resolve();
    const worker = new Worker(CHECKPOINT_WORKER, {
      eval: true,
      workerData: { module: requireHere.resolve('better-sqlite3'), path: this.path },
    });
    return new Promise((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`the checkpoint worker exited with ${code}`)),
      );
    });
  }

  /** Resolves once every commit so far is on disk, synced on libuv's thread pool (not the event loop). */
  synced(): Promise<void> {
    return this.syncWal();
  }

  /** Resolves once everything committed before the call is on disk. A sync already running may have started
   *  before the caller's commit, so callers arriving meanwhile share the one sync after it. */
  private syncWal(): Promise<void> {
    if (this.path === ':memory:') return Promise.resolve();
    if (!this.syncing) {
      this.syncing = this.syncOnce().finally(() => {
        this.syncing = null;
      });
      return this.syncing;
    }
    const next = (): Promise<void> => {
      this.syncAgain = null;
      return this.syncWal();
    };
    this.syncAgain ??= this.syncing.then(next, next);
    return this.syncAgain;
  }

  private syncOnce(): Promise<void> {
    // The WAL file exists from the first commit on and keeps its inode while the connection is open.
    this.walFd ??= openSync(`${this.path}-wal`, 'r');
    const fd = this.walFd;
    return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }
}

const requireHere = createRequire(import.meta.url);
const CHECKPOINT_WORKER = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path);
try { db.pragma('wal_checkpoint(PASSIVE)'); } finally { db.close(); }
`;

/** A quota trigger's abort (migration 13) as the typed error callers handle; anything else as it came. */
function typedError(err: unknown): unknown {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e?.code === 'SQLITE_CONSTRAINT_TRIGGER' && typeof e.message === 'string') {
    const at = e.message.indexOf(STORAGE_QUOTA_MARK);
    if (at >= 0) return storageQuotaError(e.message.slice(at + STORAGE_QUOTA_MARK.length)) ?? err;
  }
  return err;
}

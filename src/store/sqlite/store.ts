// The single-node Store: one better-sqlite3 connection in WAL mode, shared by every part. better-sqlite3 is
// synchronous, so every method finishes its SQL before returning; the promises exist for the interfaces the
// PostgreSQL store shares. See db.ts for what is fsynced when.
import { closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import { systemClock, type Clock } from '../../clock/clock.js';
import type { Store } from '../types.js';
import { SqliteCredentialStore } from './credentials.js';
import { SqliteApiKeyStore, SqliteAuditLog } from './api-keys.js';
import { SqliteGatewayKeyStore } from './gateway-keys.js';
import { SqliteSecretStore } from './secrets.js';
import { SqliteSpanStore } from './spans.js';
import { SqliteDb } from './db.js';
import { SqliteEventQueue } from './events.js';
import { SqliteFunctionStore } from './functions.js';
import { SqliteInvocationLog, positive, type BatchOptions } from './invocations.js';
import { migrate, userVersion } from './migrations.js';
import { SqliteObjectStore } from './objects.js';
import { SqliteNodeRegistry, SqliteProjectStore, SqliteQuotaStore } from './projects.js';
import { SqliteQueueStore } from './queues.js';
import { SqliteScheduleStore } from './schedules.js';
import { SqliteSessionStore } from './sessions.js';
import { SqliteTableStore } from './tables.js';
import { SqliteUsageStore } from './usage.js';

export interface SqliteStoreOptions extends BatchOptions {
  /** Database file, created with mode 0600 (its parent with 0700) when missing; ":memory:" for tests. */
  path: string;
  /** How long a write waits for a lock another process holds before failing. Default 5000. */
  busyTimeoutMs?: number;
  clock?: Clock;
  /** Bytes an item collection of a table with a local secondary index may hold. Default DynamoDB's 10 GB. */
  itemCollectionLimit?: number;
}

export interface SqliteStoreStats {
  journalMode: string;
  /** 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA; NORMAL between durable writes. */
  synchronous: number;
  schemaVersion: number;
  bufferedInvocations: number;
}

export function openSqliteStore(opts: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(opts);
}

export class SqliteStore implements Store {
  readonly backend = 'sqlite' as const;
  readonly location: string;
  readonly functions: SqliteFunctionStore;
  readonly invocations: SqliteInvocationLog;
  readonly spans: SqliteSpanStore;
  readonly events: SqliteEventQueue;
  readonly projects: SqliteProjectStore;
  readonly quotas: SqliteQuotaStore;
  readonly nodes: SqliteNodeRegistry;
  readonly schedules: SqliteScheduleStore;
  readonly queues: SqliteQueueStore;
  readonly tables: SqliteTableStore;
  readonly credentials: SqliteCredentialStore;
  readonly apiKeys: SqliteApiKeyStore;
  readonly gatewayKeys: SqliteGatewayKeyStore;
  readonly audit: SqliteAuditLog;
  readonly secrets: SqliteSecretStore;
  readonly objects: SqliteObjectStore;
  readonly sessions: SqliteSessionStore;
  readonly usage: SqliteUsageStore;
  private readonly s: SqliteDb;

  constructor(opts: SqliteStoreOptions) {
    this.location = opts.path;
    if (opts.path !== ':memory:') createPrivateFile(opts.path);
    const db = new BetterSqlite3(opts.path, { timeout: positive(opts.busyTimeoutMs, 5000) });
    try {
      configure(db, opts.path);
      migrate(db);
      this.s = new SqliteDb(db, opts.clock ?? systemClock, opts.path);
      this.functions = new SqliteFunctionStore(this.s);
      this.invocations = new SqliteInvocationLog(this.s, opts);
      this.spans = new SqliteSpanStore(this.s);
      this.events = new SqliteEventQueue(this.s);
      this.projects = new SqliteProjectStore(this.s);
      this.quotas = new SqliteQuotaStore(this.s);
      this.nodes = new SqliteNodeRegistry(this.s);
      this.schedules = new SqliteScheduleStore(this.s);
      this.queues = new SqliteQueueStore(this.s);
      this.tables = new SqliteTableStore(this.s, opts.itemCollectionLimit);
      this.credentials = new SqliteCredentialStore(this.s);
      this.apiKeys = new SqliteApiKeyStore(this.s);
      this.gatewayKeys = new SqliteGatewayKeyStore(this.s);
      this.audit = new SqliteAuditLog(this.s);
      this.secrets = new SqliteSecretStore(this.s);
      this.objects = new SqliteObjectStore(this.s);
      this.sessions = new SqliteSessionStore(this.s);
      this.usage = new SqliteUsageStore(this.s);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  closeSync(): void {
    if (this.s.closed) return;
    this.s.flushSync();
    this.invocations.closeSync();
    this.s.closed = true;
    this.s.db.close();
    this.s.release();
  }

  stats(): SqliteStoreStats {
    this.s.assertOpen();
    const { db } = this.s;
    return {
      journalMode: String(db.pragma('journal_mode', { simple: true })),
      synchronous: Number(db.pragma('synchronous', { simple: true })),
      schemaVersion: userVersion(db),
      bufferedInvocations: this.invocations.buffered,
    };
  }
}

function configure(db: Database, path: string): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  // NORMAL is only crash-safe with WAL; in rollback-journal mode it can corrupt the file on power loss.
  if (mode !== 'wal' && path !== ':memory:') {
    throw new Error(`${path}: SQLite could not enable WAL mode (got "${String(mode)}"); use a local disk`);
  }
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
}

function createPrivateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, 'a', 0o600);
  try {
    // Also tightens a file made by an older build or by hand; SQLite gives its -wal and -shm files this mode.
    fchmodSync(fd, 0o600);
  } catch {
    // Not our file to chmod (another owner); SQLite will report if it cannot be opened.
  } finally {
    closeSync(fd);
  }
}

// The single-node Store: one better-sqlite3 connection in WAL mode. better-sqlite3 is synchronous, so every
// method finishes its SQL before returning; the promises exist for the interface the PostgreSQL store shares.
//
// Durability: the connection runs synchronous=NORMAL, which in WAL mode survives a process crash and only
// loses the last commits on power loss or an OS crash. That is fine for invocation records and event
// completions (a lost completion replays the event: async invocations are at-least-once anyway). Deploys,
// function removal, event enqueue and attempt counts switch to synchronous=FULL for their transaction, so
// the WAL is fsynced before their promise resolves: a 202 or a "deployed" answer is never taken back.
// Invocation records wait in memory up to flushIntervalMs; only close() (or flush()) saves them from a
// process exit, so the server's SIGTERM/SIGINT handling must await close().
import { createHash } from 'node:crypto';
import { closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { Database, Statement } from 'better-sqlite3';
import type { FunctionConfig } from '../../config/manifest.js';
import type {
  DeployInput,
  DeployResult,
  FunctionVersion,
  InvocationQuery,
  InvocationRecord,
  InvocationStatus,
  QueuedEvent,
  StoredInvocation,
  Store,
  Trigger,
} from '../types.js';
import { canonicalJson } from './canonical-json.js';
import { StoreConflictError } from './errors.js';
import { migrate, userVersion } from './migrations.js';

export interface SqliteStoreOptions {
  /** Database file, created with mode 0600 (its parent with 0700) when missing; ":memory:" for tests. */
  path: string;
  /** How long an appended invocation record may wait in memory before it is written. Default 50. */
  flushIntervalMs?: number;
  /** Buffered records that trigger a write without waiting for the interval. Default 500. */
  maxBatch?: number;
  /** How long a write waits for a lock another process holds before failing. Default 5000. */
  busyTimeoutMs?: number;
  /** Told when records could not be written (appendInvocation must not throw). Default: process warning. */
  onError?: (err: Error) => void;
}

export const DEFAULT_QUERY_LIMIT = 100;
export const MAX_QUERY_LIMIT = 1000;

const SHA256_HEX = /^[0-9a-f]{64}$/;

interface FunctionRow {
  name: string;
  service: string;
  latest_version: number;
}

interface VersionRow {
  name: string;
  version: number;
  service: string;
  config: string;
  code_sha256: string;
  code_size: number;
  deployed_at: number;
}

interface EventRow {
  id: string;
  function_name: string;
  payload: string;
  enqueued_at: number;
  attempts: number;
}

interface InvocationRow {
  seq: number;
  request_id: string;
  function_name: string;
  version: string;
  trigger: string;
  start: number;
  duration_ms: number;
  billed_ms: number;
  memory_mb: number;
  max_rss: number;
  cold: number;
  init_ms: number | null;
  status: string;
  error_type: string | null;
  error_message: string | null;
  logs: string;
}

type InvocationParams = [
  requestId: string,
  functionName: string,
  version: string,
  trigger: string,
  start: number,
  durationMs: number,
  billedMs: number,
  memoryMB: number,
  maxRssBytes: number,
  cold: number,
  initMs: number | null,
  status: string,
  errorType: string | null,
  errorMessage: string | null,
  logs: string,
];

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
  private readonly db: Database;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly onError: (err: Error) => void;
  private buffer: InvocationRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;

  private readonly st: ReturnType<typeof prepareStatements>;
  private readonly queryCache = new Map<string, Statement<(string | number)[], InvocationRow>>();
  private readonly insertBatch: (batch: InvocationRecord[]) => void;
  private readonly salvageBatch: (batch: InvocationRecord[]) => number;

  constructor(opts: SqliteStoreOptions) {
    this.flushIntervalMs = positive(opts.flushIntervalMs, 50);
    this.maxBatch = Math.max(1, Math.floor(positive(opts.maxBatch, 500)));
    this.onError = opts.onError ?? ((err) => process.emitWarning(err));
    if (opts.path !== ':memory:') createPrivateFile(opts.path);

    this.db = new BetterSqlite3(opts.path, { timeout: positive(opts.busyTimeoutMs, 5000) });
    try {
      const mode = this.db.pragma('journal_mode = WAL', { simple: true });
      // NORMAL is only crash-safe with WAL; in rollback-journal mode it can corrupt the file on power loss.
      if (mode !== 'wal' && opts.path !== ':memory:') {
        throw new Error(
          `${opts.path}: SQLite could not enable WAL mode (got "${String(mode)}"); use a local disk`,
        );
      }
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      migrate(this.db);
      this.st = prepareStatements(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }

    this.insertBatch = this.db.transaction((batch: InvocationRecord[]) => {
      for (const rec of batch) this.st.insertInvocation.run(...toParams(rec));
    });
    // One bad record must not cost the batch: a failed statement rolls back alone, the rest commit together.
    this.salvageBatch = this.db.transaction((batch: InvocationRecord[]) => {
      let dropped = 0;
      for (const rec of batch) {
        try {
          this.st.insertInvocation.run(...toParams(rec));
        } catch {
          dropped++;
        }
      }
      return dropped;
    });
  }

  // --- functions, versions, code ---

  async deploy(input: DeployInput): Promise<DeployResult> {
    this.assertOpen();
    checkDeployInput(input);
    const configs = input.functions.map((f) => canonicalJson(f));
    const deployedAt = Date.now();
    return this.durably(() =>
      this.db.transaction(() => this.deployRows(input, configs, deployedAt)).immediate(),
    );
  }

  /** The body of deploy's transaction; a throw anywhere rolls back everything it wrote. */
  private deployRows(input: DeployInput, configs: string[], deployedAt: number): DeployResult {
    const { service, functions, code } = input;
    for (const f of functions) {
      const owner = this.st.getFunctionRow.get(f.name);
      if (owner && owner.service !== service) {
        throw new StoreConflictError(f.name, owner.service, service);
      }
    }
    const results: DeployResult['functions'] = [];
    let codeStored = false;
    for (const [i, f] of functions.entries()) {
      const config = configs[i]!;
      const fn = this.st.getFunctionRow.get(f.name);
      const latest = fn ? this.st.getVersionRow.get(f.name, fn.latest_version) : undefined;
      if (latest && latest.config === config && latest.code_sha256 === code.sha256) {
        results.push({ name: f.name, version: latest.version, changed: false });
        continue;
      }
      if (!codeStored && !this.st.codeExists.get(code.sha256)) {
        this.st.insertCode.run(code.sha256, code.archive.length, code.archive);
      }
      codeStored = true;
      const version = (fn?.latest_version ?? 0) + 1;
      this.st.upsertFunction.run(f.name, service, version);
      this.st.insertVersion.run(
        f.name,
        version,
        service,
        config,
        code.sha256,
        code.archive.length,
        deployedAt,
      );
      results.push({ name: f.name, version, changed: true });
    }
    const declared = new Set(functions.map((f) => f.name));
    const removed = this.st.functionsOfService
      .all(service)
      .map((r) => r.name)
      .filter((n) => !declared.has(n))
      .sort();
    for (const name of removed) this.deleteFunctionRows(name);
    if (removed.length > 0) this.st.gcCode.run();
    return { functions: results, removed };
  }

  async getFunction(name: string): Promise<FunctionVersion | undefined> {
    this.assertOpen();
    const row = this.st.getLatest.get(name);
    return row && toVersion(row);
  }

  async getVersion(name: string, version: number): Promise<FunctionVersion | undefined> {
    this.assertOpen();
    const row = this.st.getVersionRow.get(name, version);
    return row && toVersion(row);
  }

  async listFunctions(): Promise<FunctionVersion[]> {
    this.assertOpen();
    return this.st.listLatest.all().map(toVersion);
  }

  async removeFunction(name: string): Promise<boolean> {
    this.assertOpen();
    return this.durably(() =>
      this.db
        .transaction((): boolean => {
          const existed = this.deleteFunctionRows(name);
          if (existed) this.st.gcCode.run();
          return existed;
        })
        .immediate(),
    );
  }

  async getCode(sha256: string): Promise<Buffer | undefined> {
    this.assertOpen();
    return this.st.getCode.get(sha256)?.archive;
  }

  // --- async events ---

  async enqueueEvent(ev: QueuedEvent): Promise<void> {
    this.assertOpen();
    // A caller retrying an enqueue whose answer it lost must not create a second event: same id, no-op.
    this.durably(() =>
      this.st.insertEvent.run(ev.id, ev.functionName, ev.payload, ev.enqueuedAt, ev.attempts),
    );
  }

  async pendingEvents(limit: number): Promise<QueuedEvent[]> {
    this.assertOpen();
    const n = Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : -1;
    return this.st.pendingEvents.all(n).map((r) => ({
      id: r.id,
      functionName: r.function_name,
      payload: r.payload,
      enqueuedAt: r.enqueued_at,
      attempts: r.attempts,
    }));
  }

  async completeEvent(id: string): Promise<void> {
    this.assertOpen();
    this.st.deleteEvent.run(id);
  }

  async recordEventAttempt(id: string): Promise<number> {
    this.assertOpen();
    return this.durably(() => this.st.bumpAttempts.get(id)?.attempts ?? 0);
  }

  // --- invocation records ---

  appendInvocation(rec: InvocationRecord): void {
    if (this.closed) return;
    this.buffer.push(rec);
    // setImmediate rather than writing inline: the caller is an invocation's hot path and must not pay for it.
    if (this.buffer.length >= this.maxBatch) this.immediate ??= setImmediate(this.onFlushTimer).unref();
    else this.timer ??= setTimeout(this.onFlushTimer, this.flushIntervalMs).unref();
  }

  async queryInvocations(q: InvocationQuery): Promise<StoredInvocation[]> {
    this.assertOpen();
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.functionName !== undefined) {
      where.push('function_name = ?');
      params.push(q.functionName);
    }
    if (q.since !== undefined) {
      where.push('start >= ?');
      params.push(q.since);
    }
    if (q.after !== undefined) {
      where.push('seq > ?');
      params.push(q.after);
    }
    const limit =
      q.limit === undefined || !Number.isFinite(q.limit)
        ? DEFAULT_QUERY_LIMIT
        : Math.min(MAX_QUERY_LIMIT, Math.max(0, Math.floor(q.limit)));
    params.push(limit);
    const sql =
      `SELECT * FROM invocations ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ` +
      `ORDER BY seq ${q.ascending ? 'ASC' : 'DESC'} LIMIT ?`;
    let stmt = this.queryCache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<(string | number)[], InvocationRow>(sql);
      this.queryCache.set(sql, stmt);
    }
    return stmt.all(...params).map(toStored);
  }

  async getInvocation(requestId: string): Promise<StoredInvocation | undefined> {
    this.assertOpen();
    const row = this.st.getInvocation.get(requestId);
    return row && toStored(row);
  }

  async flush(): Promise<void> {
    this.flushSync();
  }

  /** Writes every buffered record now, in one transaction. */
  flushSync(): void {
    this.clearTimers();
    if (this.buffer.length === 0 || !this.db.open) return;
    const batch = this.buffer;
    this.buffer = [];
    try {
      this.insertBatch(batch);
    } catch (batchErr) {
      let dropped = batch.length;
      let cause: unknown = batchErr;
      try {
        dropped = this.salvageBatch(batch);
      } catch (err) {
        cause = err;
      }
      if (dropped > 0) {
        this.report(
          new Error(`dropped ${dropped} of ${batch.length} invocation records: ${message(cause)}`, { cause }),
        );
      }
    }
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  closeSync(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    this.db.close();
  }

  stats(): SqliteStoreStats {
    this.assertOpen();
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.db.pragma('synchronous', { simple: true })),
      schemaVersion: userVersion(this.db),
      bufferedInvocations: this.buffer.length,
    };
  }

  // --- internals ---

  private readonly onFlushTimer = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    this.flushSync();
  };

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  /** Runs fn with synchronous=FULL, so its commit is fsynced before the caller is told it happened. */
  private durably<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try {
      return fn();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** Deletes versions explicitly rather than trusting ON DELETE CASCADE, which needs foreign_keys on. */
  private deleteFunctionRows(name: string): boolean {
    this.st.deleteVersions.run(name);
    return this.st.deleteFunction.run(name).changes > 0;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }

  private report(err: Error): void {
    try {
      this.onError(err);
    } catch {
      // A throwing reporter must not turn a timer callback into an uncaught exception.
    }
  }
}

function prepareStatements(db: Database) {
  const versionCols = 'v.name, v.version, v.service, v.config, v.code_sha256, v.code_size, v.deployed_at';
  return {
    getFunctionRow: db.prepare<[string], FunctionRow>(
      'SELECT name, service, latest_version FROM functions WHERE name = ?',
    ),
    functionsOfService: db.prepare<[string], { name: string }>(
      'SELECT name FROM functions WHERE service = ?',
    ),
    upsertFunction: db.prepare<[string, string, number]>(
      `INSERT INTO functions (name, service, latest_version) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET service = excluded.service, latest_version = excluded.latest_version`,
    ),
    deleteFunction: db.prepare<[string]>('DELETE FROM functions WHERE name = ?'),
    getVersionRow: db.prepare<[string, number], VersionRow>(
      `SELECT ${versionCols} FROM versions v WHERE v.name = ? AND v.version = ?`,
    ),
    getLatest: db.prepare<[string], VersionRow>(
      `SELECT ${versionCols} FROM functions f JOIN versions v ON v.name = f.name AND v.version = f.latest_version
       WHERE f.name = ?`,
    ),
    listLatest: db.prepare<[], VersionRow>(
      `SELECT ${versionCols} FROM functions f JOIN versions v ON v.name = f.name AND v.version = f.latest_version
       ORDER BY f.name`,
    ),
    insertVersion: db.prepare<[string, number, string, string, string, number, number]>(
      `INSERT INTO versions (name, version, service, config, code_sha256, code_size, deployed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteVersions: db.prepare<[string]>('DELETE FROM versions WHERE name = ?'),
    codeExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM code WHERE sha256 = ?'),
    insertCode: db.prepare<[string, number, Buffer]>(
      'INSERT INTO code (sha256, size, archive) VALUES (?, ?, ?)',
    ),
    getCode: db.prepare<[string], { archive: Buffer }>('SELECT archive FROM code WHERE sha256 = ?'),
    gcCode: db.prepare<[]>(
      'DELETE FROM code WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.code_sha256 = code.sha256)',
    ),
    insertEvent: db.prepare<[string, string, string, number, number]>(
      `INSERT INTO events (id, function_name, payload, enqueued_at, attempts) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    ),
    // rowid breaks ties between events enqueued in the same millisecond, keeping arrival order.
    pendingEvents: db.prepare<[number], EventRow>(
      'SELECT id, function_name, payload, enqueued_at, attempts FROM events ORDER BY enqueued_at, rowid LIMIT ?',
    ),
    deleteEvent: db.prepare<[string]>('DELETE FROM events WHERE id = ?'),
    bumpAttempts: db.prepare<[string], { attempts: number }>(
      'UPDATE events SET attempts = attempts + 1 WHERE id = ? RETURNING attempts',
    ),
    // A duplicate requestId (a retried write) is skipped rather than failing its batch. Not OR IGNORE: that
    // would also skip NOT NULL violations silently, where a malformed record should be reported.
    insertInvocation: db.prepare<InvocationParams>(
      `INSERT INTO invocations (request_id, function_name, version, trigger, start, duration_ms, billed_ms,
         memory_mb, max_rss, cold, init_ms, status, error_type, error_message, logs)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (request_id) DO NOTHING`,
    ),
    getInvocation: db.prepare<[string], InvocationRow>('SELECT * FROM invocations WHERE request_id = ?'),
  };
}

function checkDeployInput({ service, functions, code }: DeployInput): void {
  if (!SHA256_HEX.test(code.sha256)) throw new Error('code.sha256 must be 64 lowercase hex digits');
  // Code is deduplicated by this key, so a wrong one would silently serve another deploy's archive.
  const actual = createHash('sha256').update(code.archive).digest('hex');
  if (actual !== code.sha256) {
    throw new Error(`code.sha256 ${code.sha256} does not match the archive (${actual})`);
  }
  const names = new Set<string>();
  for (const f of functions) {
    if (names.has(f.name))
      throw new Error(`function "${f.name}" appears twice in the deploy of "${service}"`);
    names.add(f.name);
  }
}

function toParams(r: InvocationRecord): InvocationParams {
  return [
    r.requestId,
    r.functionName,
    r.version,
    r.trigger,
    r.start,
    r.durationMs,
    r.billedMs,
    r.memoryMB,
    r.maxRssBytes,
    r.cold ? 1 : 0,
    r.initMs ?? null,
    r.status,
    r.errorType ?? null,
    r.errorMessage ?? null,
    r.logs,
  ];
}

function toStored(r: InvocationRow): StoredInvocation {
  return {
    seq: r.seq,
    requestId: r.request_id,
    functionName: r.function_name,
    version: r.version,
    trigger: r.trigger as Trigger,
    start: r.start,
    durationMs: r.duration_ms,
    billedMs: r.billed_ms,
    memoryMB: r.memory_mb,
    maxRssBytes: r.max_rss,
    cold: r.cold !== 0,
    initMs: r.init_ms,
    status: r.status as InvocationStatus,
    errorType: r.error_type,
    errorMessage: r.error_message,
    logs: r.logs,
  };
}

function toVersion(r: VersionRow): FunctionVersion {
  return {
    name: r.name,
    service: r.service,
    version: r.version,
    config: parseConfig(r.config),
    codeSha256: r.code_sha256,
    codeSize: r.code_size,
    deployedAt: r.deployed_at,
  };
}

/** The stored text is our own canonical JSON; only the key JSON cannot carry (an undefined value) is restored. */
function parseConfig(text: string): FunctionConfig {
  const parsed = JSON.parse(text) as FunctionConfig;
  return { ...parsed, reservedConcurrency: parsed.reservedConcurrency ?? undefined };
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

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

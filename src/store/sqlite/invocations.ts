// InvocationLog on SQLite: records wait in memory and are written in one transaction per batch, off the hot
// path: by a writer thread with its own connection (record-writer.ts) when the store is a file, else on the
// main connection. Only close() (or flush()) saves buffered records from a process exit, so the server's
// SIGTERM/SIGINT handling must await the store's close().
import type { Statement } from 'better-sqlite3';
import {
  DEFAULT_QUERY_LIMIT,
  MAX_QUERY_LIMIT,
  type InvocationLog,
  type InvocationQuery,
  type InvocationRecord,
  type InvocationStatsQuery,
  type InvocationStatsRow,
  type StoredInvocation,
  type UsageGroupBy,
  type UsageQuery,
  type UsageRow,
} from '../types.js';
import { queryLimit } from '../validate.js';
import { statsSql, toStatsRows, type StatsRowRaw } from '../invocation-stats.js';
import type { SqliteDb } from './db.js';
import { RecordWriter, type BatchAck } from './record-writer.js';
import {
  INVOCATION_COLUMNS,
  invocationValues,
  requestIds,
  toInvocation,
  toUsageRows,
  type InvocationRow,
  type UsageRowRaw,
} from '../rows.js';

export interface BatchOptions {
  /** How long a written record may wait in memory before it reaches the database. Default 50. */
  flushIntervalMs?: number;
  /** Buffered records that trigger a write without waiting for the interval. Default 500. */
  maxBatch?: number;
  /** Told when records could not be written (write() must not throw). Default: process warning. */
  onError?: (err: Error) => void;
  /** Told how long each batch's write took (ms), for the store latency metric. */
  onBatchWritten?: (ms: number, records: number) => void;
  /** Where batches are written: 'thread' (the default for a file) or 'inline' on the main connection
   *  (always for ":memory:"). */
  writer?: 'thread' | 'inline';
  /** The writer thread's wait for a lock held by the main connection. Default 5000. */
  busyTimeoutMs?: number;
}

type Param = string | number | null;

const COLUMNS = INVOCATION_COLUMNS;

/** The group and project expressions of each grouping; a day is whole UTC days since the epoch. */
const GROUPS: Record<UsageGroupBy | 'none', [string, string]> = {
  none: ['NULL', 'NULL'],
  function: ['function_name', 'project'],
  project: ['project', 'NULL'],
  day: ['CAST(start / 86400000 AS INTEGER)', 'NULL'],
  trigger: ['trigger', 'NULL'],
};

export class SqliteInvocationLog implements InvocationLog {
  private buffer: InvocationRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private readonly flushIntervalMs: number;
  private readonly maxBatch: number;
  private readonly onError: (err: Error) => void;
  private readonly onBatchWritten: ((ms: number, records: number) => void) | undefined;
  private readonly insert: Statement<Param[]>;
  private readonly byRequestId: Statement<[string], InvocationRow>;
  private readonly pruneStmt: Statement<[number, number]>;
  private readonly queryCache = new Map<string, Statement<Param[], InvocationRow>>();
  private readonly insertBatch: (batch: InvocationRecord[]) => void;
  private readonly salvageBatch: (batch: InvocationRecord[]) => InvocationRecord[];
  private readonly writer: RecordWriter | undefined;
  /** Batches sent to the writer thread and not acknowledged yet, by sequence number. */
  private readonly outstanding = new Map<number, InvocationRecord[]>();
  private outstandingRecords = 0;
  private waiters: { seq: number; resolve: () => void }[] = [];

  constructor(
    private readonly s: SqliteDb,
    o: BatchOptions = {},
  ) {
    this.flushIntervalMs = positive(o.flushIntervalMs, 50);
    this.maxBatch = Math.max(1, Math.floor(positive(o.maxBatch, 500)));
    this.onError = o.onError ?? ((err) => process.emitWarning(err));
    this.onBatchWritten = o.onBatchWritten;
    // A duplicate (request id, attempt) (a retried write) is skipped rather than failing its batch. Not OR IGNORE: that
    // would also skip NOT NULL violations silently, where a malformed record should be reported.
    const insertSql = `INSERT INTO invocations (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})
       ON CONFLICT (request_id, attempt) DO NOTHING`;
    this.insert = s.db.prepare<Param[]>(insertSql);
    if (o.writer !== 'inline' && s.path !== ':memory:') {
      this.writer = new RecordWriter({
        path: s.path,
        sql: insertSql,
        width: COLUMNS.length,
        busyTimeoutMs: positive(o.busyTimeoutMs, 5000),
        onAck: (ack) => this.onAck(ack),
        onFailure: (err) => this.takeOver(err),
      });
    }
    this.byRequestId = s.db.prepare<[string], InvocationRow>(
      'SELECT * FROM invocations WHERE request_id = ? ORDER BY attempt DESC LIMIT 1',
    );
    // The oldest first, a bounded batch per statement: each is its own short write transaction.
    this.pruneStmt = s.db.prepare<[number, number]>(
      `DELETE FROM invocations WHERE seq IN (SELECT seq FROM invocations WHERE start < ? ORDER BY start LIMIT ?)`,
    );
    this.insertBatch = s.db.transaction((batch: InvocationRecord[]) => {
      for (const rec of batch) this.insert.run(...toParams(rec));
    });
    // One bad record must not cost the batch: a failed statement rolls back alone, the rest commit together.
    this.salvageBatch = s.db.transaction((batch: InvocationRecord[]) => {
      const dropped: InvocationRecord[] = [];
      for (const rec of batch) {
        try {
          this.insert.run(...toParams(rec));
        } catch {
          dropped.push(rec);
        }
      }
      return dropped;
    });
  }

  write(rec: InvocationRecord): void {
    if (this.s.closed) return;
    this.buffer.push(rec);
    // setImmediate rather than writing inline: the caller is an invocation's hot path and must not pay for it.
    // A cold start's record is not held for the batch: it is the one a user deploying and trying looks for.
    // (A buggy caller's null is written, and reported, with the batch.)
    if (this.buffer.length >= this.maxBatch || (rec as InvocationRecord | null)?.cold === true)
      this.immediate ??= setImmediate(this.onFlushTimer).unref();
    else this.timer ??= setTimeout(this.onFlushTimer, this.flushIntervalMs).unref();
  }

  async query(q: InvocationQuery): Promise<StoredInvocation[]> {
    this.s.assertOpen();
    const where: string[] = [];
    const params: Param[] = [];
    const add = (sql: string, ...values: Param[]) => {
      where.push(sql);
      params.push(...values);
    };
    if (q.project !== undefined) add('project = ?', q.project);
    if (q.functionName !== undefined) add('function_name = ?', q.functionName);
    if (q.functionNames !== undefined) {
      if (q.functionNames.length === 0) return [];
      add(`function_name IN (${q.functionNames.map(() => '?').join(', ')})`, ...q.functionNames);
    }
    if (q.requestId !== undefined) add('request_id = ?', q.requestId);
    // instr(): a case-sensitive substring test with the term as a parameter, so nothing needs escaping.
    if (q.pattern !== undefined) {
      for (const t of q.pattern.all) add('instr(logs, ?) > 0', t);
      for (const t of q.pattern.none) add('instr(logs, ?) = 0', t);
      if (q.pattern.any.length > 0) {
        add(`(${q.pattern.any.map(() => 'instr(logs, ?) > 0').join(' OR ')})`, ...q.pattern.any);
      }
    }
    if (q.status !== undefined) {
      if (q.status.length === 0) return [];
      add(`status IN (${q.status.map(() => '?').join(', ')})`, ...q.status);
    }
    if (q.since !== undefined) add('start >= ?', q.since);
    if (q.until !== undefined) add('start < ?', q.until);
    if (q.after !== undefined) add('seq > ?', q.after);
    if (q.before !== undefined) add('seq < ?', q.before);
    params.push(queryLimit(q.limit, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT));
    const sql =
      `SELECT * FROM invocations ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ` +
      `ORDER BY seq ${q.ascending ? 'ASC' : 'DESC'} LIMIT ?`;
    return this.prepared(sql)
      .all(...params)
      .map(toInvocation);
  }

  async get(requestId: string): Promise<StoredInvocation | undefined> {
    this.s.assertOpen();
    const row = this.byRequestId.get(requestId);
    return row && toInvocation(row);
  }

  async usage(q: UsageQuery): Promise<UsageRow[]> {
    this.s.assertOpen();
    const [g, p] = GROUPS[q.by ?? 'none'];
    const params: Param[] = [q.since, q.until];
    if (q.project !== undefined) params.push(q.project);
    const sql =
      `SELECT ${g} AS g, ${p} AS p, COUNT(*) AS invocations, SUM(requests) AS requests,
         SUM(billed_ms) AS billed_ms, SUM(billed_ms * memory_mb) AS mb_ms, SUM(cost_pico_usd) AS cost
       FROM invocations WHERE start >= ? AND start < ?${q.project !== undefined ? ' AND project = ?' : ''}` +
      (q.by ? ' GROUP BY g, p' : '');
    // Exact integers: a sum of picodollars may pass 2^53.
    const rows = this.prepared(sql)
      .safeIntegers(true)
      .all(...params) as unknown as UsageRowRaw[];
    return toUsageRows(rows, q.by);
  }

  async stats(q: InvocationStatsQuery): Promise<InvocationStatsRow[]> {
    this.s.assertOpen();
    await this.flush();
    // Named parameters (@p1...): the bucket expression uses since twice.
    const { sql, params } = statsSql(q, {
      param: (n) => `@p${n}`,
      truncate: (e) => `CAST(${e} AS INTEGER)`,
    });
    const named = Object.fromEntries(params.map((v, i) => [`p${i + 1}`, v]));
    const rows = this.s.db.prepare(sql).safeIntegers(true).all(named) as StatsRowRaw[];
    return toStatsRows(rows, q);
  }

  async oldestStart(project?: string): Promise<number | null> {
    this.s.assertOpen();
    const sql = `SELECT MIN(start) AS m FROM invocations${project !== undefined ? ' WHERE project = ?' : ''}`;
    const row = this.prepared(sql).get(...(project !== undefined ? [project] : [])) as unknown as {
      m: number | null;
    };
    return row.m;
  }

  async prune(before: number, limit: number): Promise<number> {
    this.s.assertOpen();
    return this.pruneStmt.run(before, Math.max(0, Math.floor(limit))).changes;
  }

  private prepared(sql: string): Statement<Param[], InvocationRow> {
    let stmt = this.queryCache.get(sql);
    if (!stmt) {
      stmt = this.s.db.prepare<Param[], InvocationRow>(sql);
      this.queryCache.set(sql, stmt);
    }
    return stmt;
  }

  /** Writes the buffered records in the store's group commit, so the flushes of many invocations that end
   *  in one turn (each event settles only after its record is written) share one transaction. */
  async flush(): Promise<void> {
    if (this.s.closed) return;
    const w = this.writer;
    if (w?.usable) {
      this.dispatch();
      const seq = w.sent;
      if (w.acknowledged >= seq) return;
      await new Promise<void>((resolve) => this.waiters.push({ seq, resolve }));
      return;
    }
    if (this.buffer.length === 0) return;
    await this.s.grouped(() => this.writeInline());
  }

  /** How many records wait in memory, buffered or being written (for tests and status). */
  get buffered(): number {
    return this.buffer.length + this.outstandingRecords;
  }

  /** Writes every buffered record now and returns once they are committed (close() calls it). */
  flushSync(): void {
    const w = this.writer;
    if (w?.usable) {
      this.dispatch();
      if (w.waitSync()) return;
      if (w.usable) this.takeOver(new Error('the record writer thread did not answer within 10 s'));
      return;
    }
    this.writeInline();
  }

  /** flushSync, then the writer thread's connection closes. */
  closeSync(): void {
    this.flushSync();
    this.writer?.closeSync();
  }

  /** The writer thread, for tests of the take-over path. */
  get writerThread(): RecordWriter | undefined {
    return this.writer;
  }

  /** Hands the buffered records to the writer thread as one batch. */
  private dispatch(): void {
    this.clearTimers();
    if (this.buffer.length === 0 || !this.writer?.usable) return;
    const batch = this.buffer;
    this.buffer = [];
    const flat: Param[] = [];
    for (const rec of batch) pushParams(flat, rec);
    this.outstanding.set(this.writer.send(flat), batch);
    this.outstandingRecords += batch.length;
  }

  private onAck(ack: BatchAck): void {
    const batch = this.outstanding.get(ack.seq) ?? [];
    this.outstanding.delete(ack.seq);
    this.outstandingRecords -= batch.length;
    if (ack.dropped.length === 0) this.onBatchWritten?.(ack.ms, batch.length);
    else {
      const dropped = ack.dropped.map((i) => batch[i]!);
      this.report(
        new Error(
          `dropped ${dropped.length} of ${batch.length} invocation records (${requestIds(dropped)}): ${ack.error ?? 'unknown error'}`,
        ),
      );
    }
    this.wake(ack.seq);
  }

  /** The writer thread failed: the main connection writes what it had not acknowledged, and all to come. */
  private takeOver(err: Error): void {
    this.report(new Error(`invocation records are written on the main thread from now on: ${err.message}`));
    const pending = [...this.outstanding.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, b]) => b);
    this.outstanding.clear();
    this.outstandingRecords = 0;
    this.buffer = pending.concat(this.buffer);
    if (!this.s.closed) this.writeInline();
    this.wake(Infinity);
  }

  private wake(upTo: number): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.seq <= upTo) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Writes every buffered record now on the main connection, in one transaction. */
  private writeInline(): void {
    this.clearTimers();
    if (this.buffer.length === 0 || !this.s.db.open) return;
    const batch = this.buffer;
    this.buffer = [];
    const t0 = performance.now();
    try {
      this.insertBatch(batch);
      this.onBatchWritten?.(performance.now() - t0, batch.length);
    } catch (batchErr) {
      let dropped = batch;
      let cause: unknown = batchErr;
      try {
        dropped = this.salvageBatch(batch);
      } catch (err) {
        cause = err;
      }
      if (dropped.length > 0) {
        const which = requestIds(dropped);
        this.report(
          new Error(
            `dropped ${dropped.length} of ${batch.length} invocation records (${which}): ${message(cause)}`,
            {
              cause,
            },
          ),
        );
      }
    }
  }

  private readonly onFlushTimer = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    if (this.writer?.usable) this.dispatch();
    else this.writeInline();
  };

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private report(err: Error): void {
    try {
      this.onError(err);
    } catch {
      // A throwing reporter must not turn a timer callback into an uncaught exception.
    }
  }
}

/** SQLite has no boolean: cold is stored as 0 or 1. */
function toParams(r: InvocationRecord): Param[] {
  return invocationValues(r).map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
}

/** A record's values appended to a batch's; one that is not a record at all (a caller's bug) becomes a row
 *  of NULLs, which the NOT NULL columns refuse, so the writer reports it with the batch's other failures. */
function pushParams(out: Param[], r: InvocationRecord): void {
  let values: (string | number | boolean | null)[];
  try {
    values = invocationValues(r);
  } catch {
    values = COLUMNS.map(() => null);
  }
  for (const v of values) out.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
}

export function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

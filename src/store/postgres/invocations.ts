// InvocationLog on PostgreSQL: write() only buffers; batches go out as ONE multi-row statement each, one batch
// at a time, so a busy gateway costs the database one round trip per batch rather than one per invocation.
import type { Pool, QueryResultRow } from 'pg';
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
import { type Db, errorMessage, pgCode } from './db.js';
import {
  INVOCATION_COLUMNS,
  invocationValues,
  requestIds,
  toInvocation,
  toUsageRows,
  type InvocationRow,
  type UsageRowRaw,
} from '../rows.js';

export interface InvocationLogOptions {
  flushIntervalMs: number;
  maxBatch: number;
  onError: (err: Error) => void;
  /** Told how long each batch's write took (ms), for the store latency metric. */
  onBatchWritten?: (ms: number, records: number) => void;
}

const COLUMNS = INVOCATION_COLUMNS.join(', ');

/** The group and project expressions of each grouping; a day is whole UTC days since the epoch. */
const GROUPS: Record<UsageGroupBy | 'none', [string, string]> = {
  none: ['NULL::text', 'NULL::text'],
  function: ['function_name', 'project'],
  project: ['project', 'NULL::text'],
  day: ['floor(start / 86400000)::bigint', 'NULL::text'],
  trigger: ['trigger', 'NULL::text'],
};

// unnest keeps array order, so seq follows the order records were written. A duplicate (requestId, attempt)
// (a retried write) is skipped; any other bad value fails the statement and sends the batch to salvage().
const INSERT_BATCH = `INSERT INTO invocations (${COLUMNS})
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[],
    $7::double precision[], $8::double precision[], $9::integer[], $10::integer[], $11::bigint[],
    $12::boolean[], $13::double precision[], $14::text[], $15::text[], $16::text[], $17::text[],
    $18::integer[], $19::bigint[], $20::text[])
  ON CONFLICT (request_id, attempt) DO NOTHING`;

export class PgInvocationLog implements InvocationLog {
  private buffer: InvocationRecord[] = [];
  /** Records ever buffered, and those whose batch has finished (committed or dropped); both only grow. */
  private accepted = 0;
  private settled = 0;
  private waiters: { target: number; resolve: () => void }[] = [];
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private stopped = false;

  constructor(
    private readonly db: Db,
    private readonly opts: InvocationLogOptions,
  ) {}

  write(rec: InvocationRecord): void {
    if (this.stopped || this.db.isClosed) return;
    this.buffer.push(rec);
    this.accepted++;
    // Deferred even when the batch is full: the caller is an invocation's hot path and must not pay for it.
    // A cold start's record is not held for the batch: it is the one a user deploying and trying looks for.
    // (A buggy caller's null is written, and reported, with the batch.)
    if (this.buffer.length >= this.opts.maxBatch || (rec as InvocationRecord | null)?.cold === true)
      this.immediate ??= setImmediate(this.kick).unref();
    else this.timer ??= setTimeout(this.kick, this.opts.flushIntervalMs).unref();
  }

  async flush(): Promise<void> {
    this.db.assertOpen();
    await this.settle();
  }

  /** Stops accepting records and resolves once every buffered one is written (or reported dropped). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.settle();
  }

  async query(q: InvocationQuery): Promise<StoredInvocation[]> {
    this.db.assertOpen();
    const { where, params } = filters(q);
    if (where === undefined) return [];
    const limit = queryLimit(q.limit, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT);
    if (limit === 0) return [];
    params.push(limit);
    const sql =
      `SELECT seq, ${COLUMNS} FROM invocations ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ` +
      `ORDER BY seq ${q.ascending ? 'ASC' : 'DESC'} LIMIT $${params.length}`;
    return (await this.db.rows<InvocationRow>(sql, params)).map(toInvocation);
  }

  /** The highest attempt, whichever order the attempts' records arrived in. */
  async get(requestId: string): Promise<StoredInvocation | undefined> {
    const rows = await this.db.rows<InvocationRow>(
      `SELECT seq, ${COLUMNS} FROM invocations WHERE request_id = $1 ORDER BY attempt DESC LIMIT 1`,
      [requestId],
    );
    return rows[0] && toInvocation(rows[0]);
  }

  async usage(q: UsageQuery): Promise<UsageRow[]> {
    this.db.assertOpen();
    const [g, p] = GROUPS[q.by ?? 'none'];
    const params: unknown[] = [q.since, q.until];
    if (q.project !== undefined) params.push(q.project);
    // SUM of bigint is numeric, which comes back as text: exact however large.
    const sql =
      `SELECT ${g} AS g, ${p} AS p, COUNT(*) AS invocations, SUM(requests) AS requests,
         SUM(billed_ms) AS billed_ms, SUM(billed_ms::bigint * memory_mb) AS mb_ms, SUM(cost_pico_usd) AS cost
       FROM invocations WHERE start >= $1 AND start < $2${q.project !== undefined ? ' AND project = $3' : ''}` +
      (q.by ? ' GROUP BY 1, 2' : '');
    return toUsageRows(await this.db.rows<UsageRowRaw>(sql, params), q.by);
  }

  async stats(q: InvocationStatsQuery): Promise<InvocationStatsRow[]> {
    this.db.assertOpen();
    await this.flush();
    const { sql, params } = statsSql(q, {
      param: (n) => `$${n}`,
      truncate: (e) => `floor(${e})::bigint`,
    });
    return toStatsRows(await this.db.rows<StatsRowRaw & QueryResultRow>(sql, params), q);
  }

  async oldestStart(project?: string): Promise<number | null> {
    this.db.assertOpen();
    const rows = await this.db.rows<{ m: number | null }>(
      `SELECT MIN(start) AS m FROM invocations${project !== undefined ? ' WHERE project = $1' : ''}`,
      project !== undefined ? [project] : [],
    );
    return rows[0]?.m ?? null;
  }

  /** The oldest first, one bounded statement: row locks on at most `limit` rows, briefly. */
  async prune(before: number, limit: number): Promise<number> {
    this.db.assertOpen();
    return this.db.changed(
      `DELETE FROM invocations WHERE seq IN
         (SELECT seq FROM invocations WHERE start < $1 ORDER BY start LIMIT $2)`,
      [before, Math.max(0, Math.floor(limit))],
    );
  }

  /** Resolves once every record buffered before the call has settled, including a batch in flight. */
  private settle(): Promise<void> {
    const target = this.accepted;
    if (this.settled >= target) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.waiters.push({ target, resolve }));
    this.kick();
    return done;
  }

  private readonly kick = (): void => {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    // A running drain picks up whatever is buffered when its batch is done: one batch in flight at most.
    if (this.running || this.buffer.length === 0) return;
    this.running = this.drain();
  };

  private async drain(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.opts.maxBatch);
      await this.writeBatch(batch);
      this.settled += batch.length;
      this.waiters = this.waiters.filter((w) => (w.target <= this.settled ? (w.resolve(), false) : true));
    }
    // Cleared in the same synchronous step as the empty check, so no write() can slip between them unseen.
    this.running = undefined;
  }

  /** Never throws: a failed batch is retried row by row so one bad record costs only itself, and once
   *  more whole when the connection (not a row) failed, since a pool can hand out a connection that died. */
  private async writeBatch(batch: InvocationRecord[], retried = false): Promise<void> {
    const pool = this.db.pool;
    const t0 = performance.now();
    try {
      await insertInOrder(pool, toColumns(batch));
      this.opts.onBatchWritten?.(performance.now() - t0, batch.length);
      return;
    } catch (batchErr) {
      if (!retried && connectionProblem(batchErr)) return this.writeBatch(batch, true);
      // Row by row only helps when a row is at fault; with the server gone it would just fail 500 times.
      const { dropped, cause } = rowProblem(batchErr)
        ? await salvage(pool, batch)
        : { dropped: batch, cause: batchErr };
      if (dropped.length > 0) {
        const why = errorMessage(cause ?? batchErr);
        this.report(
          new Error(
            `dropped ${dropped.length} of ${batch.length} invocation records (${requestIds(dropped)}): ${why}`,
            {
              cause,
            },
          ),
        );
      }
    }
  }

  private report(err: Error): void {
    try {
      this.opts.onError(err);
    } catch {
      // A throwing reporter must not turn a timer callback into an unhandled rejection.
    }
  }
}

/**
 * One batch in one transaction that first takes a lock every writer shares, so seq values commit in the order
 * they are handed out: a reader following with `after: seq` never passes a record another node commits later.
 */
async function insertInOrder(pool: Pool, columns: unknown[][]): Promise<void> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    // One lock per schema: the stores of other schemas (other installations, test files) do not wait.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('nimbus.records:' || current_schema()))");
    await client.query(INSERT_BATCH, columns);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => (broken = true));
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Errors of the connection rather than of the statement: SQLSTATE classes 08 and 57P, or a socket error. */
function connectionProblem(err: unknown): boolean {
  const code = pgCode(err);
  if (code === undefined) return /Connection terminated|connection timeout/i.test(errorMessage(err));
  return /^(08|57P)/.test(code) || /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT)$/.test(code);
}

async function salvage(
  pool: Pool,
  batch: InvocationRecord[],
): Promise<{ dropped: InvocationRecord[]; cause: unknown }> {
  const dropped: InvocationRecord[] = [];
  let cause: unknown;
  for (const [i, rec] of batch.entries()) {
    try {
      await insertInOrder(pool, toColumns([rec]));
    } catch (err) {
      dropped.push(rec);
      cause ??= err;
      // The connection, not this row, failed: the rest would fail the same way.
      if (!rowProblem(err)) return { dropped: [...dropped, ...batch.slice(i + 1)], cause: err };
    }
  }
  return { dropped, cause };
}

/** A failure caused by a record's values (SQLSTATE class 22 or 23, or one that is no record at all). */
function rowProblem(err: unknown): boolean {
  const code = pgCode(err);
  if (code === undefined) return err instanceof TypeError;
  return code.startsWith('22') || code.startsWith('23');
}

/** The WHERE clauses and their parameters; where is undefined when the query can match nothing. */
function filters(q: InvocationQuery): { where: string[] | undefined; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (column: string, op: string, value: unknown) => {
    where.push(`${column} ${op} $${params.push(value)}`);
  };
  if (q.project !== undefined) add('project', '=', q.project);
  if (q.functionName !== undefined) add('function_name', '=', q.functionName);
  if (q.functionNames !== undefined) {
    if (q.functionNames.length === 0) return { where: undefined, params };
    where.push(`function_name = ANY($${params.push([...q.functionNames])}::text[])`);
  }
  if (q.requestId !== undefined) add('request_id', '=', q.requestId);
  // strpos(): a case-sensitive substring test with the term as a parameter, as instr() on SQLite.
  if (q.pattern !== undefined) {
    for (const t of q.pattern.all) where.push(`strpos(logs, $${params.push(t)}) > 0`);
    for (const t of q.pattern.none) where.push(`strpos(logs, $${params.push(t)}) = 0`);
    if (q.pattern.any.length > 0) {
      where.push(`(${q.pattern.any.map((t) => `strpos(logs, $${params.push(t)}) > 0`).join(' OR ')})`);
    }
  }
  if (q.status !== undefined) {
    if (q.status.length === 0) return { where: undefined, params };
    where.push(`status = ANY($${params.push([...q.status])}::text[])`);
  }
  if (q.since !== undefined) add('start', '>=', q.since);
  if (q.until !== undefined) add('start', '<', q.until);
  if (q.after !== undefined) add('seq', '>', q.after);
  if (q.before !== undefined) add('seq', '<', q.before);
  return { where, params };
}

/** One array per column, in COLUMNS order; throws on a record that is not one (salvage drops it). */
function toColumns(batch: InvocationRecord[]): unknown[][] {
  const cols: unknown[][] = Array.from({ length: INVOCATION_COLUMNS.length }, () => []);
  for (const r of batch) {
    const values = invocationValues(r);
    values.forEach((v, i) => cols[i]!.push(v ?? null));
  }
  return cols;
}

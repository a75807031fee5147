// The one SQL text of InvocationLog.stats, for both backends: they differ only in placeholders and in how
// a bucket number is truncated. Percentiles are nearest-rank, picked with window functions (ROW_NUMBER over
// each bucket's durations), which SQLite and PostgreSQL evaluate alike, so both answer the same numbers.
import type { InvocationStatsQuery, InvocationStatsRow } from './types.js';

export const ERROR_STATUSES = ['error', 'unhandled', 'timeout', 'oom'] as const;

/** The most buckets one query may ask for (a week by the minute is about 10,000). */
export const MAX_BUCKETS = 10_000;

export interface StatsDialect {
  /** The placeholder of the nth parameter (1-based). */
  param(n: number): string;
  /** A whole bucket number from a non-negative number expression. */
  truncate(expr: string): string;
}

export interface StatsRowRaw {
  b: number | bigint | string;
  f: string;
  invocations: number | bigint | string;
  errors: number | bigint | string | null;
  throttles: number | bigint | string | null;
  cold: number | bigint | string | null;
  p50: number | null;
  p99: number | null;
  cost: number | bigint | string | null;
}

export function statsSql(q: InvocationStatsQuery, d: StatsDialect): { sql: string; params: unknown[] } {
  if (q.bucketMs !== undefined && !(q.bucketMs > 0)) throw new Error('bucketMs must be positive');
  const params: unknown[] = [q.project, q.since, q.until];
  const where = [`project = ${d.param(1)}`, `start >= ${d.param(2)}`, `start < ${d.param(3)}`];
  if (q.functionName !== undefined) {
    params.push(q.functionName);
    where.push(`function_name = ${d.param(params.length)}`);
  }
  let bucket = '0';
  if (q.bucketMs !== undefined) {
    params.push(q.bucketMs);
    bucket = d.truncate(`(start - ${d.param(2)}) / ${d.param(params.length)}`);
  }
  const fn = q.byFunction ? 'function_name' : "''";
  const part = `PARTITION BY ${bucket}, ${fn}, status = 'throttled'`;
  const errors = ERROR_STATUSES.map((s) => `'${s}'`).join(', ');
  const sql = `WITH r AS (
      SELECT ${bucket} AS b, ${fn} AS f, status, cold, duration_ms, cost_pico_usd,
        ROW_NUMBER() OVER (${part} ORDER BY duration_ms) AS rn,
        COUNT(*) OVER (${part}) AS n
      FROM invocations WHERE ${where.join(' AND ')}
    )
    SELECT b, f, COUNT(*) AS invocations,
      SUM(CASE WHEN status IN (${errors}) THEN 1 ELSE 0 END) AS errors,
      SUM(CASE WHEN status = 'throttled' THEN 1 ELSE 0 END) AS throttles,
      SUM(CASE WHEN cold THEN 1 ELSE 0 END) AS cold,
      MIN(CASE WHEN status <> 'throttled' AND rn * 2 >= n THEN duration_ms END) AS p50,
      MIN(CASE WHEN status <> 'throttled' AND rn * 100 >= n * 99 THEN duration_ms END) AS p99,
      SUM(cost_pico_usd) AS cost
    FROM r GROUP BY b, f ORDER BY b, f`;
  return { sql, params };
}

export function toStatsRows(rows: StatsRowRaw[], q: InvocationStatsQuery): InvocationStatsRow[] {
  return rows.map((r) => ({
    bucketStart: q.since + Number(r.b) * (q.bucketMs ?? 0),
    functionName: q.byFunction ? r.f : null,
    invocations: Number(r.invocations),
    errors: Number(r.errors ?? 0),
    throttles: Number(r.throttles ?? 0),
    cold: Number(r.cold ?? 0),
    p50Ms: r.p50 === null ? null : Number(r.p50),
    p99Ms: r.p99 === null ? null : Number(r.p99),
    costPicoUsd: BigInt(r.cost ?? 0),
  }));
}

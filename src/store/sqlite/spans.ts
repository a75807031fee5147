// SpanStore on SQLite: a batch of spans is one statement per span in one grouped transaction (the batch
// processor sends them off the hot path); times are INTEGER nanoseconds, read back as text to stay exact.
import type { Statement } from 'better-sqlite3';
import { SPAN_COLUMNS, SPAN_SELECT, spanValues, toSpan, type SpanRow } from '../rows.js';
import type { SpanStore, StoredSpan } from '../types.js';
import type { SqliteDb } from './db.js';

export class SqliteSpanStore implements SpanStore {
  private readonly insert: Statement<(string | bigint | null)[]>;
  private readonly byTrace: Statement<[string, string], SpanRow>;
  private readonly pruneStmt: Statement<[bigint, number]>;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.insert = db.prepare<(string | bigint | null)[]>(
      `INSERT INTO spans (${SPAN_COLUMNS.join(', ')}) VALUES (${SPAN_COLUMNS.map(() => '?').join(', ')})
       ON CONFLICT (trace_id, span_id) DO NOTHING`,
    );
    this.byTrace = db.prepare<[string, string], SpanRow>(
      `SELECT ${SPAN_SELECT} FROM spans WHERE project = ? AND trace_id = ? ORDER BY start_ns, span_id`,
    );
    this.pruneStmt = db.prepare<[bigint, number]>(
      `DELETE FROM spans WHERE rowid IN (SELECT rowid FROM spans WHERE start_ns < ? ORDER BY start_ns LIMIT ?)`,
    );
  }

  async write(spans: readonly StoredSpan[]): Promise<void> {
    if (spans.length === 0) return;
    await this.s.grouped(() =>
      this.s.transaction(() => spans.forEach((sp) => this.insert.run(...spanValues(sp)))),
    );
  }

  async trace(project: string, traceId: string): Promise<StoredSpan[]> {
    this.s.assertOpen();
    return this.byTrace.all(project, traceId).map(toSpan);
  }

  async prune(before: number, limit: number): Promise<number> {
    this.s.assertOpen();
    const ns = BigInt(Math.floor(before)) * 1_000_000n;
    return this.pruneStmt.run(ns, Math.max(0, Math.floor(limit))).changes;
  }
}

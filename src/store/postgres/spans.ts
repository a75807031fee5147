// SpanStore on PostgreSQL: a batch of spans is one multi-row INSERT from unnest (one round trip); times are
// bigint nanoseconds, passed and read as text so no JavaScript number rounds them.
import { SPAN_COLUMNS, SPAN_SELECT, spanValues, toSpan, type SpanRow } from '../rows.js';
import type { SpanStore, StoredSpan } from '../types.js';
import type { Db } from './db.js';

const INSERT = `INSERT INTO spans (${SPAN_COLUMNS.join(', ')})
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
    $7::bigint[], $8::bigint[], $9::text[], $10::text[], $11::text[])
  ON CONFLICT (trace_id, span_id) DO NOTHING`;

export class PgSpanStore implements SpanStore {
  constructor(private readonly db: Db) {}

  async write(spans: readonly StoredSpan[]): Promise<void> {
    if (spans.length === 0) return;
    const cols: (string | null)[][] = SPAN_COLUMNS.map(() => []);
    for (const sp of spans) {
      spanValues(sp).forEach((v, i) => cols[i]!.push(v === null ? null : String(v)));
    }
    await this.db.changed(INSERT, cols);
  }

  async trace(project: string, traceId: string): Promise<StoredSpan[]> {
    const rows = await this.db.rows<SpanRow>(
      `SELECT ${SPAN_SELECT} FROM spans WHERE project = $1 AND trace_id = $2 ORDER BY start_ns, span_id`,
      [project, traceId],
    );
    return rows.map(toSpan);
  }

  async prune(before: number, limit: number): Promise<number> {
    const ns = (BigInt(Math.floor(before)) * 1_000_000n).toString();
    return this.db.changed(
      `DELETE FROM spans WHERE ctid IN (SELECT ctid FROM spans WHERE start_ns < $1 ORDER BY start_ns LIMIT $2)`,
      [ns, Math.max(0, Math.floor(limit))],
    );
  }
}

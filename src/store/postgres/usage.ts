// UsageStore on PostgreSQL: a batch is one multi-row upsert, so nodes flushing the same row at once add up
// (ON CONFLICT DO UPDATE locks the row; neither increment is lost).
import type { UsageEntryQuery, UsageEntry, UsageStore } from '../types.js';
import { checkUsageRow, toUsage, type UsageDbRow } from '../usage-rules.js';
import type { Db } from './db.js';

export class PgUsageStore implements UsageStore {
  constructor(private readonly db: Db) {}

  async add(entries: readonly UsageEntry[]): Promise<void> {
    this.db.assertOpen();
    for (const e of entries) checkUsageRow(e);
    if (entries.length === 0) return;
    // One statement may not touch a row twice: entries for the same row are summed first.
    const merged = new Map<string, UsageEntry>();
    for (const e of entries) {
      const k = JSON.stringify([e.project, e.hour, e.service, e.resource, e.kind]);
      const m = merged.get(k);
      if (m) {
        m.quantity += e.quantity;
        m.costPicoUsd += e.costPicoUsd;
      } else merged.set(k, { ...e });
    }
    const rows = [...merged.values()];
    await this.db.changed(
      `INSERT INTO usage (project, hour, service, resource, kind, quantity, cost_pico_usd)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
       ON CONFLICT (project, hour, service, resource, kind) DO UPDATE SET
         quantity = usage.quantity + excluded.quantity,
         cost_pico_usd = usage.cost_pico_usd + excluded.cost_pico_usd`,
      [
        rows.map((r) => r.project),
        rows.map((r) => r.hour),
        rows.map((r) => r.service),
        rows.map((r) => r.resource),
        rows.map((r) => r.kind),
        rows.map((r) => r.quantity),
        rows.map((r) => r.costPicoUsd),
      ],
    );
  }

  async list(q: UsageEntryQuery = {}): Promise<UsageEntry[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.project !== undefined) where.push(`project = $${params.push(q.project)}`);
    if (q.since !== undefined) where.push(`hour >= $${params.push(q.since)}`);
    if (q.until !== undefined) where.push(`hour < $${params.push(q.until)}`);
    const rows = await this.db.rows<UsageDbRow>(
      `SELECT * FROM usage ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY hour, project, service, resource, kind`,
      params,
    );
    return rows.map(toUsage);
  }
}

// UsageStore on SQLite: one upsert per row in one transaction. The meter flushes every few seconds, so the
// batch is small and its fsync (synchronous=FULL) is rare: a count acknowledged as flushed survives a crash.
import type { UsageEntryQuery, UsageEntry, UsageStore } from '../types.js';
import { checkUsageRow, toUsage, type UsageDbRow } from '../usage-rules.js';
import type { SqliteDb } from './db.js';

export class SqliteUsageStore implements UsageStore {
  private readonly upsert;

  constructor(private readonly s: SqliteDb) {
    this.upsert = s.db.prepare(
      `INSERT INTO usage (project, hour, service, resource, kind, quantity, cost_pico_usd)
       VALUES (@project, @hour, @service, @resource, @kind, @quantity, @costPicoUsd)
       ON CONFLICT (project, hour, service, resource, kind) DO UPDATE SET
         quantity = quantity + excluded.quantity, cost_pico_usd = cost_pico_usd + excluded.cost_pico_usd`,
    );
  }

  async add(entries: readonly UsageEntry[]): Promise<void> {
    this.s.assertOpen();
    for (const e of entries) checkUsageRow(e);
    if (entries.length === 0) return;
    this.s.durably(() =>
      this.s.transaction(() => {
        for (const e of entries) this.upsert.run(e);
      }),
    );
  }

  async list(q: UsageEntryQuery = {}): Promise<UsageEntry[]> {
    this.s.assertOpen();
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown): void => {
      where.push(clause);
      params.push(value);
    };
    if (q.project !== undefined) add('project = ?', q.project);
    if (q.since !== undefined) add('hour >= ?', q.since);
    if (q.until !== undefined) add('hour < ?', q.until);
    const rows = this.s.db
      .prepare<unknown[], UsageDbRow>(
        `SELECT * FROM usage ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY hour, project, service, resource, kind`,
      )
      .all(...params);
    return rows.map(toUsage);
  }
}

// ScheduleStore on PostgreSQL. Nodes fire a tick by moving next_fire_at with a compare-and-set, so however
// many nodes see one tick due, one of them moves it.
import type { Clock } from '../../clock/clock.js';
import { toSchedule, type ScheduleRow } from '../rows.js';
import type { NewEvent, ScheduleDef, ScheduleStore, StoredSchedule } from '../types.js';
import type { Db } from './db.js';

export class PgScheduleStore implements ScheduleStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async sync(defs: readonly (ScheduleDef & { firstFireAt: number })[]): Promise<void> {
    this.db.assertOpen();
    const now = this.clock.now();
    await this.db.tx(async (c) => {
      await c.query('DELETE FROM schedules WHERE NOT (id = ANY($1::text[]))', [defs.map((d) => d.id)]);
      for (const d of defs) {
        await c.query(
          `INSERT INTO schedules (id, project, function_name, expression, timezone, input, next_fire_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
          [d.id, d.project, d.functionName, d.expression, d.timezone, d.input, d.firstFireAt, now],
        );
      }
    });
  }

  async list(project?: string): Promise<StoredSchedule[]> {
    this.db.assertOpen();
    const rows =
      project === undefined
        ? await this.db.rows<ScheduleRow>('SELECT * FROM schedules ORDER BY function_name, id')
        : await this.db.rows<ScheduleRow>(
            'SELECT * FROM schedules WHERE project = $1 ORDER BY function_name, id',
            [project],
          );
    return rows.map(toSchedule);
  }

  async due(limit: number): Promise<StoredSchedule[]> {
    this.db.assertOpen();
    const rows = await this.db.rows<ScheduleRow>(
      'SELECT * FROM schedules WHERE next_fire_at <= $1 ORDER BY next_fire_at, id LIMIT $2',
      [this.clock.now(), Math.max(0, Math.floor(limit))],
    );
    return rows.map(toSchedule);
  }

  async advance(id: string, from: number, to: number, event?: NewEvent): Promise<boolean> {
    this.db.assertOpen();
    return this.db.tx(async (c) => {
      const moved = await c.query(
        'UPDATE schedules SET next_fire_at = $3 WHERE id = $1 AND next_fire_at = $2',
        [id, from, to],
      );
      if (moved.rowCount === 0) return false;
      if (event) {
        const at = event.enqueuedAt ?? this.clock.now();
        await c.query(
          `INSERT INTO events (id, project, function_name, qualifier, trace, source, payload, enqueued_at, next_attempt_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
          [
            event.id,
            event.project,
            event.functionName,
            event.qualifier ?? null,
            event.trace ?? null,
            event.source,
            event.payload,
            at,
            event.nextAttemptAt ?? at,
          ],
        );
      }
      return true;
    });
  }

  async nextFireAt(): Promise<number | undefined> {
    this.db.assertOpen();
    const rows = await this.db.rows<{ at: number | null }>('SELECT min(next_fire_at) AS at FROM schedules');
    return rows[0]?.at ?? undefined;
  }
}

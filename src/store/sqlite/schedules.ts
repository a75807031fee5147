// ScheduleStore on SQLite.
import { toSchedule, type ScheduleRow } from '../rows.js';
import type { NewEvent, ScheduleDef, ScheduleStore, StoredSchedule } from '../types.js';
import type { SqliteDb } from './db.js';

export class SqliteScheduleStore implements ScheduleStore {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      ids: db.prepare<[], { id: string }>('SELECT id FROM schedules'),
      insert: db.prepare(
        `INSERT INTO schedules (id, project, function_name, expression, timezone, input, next_fire_at, created_at)
         VALUES (@id, @project, @functionName, @expression, @timezone, @input, @firstFireAt, @now)
         ON CONFLICT (id) DO NOTHING`,
      ),
      remove: db.prepare<[string]>('DELETE FROM schedules WHERE id = ?'),
      all: db.prepare<[], ScheduleRow>('SELECT * FROM schedules ORDER BY function_name, id'),
      ofProject: db.prepare<[string], ScheduleRow>(
        'SELECT * FROM schedules WHERE project = ? ORDER BY function_name, id',
      ),
      due: db.prepare<[number, number], ScheduleRow>(
        'SELECT * FROM schedules WHERE next_fire_at <= ? ORDER BY next_fire_at, id LIMIT ?',
      ),
      advance: db.prepare<[number, string, number]>(
        'UPDATE schedules SET next_fire_at = ? WHERE id = ? AND next_fire_at = ?',
      ),
      next: db.prepare<[], { at: number | null }>('SELECT min(next_fire_at) AS at FROM schedules'),
      enqueue: db.prepare(
        `INSERT INTO events (id, project, function_name, qualifier, trace, source, payload, enqueued_at, next_attempt_at)
         VALUES (@id, @project, @fn, @qualifier, @trace, @source, @payload, @at, @due) ON CONFLICT (id) DO NOTHING`,
      ),
    };
  }

  async sync(defs: readonly (ScheduleDef & { firstFireAt: number })[]): Promise<void> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    const keep = new Set(defs.map((d) => d.id));
    this.s.durably(() =>
      this.s.transaction(() => {
        for (const { id } of this.st.ids.all()) if (!keep.has(id)) this.st.remove.run(id);
        for (const d of defs) this.st.insert.run({ ...d, now });
      }),
    );
  }

  async list(project?: string): Promise<StoredSchedule[]> {
    this.s.assertOpen();
    const rows = project === undefined ? this.st.all.all() : this.st.ofProject.all(project);
    return rows.map(toSchedule);
  }

  async due(limit: number): Promise<StoredSchedule[]> {
    this.s.assertOpen();
    return this.st.due.all(this.s.clock.now(), Math.max(0, Math.floor(limit))).map(toSchedule);
  }

  async advance(id: string, from: number, to: number, event?: NewEvent): Promise<boolean> {
    this.s.assertOpen();
    return this.s.durably(() =>
      this.s.transaction(() => {
        if (this.st.advance.run(to, id, from).changes === 0) return false;
        if (event) {
          const at = event.enqueuedAt ?? this.s.clock.now();
          this.st.enqueue.run({
            id: event.id,
            project: event.project,
            fn: event.functionName,
            qualifier: event.qualifier ?? null,
            trace: event.trace ?? null,
            source: event.source,
            payload: event.payload,
            at,
            due: event.nextAttemptAt ?? at,
          });
        }
        return true;
      }),
    );
  }

  async nextFireAt(): Promise<number | undefined> {
    this.s.assertOpen();
    return this.st.next.get()?.at ?? undefined;
  }
}

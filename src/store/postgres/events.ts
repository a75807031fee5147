// EventQueue on PostgreSQL. claim() picks and leases in one statement with FOR UPDATE SKIP LOCKED, so nodes
// claiming at once each lock different rows instead of waiting for (or doubling up on) one another's. Every
// "now" is the store clock's, never the database's now(), so tests move time with a ManualClock.
import type { Clock } from '../../clock/clock.js';
import {
  DEFAULT_QUERY_LIMIT,
  MAX_QUERY_LIMIT,
  type ClaimOptions,
  type EventListQuery,
  type EventQueue,
  type EventQueueStats,
  type NewEvent,
  type QueuedEvent,
} from '../types.js';
import { queryLimit } from '../validate.js';
import { Batcher, type Db } from './db.js';
import { toEvent, type EventRow } from '../rows.js';

// The lease is held by whoever it names: an owner whose lease ran out keeps it until another claims the
// event, so a late complete() of an event nobody else took still ends it instead of running it twice.
const HELD = `id = $1 AND lease_owner = $2 AND state = 'pending'`;
/** An unbounded claim would lease the whole backlog to one node. */
const MAX_CLAIM = 10_000;

export class PgEventQueue implements EventQueue {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /** Enqueues of one turn go as one INSERT (one commit); each resolves once that commit is done, so an
   *  acknowledged event survives a crash. */
  private readonly inserts = new Batcher<NewEvent & { enqueuedAt: number }, boolean>(async (evs) => {
    const rows = await this.db.rows<{ id: string }>(
      `INSERT INTO events (id, project, function_name, qualifier, trace, source, payload, enqueued_at, next_attempt_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
         $8::double precision[], $9::double precision[])
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [
        evs.map((e) => e.id),
        evs.map((e) => e.project),
        evs.map((e) => e.functionName),
        evs.map((e) => e.qualifier ?? null),
        evs.map((e) => e.trace ?? null),
        evs.map((e) => e.source),
        evs.map((e) => e.payload),
        evs.map((e) => e.enqueuedAt),
        evs.map((e) => e.nextAttemptAt ?? e.enqueuedAt),
      ],
    );
    const inserted = new Set(rows.map((r) => r.id));
    // The same id twice in one batch: the first one is the insert, as it would be one after the other.
    return evs.map((e) => inserted.delete(e.id));
  });

  async enqueue(ev: NewEvent): Promise<boolean> {
    this.db.assertOpen();
    return this.inserts.add({ ...ev, enqueuedAt: ev.enqueuedAt ?? this.clock.now() });
  }

  /** Completions of one turn as one DELETE. */
  private readonly completions = new Batcher<{ id: string; owner: string }, boolean>(async (items) => {
    const rows = await this.db.rows<{ id: string; lease_owner: string }>(
      `DELETE FROM events e USING unnest($1::text[], $2::text[]) AS c(id, owner)
       WHERE e.id = c.id AND e.lease_owner = c.owner AND e.state = 'pending'
       RETURNING e.id, e.lease_owner`,
      [items.map((i) => i.id), items.map((i) => i.owner)],
    );
    const done = new Set(rows.map((r) => `${r.id}\n${r.lease_owner}`));
    return items.map((i) => done.delete(`${i.id}\n${i.owner}`));
  });

  async claim(opts: ClaimOptions): Promise<QueuedEvent[]> {
    this.db.assertOpen();
    const limit = Math.floor(Math.min(Math.max(opts.limit, 0), MAX_CLAIM)) || 0;
    if (limit === 0) return [];
    const now = this.clock.now();
    const rows = await this.db.rows<EventRow & { arrival: number }>(
      `WITH picked AS (
         SELECT id FROM events
         WHERE state = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
           AND NOT (project || '/' || function_name = ANY ($5::text[]))
         ORDER BY next_attempt_at, arrival
         LIMIT $2
         FOR UPDATE SKIP LOCKED)
       UPDATE events e SET attempts = e.attempts + 1, lease_owner = $3, lease_until = $4
       FROM picked WHERE e.id = picked.id
       RETURNING e.*`,
      [now, limit, opts.owner, now + opts.leaseMs, (opts.skip ?? []).map((r) => `${r.project}/${r.name}`)],
    );
    // UPDATE ... RETURNING gives no order of its own.
    rows.sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.arrival - b.arrival);
    return rows.map(toEvent);
  }

  async extend(id: string, owner: string, leaseMs: number): Promise<boolean> {
    // From now, not from the old end: a renewal says how long the owner still needs from here.
    const until = this.clock.now() + leaseMs;
    return (
      (await this.db.changed(`UPDATE events SET lease_until = $3 WHERE ${HELD}`, [id, owner, until])) > 0
    );
  }

  async complete(id: string, owner: string): Promise<boolean> {
    this.db.assertOpen();
    return this.completions.add({ id, owner });
  }

  /** attempts stays as claim() counted it: the failed attempt did run. */
  async fail(id: string, owner: string, f: { nextAttemptAt: number; error: string }): Promise<boolean> {
    const n = await this.db.changed(
      `UPDATE events SET failures = failures + 1, lease_owner = NULL, lease_until = NULL,
         next_attempt_at = $3, last_error = $4
       WHERE ${HELD}`,
      [id, owner, f.nextAttemptAt, f.error],
    );
    return n > 0;
  }

  async postpone(id: string, owner: string, p: { nextAttemptAt: number; error: string }): Promise<boolean> {
    const n = await this.db.changed(
      `UPDATE events SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $3, last_error = $4
       WHERE ${HELD}`,
      [id, owner, p.nextAttemptAt, p.error],
    );
    return n > 0;
  }

  async revive(id: string): Promise<boolean> {
    const n = await this.db.changed(
      `UPDATE events SET state = 'pending', failures = 0, enqueued_at = $2, next_attempt_at = $2,
         lease_owner = NULL, lease_until = NULL
       WHERE id = $1 AND state = 'dead'`,
      [id, this.clock.now()],
    );
    return n > 0;
  }

  /** Takes back the attempt claim() counted, since it never started; never below zero. */
  async release(id: string, owner: string): Promise<boolean> {
    const n = await this.db.changed(
      `UPDATE events SET lease_owner = NULL, lease_until = NULL, attempts = GREATEST(attempts - 1, 0)
       WHERE ${HELD}`,
      [id, owner],
    );
    return n > 0;
  }

  async deadLetter(id: string, owner: string, error: string, failed = false): Promise<boolean> {
    const n = await this.db.changed(
      `UPDATE events SET state = 'dead', failures = failures + $4, lease_owner = NULL, lease_until = NULL,
         last_error = $3
       WHERE ${HELD}`,
      [id, owner, error, failed ? 1 : 0],
    );
    return n > 0;
  }

  /** Attempts stay counted: a node restarting under its id may have started them before it went down. */
  async releaseOwner(owner: string): Promise<number> {
    return this.db.changed(
      'UPDATE events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1',
      [owner],
    );
  }

  /** A leased event becomes claimable only once both its due time and its lease are past. */
  async nextDueAt(): Promise<number | undefined> {
    const rows = await this.db.rows<{ at: number | null }>(
      // Two index walks instead of a scan of every pending event: the first unleased one in due order, and
      // the few leased (in flight) ones through the owner index
      // (only pending events hold a lease: every way out of pending clears it).
      `SELECT min(at) AS at FROM (
         (SELECT next_attempt_at AS at FROM events
           WHERE state = 'pending' AND lease_owner IS NULL ORDER BY next_attempt_at LIMIT 1)
         UNION ALL
         SELECT GREATEST(next_attempt_at, COALESCE(lease_until, next_attempt_at)) AS at FROM events
           WHERE lease_owner IS NOT NULL) due`,
    );
    return rows[0]?.at ?? undefined;
  }

  async get(id: string): Promise<QueuedEvent | undefined> {
    const rows = await this.db.rows<EventRow>('SELECT * FROM events WHERE id = $1', [id]);
    return rows[0] && toEvent(rows[0]);
  }

  async purgeDead(acceptedBefore: number): Promise<number> {
    this.db.assertOpen();
    return this.db.changed(`DELETE FROM events WHERE state = 'dead' AND enqueued_at < $1`, [acceptedBefore]);
  }

  async stats(project?: string): Promise<EventQueueStats[]> {
    this.db.assertOpen();
    const params: unknown[] = [this.clock.now()];
    const where = project === undefined ? '' : `WHERE project = $${params.push(project)}`;
    const rows = await this.db.rows<{
      project: string;
      function_name: string;
      pending: string;
      in_flight: string;
      dead: string;
      oldest: number | null;
    }>(
      `SELECT project, function_name,
         count(*) FILTER (WHERE state = 'pending') AS pending,
         count(*) FILTER (WHERE state = 'pending' AND lease_owner IS NOT NULL AND lease_until > $1) AS in_flight,
         count(*) FILTER (WHERE state = 'dead') AS dead,
         min(enqueued_at) FILTER (WHERE state = 'pending') AS oldest
       FROM events ${where} GROUP BY project, function_name ORDER BY project, function_name`,
      params,
    );
    return rows.map((r) => ({
      project: r.project,
      functionName: r.function_name,
      pending: Number(r.pending),
      inFlight: Number(r.in_flight),
      dead: Number(r.dead),
      oldestPendingAt: r.oldest,
    }));
  }

  async list(q: EventListQuery): Promise<QueuedEvent[]> {
    this.db.assertOpen();
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (clause: string, value: unknown) => where.push(`${clause} $${params.push(value)}`);
    if (q.project !== undefined) add('project =', q.project);
    if (q.functionName !== undefined) add('function_name =', q.functionName);
    if (q.state !== undefined) add('state =', q.state);
    if (q.dueBy !== undefined) add('next_attempt_at <=', q.dueBy);
    const limit = queryLimit(q.limit, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT);
    // Without a state filter dead letters are listed too, in due order like the rest.
    const rows = await this.db.rows<EventRow>(
      `SELECT * FROM events ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY next_attempt_at, arrival LIMIT $${params.push(limit)}`,
      params,
    );
    return rows.map(toEvent);
  }
}

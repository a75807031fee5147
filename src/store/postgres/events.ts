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
import type { Db } from './db.js';
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

  async enqueue(ev: NewEvent): Promise<boolean> {
    this.db.assertOpen();
    const enqueuedAt = ev.enqueuedAt ?? this.clock.now();
    // Autocommit: the row is committed before the promise resolves, so an acknowledged event survives a crash.
    const n = await this.db.changed(
      `INSERT INTO events (id, project, function_name, qualifier, trace, source, payload, enqueued_at, next_attempt_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
      [
        ev.id,
        ev.project,
        ev.functionName,
        ev.qualifier ?? null,
        ev.trace ?? null,
        ev.source,
        ev.payload,
        enqueuedAt,
        ev.nextAttemptAt ?? enqueuedAt,
      ],
    );
    return n === 1;
  }

  async claim(opts: ClaimOptions): Promise<QueuedEvent[]> {
    this.db.assertOpen();
    const limit = Math.floor(Math.min(Math.max(opts.limit, 0), MAX_CLAIM)) || 0;
    if (limit === 0) return [];
    const now = this.clock.now();
    const rows = await this.db.rows<EventRow & { arrival: number }>(
      `WITH picked AS (
         SELECT id FROM events
         WHERE state = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
         ORDER BY next_attempt_at, arrival
         LIMIT $2
         FOR UPDATE SKIP LOCKED)
       UPDATE events e SET attempts = e.attempts + 1, lease_owner = $3, lease_until = $4
       FROM picked WHERE e.id = picked.id
       RETURNING e.*`,
      [now, limit, opts.owner, now + opts.leaseMs],
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
    return (await this.db.changed(`DELETE FROM events WHERE ${HELD}`, [id, owner])) > 0;
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
      `SELECT min(GREATEST(next_attempt_at, COALESCE(lease_until, next_attempt_at))) AS at
       FROM events WHERE state = 'pending'`,
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

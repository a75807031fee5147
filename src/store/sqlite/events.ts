// EventQueue on SQLite. One connection per process and IMMEDIATE transactions make each claim atomic; the
// lease columns still matter here, because a node restarting under its id, or another process sharing the
// file, must never run an event someone else holds.
import type { Statement } from 'better-sqlite3';
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
import type { SqliteDb } from './db.js';
import { toEvent, type EventRow } from '../rows.js';

const refKey = (r: { project: string; name: string }): string => `${r.project}/${r.name}`;

type Param = string | number | null;

const STATS = `SELECT project, function_name,
    sum(state = 'pending') AS pending,
    sum(state = 'pending' AND lease_owner IS NOT NULL AND lease_until > @now) AS in_flight,
    sum(state = 'dead') AS dead,
    min(CASE WHEN state = 'pending' THEN enqueued_at END) AS oldest
  FROM events`;

interface StatsRow {
  project: string;
  function_name: string;
  pending: number;
  in_flight: number;
  dead: number;
  oldest: number | null;
}

function toStats(r: StatsRow): EventQueueStats {
  return {
    project: r.project,
    functionName: r.function_name,
    pending: Number(r.pending),
    inFlight: Number(r.in_flight),
    dead: Number(r.dead),
    oldestPendingAt: r.oldest,
  };
}

/** An unbounded claim would lease the whole backlog to one node (the PostgreSQL store caps it the same). */
const MAX_CLAIM = 10_000;

const COLS =
  'id, project, function_name, qualifier, trace, source, payload, enqueued_at, attempts, failures, next_attempt_at, state, last_error, lease_owner, lease_until';
/** Claimable now: pending, due, and nobody's lease still running. */
const CLAIMABLE = `state = 'pending' AND next_attempt_at <= @now AND (lease_until IS NULL OR lease_until <= @now)`;
/** Held by this owner. A lease that ran out still counts until another owner claims the event: finishing
 *  late is better than running the event twice. */
const HELD = `id = @id AND lease_owner = @owner AND state = 'pending'`;

export class SqliteEventQueue implements EventQueue {
  private readonly st: ReturnType<typeof prepare>;
  private readonly listCache = new Map<string, Statement<Param[], EventRow>>();

  constructor(private readonly s: SqliteDb) {
    this.st = prepare(s);
  }

  /** Group commit (SqliteDb.grouped): enqueues that arrive in one turn of the event loop share one
   *  transaction and one WAL sync, and each resolves only once it is on disk, so a 202 is never taken back. */
  enqueue(ev: NewEvent): Promise<boolean> {
    this.s.assertOpen();
    const enqueuedAt = ev.enqueuedAt ?? this.s.clock.now();
    const row = {
      id: ev.id,
      project: ev.project,
      fn: ev.functionName,
      qualifier: ev.qualifier ?? null,
      trace: ev.trace ?? null,
      source: ev.source,
      payload: ev.payload,
      at: enqueuedAt,
      due: ev.nextAttemptAt ?? enqueuedAt,
    };
    return this.s.grouped(() => this.st.insert.run(row).changes > 0, true);
  }

  async claim({ owner, leaseMs, limit, skip = [] }: ClaimOptions): Promise<QueuedEvent[]> {
    this.s.assertOpen();
    const n = Math.min(MAX_CLAIM, Math.max(0, Math.floor(limit)));
    if (n === 0) return [];
    const now = this.s.clock.now();
    // Counted before the attempt starts, so retry limits hold across a crash mid-run. Not fsynced: WAL
    // keeps it through a process crash, and what a power cut could lose is one attempt's count, never an event.
    const until = now + leaseMs;
    const rows = await this.s.grouped(() =>
      skip.length === 0
        ? this.st.claim.all({ owner, now, until, limit: n })
        : this.st.claimSkipping.all({ owner, now, until, limit: n, skip: JSON.stringify(skip.map(refKey)) }),
    );
    // RETURNING gives rows in no promised order; callers get them oldest due first.
    rows.sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.seq - b.seq);
    return rows.map(toEvent);
  }

  async extend(id: string, owner: string, leaseMs: number): Promise<boolean> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.st.extend.run({ id, owner, now, until: now + leaseMs }).changes > 0;
  }

  /** Grouped with the other completions of the turn (one commit for many), not synced: a completion lost to
   *  a power cut runs the event again, which at-least-once allows. */
  complete(id: string, owner: string): Promise<boolean> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.grouped(() => this.st.complete.run({ id, owner, now }).changes > 0);
  }

  async fail(id: string, owner: string, f: { nextAttemptAt: number; error: string }): Promise<boolean> {
    this.s.assertOpen();
    const params = { id, owner, now: this.s.clock.now(), due: f.nextAttemptAt, error: f.error };
    return this.s.grouped(() => this.st.fail.run(params).changes > 0, true);
  }

  async postpone(id: string, owner: string, p: { nextAttemptAt: number; error: string }): Promise<boolean> {
    this.s.assertOpen();
    const params = { id, owner, due: p.nextAttemptAt, error: p.error };
    return this.s.grouped(() => this.st.postpone.run(params).changes > 0);
  }

  async revive(id: string): Promise<boolean> {
    this.s.assertOpen();
    return this.s.durably(() => this.st.revive.run({ id, now: this.s.clock.now() }).changes > 0);
  }

  async release(id: string, owner: string): Promise<boolean> {
    this.s.assertOpen();
    return this.st.release.run({ id, owner, now: this.s.clock.now() }).changes > 0;
  }

  async deadLetter(id: string, owner: string, error: string, failed = false): Promise<boolean> {
    this.s.assertOpen();
    const params = { id, owner, now: this.s.clock.now(), error, failed: failed ? 1 : 0 };
    return this.s.grouped(() => this.st.deadLetter.run(params).changes > 0, true);
  }

  async releaseOwner(owner: string): Promise<number> {
    this.s.assertOpen();
    return this.st.releaseOwner.run({ owner }).changes;
  }

  async nextDueAt(): Promise<number | undefined> {
    this.s.assertOpen();
    return this.st.nextDue.get()?.at ?? undefined;
  }

  async get(id: string): Promise<QueuedEvent | undefined> {
    this.s.assertOpen();
    const row = this.st.get.get(id);
    return row && toEvent(row);
  }

  async purgeDead(acceptedBefore: number): Promise<number> {
    this.s.assertOpen();
    return this.st.purgeDead.run(acceptedBefore).changes;
  }

  async stats(project?: string): Promise<EventQueueStats[]> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    const rows = project === undefined ? this.st.stats.all({ now }) : this.st.statsOf.all({ now, project });
    return rows.map(toStats);
  }

  async list(q: EventListQuery): Promise<QueuedEvent[]> {
    this.s.assertOpen();
    const where: string[] = [];
    const params: Param[] = [];
    const add = (sql: string, v: Param) => {
      where.push(sql);
      params.push(v);
    };
    if (q.project !== undefined) add('project = ?', q.project);
    if (q.functionName !== undefined) add('function_name = ?', q.functionName);
    if (q.state !== undefined) add('state = ?', q.state);
    if (q.dueBy !== undefined) add('next_attempt_at <= ?', q.dueBy);
    params.push(queryLimit(q.limit, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT));
    const sql = `SELECT ${COLS} FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY next_attempt_at, seq LIMIT ?`;
    let stmt = this.listCache.get(sql);
    if (!stmt) this.listCache.set(sql, (stmt = this.s.db.prepare<Param[], EventRow>(sql)));
    return stmt.all(...params).map(toEvent);
  }
}

function prepare({ db }: SqliteDb) {
  return {
    insert: db.prepare(
      `INSERT INTO events (id, project, function_name, qualifier, trace, source, payload, enqueued_at, next_attempt_at)
       VALUES (@id, @project, @fn, @qualifier, @trace, @source, @payload, @at, @due) ON CONFLICT (id) DO NOTHING`,
    ),
    claim: db.prepare<
      [{ owner: string; now: number; until: number; limit: number }],
      EventRow & { seq: number }
    >(
      `UPDATE events SET attempts = attempts + 1, lease_owner = @owner, lease_until = @until
       WHERE seq IN (SELECT seq FROM events WHERE ${CLAIMABLE} ORDER BY next_attempt_at, seq LIMIT @limit)
       RETURNING ${COLS}, seq`,
    ),
    claimSkipping: db.prepare<
      [{ owner: string; now: number; until: number; limit: number; skip: string }],
      EventRow & { seq: number }
    >(
      `UPDATE events SET attempts = attempts + 1, lease_owner = @owner, lease_until = @until
       WHERE seq IN (SELECT seq FROM events WHERE ${CLAIMABLE}
         AND project || '/' || function_name NOT IN (SELECT value FROM json_each(@skip))
         ORDER BY next_attempt_at, seq LIMIT @limit)
       RETURNING ${COLS}, seq`,
    ),
    extend: db.prepare(`UPDATE events SET lease_until = @until WHERE ${HELD}`),
    complete: db.prepare(`DELETE FROM events WHERE ${HELD}`),
    fail: db.prepare(
      `UPDATE events SET failures = failures + 1, next_attempt_at = @due, last_error = @error,
         lease_owner = NULL, lease_until = NULL
       WHERE ${HELD}`,
    ),
    postpone: db.prepare(
      `UPDATE events SET next_attempt_at = @due, last_error = @error, lease_owner = NULL, lease_until = NULL
       WHERE ${HELD}`,
    ),
    revive: db.prepare(
      `UPDATE events SET state = 'pending', failures = 0, enqueued_at = @now, next_attempt_at = @now,
         lease_owner = NULL, lease_until = NULL
       WHERE id = @id AND state = 'dead'`,
    ),
    release: db.prepare(
      `UPDATE events SET attempts = max(0, attempts - 1), lease_owner = NULL, lease_until = NULL WHERE ${HELD}`,
    ),
    deadLetter: db.prepare(
      `UPDATE events SET state = 'dead', failures = failures + @failed, last_error = @error, lease_owner = NULL,
         lease_until = NULL
       WHERE ${HELD}`,
    ),
    releaseOwner: db.prepare(
      `UPDATE events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = @owner AND state = 'pending'`,
    ),
    // Two index walks instead of a scan of every pending event (a backlog may hold millions): the first
    // unleased one in due order, and the few that are leased (in flight) through the owner index (only pending
    // events hold a lease: every way out of pending clears it).
    nextDue: db.prepare<[], { at: number | null }>(
      `SELECT min(at) AS at FROM (
         SELECT * FROM (SELECT next_attempt_at AS at FROM events
           WHERE state = 'pending' AND lease_owner IS NULL ORDER BY next_attempt_at LIMIT 1)
         UNION ALL
         SELECT max(next_attempt_at, coalesce(lease_until, next_attempt_at)) AS at FROM events
           WHERE lease_owner IS NOT NULL)`,
    ),
    get: db.prepare<[string], EventRow>(`SELECT ${COLS} FROM events WHERE id = ?`),
    purgeDead: db.prepare<[number]>(`DELETE FROM events WHERE state = 'dead' AND enqueued_at < ?`),
    stats: db.prepare<[{ now: number }], StatsRow>(
      `${STATS} GROUP BY project, function_name ORDER BY project, function_name`,
    ),
    statsOf: db.prepare<[{ now: number; project: string }], StatsRow>(
      `${STATS} WHERE project = @project GROUP BY project, function_name ORDER BY function_name`,
    ),
  };
}

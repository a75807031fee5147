// What every SQLite part shares: the one better-sqlite3 connection, the clock, and the durability switch.
//
// Durability: the connection runs synchronous=NORMAL, which in WAL mode survives a process crash and only
// loses the last commits on power loss or an OS crash. That is fine for invocation records and event
// completions and claims (a lost completion replays the event, a lost claim undercounts one attempt: async
// invocations are at-least-once anyway). Deploys, removals, enqueues (committed in groups), failures, dead
// letters and every queue write (a sent message, a receive's new receipt handle, a delete) switch to
// synchronous=FULL for their transaction, so the WAL is fsynced before their promise resolves: a 202, a
// "deployed" or a sent message's id is never taken back.
import type { Database } from 'better-sqlite3';
import type { Clock } from '../../clock/clock.js';

export class SqliteDb {
  closed = false;

  constructor(
    readonly db: Database,
    readonly clock: Clock,
  ) {}

  assertOpen(): void {
    if (this.closed) throw new Error('store is closed');
  }

  /** Runs fn with synchronous=FULL, so its commit is fsynced before the caller is told it happened. */
  durably<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try {
      return fn();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** An IMMEDIATE transaction (the write lock taken up front, so it never fails half way on a busy upgrade). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }
}

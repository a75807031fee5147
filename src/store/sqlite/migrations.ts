// Forward-only schema migrations, tracked in PRAGMA user_version (the header field SQLite keeps for exactly
// this). Append new entries; never edit or reorder a shipped one, since existing data dirs already ran it.
import type { Database } from 'better-sqlite3';

export interface Migration {
  /** 1-based and contiguous: after running migration N, user_version is N. */
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'functions, versions, code, events, invocations',
    sql: `
      CREATE TABLE functions (
        name TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        latest_version INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX functions_by_service ON functions (service);

      -- size precedes archive so reading sha256/size never walks a blob's overflow pages (GC scans this table).
      CREATE TABLE code (
        sha256 TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        archive BLOB NOT NULL
      ) STRICT;

      CREATE TABLE versions (
        name TEXT NOT NULL REFERENCES functions (name) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        service TEXT NOT NULL,
        config TEXT NOT NULL,
        code_sha256 TEXT NOT NULL REFERENCES code (sha256),
        code_size INTEGER NOT NULL,
        deployed_at INTEGER NOT NULL,
        PRIMARY KEY (name, version)
      ) STRICT;
      CREATE INDEX versions_by_code ON versions (code_sha256);

      CREATE TABLE events (
        id TEXT PRIMARY KEY,
        function_name TEXT NOT NULL,
        payload TEXT NOT NULL,
        enqueued_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE INDEX events_by_age ON events (enqueued_at);

      -- AUTOINCREMENT: seq is a client-visible cursor, so it must never be reused after retention deletes rows.
      -- start and duration_ms are REAL so a fractional timestamp from the hot path is stored, not rejected.
      CREATE TABLE invocations (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL UNIQUE,
        function_name TEXT NOT NULL,
        version TEXT NOT NULL,
        trigger TEXT NOT NULL,
        start REAL NOT NULL,
        duration_ms REAL NOT NULL,
        billed_ms INTEGER NOT NULL,
        memory_mb INTEGER NOT NULL,
        max_rss INTEGER NOT NULL,
        cold INTEGER NOT NULL,
        init_ms REAL,
        status TEXT NOT NULL,
        error_type TEXT,
        error_message TEXT,
        logs TEXT NOT NULL
      ) STRICT;
      CREATE INDEX invocations_by_function_seq ON invocations (function_name, seq);
      CREATE INDEX invocations_by_function_start ON invocations (function_name, start);
    `,
  },
];

/** The schema version this build writes; a data dir with a higher one was written by a newer Nimbus. */
export const SCHEMA_VERSION = MIGRATIONS.length;

export class SchemaTooNewError extends Error {
  override name = 'SchemaTooNewError';
  constructor(
    readonly found: number,
    readonly supported: number,
  ) {
    super(
      `database schema version ${found} is newer than this Nimbus supports (${supported}); upgrade Nimbus`,
    );
  }
}

/** Runs every migration above the database's user_version, each in its own transaction. */
export function migrate(db: Database): { from: number; to: number } {
  const from = userVersion(db);
  if (from > SCHEMA_VERSION) throw new SchemaTooNewError(from, SCHEMA_VERSION);
  for (const m of MIGRATIONS) {
    if (m.version <= from) continue;
    // user_version lives in the db header, which is written inside the transaction: schema and number move together.
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return { from, to: SCHEMA_VERSION };
}

export function userVersion(db: Database): number {
  const v = db.pragma('user_version', { simple: true });
  return typeof v === 'number' ? v : Number(v);
}

// Forward-only schema migrations, tracked in PRAGMA user_version (the header field SQLite keeps for exactly
// this). Append new entries; never edit or reorder a shipped one, since existing data dirs already ran it.
import type { Database } from 'better-sqlite3';
import { SchemaTooNewError, STORAGE_QUOTA_MARK } from '../errors.js';

export { SchemaTooNewError };

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
  {
    version: 2,
    description: 'projects everywhere, events with leases and due times, schedules, nodes',
    sql: `
      CREATE TABLE projects (
        name TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL
      ) STRICT;
      INSERT INTO projects (name, created_at) VALUES ('default', CAST(unixepoch('subsec') * 1000 AS INTEGER));

      CREATE TABLE functions_v2 (
        project TEXT NOT NULL REFERENCES projects (name),
        name TEXT NOT NULL,
        service TEXT NOT NULL,
        latest_version INTEGER NOT NULL,
        PRIMARY KEY (project, name)
      ) STRICT;
      INSERT INTO functions_v2 SELECT 'default', name, service, latest_version FROM functions;

      CREATE TABLE versions_v2 (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        service TEXT NOT NULL,
        config TEXT NOT NULL,
        code_sha256 TEXT NOT NULL REFERENCES code (sha256),
        code_size INTEGER NOT NULL,
        deployed_at INTEGER NOT NULL,
        PRIMARY KEY (project, name, version),
        FOREIGN KEY (project, name) REFERENCES functions_v2 (project, name) ON DELETE CASCADE
      ) STRICT;
      INSERT INTO versions_v2
        SELECT 'default', name, version, service, config, code_sha256, code_size, deployed_at FROM versions;
      -- Dropped in this order so no foreign key points at a table being dropped; the renames carry the
      -- references over to the new names.
      DROP TABLE versions;
      DROP TABLE functions;
      ALTER TABLE functions_v2 RENAME TO functions;
      ALTER TABLE versions_v2 RENAME TO versions;
      CREATE INDEX functions_by_service ON functions (project, service);
      CREATE INDEX versions_by_code ON versions (code_sha256);

      -- seq keeps arrival order (ties of next_attempt_at); the lease says who runs an event and until when.
      -- Times are REAL: a jittered retry is due at a fractional millisecond.
      CREATE TABLE events_v2 (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        project TEXT NOT NULL,
        function_name TEXT NOT NULL,
        source TEXT NOT NULL,
        payload TEXT NOT NULL,
        enqueued_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
        last_error TEXT,
        lease_owner TEXT,
        lease_until REAL,
        qualifier TEXT,
        trace TEXT
      ) STRICT;
      INSERT INTO events_v2 (id, project, function_name, source, payload, enqueued_at, attempts, next_attempt_at)
        SELECT id, 'default', function_name, 'invoke', payload, enqueued_at, attempts, enqueued_at
        FROM events ORDER BY enqueued_at, rowid;
      DROP TABLE events;
      ALTER TABLE events_v2 RENAME TO events;
      CREATE INDEX events_due ON events (state, next_attempt_at, seq);
      CREATE INDEX events_by_owner ON events (lease_owner) WHERE lease_owner IS NOT NULL;
      CREATE INDEX events_by_function ON events (project, function_name, state);

      -- Retries of an event keep its request id (as Lambda's do), so a record is one (request id, attempt).
      CREATE TABLE invocations_v2 (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        project TEXT NOT NULL,
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
        logs TEXT NOT NULL,
        UNIQUE (request_id, attempt)
      ) STRICT;
      INSERT INTO invocations_v2 (seq, request_id, attempt, project, function_name, version, trigger, start,
          duration_ms, billed_ms, memory_mb, max_rss, cold, init_ms, status, error_type, error_message, logs)
        SELECT seq, request_id, 1, 'default', function_name, version, trigger, start, duration_ms, billed_ms,
          memory_mb, max_rss, cold, init_ms, status, error_type, error_message, logs
        FROM invocations;
      DROP TABLE invocations;
      ALTER TABLE invocations_v2 RENAME TO invocations;
      CREATE INDEX invocations_by_function_seq ON invocations (project, function_name, seq);
      CREATE INDEX invocations_by_function_start ON invocations (project, function_name, start);

      CREATE TABLE async_configs (
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (project, name),
        FOREIGN KEY (project, name) REFERENCES functions (project, name) ON DELETE CASCADE
      ) STRICT;

      CREATE TABLE schedules (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        function_name TEXT NOT NULL,
        expression TEXT NOT NULL,
        timezone TEXT NOT NULL,
        input TEXT,
        next_fire_at REAL NOT NULL,
        created_at REAL NOT NULL
      ) STRICT;
      CREATE INDEX schedules_due ON schedules (next_fire_at);

      CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL,
        gateway_url TEXT,
        api_url TEXT
      ) STRICT;
    `,
  },
  {
    version: 3,
    description: 'queues, their messages and deduplication ids',
    sql: `
      -- config is the QueueConfig as canonical JSON; service is NULL for a queue created through the API.
      CREATE TABLE queues (
        project TEXT NOT NULL REFERENCES projects (name),
        name TEXT NOT NULL,
        service TEXT,
        config TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (project, name)
      ) STRICT;
      CREATE INDEX queues_by_service ON queues (project, service);

      -- AUTOINCREMENT: seq orders the messages and is a FIFO queue's sequence number, so it must never be
      -- reused after deletes. receipt is the token of the latest receive (NULL until received).
      CREATE TABLE queue_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        project TEXT NOT NULL,
        queue TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        md5 TEXT NOT NULL,
        attributes TEXT NOT NULL,
        group_id TEXT,
        dedup_id TEXT,
        trace TEXT,
        sent_at REAL NOT NULL,
        visible_at REAL NOT NULL,
        first_received_at REAL,
        receive_count INTEGER NOT NULL DEFAULT 0,
        receipt TEXT,
        dead_letter_source TEXT,
        UNIQUE (project, queue, id),
        FOREIGN KEY (project, queue) REFERENCES queues (project, name) ON DELETE CASCADE
      ) STRICT;
      CREATE INDEX queue_messages_receivable ON queue_messages (project, queue, visible_at, seq);
      CREATE INDEX queue_messages_by_group ON queue_messages (project, queue, group_id, seq);
      CREATE INDEX queue_messages_by_age ON queue_messages (project, queue, sent_at);

      CREATE TABLE queue_dedup (
        project TEXT NOT NULL,
        queue TEXT NOT NULL,
        dedup_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (project, queue, dedup_id),
        FOREIGN KEY (project, queue) REFERENCES queues (project, name) ON DELETE CASCADE
      ) STRICT;
      CREATE INDEX queue_dedup_expiry ON queue_dedup (expires_at);
    `,
  },
  {
    version: 4,
    description: 'DynamoDB tables, their items, index entries and streams; access keys',
    sql: `
      -- def is the TableDef as canonical JSON; service is NULL for a table created through the API. SQLite has
      -- one writer, so the item count, total size and stream sequence are kept exact in the row for free.
      CREATE TABLE tables (
        project TEXT NOT NULL REFERENCES projects (name),
        name TEXT NOT NULL,
        service TEXT,
        def TEXT NOT NULL,
        created_at REAL NOT NULL,
        stream_label TEXT,
        stream_seq INTEGER NOT NULL DEFAULT 0,
        item_count INTEGER NOT NULL DEFAULT 0,
        size_bytes INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project, name)
      ) STRICT;

      -- pk and sk are order-preserving encodings of the key (src/tables/keys.ts) compared as bytes (memcmp),
      -- so a Query is a range of the primary key index; sk is empty when the table has no sort key. seg is a
      -- hash of pk (0..999) that splits a parallel Scan; ttl is the item's TTL number, NULL when it has none.
      CREATE TABLE table_items (
        project TEXT NOT NULL,
        table_name TEXT NOT NULL,
        pk BLOB NOT NULL,
        sk BLOB NOT NULL,
        seg INTEGER NOT NULL,
        item TEXT NOT NULL,
        size INTEGER NOT NULL,
        ttl REAL,
        PRIMARY KEY (project, table_name, pk, sk),
        FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
      ) STRICT;
      CREATE INDEX table_items_ttl ON table_items (ttl) WHERE ttl IS NOT NULL;

      -- One row per item per index that has the index's key attributes (sparse), holding the projected item;
      -- the table key ends the primary key, so entries with equal index keys stay apart, in table key order.
      CREATE TABLE table_index_items (
        project TEXT NOT NULL,
        table_name TEXT NOT NULL,
        index_name TEXT NOT NULL,
        pk BLOB NOT NULL,
        sk BLOB NOT NULL,
        table_pk BLOB NOT NULL,
        table_sk BLOB NOT NULL,
        seg INTEGER NOT NULL,
        item TEXT NOT NULL,
        PRIMARY KEY (project, table_name, index_name, pk, sk, table_pk, table_sk),
        FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
      ) STRICT;

      -- seq counts up per table (tables.stream_seq); the JSON columns are items in DynamoDB's JSON.
      CREATE TABLE table_streams (
        project TEXT NOT NULL,
        table_name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event_name TEXT NOT NULL CHECK (event_name IN ('INSERT', 'MODIFY', 'REMOVE')),
        keys TEXT NOT NULL,
        new_image TEXT,
        old_image TEXT,
        at REAL NOT NULL,
        user_identity TEXT,
        size INTEGER NOT NULL,
        PRIMARY KEY (project, table_name, seq),
        FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
      ) STRICT;
      CREATE INDEX table_streams_by_age ON table_streams (at);

      -- A function has at most one key; the caller removes it with the function (no cascade).
      CREATE TABLE credentials (
        access_key_id TEXT PRIMARY KEY,
        project TEXT NOT NULL REFERENCES projects (name),
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('user', 'function')),
        function_name TEXT,
        permissions TEXT,
        secret_ciphertext TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (project, function_name),
        CHECK ((kind = 'function') = (function_name IS NOT NULL))
      ) STRICT;
      CREATE INDEX credentials_by_name ON credentials (project, name, access_key_id);
    `,
  },
  {
    version: 5,
    description: 'where each table trigger has read its table stream up to',
    sql: `
      CREATE TABLE stream_cursors (
        project TEXT NOT NULL,
        table_name TEXT NOT NULL,
        consumer TEXT NOT NULL,
        after_seq INTEGER NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (project, table_name, consumer),
        FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
      ) STRICT;
    `,
  },
  {
    version: 6,
    description: "queues' tags (SQS's TagQueue)",
    sql: `
      -- A JSON object of tag key to value. Apart from config, so a deploy comparing configs never drops them.
      ALTER TABLE queues ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
    `,
  },
  {
    version: 7,
    description: 'buckets and object metadata, keys as UTF-8 bytes in S3 list order',
    sql: `
      CREATE TABLE buckets (
        project TEXT NOT NULL REFERENCES projects (name),
        name TEXT NOT NULL,
        service TEXT,
        created_at REAL NOT NULL,
        -- The last sequencer handed to a write in the bucket.
        seq INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project, name)
      ) STRICT;

      -- BLOB keys compare with memcmp: UTF-8 byte order, which is S3's listing order. No cascade: a bucket
      -- is deleted empty only, since each row owns bytes outside the database.
      CREATE TABLE objects (
        project TEXT NOT NULL,
        bucket TEXT NOT NULL,
        key BLOB NOT NULL,
        byte_ref TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        meta TEXT NOT NULL,
        last_modified REAL NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (project, bucket, key),
        FOREIGN KEY (project, bucket) REFERENCES buckets (project, name)
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 8,
    description: 'the size of each item collection of a table with a local secondary index',
    sql: `
      -- bytes: the items of one partition key value plus their local index entries. A row is made at the
      -- first write to the partition after this migration, from the rows as they stand, so none is filled here.
      CREATE TABLE table_collections (
        project TEXT NOT NULL,
        table_name TEXT NOT NULL,
        pk BLOB NOT NULL,
        bytes INTEGER NOT NULL,
        PRIMARY KEY (project, table_name, pk),
        FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 9,
    description: 'the object change log that storage triggers read',
    sql: `
      -- What each object write and delete did, written in its transaction and read by the storage trigger
      -- source, which enqueues the events and then deletes the entries: nothing acknowledged is lost, and
      -- the log holds only what is not yet an event. No foreign key: a removal may outlive its bucket.
      CREATE TABLE object_changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        project TEXT NOT NULL,
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        event TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        sequencer INTEGER NOT NULL,
        at REAL NOT NULL,
        context TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 10,
    description: 'multipart uploads and their parts; bucket CORS rules',
    sql: `
      -- An upload in progress. meta: the headers, user metadata and tags the object will get. Deleted with
      -- its parts when completed or aborted; a bucket's deletion deletes its uploads (their parts' bytes are
      -- then orphans, swept at start).
      CREATE TABLE uploads (
        project TEXT NOT NULL,
        bucket TEXT NOT NULL,
        upload_id TEXT NOT NULL,
        key BLOB NOT NULL,
        meta TEXT NOT NULL,
        initiated REAL NOT NULL,
        PRIMARY KEY (project, bucket, upload_id),
        FOREIGN KEY (project, bucket) REFERENCES buckets (project, name)
      ) STRICT;
      -- Upload ids are time-ordered: by key, then id, is S3's order (key, then initiation).
      CREATE INDEX uploads_by_key ON uploads (project, bucket, key, upload_id);

      -- Each part owns its bytes (byte_ref) until completion composes them into the object's one ref.
      CREATE TABLE upload_parts (
        project TEXT NOT NULL,
        bucket TEXT NOT NULL,
        upload_id TEXT NOT NULL,
        part_number INTEGER NOT NULL,
        byte_ref TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        last_modified REAL NOT NULL,
        PRIMARY KEY (project, bucket, upload_id, part_number),
        FOREIGN KEY (project, bucket, upload_id) REFERENCES uploads (project, bucket, upload_id)
      ) STRICT, WITHOUT ROWID;

      -- A JSON array of CORS rules (PutBucketCors); NULL when the bucket has none.
      ALTER TABLE buckets ADD COLUMN cors TEXT;
    `,
  },
  {
    version: 11,
    description: 'API keys per project with roles (stored hashed); the audit log of control actions',
    sql: `
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL REFERENCES projects (name),
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'deploy', 'invoke', 'read')),
        key_hash TEXT NOT NULL,
        sigv4_ciphertext TEXT NOT NULL,
        created_at REAL NOT NULL,
        rotated_at REAL
      ) STRICT;
      CREATE INDEX api_keys_by_project ON api_keys (project, created_at, id);

      -- Append-only; no foreign key, so a removed project's history stays.
      CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        project TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT
      ) STRICT;
      CREATE INDEX audit_by_project ON audit (project, seq);
    `,
  },
  {
    version: 12,
    description: 'secrets (nimbus secret), their values encrypted',
    sql: `
      -- ciphertext: AES-256-GCM under the master key, with the project and name as associated data, made by
      -- the caller; the store never sees a value in the clear.
      CREATE TABLE secrets (
        project TEXT NOT NULL REFERENCES projects (name),
        name TEXT NOT NULL,
        ciphertext TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (project, name)
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 13,
    description:
      "per-project quotas, and each project's stored bytes kept by triggers in the writing transaction",
    sql: `
      -- NULL: no limit. A project's row goes with it.
      CREATE TABLE project_quotas (
        project TEXT PRIMARY KEY REFERENCES projects (name) ON DELETE CASCADE,
        concurrency INTEGER,
        memory_mb INTEGER,
        storage_bytes INTEGER
      ) STRICT;

      -- One row per project, made with the project. The triggers below keep storage_bytes equal to the sum
      -- of the project's object and upload part sizes, table item sizes and queue message bodies plus
      -- attributes, in the transaction of the write that changes them: exact, and no scan per write.
      CREATE TABLE project_usage (
        project TEXT PRIMARY KEY REFERENCES projects (name) ON DELETE CASCADE,
        storage_bytes INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      INSERT INTO project_usage (project, storage_bytes)
        SELECT name,
          (SELECT coalesce(sum(size), 0) FROM objects WHERE project = name)
          + (SELECT coalesce(sum(size), 0) FROM upload_parts WHERE project = name)
          + (SELECT coalesce(sum(size), 0) FROM table_items WHERE project = name)
          + (SELECT coalesce(sum(length(CAST(body AS BLOB)) + length(CAST(attributes AS BLOB))), 0)
               FROM queue_messages WHERE project = name)
        FROM projects;
      CREATE TRIGGER projects_usage AFTER INSERT ON projects BEGIN
        INSERT INTO project_usage (project) VALUES (NEW.name);
      END;

      -- A write that grows a project past its quota aborts its statement (and so its transaction); one that
      -- shrinks it always passes, so deletes free space even over a lowered quota. The message carries the
      -- facts as JSON after a fixed mark (store/errors.ts).
      CREATE TRIGGER project_usage_quota BEFORE UPDATE OF storage_bytes ON project_usage
        WHEN NEW.storage_bytes > OLD.storage_bytes
          AND NEW.storage_bytes > (SELECT storage_bytes FROM project_quotas WHERE project = NEW.project)
      BEGIN
        SELECT RAISE(ABORT, '${STORAGE_QUOTA_MARK}' || json_object('project', NEW.project,
          'quota', (SELECT storage_bytes FROM project_quotas WHERE project = NEW.project),
          'usage', OLD.storage_bytes));
      END;

      CREATE TRIGGER objects_usage_insert AFTER INSERT ON objects BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes + NEW.size WHERE project = NEW.project;
      END;
      CREATE TRIGGER objects_usage_delete AFTER DELETE ON objects BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes - (OLD.size) WHERE project = OLD.project;
      END;
      CREATE TRIGGER objects_usage_update AFTER UPDATE OF size ON objects BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes + (NEW.size) - (OLD.size) WHERE project = NEW.project;
      END;
      CREATE TRIGGER upload_parts_usage_insert AFTER INSERT ON upload_parts BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes + NEW.size WHERE project = NEW.project;
      END;
      CREATE TRIGGER upload_parts_usage_delete AFTER DELETE ON upload_parts BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes - (OLD.size) WHERE project = OLD.project;
      END;
      CREATE TRIGGER upload_parts_usage_update AFTER UPDATE OF size ON upload_parts BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes + (NEW.size) - (OLD.size) WHERE project = NEW.project;
      END;
      CREATE TRIGGER table_items_usage_insert AFTER INSERT ON table_items BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes + NEW.size WHERE project = NEW.project;
      END;
      CREATE TRIGGER table_items_usage_delete AFTER DELETE ON table_items BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes - (OLD.size) WHERE project = OLD.project;
      END;
      CREATE TRIGGER table_items_usage_update AFTER UPDATE OF size ON table_items BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes + (NEW.size) - (OLD.size) WHERE project = NEW.project;
      END;
      CREATE TRIGGER queue_messages_usage_insert AFTER INSERT ON queue_messages BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes + length(CAST(NEW.body AS BLOB)) + length(CAST(NEW.attributes AS BLOB)) WHERE project = NEW.project;
      END;
      CREATE TRIGGER queue_messages_usage_delete AFTER DELETE ON queue_messages BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes - (length(CAST(OLD.body AS BLOB)) + length(CAST(OLD.attributes AS BLOB))) WHERE project = OLD.project;
      END;
      CREATE TRIGGER queue_messages_usage_update AFTER UPDATE OF body, attributes ON queue_messages BEGIN
        UPDATE project_usage SET storage_bytes = storage_bytes + (length(CAST(NEW.body AS BLOB)) + length(CAST(NEW.attributes AS BLOB))) - (length(CAST(OLD.body AS BLOB)) + length(CAST(OLD.attributes AS BLOB))) WHERE project = NEW.project;
      END;
    `,
  },
  {
    // Metering (renumbered at merge if other migrations land first: keep it one self-contained set).
    version: 14,
    description: 'invocations: metered requests and cost; indexes for cost reports and retention',
    sql: `
      -- Records from before metering were not priced: they count as cost 0 (and throttled ones as no request).
      ALTER TABLE invocations ADD COLUMN requests INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE invocations ADD COLUMN cost_pico_usd INTEGER NOT NULL DEFAULT 0;
      UPDATE invocations SET requests = 0 WHERE status = 'throttled';
      CREATE INDEX invocations_by_project_start ON invocations (project, start);
      CREATE INDEX invocations_by_start ON invocations (start);
      `,
  },
  {
    version: 15,
    description: 'gateway API keys under usage plans (stored hashed) and their quota counters',
    sql: `
      CREATE TABLE gateway_keys (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL REFERENCES projects (name),
        name TEXT NOT NULL,
        plan TEXT NOT NULL,
        key_hash TEXT NOT NULL,
        created_at REAL NOT NULL
      ) STRICT;
      CREATE INDEX gateway_keys_by_project ON gateway_keys (project, created_at, id);

      -- One counter per key and quota period; used + reserved never passes the plan's limit (checked by
      -- the reserving statement, which knows the limit).
      CREATE TABLE gateway_key_usage (
        project TEXT NOT NULL,
        key_id TEXT NOT NULL REFERENCES gateway_keys (id) ON DELETE CASCADE,
        period TEXT NOT NULL,
        used INTEGER NOT NULL CHECK (used >= 0),
        reserved INTEGER NOT NULL CHECK (reserved >= 0),
        PRIMARY KEY (project, key_id, period)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX gateway_key_usage_by_key ON gateway_key_usage (key_id);
    `,
  },
  {
    version: 16,
    description: 'traces: spans kept for the console and the control API; the trace id of each invocation',
    sql: `
      CREATE TABLE spans (
        project TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER NOT NULL,
        status_code TEXT NOT NULL,
        status_message TEXT,
        attributes TEXT NOT NULL,
        PRIMARY KEY (trace_id, span_id)
      ) STRICT;
      CREATE INDEX spans_by_project_trace ON spans (project, trace_id, start_ns);
      CREATE INDEX spans_by_start ON spans (start_ns);
      ALTER TABLE invocations ADD COLUMN trace_id TEXT;
    `,
  },
  {
    version: 17,
    description: 'web console sessions (the id stored hashed)',
    sql: `
      CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        project TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
        key_id TEXT NOT NULL,
        key_fingerprint TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        expires_at REAL NOT NULL
      ) STRICT;
      CREATE INDEX sessions_by_key ON sessions (key_id);
      CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    `,
  },
  {
    version: 18,
    description: 'usage counters per project and hour: data service requests, stored bytes, provisioned time',
    sql: `
      -- Added to by the usage meter's flushes (quantity and cost in picodollars, both whole numbers).
      CREATE TABLE usage (
        project TEXT NOT NULL,
        hour INTEGER NOT NULL,
        service TEXT NOT NULL,
        resource TEXT NOT NULL,
        kind TEXT NOT NULL,
        quantity INTEGER NOT NULL CHECK (quantity >= 0),
        cost_pico_usd INTEGER NOT NULL CHECK (cost_pico_usd >= 0),
        PRIMARY KEY (project, hour, service, resource, kind)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX usage_by_hour ON usage (hour);
    `,
  },
  {
    version: 19,
    description: 'large code archives in chunks, each written in its own short transaction',
    sql: `
      -- A chunked archive's code row holds an empty blob; its bytes are here in order. Written before the
      -- deploy's transaction, one chunk per turn of the event loop, so no single write holds the thread the
      -- gateway shares for the time a 15 MB blob takes (measured 250-350 ms with its fsync and checkpoint).
      CREATE TABLE code_chunks (
        sha256 TEXT NOT NULL,
        seq INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (sha256, seq)
      ) STRICT;
    `,
  },
];

/** The schema version this build writes; a data dir with a higher one was written by a newer Nimbus. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

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

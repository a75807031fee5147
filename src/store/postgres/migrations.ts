// Forward-only schema migrations for PostgreSQL, recorded in nimbus_schema_migrations. Append new entries;
// never edit or reorder a shipped one, since existing databases already ran it.
import type { PoolClient } from 'pg';
import { DEFAULT_PROJECT } from '../types.js';
import { SchemaTooNewError } from '../errors.js';

export interface Migration {
  /** 1-based and contiguous. */
  version: number;
  description: string;
  sql: string;
  /** Rows a migration seeds; run after sql in the same transaction, with the store clock's now. */
  seed?: (client: PoolClient, now: number) => Promise<void>;
}

// Names and ids are COLLATE "C" so listings order by code point, as SQLite's BINARY does, whatever the
// database's locale: the conformance suite expects the same order from every backend.
const V1_SQL = `
  CREATE TABLE projects (
    name text COLLATE "C" PRIMARY KEY,
    created_at bigint NOT NULL
  );

  CREATE TABLE functions (
    project text COLLATE "C" NOT NULL REFERENCES projects (name),
    name text COLLATE "C" NOT NULL,
    service text NOT NULL,
    latest_version integer NOT NULL,
    PRIMARY KEY (project, name)
  );
  CREATE INDEX functions_by_service ON functions (project, service);

  CREATE TABLE code (
    sha256 text PRIMARY KEY,
    size bigint NOT NULL,
    archive bytea NOT NULL
  );
  -- Archives are tar.gz already: EXTERNAL skips a compression attempt that would only cost time.
  ALTER TABLE code ALTER COLUMN archive SET STORAGE EXTERNAL;

  CREATE TABLE versions (
    project text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    version integer NOT NULL,
    service text NOT NULL,
    config text NOT NULL,
    code_sha256 text NOT NULL REFERENCES code (sha256),
    code_size bigint NOT NULL,
    deployed_at bigint NOT NULL,
    PRIMARY KEY (project, name, version),
    FOREIGN KEY (project, name) REFERENCES functions (project, name) ON DELETE CASCADE
  );
  CREATE INDEX versions_by_code ON versions (code_sha256);

  -- Times are double precision: a retry's due time may carry a fraction (jittered backoff), and every
  -- integer millisecond up to 2^53 is exact. arrival breaks ties between events due in the same millisecond.
  CREATE TABLE events (
    id text PRIMARY KEY,
    arrival bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    project text NOT NULL,
    function_name text NOT NULL,
    qualifier text,
    trace text,
    source text NOT NULL,
    payload text NOT NULL,
    enqueued_at double precision NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    next_attempt_at double precision NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    last_error text,
    lease_owner text,
    lease_until double precision
  );
  CREATE INDEX events_due ON events (next_attempt_at, arrival) WHERE state = 'pending';
  CREATE INDEX events_by_owner ON events (lease_owner) WHERE lease_owner IS NOT NULL;
  CREATE INDEX events_by_function ON events (project, function_name, state);

  -- seq is a client-visible cursor: an identity never hands out a value twice, even after rows are deleted.
  -- A record is keyed by (request_id, attempt): every retry of one event shares the event's request id.
  CREATE TABLE invocations (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id text NOT NULL,
    project text NOT NULL,
    function_name text NOT NULL,
    version text NOT NULL,
    trigger text NOT NULL,
    attempt integer NOT NULL,
    start double precision NOT NULL,
    duration_ms double precision NOT NULL,
    billed_ms integer NOT NULL,
    memory_mb integer NOT NULL,
    max_rss bigint NOT NULL,
    cold boolean NOT NULL,
    init_ms double precision,
    status text NOT NULL,
    error_type text,
    error_message text,
    logs text NOT NULL,
    UNIQUE (request_id, attempt)
  );
  CREATE INDEX invocations_by_function_seq ON invocations (project, function_name, seq);
  CREATE INDEX invocations_by_function_start ON invocations (project, function_name, start);
  CREATE INDEX invocations_by_start ON invocations (start);

  CREATE TABLE async_configs (
    project text NOT NULL,
    name text NOT NULL,
    config text NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (project, name),
    FOREIGN KEY (project, name) REFERENCES functions (project, name) ON DELETE CASCADE
  );

  CREATE TABLE schedules (
    id text COLLATE "C" PRIMARY KEY,
    project text NOT NULL,
    function_name text NOT NULL,
    expression text NOT NULL,
    timezone text NOT NULL,
    input text,
    next_fire_at double precision NOT NULL,
    created_at double precision NOT NULL
  );
  CREATE INDEX schedules_due ON schedules (next_fire_at);

  CREATE TABLE nodes (
    id text COLLATE "C" PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at bigint NOT NULL,
    heartbeat_at bigint NOT NULL,
    gateway_url text,
    api_url text
  );
`;

// config is the QueueConfig as canonical JSON; service is NULL for a queue created through the API. seq
// orders the messages and is a FIFO queue's sequence number; an identity never hands a value out twice.
// receipt is the token of the latest receive (NULL until received). Removing a queue removes its messages
// and deduplication ids with it.
const V2_SQL = `
  CREATE TABLE queues (
    project text COLLATE "C" NOT NULL REFERENCES projects (name),
    name text COLLATE "C" NOT NULL,
    service text,
    config text NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (project, name)
  );
  CREATE INDEX queues_by_service ON queues (project, service);

  CREATE TABLE queue_messages (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project text COLLATE "C" NOT NULL,
    queue text COLLATE "C" NOT NULL,
    id text NOT NULL,
    body text NOT NULL,
    md5 text NOT NULL,
    attributes text NOT NULL,
    group_id text,
    dedup_id text,
    trace text,
    sent_at double precision NOT NULL,
    visible_at double precision NOT NULL,
    first_received_at double precision,
    receive_count integer NOT NULL DEFAULT 0,
    receipt text,
    dead_letter_source text,
    UNIQUE (project, queue, id),
    FOREIGN KEY (project, queue) REFERENCES queues (project, name) ON DELETE CASCADE
  );
  CREATE INDEX queue_messages_receivable ON queue_messages (project, queue, visible_at, seq);
  CREATE INDEX queue_messages_by_group ON queue_messages (project, queue, group_id, seq);
  CREATE INDEX queue_messages_by_age ON queue_messages (project, queue, sent_at);

  CREATE TABLE queue_dedup (
    project text COLLATE "C" NOT NULL,
    queue text COLLATE "C" NOT NULL,
    dedup_id text NOT NULL,
    message_id text NOT NULL,
    seq bigint NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (project, queue, dedup_id),
    FOREIGN KEY (project, queue) REFERENCES queues (project, name) ON DELETE CASCADE
  );
  CREATE INDEX queue_dedup_expiry ON queue_dedup (expires_at);
`;

// DynamoDB tables. pk and sk are order-preserving encodings of the key (src/tables/keys.ts) in bytea, which
// compares as bytes, so a Query is a range of the primary key index; sk is empty when the table has no sort
// key. seg is a hash of pk (0..999) that splits a parallel Scan; ttl is the item's TTL number (NULL: none).
// Index entries exist for the items that have the index's key attributes (sparse), holding the projected
// item; the table key ends their primary key, so entries with equal index keys stay apart, in table key
// order. The item count and size are spread over shards (table_counts) so that writes to one table do not
// all wait on one counter row; stream_seq orders a table's stream records in commit order. Removing a table
// removes everything of it (ON DELETE CASCADE). A function has at most one access key; the caller removes
// it with the function.
const V3_SQL = `
  CREATE TABLE tables (
    project text COLLATE "C" NOT NULL REFERENCES projects (name),
    name text COLLATE "C" NOT NULL,
    service text,
    def text NOT NULL,
    created_at double precision NOT NULL,
    stream_label text,
    stream_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project, name)
  );

  CREATE TABLE table_counts (
    project text COLLATE "C" NOT NULL,
    table_name text COLLATE "C" NOT NULL,
    shard smallint NOT NULL,
    items bigint NOT NULL,
    bytes bigint NOT NULL,
    PRIMARY KEY (project, table_name, shard),
    FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
  );

  CREATE TABLE table_items (
    project text COLLATE "C" NOT NULL,
    table_name text COLLATE "C" NOT NULL,
    pk bytea NOT NULL,
    sk bytea NOT NULL,
    seg smallint NOT NULL,
    item text NOT NULL,
    size integer NOT NULL,
    ttl double precision,
    PRIMARY KEY (project, table_name, pk, sk),
    FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
  );
  CREATE INDEX table_items_ttl ON table_items (ttl) WHERE ttl IS NOT NULL;

  CREATE TABLE table_index_items (
    project text COLLATE "C" NOT NULL,
    table_name text COLLATE "C" NOT NULL,
    index_name text COLLATE "C" NOT NULL,
    pk bytea NOT NULL,
    sk bytea NOT NULL,
    table_pk bytea NOT NULL,
    table_sk bytea NOT NULL,
    seg smallint NOT NULL,
    item text NOT NULL,
    PRIMARY KEY (project, table_name, index_name, pk, sk, table_pk, table_sk),
    FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
  );

  CREATE TABLE table_streams (
    project text COLLATE "C" NOT NULL,
    table_name text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    event_name text NOT NULL CHECK (event_name IN ('INSERT', 'MODIFY', 'REMOVE')),
    keys text NOT NULL,
    new_image text,
    old_image text,
    at double precision NOT NULL,
    user_identity text,
    size integer NOT NULL,
    PRIMARY KEY (project, table_name, seq),
    FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
  );
  CREATE INDEX table_streams_by_age ON table_streams (at);

  CREATE TABLE credentials (
    access_key_id text COLLATE "C" PRIMARY KEY,
    project text COLLATE "C" NOT NULL REFERENCES projects (name),
    name text COLLATE "C" NOT NULL,
    kind text NOT NULL CHECK (kind IN ('user', 'function')),
    function_name text COLLATE "C",
    permissions text,
    secret_ciphertext text NOT NULL,
    created_at double precision NOT NULL,
    UNIQUE (project, function_name),
    CHECK ((kind = 'function') = (function_name IS NOT NULL))
  );
  CREATE INDEX credentials_by_name ON credentials (project, name, access_key_id);
`;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'projects, functions, versions, code, events with leases, invocations, schedules, nodes',
    sql: V1_SQL,
    seed: async (client, now) => {
      await client.query('INSERT INTO projects (name, created_at) VALUES ($1, $2)', [DEFAULT_PROJECT, now]);
    },
  },
  {
    version: 2,
    description: 'queues, their messages and deduplication ids',
    sql: V2_SQL,
  },
  {
    version: 3,
    description: 'DynamoDB tables, their items, index entries and streams; access keys',
    sql: V3_SQL,
  },
  {
    version: 4,
    description: 'where each table trigger has read its table stream up to',
    sql: `
      CREATE TABLE stream_cursors (
        project text COLLATE "C" NOT NULL,
        table_name text COLLATE "C" NOT NULL,
        consumer text COLLATE "C" NOT NULL,
        after_seq bigint NOT NULL,
        updated_at double precision NOT NULL,
        PRIMARY KEY (project, table_name, consumer),
        FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
      );
    `,
  },
  {
    version: 5,
    description: "queues' tags (SQS's TagQueue)",
    // A JSON object of tag key to value. Apart from config, so a deploy comparing configs never drops them.
    sql: `ALTER TABLE queues ADD COLUMN tags text NOT NULL DEFAULT '{}';`,
  },
  {
    version: 6,
    description: 'buckets and object metadata, keys as UTF-8 bytes in S3 list order',
    sql: `
      CREATE TABLE buckets (
        project text COLLATE "C" NOT NULL REFERENCES projects (name),
        name text COLLATE "C" NOT NULL,
        service text,
        created_at double precision NOT NULL,
        seq bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (project, name)
      );

      -- bytea compares byte by byte: UTF-8 order, S3's listing order, whatever the database's locale.
      CREATE TABLE objects (
        project text COLLATE "C" NOT NULL,
        bucket text COLLATE "C" NOT NULL,
        key bytea NOT NULL,
        byte_ref text NOT NULL UNIQUE,
        size bigint NOT NULL,
        etag text NOT NULL,
        meta text NOT NULL,
        last_modified double precision NOT NULL,
        seq bigint NOT NULL,
        PRIMARY KEY (project, bucket, key),
        FOREIGN KEY (project, bucket) REFERENCES buckets (project, name)
      );
    `,
  },
  {
    version: 7,
    description: 'the size of each item collection of a table with a local secondary index',
    sql: `
      -- bytes: the items of one partition key value plus their local index entries. A row is made at the
      -- first write to the partition after this migration, from the rows as they stand, so none is filled here.
      CREATE TABLE table_collections (
        project text COLLATE "C" NOT NULL,
        table_name text COLLATE "C" NOT NULL,
        pk bytea NOT NULL,
        bytes bigint NOT NULL,
        PRIMARY KEY (project, table_name, pk),
        FOREIGN KEY (project, table_name) REFERENCES tables (project, name) ON DELETE CASCADE
      );
    `,
  },
  {
    version: 8,
    description: 'the object change log that storage triggers read',
    sql: `
      -- What each object write and delete did, written in its transaction and read by the storage trigger
      -- source, which enqueues the events and then deletes the entries: nothing acknowledged is lost, and
      -- the log holds only what is not yet an event. No foreign key: a removal may outlive its bucket.
      CREATE TABLE object_changes (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        project text COLLATE "C" NOT NULL,
        bucket text COLLATE "C" NOT NULL,
        key text NOT NULL,
        event text NOT NULL,
        size bigint NOT NULL,
        etag text NOT NULL,
        sequencer bigint NOT NULL,
        at double precision NOT NULL,
        context text NOT NULL
      );
    `,
  },
  {
    version: 9,
    description: 'multipart uploads and their parts; bucket CORS rules',
    sql: `
      -- An upload in progress. meta: the headers, user metadata and tags the object will get. Deleted with
      -- its parts when completed or aborted; a bucket's deletion deletes its uploads (their parts' bytes are
      -- then orphans, swept at start).
      CREATE TABLE uploads (
        project text COLLATE "C" NOT NULL,
        bucket text COLLATE "C" NOT NULL,
        upload_id text COLLATE "C" NOT NULL,
        key bytea NOT NULL,
        meta text NOT NULL,
        initiated double precision NOT NULL,
        PRIMARY KEY (project, bucket, upload_id),
        FOREIGN KEY (project, bucket) REFERENCES buckets (project, name)
      );
      -- Upload ids are time-ordered: by key, then id, is S3's order (key, then initiation).
      CREATE INDEX uploads_by_key ON uploads (project, bucket, key, upload_id);

      -- Each part owns its bytes (byte_ref) until completion composes them into the object's one ref.
      CREATE TABLE upload_parts (
        project text COLLATE "C" NOT NULL,
        bucket text COLLATE "C" NOT NULL,
        upload_id text COLLATE "C" NOT NULL,
        part_number integer NOT NULL,
        byte_ref text NOT NULL UNIQUE,
        size bigint NOT NULL,
        etag text NOT NULL,
        last_modified double precision NOT NULL,
        PRIMARY KEY (project, bucket, upload_id, part_number),
        FOREIGN KEY (project, bucket, upload_id) REFERENCES uploads (project, bucket, upload_id)
      );

      -- A JSON array of CORS rules (PutBucketCors); NULL when the bucket has none.
      ALTER TABLE buckets ADD COLUMN cors text;
    `,
  },
  {
    version: 10,
    description: 'API keys per project with roles (stored hashed); the audit log of control actions',
    sql: `
      CREATE TABLE api_keys (
        id text COLLATE "C" PRIMARY KEY,
        project text COLLATE "C" NOT NULL REFERENCES projects (name),
        name text NOT NULL,
        role text NOT NULL CHECK (role IN ('admin', 'deploy', 'invoke', 'read')),
        key_hash text NOT NULL,
        sigv4_ciphertext text NOT NULL,
        created_at double precision NOT NULL,
        rotated_at double precision
      );
      CREATE INDEX api_keys_by_project ON api_keys (project, created_at, id);

      -- Append-only; no foreign key, so a removed project's history stays.
      CREATE TABLE audit (
        seq bigserial PRIMARY KEY,
        at double precision NOT NULL,
        project text COLLATE "C" NOT NULL,
        actor text NOT NULL,
        action text NOT NULL,
        target text,
        detail text
      );
      CREATE INDEX audit_by_project ON audit (project, seq);
    `,
  },
  {
    version: 11,
    description: 'secrets (nimbus secret), their values encrypted',
    sql: `
      -- ciphertext: AES-256-GCM under the master key, with the project and name as associated data, made by
      -- the caller; the store never sees a value in the clear.
      CREATE TABLE secrets (
        project text COLLATE "C" NOT NULL REFERENCES projects (name),
        name text COLLATE "C" NOT NULL,
        ciphertext text NOT NULL,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL,
        PRIMARY KEY (project, name)
      );
    `,
  },
  {
    version: 12,
    description:
      "per-project quotas, and each project's stored bytes kept by triggers in the writing transaction",
    sql: `
      -- NULL: no limit. A project's row goes with it.
      CREATE TABLE project_quotas (
        project text COLLATE "C" PRIMARY KEY REFERENCES projects (name) ON DELETE CASCADE,
        concurrency integer,
        memory_mb integer,
        storage_bytes bigint
      );

      -- One row per project, made with the project. The triggers below keep storage_bytes equal to the sum
      -- of the project's object and upload part sizes, table item sizes and queue message bodies plus
      -- attributes, in the transaction of the write that changes them: exact, and no scan per write.
      CREATE TABLE project_usage (
        project text COLLATE "C" PRIMARY KEY REFERENCES projects (name) ON DELETE CASCADE,
        storage_bytes bigint NOT NULL DEFAULT 0
      );
      INSERT INTO project_usage (project, storage_bytes)
        SELECT name,
          (SELECT coalesce(sum(size), 0) FROM objects WHERE project = name)
          + (SELECT coalesce(sum(size), 0) FROM upload_parts WHERE project = name)
          + (SELECT coalesce(sum(size), 0) FROM table_items WHERE project = name)
          + (SELECT coalesce(sum(octet_length(body) + octet_length(attributes)), 0)
               FROM queue_messages WHERE project = name)
        FROM projects;
      CREATE FUNCTION projects_usage() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO project_usage (project) VALUES (NEW.name) ON CONFLICT DO NOTHING;
        RETURN NULL;
      END $$;
      CREATE TRIGGER projects_usage AFTER INSERT ON projects FOR EACH ROW EXECUTE FUNCTION projects_usage();

      -- A write that grows a project past its quota fails (SQLSTATE NQ001, the facts as JSON in its detail,
      -- store/errors.ts); one that shrinks it always passes, so deletes free space even over a lowered quota.
      CREATE FUNCTION project_usage_quota() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE q bigint;
      BEGIN
        IF NEW.storage_bytes > OLD.storage_bytes THEN
          SELECT storage_bytes INTO q FROM project_quotas WHERE project = NEW.project;
          IF q IS NOT NULL AND NEW.storage_bytes > q THEN
            RAISE EXCEPTION USING ERRCODE = 'NQ001', MESSAGE = 'storage quota exceeded',
              DETAIL = json_build_object('project', NEW.project, 'quota', q, 'usage', OLD.storage_bytes)::text;
          END IF;
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER project_usage_quota BEFORE UPDATE OF storage_bytes ON project_usage
        FOR EACH ROW EXECUTE FUNCTION project_usage_quota();

      -- Deferred to commit: the usage row is locked last, after every row the transaction writes, so two
      -- writers of one project never wait on each other in opposite orders (no deadlock), only in turn.
      CREATE FUNCTION objects_usage() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' THEN
          UPDATE project_usage SET storage_bytes = storage_bytes + (NEW.size) WHERE project = NEW.project;
        ELSIF TG_OP = 'DELETE' THEN
          UPDATE project_usage SET storage_bytes = storage_bytes - (OLD.size) WHERE project = OLD.project;
        ELSE
          UPDATE project_usage SET storage_bytes = storage_bytes + (NEW.size) - (OLD.size) WHERE project = NEW.project;
        END IF;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER objects_usage AFTER INSERT OR DELETE OR UPDATE OF size ON objects
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION objects_usage();
      CREATE FUNCTION upload_parts_usage() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' THEN
          UPDATE project_usage SET storage_bytes = storage_bytes + (NEW.size) WHERE project = NEW.project;
        ELSIF TG_OP = 'DELETE' THEN
          UPDATE project_usage SET storage_bytes = storage_bytes - (OLD.size) WHERE project = OLD.project;
        ELSE
          UPDATE project_usage SET storage_bytes = storage_bytes + (NEW.size) - (OLD.size) WHERE project = NEW.project;
        END IF;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER upload_parts_usage AFTER INSERT OR DELETE OR UPDATE OF size ON upload_parts
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION upload_parts_usage();
      CREATE FUNCTION table_items_usage() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' THEN
          UPDATE project_usage SET storage_bytes = storage_bytes + (NEW.size) WHERE project = NEW.project;
        ELSIF TG_OP = 'DELETE' THEN
          UPDATE project_usage SET storage_bytes = storage_bytes - (OLD.size) WHERE project = OLD.project;
        ELSE
          UPDATE project_usage SET storage_bytes = storage_bytes + (NEW.size) - (OLD.size) WHERE project = NEW.project;
        END IF;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER table_items_usage AFTER INSERT OR DELETE OR UPDATE OF size ON table_items
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION table_items_usage();
      CREATE FUNCTION queue_messages_usage() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' THEN
          UPDATE project_usage SET storage_bytes = storage_bytes + (octet_length(NEW.body) + octet_length(NEW.attributes)) WHERE project = NEW.project;
        ELSIF TG_OP = 'DELETE' THEN
          UPDATE project_usage SET storage_bytes = storage_bytes - (octet_length(OLD.body) + octet_length(OLD.attributes)) WHERE project = OLD.project;
        ELSE
          UPDATE project_usage SET storage_bytes = storage_bytes + (octet_length(NEW.body) + octet_length(NEW.attributes)) - (octet_length(OLD.body) + octet_length(OLD.attributes)) WHERE project = NEW.project;
        END IF;
        RETURN NULL;
      END $$;
      CREATE CONSTRAINT TRIGGER queue_messages_usage AFTER INSERT OR DELETE OR UPDATE OF body, attributes ON queue_messages
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION queue_messages_usage();
    `,
  },
  {
    // Metering (renumbered at merge if other migrations land first: keep it one self-contained set).
    version: 13,
    description: 'invocations: metered requests and cost; indexes for cost reports and retention',
    sql: `
      -- Records from before metering were not priced: they count as cost 0 (and throttled ones as no request).
      ALTER TABLE invocations ADD COLUMN requests integer NOT NULL DEFAULT 1;
      ALTER TABLE invocations ADD COLUMN cost_pico_usd bigint NOT NULL DEFAULT 0;
      UPDATE invocations SET requests = 0 WHERE status = 'throttled';
      CREATE INDEX invocations_by_project_start ON invocations (project, start);
      `,
  },
  {
    version: 14,
    description: 'gateway API keys under usage plans (stored hashed) and their quota counters',
    sql: `
      CREATE TABLE gateway_keys (
        id text COLLATE "C" PRIMARY KEY,
        project text COLLATE "C" NOT NULL REFERENCES projects (name),
        name text NOT NULL,
        plan text COLLATE "C" NOT NULL,
        key_hash text NOT NULL,
        created_at double precision NOT NULL
      );
      CREATE INDEX gateway_keys_by_project ON gateway_keys (project, created_at, id);

      -- One counter per key and quota period; used + reserved never passes the plan's limit (checked by
      -- the reserving statement, which knows the limit).
      CREATE TABLE gateway_key_usage (
        project text COLLATE "C" NOT NULL,
        key_id text COLLATE "C" NOT NULL REFERENCES gateway_keys (id) ON DELETE CASCADE,
        period text COLLATE "C" NOT NULL,
        used bigint NOT NULL CHECK (used >= 0),
        reserved bigint NOT NULL CHECK (reserved >= 0),
        PRIMARY KEY (project, key_id, period)
      );
      CREATE INDEX gateway_key_usage_by_key ON gateway_key_usage (key_id);
    `,
  },
  {
    version: 15,
    description: 'traces: spans kept for the console and the control API; the trace id of each invocation',
    sql: `
      CREATE TABLE spans (
        project text COLLATE "C" NOT NULL,
        trace_id text COLLATE "C" NOT NULL,
        span_id text COLLATE "C" NOT NULL,
        parent_span_id text COLLATE "C",
        name text NOT NULL,
        kind text NOT NULL,
        start_ns bigint NOT NULL,
        end_ns bigint NOT NULL,
        status_code text NOT NULL,
        status_message text,
        attributes text NOT NULL,
        PRIMARY KEY (trace_id, span_id)
      );
      CREATE INDEX spans_by_project_trace ON spans (project, trace_id, start_ns);
      CREATE INDEX spans_by_start ON spans (start_ns);
      ALTER TABLE invocations ADD COLUMN trace_id text COLLATE "C";
    `,
  },
  {
    version: 16,
    description: 'web console sessions (the id stored hashed)',
    sql: `
      CREATE TABLE sessions (
        id_hash text COLLATE "C" PRIMARY KEY,
        project text COLLATE "C" NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
        key_id text COLLATE "C" NOT NULL,
        key_fingerprint text NOT NULL,
        created_at double precision NOT NULL,
        last_seen_at double precision NOT NULL,
        expires_at double precision NOT NULL
      );
      CREATE INDEX sessions_by_key ON sessions (key_id);
      CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    `,
  },
  {
    version: 17,
    description: 'usage counters per project and hour: data service requests, stored bytes, provisioned time',
    sql: `
      -- Added to by the usage meter's flushes (quantity and cost in picodollars, both whole numbers).
      CREATE TABLE usage (
        project text COLLATE "C" NOT NULL,
        hour bigint NOT NULL,
        service text COLLATE "C" NOT NULL,
        resource text COLLATE "C" NOT NULL,
        kind text COLLATE "C" NOT NULL,
        quantity bigint NOT NULL CHECK (quantity >= 0),
        cost_pico_usd bigint NOT NULL CHECK (cost_pico_usd >= 0),
        PRIMARY KEY (project, hour, service, resource, kind)
      );
      CREATE INDEX usage_by_hour ON usage (hour);
    `,
  },
];

/** The schema version this build writes; a database with a higher one was written by a newer Nimbus. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export const MIGRATIONS_TABLE = 'nimbus_schema_migrations';

/**
 * Creates the schema and runs every migration it lacks, on one client that holds a session advisory lock
 * for the schema, so nodes starting together run each migration once. Each migration commits together with
 * its version row.
 */
export async function migrate(
  client: PoolClient,
  schema: string,
  now: number,
): Promise<{ from: number; to: number }> {
  // Keyed by schema so stores over different schemas (parallel test files) do not wait for each other.
  await client.query('SELECT pg_advisory_lock(hashtext($1))', [`nimbus:migrate:${schema}`]);
  try {
    // Inside the lock: two concurrent CREATE SCHEMA IF NOT EXISTS can still collide on the catalog.
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`SET search_path TO ${schema}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
         version integer PRIMARY KEY,
         description text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const from = await appliedVersion(client);
    if (from > SCHEMA_VERSION) throw new SchemaTooNewError(from, SCHEMA_VERSION);
    for (const m of MIGRATIONS) {
      if (m.version > from) await applyOne(client, m, now);
    }
    return { from, to: SCHEMA_VERSION };
  } finally {
    // The caller destroys this client afterwards, which frees the lock even if this unlock fails.
    await client
      .query('SELECT pg_advisory_unlock(hashtext($1))', [`nimbus:migrate:${schema}`])
      .catch(() => undefined);
  }
}

async function applyOne(client: PoolClient, m: Migration, now: number): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(m.sql);
    await m.seed?.(client, now);
    await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (version, description) VALUES ($1, $2)`, [
      m.version,
      m.description,
    ]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function appliedVersion(client: PoolClient): Promise<number> {
  const res = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${MIGRATIONS_TABLE}`);
  return res.rows[0]?.v ?? 0;
}

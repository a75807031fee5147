// The multi-node Store: every Nimbus node opens a pg.Pool over the same database (and schema), and the
// parts coordinate through it: advisory locks serialize deploys and migrations, SKIP LOCKED claims events.
import { userInfo } from 'node:os';
import pg from 'pg';
import type { PoolClient } from 'pg';
import { systemClock, type Clock } from '../../clock/clock.js';
import type { Store } from '../types.js';
import { PgCredentialStore } from './credentials.js';
import { PgApiKeyStore, PgAuditLog } from './api-keys.js';
import { PgGatewayKeyStore } from './gateway-keys.js';
import { PgSecretStore } from './secrets.js';
import { PgUsageStore } from './usage.js';
import { Db, errorMessage, storeTypes } from './db.js';
import { PgEventQueue } from './events.js';
import { PgFunctionStore } from './functions.js';
import { PgInvocationLog } from './invocations.js';
import { PgSpanStore } from './spans.js';
import { migrate } from './migrations.js';
import { PgObjectStore } from './objects.js';
import { PgSessionStore } from './sessions.js';
import { PgNodeRegistry, PgProjectStore, PgQuotaStore } from './projects.js';
import { PgQueueStore } from './queues.js';
import { PgScheduleStore } from './schedules.js';
import { PgTableStore } from './tables.js';

export interface PostgresStoreOptions {
  /** postgresql:// or postgres:// URL; a `schema` query parameter selects the schema (default public). */
  url: string;
  /** Overrides the URL's schema parameter. */
  schema?: string;
  clock?: Clock;
  /** Connections this node keeps at most. Default 10. */
  poolSize?: number;
  /** How long a written invocation record may wait in memory before it is written. Default 50. */
  flushIntervalMs?: number;
  /** Buffered records that trigger a write without waiting for the interval. Default 500. */
  maxBatch?: number;
  /** Told when records could not be written (write() must not throw). Default: process warning. */
  onError?: (err: Error) => void;
  /** Told how long each batch of invocation records took to write (ms). */
  onBatchWritten?: (ms: number, records: number) => void;
  /** Bytes an item collection of a table with a local secondary index may hold. Default DynamoDB's 10 GB. */
  itemCollectionLimit?: number;
}

/** Schema names this store accepts; they are spliced into SQL as identifiers, so nothing else is. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
export const DEFAULT_SCHEMA = 'public';

export interface PostgresTarget {
  /** What pg connects with: the URL without its schema parameter. */
  connectionString: string;
  /** The schema named by the options or the URL, if any. */
  schema: string | undefined;
  /** The URL without its password, plus ?schema= when one was named. */
  location: string;
  /** host:port, for error messages. */
  address: string;
}

export class PostgresStore implements Store {
  readonly backend = 'postgresql' as const;
  readonly functions: PgFunctionStore;
  readonly invocations: PgInvocationLog;
  readonly spans: PgSpanStore;
  readonly events: PgEventQueue;
  readonly projects: PgProjectStore;
  readonly quotas: PgQuotaStore;
  readonly nodes: PgNodeRegistry;
  readonly schedules: PgScheduleStore;
  readonly queues: PgQueueStore;
  readonly tables: PgTableStore;
  readonly credentials: PgCredentialStore;
  readonly apiKeys: PgApiKeyStore;
  readonly gatewayKeys: PgGatewayKeyStore;
  readonly audit: PgAuditLog;
  readonly secrets: PgSecretStore;
  readonly objects: PgObjectStore;
  readonly sessions: PgSessionStore;
  readonly usage: PgUsageStore;
  private closing: Promise<void> | undefined;

  /** Use openPostgresStore, which migrates the schema first. */
  constructor(
    private readonly db: Db,
    readonly location: string,
    readonly schema: string,
    clock: Clock,
    opts: {
      flushIntervalMs: number;
      maxBatch: number;
      onError: (err: Error) => void;
      onBatchWritten?: (ms: number, records: number) => void;
      itemCollectionLimit?: number;
    },
  ) {
    this.functions = new PgFunctionStore(db, schema, clock);
    this.invocations = new PgInvocationLog(db, opts);
    this.spans = new PgSpanStore(db);
    this.events = new PgEventQueue(db, clock);
    this.projects = new PgProjectStore(db, schema, clock);
    this.quotas = new PgQuotaStore(db);
    this.nodes = new PgNodeRegistry(db, clock);
    this.schedules = new PgScheduleStore(db, clock);
    this.queues = new PgQueueStore(db, schema, clock);
    this.tables = new PgTableStore(db, schema, clock, opts.itemCollectionLimit);
    this.credentials = new PgCredentialStore(db, clock);
    this.apiKeys = new PgApiKeyStore(db, clock);
    this.gatewayKeys = new PgGatewayKeyStore(db, clock);
    this.audit = new PgAuditLog(db, clock);
    this.secrets = new PgSecretStore(db, clock);
    this.objects = new PgObjectStore(db, clock);
    this.sessions = new PgSessionStore(db, clock);
    this.usage = new PgUsageStore(db);
  }

  /** Writes every buffered record, then ends the pool; a second call waits for the first. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.db.markClosed();
    try {
      await this.invocations.stop();
    } finally {
      await this.db.pool.end();
    }
  }
}

export async function openPostgresStore(opts: PostgresStoreOptions): Promise<PostgresStore> {
  const target = parsePostgresUrl(opts.url, opts.schema);
  const schema = target.schema ?? DEFAULT_SCHEMA;
  checkSchemaName(schema);
  const clock = opts.clock ?? systemClock;
  const onError = opts.onError ?? ((err: Error) => process.emitWarning(err));
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    max: Math.max(1, Math.floor(positive(opts.poolSize, 10))),
    // Every pooled session resolves unqualified table names in the store's schema.
    options: `-c search_path=${schema}`,
    types: storeTypes,
    connectionTimeoutMillis: 10_000,
  });
  // An idle connection the server drops (restart, failover) is replaced by the pool; without a listener
  // the 'error' event would crash the process.
  pool.on('error', (err) => onError(new Error(`PostgreSQL connection lost: ${err.message}`, { cause: err })));
  try {
    const client = await connect(pool, target.address);
    // A checked-out client has no pool listener; its failures reach us through the next query instead.
    client.on('error', ignore);
    try {
      await migrate(client, schema, clock.now());
    } finally {
      // Destroyed, not returned: that frees the migration lock even if unlocking failed.
      client.release(true);
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return new PostgresStore(new Db(pool), target.location, schema, clock, {
    flushIntervalMs: positive(opts.flushIntervalMs, 50),
    maxBatch: Math.max(1, Math.floor(positive(opts.maxBatch, 500))),
    onError,
    ...(opts.onBatchWritten ? { onBatchWritten: opts.onBatchWritten } : {}),
    ...(opts.itemCollectionLimit !== undefined ? { itemCollectionLimit: opts.itemCollectionLimit } : {}),
  });
}

/** Splits a store URL into what pg connects with, the schema it names, and a location safe to print. */
export function parsePostgresUrl(url: string, schemaOverride?: string): PostgresTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Not echoed: a URL that failed to parse may still hold a password.
    throw new Error('the PostgreSQL store URL is not a valid URL (expected postgresql://host:port/database)');
  }
  if (u.protocol !== 'postgresql:' && u.protocol !== 'postgres:') {
    throw new Error(
      `the PostgreSQL store URL must start with postgresql:// or postgres://, not ${u.protocol}//`,
    );
  }
  if (u.searchParams.has('options')) {
    // pg lets the URL's options replace the search_path the store sets, so migrations and queries could land
    // in different schemas.
    throw new Error('the PostgreSQL store URL must not set "options"; choose the schema with ?schema=name');
  }
  const schema = schemaOverride ?? (u.searchParams.get('schema') || undefined);
  u.searchParams.delete('schema');
  const connectionString = withDefaultUser(u).toString();
  u.password = '';
  // pg also takes secrets as query parameters; none of them may reach a printed location.
  for (const secret of ['password', 'sslpassword', 'sslkey']) u.searchParams.delete(secret);
  if (schema !== undefined) u.searchParams.set('schema', schema);
  const host = u.hostname || u.searchParams.get('host') || 'localhost';
  return { connectionString, schema, location: u.toString(), address: `${host}:${u.port || '5432'}` };
}

/**
 * libpq (psql) falls back to the OS account's name when no user is given; pg only reads $PGUSER and $USER,
 * which service managers and containers often leave unset. Do as psql does, so the same URL works for both.
 */
function withDefaultUser(url: URL): URL {
  if (url.username || url.searchParams.has('user') || process.env.PGUSER || process.env.USER) return url;
  const copy = new URL(url);
  try {
    copy.username = userInfo().username;
  } catch {
    // No passwd entry for this uid: leave it to pg, which will name what is missing.
  }
  return copy;
}

function checkSchemaName(schema: string): void {
  // pg_ names are reserved for the system catalogs; refusing them here gives a clearer answer than the server.
  if (!SCHEMA_NAME.test(schema) || schema.startsWith('pg_')) {
    throw new Error(
      `schema name "${schema}" is not valid: use at most 63 lowercase letters, digits and "_", not starting with a digit or "pg_"`,
    );
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOENT',
]);

async function connect(pool: pg.Pool, address: string): Promise<PoolClient> {
  try {
    return await pool.connect();
  } catch (err) {
    const code = networkCode(err);
    if (code) {
      throw new Error(
        `cannot reach PostgreSQL at ${address} (${code}); start it, or point NIMBUS_STORE at a reachable server`,
        { cause: err },
      );
    }
    throw new Error(`PostgreSQL at ${address} refused the connection: ${errorMessage(err)}`, { cause: err });
  }
}

/** The socket-level reason a connection failed, if that is what failed (not auth or a missing database). */
function networkCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; errors?: unknown[]; message?: unknown } | null;
  if (typeof e?.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
  // localhost may resolve to ::1 and 127.0.0.1: net then reports both failures in an AggregateError.
  if (Array.isArray(e?.errors)) {
    for (const inner of e.errors) {
      const code = networkCode(inner);
      if (code) return code;
    }
  }
  if (typeof e?.message === 'string' && /timeout/i.test(e.message)) return 'timeout';
  return undefined;
}

function ignore(): void {}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

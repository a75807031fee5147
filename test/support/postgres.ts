// Shared by every test that needs PostgreSQL: where it is, whether it answers, and a private schema per use so
// test files running in parallel never see each other's tables.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { parsePostgresUrl } from '../../src/store/postgres/index.js';

export const TEST_POSTGRES_URL = process.env.NIMBUS_TEST_POSTGRES ?? 'postgresql://127.0.0.1:5432/test';

let available: Promise<boolean> | undefined;

/**
 * Whether the test server answers (asked once per process). Unreachable outside CI: one warning, and the
 * caller skips. Unreachable in CI: throws, so a missing service fails the build instead of skipping silently.
 */
export function postgresAvailable(): Promise<boolean> {
  available ??= probe().then((err) => {
    if (!err) return true;
    const where = redact(TEST_POSTGRES_URL);
    if (process.env.CI === 'true') {
      throw new Error(`PostgreSQL is required in CI but ${where} did not answer: ${err}`);
    }
    console.warn(
      `PostgreSQL tests skipped: nothing answered at ${where} (${err}); start one there or set NIMBUS_TEST_POSTGRES to a postgresql:// URL`,
    );
    return false;
  });
  return available;
}

/** undefined when a connection succeeds, else why not. */
async function probe(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: connectionUrl(), connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown; errors?: { code?: unknown }[] };
    const code = e.code ?? e.errors?.[0]?.code;
    return typeof code === 'string' ? code : String(e.message ?? err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface TestSchema {
  schema: string;
  /** TEST_POSTGRES_URL naming this schema, usable as NIMBUS_STORE. */
  url: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/** Creates a fresh, uniquely named schema (nimbus_t_<label>_<random>). */
export async function createTestSchema(label: string): Promise<TestSchema> {
  const clean = label
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .slice(0, 30);
  const schema = `nimbus_t_${clean}_${randomBytes(6).toString('hex')}`;
  await withClient((c) => c.query(`CREATE SCHEMA ${schema}`));
  const url = `${TEST_POSTGRES_URL}${TEST_POSTGRES_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  return {
    schema,
    url,
    drop: () => withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)).then(() => undefined),
  };
}

/** The store backends a test should run against: PostgreSQL too when it is reachable. */
export async function storeBackends(): Promise<('sqlite' | 'postgresql')[]> {
  return (await postgresAvailable()) ? ['sqlite', 'postgresql'] : ['sqlite'];
}

/** Runs fn on a short-lived connection to the test server (outside any store, as an operator would). */
export async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: connectionUrl(), connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** TEST_POSTGRES_URL as the store connects to it (the OS user filled in when nothing names one, as psql does). */
function connectionUrl(): string {
  try {
    return parsePostgresUrl(TEST_POSTGRES_URL).connectionString;
  } catch {
    return TEST_POSTGRES_URL;
  }
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(NIMBUS_TEST_POSTGRES, not a valid URL)';
  }
}

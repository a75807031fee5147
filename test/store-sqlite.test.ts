import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fn, record, storeConformance } from '../src/store/conformance.js';
import {
  MIGRATIONS,
  SCHEMA_VERSION,
  SchemaTooNewError,
  StoreConflictError,
  canonicalJson,
  openSqliteStore,
  type SqliteStore,
  type SqliteStoreOptions,
} from '../src/store/sqlite/index.js';
import type { InvocationRecord } from '../src/store/types.js';
import type { FunctionConfig } from '../src/config/manifest.js';

storeConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-store-'));
  const path = join(dir, 'nimbus.db');
  let current = openSqliteStore({ path });
  return {
    store: current,
    async reopen() {
      await current.close();
      current = openSqliteStore({ path });
      return current;
    },
    async cleanup() {
      await current.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteStore', () => {
  let dir: string;
  let path: string;
  const open: SqliteStore[] = [];
  const openStore = (opts: Partial<SqliteStoreOptions> = {}): SqliteStore => {
    const s = openSqliteStore({ path, ...opts });
    open.push(s);
    return s;
  };
  /** A second connection, as an operator's sqlite3 shell would see the file. */
  const inspect = <T>(fn: (db: BetterSqlite3.Database) => T): T => {
    const db = new BetterSqlite3(path, { readonly: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-sqlite-'));
    path = join(dir, 'data', 'nimbus.db');
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the database file (and its WAL) with mode 0600 and a missing parent with 0700', async () => {
    const store = openStore();
    await store.deploy(deploy('svc', [fn('a')], 'x'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'data')).mode & 0o777).toBe(0o700);
    if (existsSync(`${path}-wal`)) expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600);
  });

  it('tightens an existing world-readable file to 0600', () => {
    const pre = join(dir, 'loose.db');
    writeFileSync(pre, '', { mode: 0o644 });
    open.push(openSqliteStore({ path: pre }));
    expect(statSync(pre).mode & 0o777).toBe(0o600);
  });

  it('runs in WAL mode with synchronous NORMAL between durable writes', async () => {
    const store = openStore();
    await store.deploy(deploy('svc', [fn('a')], 'x'));
    await store.enqueueEvent({ id: 'e', functionName: 'a', payload: '{}', enqueuedAt: 1, attempts: 0 });
    expect(store.stats()).toMatchObject({
      journalMode: 'wal',
      synchronous: 1,
      schemaVersion: SCHEMA_VERSION,
    });
    expect(inspect((db) => db.pragma('journal_mode', { simple: true }))).toBe('wal');
  });

  it('records the schema version and does not rerun migrations on reopen', async () => {
    const store = openStore();
    await store.deploy(deploy('svc', [fn('a')], 'x'));
    await store.close();
    expect(inspect((db) => db.pragma('user_version', { simple: true }))).toBe(MIGRATIONS.length);
    const again = openStore();
    expect((await again.getFunction('a'))?.version).toBe(1);
  });

  it('refuses a database written by a newer schema', async () => {
    await openStore().close();
    const db = new BetterSqlite3(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openSqliteStore({ path })).toThrow(SchemaTooNewError);
  });

  it('stores an archive once however many functions and services use it', async () => {
    const store = openStore();
    await store.deploy(deploy('one', [fn('a'), fn('b')], 'shared'));
    await store.deploy(deploy('two', [fn('c')], 'shared'));
    await store.deploy(deploy('one', [fn('a', { memory: 256 }), fn('b')], 'shared'));
    expect(inspect((db) => db.prepare('SELECT count(*) AS n FROM code').get())).toEqual({ n: 1 });
  });

  it('throws StoreConflictError naming the function and both services', async () => {
    const store = openStore();
    await store.deploy(deploy('owner', [fn('a')], 'x'));
    const err = await store.deploy(deploy('other', [fn('a')], 'y')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreConflictError);
    expect(err).toMatchObject({
      code: 'FunctionOwnedByOtherService',
      functionName: 'a',
      ownerService: 'owner',
      service: 'other',
    });
  });

  it('keeps records in memory until the interval or flush', async () => {
    const store = openStore({ flushIntervalMs: 60_000 });
    const rec = record();
    store.appendInvocation(rec);
    await new Promise((r) => setImmediate(r));
    expect(await store.getInvocation(rec.requestId)).toBeUndefined();
    expect(store.stats().bufferedInvocations).toBe(1);
    await store.flush();
    expect(await store.getInvocation(rec.requestId)).toBeDefined();
    expect(store.stats().bufferedInvocations).toBe(0);
  });

  it('writes as soon as maxBatch records are buffered, without waiting for the interval', async () => {
    const store = openStore({ flushIntervalMs: 60_000, maxBatch: 10 });
    for (let i = 0; i < 9; i++) store.appendInvocation(record());
    await new Promise((r) => setImmediate(r));
    expect(store.stats().bufferedInvocations).toBe(9);
    store.appendInvocation(record());
    // The batch is written on the next turn of the event loop, not inside appendInvocation.
    expect(store.stats().bufferedInvocations).toBe(10);
    await new Promise((r) => setImmediate(r));
    expect(store.stats().bufferedInvocations).toBe(0);
    expect(await store.queryInvocations({})).toHaveLength(10);
  });

  it('flushes buffered records on close', async () => {
    const store = openStore({ flushIntervalMs: 60_000, maxBatch: 100_000 });
    for (let i = 0; i < 1000; i++) store.appendInvocation(record());
    await store.close();
    expect(inspect((db) => db.prepare('SELECT count(*) AS n FROM invocations').get())).toEqual({ n: 1000 });
  });

  it('drops only the unwritable record of a batch and reports it', async () => {
    const onError = vi.fn();
    const store = openStore({ flushIntervalMs: 60_000, onError });
    const good = [record(), record()];
    store.appendInvocation(good[0]!);
    // What a buggy caller could pass despite the types: NOT NULL columns reject it.
    expect(() =>
      store.appendInvocation({ ...record(), logs: null } as unknown as InvocationRecord),
    ).not.toThrow();
    expect(() => store.appendInvocation(null as unknown as InvocationRecord)).not.toThrow();
    store.appendInvocation(good[1]!);
    await store.flush();
    expect((await store.queryInvocations({ ascending: true })).map((r) => r.requestId)).toEqual(
      good.map((r) => r.requestId),
    );
    expect(onError).toHaveBeenCalledTimes(1);
    expect(String(onError.mock.calls[0]?.[0])).toMatch(/dropped 2 of 4/);
  });

  it('stores the config as canonical JSON', async () => {
    const store = openStore();
    await store.deploy(deploy('svc', [fn('a', { environment: { Z: '1', A: '2' } })], 'x'));
    const { config } = inspect((db) => db.prepare('SELECT config FROM versions').get()) as { config: string };
    expect(config).toBe(canonicalJson(fn('a', { environment: { A: '2', Z: '1' } })));
    expect(config.indexOf('"A"')).toBeLessThan(config.indexOf('"Z"'));
  });

  it('canonicalJson sorts keys at every depth and keeps a "__proto__" key', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ y: 1, x: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[{"x":2,"y":1}]},"b":1}',
    );
    const env = JSON.parse('{"__proto__":"x","A":"1"}') as Record<string, string>;
    expect(canonicalJson(env)).toBe('{"A":"1","__proto__":"x"}');
  });

  it('works in memory', async () => {
    const store = openSqliteStore({ path: ':memory:' });
    open.push(store);
    await store.deploy(deploy('svc', [fn('a')], 'x'));
    expect((await store.getFunction('a'))?.version).toBe(1);
  });
});

function deploy(service: string, functions: FunctionConfig[], content: string) {
  const archive = Buffer.from(content);
  return {
    service,
    functions,
    code: { sha256: createHash('sha256').update(archive).digest('hex'), archive },
  };
}

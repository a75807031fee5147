import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../src/clock/clock.js';
import { fn, record, ref, storeConformance, tableDef } from '../src/store/conformance/index.js';
import { canonicalJson } from '../src/store/canonical-json.js';
import { StoreConflictError } from '../src/store/errors.js';
import {
  MIGRATIONS,
  SCHEMA_VERSION,
  SchemaTooNewError,
  openSqliteStore,
  type SqliteStore,
  type SqliteStoreOptions,
} from '../src/store/sqlite/index.js';
import type { InvocationRecord } from '../src/store/types.js';
import type { FunctionConfig } from '../src/config/manifest.js';

storeConformance('sqlite', async (opts = {}) => {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-store-'));
  const path = join(dir, 'nimbus.db');
  const clock = new ManualClock();
  let current = openSqliteStore({ path, clock, ...opts });
  return {
    store: current,
    clock,
    async reopen() {
      await current.close();
      current = openSqliteStore({ path, clock, ...opts });
      return current;
    },
    async cleanup() {
      await current.close();
      rmSync(dir, { recursive: true, force: true });
    },
    async injectVersionFailure(name) {
      // A trigger in the file, made over a second connection as an operator's shell would.
      const db = new BetterSqlite3(path);
      db.exec(`CREATE TRIGGER fail_version BEFORE INSERT ON versions WHEN NEW.name = '${name}'
               BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
      db.close();
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
    await store.functions.deploy(deploy('svc', [fn('a')], 'x'));
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
    await store.functions.deploy(deploy('svc', [fn('a')], 'x'));
    await store.events.enqueue({
      id: 'e',
      project: 'default',
      functionName: 'a',
      source: 'invoke',
      payload: '{}',
    });
    expect(store.stats()).toMatchObject({
      journalMode: 'wal',
      synchronous: 1,
      schemaVersion: SCHEMA_VERSION,
    });
    expect(inspect((db) => db.pragma('journal_mode', { simple: true }))).toBe('wal');
  });

  it('writes a large archive in chunks before the deploy, reads it back whole, and collects the chunks with it', async () => {
    const store = openStore();
    const archive = randomBytes(3 * 1024 * 1024 + 17);
    const code = { sha256: createHash('sha256').update(archive).digest('hex'), archive };
    await store.functions.deploy({ project: 'default', service: 'svc', functions: [fn('a')], code });
    const rows = () =>
      inspect((db) => db.prepare('SELECT count(*) AS n FROM code_chunks').get() as { n: number }).n;
    expect(rows()).toBe(13);
    expect(inspect((db) => db.prepare('SELECT length(archive) AS n FROM code').get())).toEqual({ n: 0 });
    expect((await store.functions.getCode(code.sha256))?.equals(archive)).toBe(true);
    // Replaced by small code, then pruned: no chunk is left behind.
    await store.functions.deploy(deploy('svc', [fn('a')], 'small'));
    await store.functions.pruneVersions();
    expect(await store.functions.getCode(code.sha256)).toBeUndefined();
    expect(rows()).toBe(0);
  });

  it('drops the chunks of a deploy that stored no archive, and those a crash left without a code row', async () => {
    const store = openStore();
    const archive = randomBytes(600 * 1024);
    const code = { sha256: createHash('sha256').update(archive).digest('hex'), archive };
    await store.functions.deploy(deploy('svc', [fn('a')], 'first'));
    // Every function kept: the chunks were written, then nothing used them.
    const kept = await store.functions.deploy({
      project: 'default',
      service: 'svc',
      functions: [fn('a')],
      code,
      keep: { a: 1 },
    });
    expect(kept.functions[0]).toMatchObject({ changed: false, version: 1 });
    // A refused deploy (another service owns the name) leaves none either.
    await expect(
      store.functions.deploy({ project: 'default', service: 'other', functions: [fn('a')], code }),
    ).rejects.toThrow(StoreConflictError);
    const rows = () =>
      inspect((db) => db.prepare('SELECT count(*) AS n FROM code_chunks').get() as { n: number }).n;
    expect(rows()).toBe(0);
    await store.close();
    // What a crash between the chunks and the deploy's commit leaves: chunks and no code row.
    const db = new BetterSqlite3(path);
    db.prepare('INSERT INTO code_chunks (sha256, seq, bytes) VALUES (?, 0, ?)').run('f'.repeat(64), archive);
    db.close();
    const again = openStore();
    await again.functions.pruneVersions();
    expect(rows()).toBe(0);
    expect((await again.functions.getFunction(ref('a')))?.version).toBe(1);
  });

  it('records the schema version and does not rerun migrations on reopen', async () => {
    const store = openStore();
    await store.functions.deploy(deploy('svc', [fn('a')], 'x'));
    await store.close();
    expect(inspect((db) => db.pragma('user_version', { simple: true }))).toBe(MIGRATIONS.at(-1)!.version);
    const again = openStore();
    expect((await again.functions.getFunction(ref('a')))?.version).toBe(1);
  });

  it('migrates a version 1 data dir: functions, events and records land in the default project', async () => {
    mkdirSync(join(dir, 'data'), { recursive: true });
    const db = new BetterSqlite3(path);
    db.exec(MIGRATIONS[0]!.sql);
    db.pragma('user_version = 1');
    const config = JSON.stringify(fn('a'));
    const archive = Buffer.from('old code');
    const sha = createHash('sha256').update(archive).digest('hex');
    db.prepare("INSERT INTO functions VALUES ('a', 'svc', 1)").run();
    db.prepare('INSERT INTO code VALUES (?, ?, ?)').run(sha, archive.length, archive);
    db.prepare("INSERT INTO versions VALUES ('a', 1, 'svc', ?, ?, ?, 1000)").run(config, sha, archive.length);
    db.prepare("INSERT INTO events VALUES ('e1', 'a', '{}', 500, 1)").run();
    db.prepare(
      `INSERT INTO invocations (request_id, function_name, version, trigger, start, duration_ms, billed_ms,
         memory_mb, max_rss, cold, init_ms, status, error_type, error_message, logs)
       VALUES ('r1', 'a', '1', 'http', 900, 1.5, 2, 128, 0, 1, 3, 'ok', NULL, NULL, 'hi')`,
    ).run();
    db.close();

    const store = openStore();
    expect(store.stats().schemaVersion).toBe(SCHEMA_VERSION);
    expect(await store.functions.getFunction(ref('a'))).toMatchObject({
      project: 'default',
      service: 'svc',
      version: 1,
      deployedAt: 1000,
    });
    expect((await store.functions.getCode(sha))?.equals(archive)).toBe(true);
    expect(await store.events.get('e1')).toMatchObject({
      project: 'default',
      attempts: 1,
      nextAttemptAt: 500,
      state: 'pending',
    });
    expect(await store.invocations.get('r1')).toMatchObject({ project: 'default', attempt: 1, logs: 'hi' });
    // The old function is still owned by its service after the table rebuild.
    await expect(store.functions.deploy(deploy('other', [fn('a')], 'x'))).rejects.toThrow(StoreConflictError);
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
    await store.functions.deploy(deploy('one', [fn('a'), fn('b')], 'shared'));
    await store.functions.deploy(deploy('two', [fn('c')], 'shared'));
    await store.functions.deploy(deploy('one', [fn('a', { memory: 256 }), fn('b')], 'shared'));
    expect(inspect((db) => db.prepare('SELECT count(*) AS n FROM code').get())).toEqual({ n: 1 });
  });

  it('throws StoreConflictError naming the function and both services', async () => {
    const store = openStore();
    await store.functions.deploy(deploy('owner', [fn('a')], 'x'));
    const err = await store.functions.deploy(deploy('other', [fn('a')], 'y')).catch((e: unknown) => e);
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
    store.invocations.write(rec);
    await new Promise((r) => setImmediate(r));
    expect(await store.invocations.get(rec.requestId)).toBeUndefined();
    expect(store.stats().bufferedInvocations).toBe(1);
    await store.invocations.flush();
    expect(await store.invocations.get(rec.requestId)).toBeDefined();
    expect(store.stats().bufferedInvocations).toBe(0);
  });

  it("writes a cold start's record on the next turn, not at the interval, and warm ones with the batch", async () => {
    const store = openStore({ flushIntervalMs: 60_000 });
    const warm = record();
    store.invocations.write(warm);
    await new Promise((r) => setImmediate(r));
    expect(store.stats().bufferedInvocations).toBe(1);
    const cold = record({ cold: true, initMs: 3 });
    store.invocations.write(cold);
    // Read with a second connection: a read through the store would flush first. The write goes to the
    // writer thread on the next turn; the interval (a minute) cannot be what writes it.
    const ids = (): string[] =>
      (
        inspect((db) => db.prepare('SELECT request_id FROM invocations').all()) as { request_id: string }[]
      ).map((r) => r.request_id);
    for (let i = 0; i < 200 && !ids().includes(cold.requestId); i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(ids().sort()).toEqual([warm.requestId, cold.requestId].sort());
    expect(store.stats().bufferedInvocations).toBe(0);
  });

  it('writes as soon as maxBatch records are buffered, without waiting for the interval', async () => {
    const store = openStore({ flushIntervalMs: 60_000, maxBatch: 10 });
    for (let i = 0; i < 9; i++) store.invocations.write(record());
    await new Promise((r) => setImmediate(r));
    expect(store.stats().bufferedInvocations).toBe(9);
    store.invocations.write(record());
    // The batch is written from the next turn of the event loop on (by the writer thread), not inside write().
    expect(store.stats().bufferedInvocations).toBe(10);
    await vi.waitFor(() => expect(store.stats().bufferedInvocations).toBe(0));
    expect(await store.invocations.query({})).toHaveLength(10);
  });

  it('flushes buffered records on close', async () => {
    const store = openStore({ flushIntervalMs: 60_000, maxBatch: 100_000 });
    for (let i = 0; i < 1000; i++) store.invocations.write(record());
    await store.close();
    expect(inspect((db) => db.prepare('SELECT count(*) AS n FROM invocations').get())).toEqual({ n: 1000 });
  });

  it('loses no record on close while batches are still with the writer thread', async () => {
    const store = openStore({ maxBatch: 100 });
    expect(store.invocations.writerThread).toBeDefined();
    for (let i = 0; i < 5000; i++) {
      store.invocations.write(record());
      // Let some batches go to the thread, so that close() finds them in flight.
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    await store.close();
    expect(inspect((db) => db.prepare('SELECT count(*) AS n FROM invocations').get())).toEqual({ n: 5000 });
  });

  it('writes on the main connection what a failed writer thread had not acknowledged, and all after', async () => {
    const onError = vi.fn();
    const store = openStore({ maxBatch: 50, onError });
    const before = Array.from({ length: 400 }, () => record());
    // An operator's shell holds the write lock, so the thread cannot commit what it is sent.
    const blocker = new BetterSqlite3(path);
    blocker.exec('BEGIN IMMEDIATE');
    for (const r of before) store.invocations.write(r);
    await new Promise((r) => setImmediate(r));
    expect(store.stats().bufferedInvocations).toBe(400);
    // The thread ends while it holds the batch (it may or may not have committed it as the lock goes).
    const killed = store.invocations.writerThread!.kill();
    blocker.exec('ROLLBACK');
    blocker.close();
    await killed;
    await vi.waitFor(() => expect(onError).toHaveBeenCalled());
    expect(String(onError.mock.calls[0]?.[0])).toMatch(/written on the main thread from now on/);
    const after = record();
    store.invocations.write(after);
    await store.invocations.flush();
    const ids = new Set((await store.invocations.query({ limit: 1000 })).map((r) => r.requestId));
    expect(ids.size).toBe(401);
    for (const r of [...before, after]) expect(ids.has(r.requestId)).toBe(true);
    await store.close();
    expect(inspect((db) => db.prepare('SELECT count(*) AS n FROM invocations').get())).toEqual({ n: 401 });
  });

  it('a store in memory writes records on its own connection, with no thread', async () => {
    const store = openSqliteStore({ path: ':memory:' });
    expect(store.invocations.writerThread).toBeUndefined();
    store.invocations.write(record());
    await store.invocations.flush();
    expect(await store.invocations.query({})).toHaveLength(1);
    await store.close();
  });

  it('drops only the unwritable record of a batch and reports it', async () => {
    const onError = vi.fn();
    const store = openStore({ flushIntervalMs: 60_000, onError });
    const good = [record(), record()];
    store.invocations.write(good[0]!);
    // What a buggy caller could pass despite the types: NOT NULL columns reject it.
    const bad = { ...record(), logs: null } as unknown as InvocationRecord;
    expect(() => store.invocations.write(bad)).not.toThrow();
    expect(() => store.invocations.write(null as unknown as InvocationRecord)).not.toThrow();
    store.invocations.write(good[1]!);
    await store.invocations.flush();
    expect((await store.invocations.query({ ascending: true })).map((r) => r.requestId)).toEqual(
      good.map((r) => r.requestId),
    );
    expect(onError).toHaveBeenCalledTimes(1);
    expect(String(onError.mock.calls[0]?.[0])).toMatch(/dropped 2 of 4/);
    // The platform's log names the lost records' request ids, so none goes missing unseen.
    expect(String(onError.mock.calls[0]?.[0])).toContain(`request ${bad.requestId}`);
  });

  it('stores the config as canonical JSON', async () => {
    const store = openStore();
    await store.functions.deploy(deploy('svc', [fn('a', { environment: { Z: '1', A: '2' } })], 'x'));
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

  it('commits enqueues of one turn together, answering each, and answers those waiting on close', async () => {
    const store = openStore();
    const ev = (id: string) => ({
      id,
      project: 'default',
      functionName: 'f',
      source: 'invoke',
      payload: '{}',
    });
    const answers = await Promise.all([
      store.events.enqueue(ev('a')),
      store.events.enqueue(ev('a')),
      store.events.enqueue(ev('b')),
    ]);
    expect(answers).toEqual([true, false, true]);
    const waiting = store.events.enqueue(ev('c'));
    await store.close();
    expect(await waiting).toBe(true);
    const again = openStore();
    expect((await again.events.list({})).map((e) => e.id)).toEqual(['a', 'b', 'c']);
  });

  it('reads tables by ranges of their indexes: a Query is a primary key range, never a scan or a sort', async () => {
    // Spied from before the store opens, so every statement it prepares on the table parts is seen.
    const spy = vi.spyOn(BetterSqlite3.prototype, 'prepare');
    let prepared: string[];
    try {
      const store = openStore();
      const t = store.tables;
      const byStatus = {
        name: 'byStatus',
        kind: 'global' as const,
        key: { partition: { name: 'status', type: 'S' as const }, sort: { name: 'at', type: 'N' as const } },
        projection: { type: 'ALL' as const },
      };
      await t.createTable('default', tableDef('n', { ttlAttribute: 'exp', indexes: [byStatus] }), null);
      const s = tableDef('s', {
        key: { partition: { name: 'pk', type: 'S' }, sort: { name: 'sk', type: 'S' } },
      });
      await t.createTable('default', s, null);
      await t.write('default', {
        table: 'n',
        key: { pk: { S: 'p' }, sk: { N: '1' } },
        decide: () => ({
          pk: { S: 'p' },
          sk: { N: '1' },
          status: { S: 'open' },
          at: { N: '5' },
          exp: { N: '9' },
        }),
      });
      const start = { pk: { S: 'p' }, sk: { N: '1' } };
      for (const forward of [true, false]) {
        for (const sort of [
          undefined,
          { op: '=' as const, value: { N: '1' } },
          { op: '<' as const, value: { N: '1' } },
          { op: '>=' as const, value: { N: '1' } },
          { op: 'between' as const, low: { N: '1' }, high: { N: '2' } },
        ]) {
          await t.query('default', { table: 'n', partition: { S: 'p' }, sort, forward });
          await t.query('default', {
            table: 'n',
            partition: { S: 'p' },
            sort,
            forward,
            exclusiveStartKey: start,
          });
        }
        const prefix = { op: 'begins_with' as const, prefix: { S: 'a' } };
        await t.query('default', { table: 's', partition: { S: 'p' }, sort: prefix, forward });
        await t.query('default', {
          table: 'n',
          index: 'byStatus',
          partition: { S: 'open' },
          sort: { op: '>', value: { N: '1' } },
          forward,
          exclusiveStartKey: { ...start, status: { S: 'open' }, at: { N: '5' } },
        });
      }
      await t.scan('default', { table: 'n', segment: 1, totalSegments: 3, exclusiveStartKey: start });
      await t.scan('default', { table: 'n', index: 'byStatus', limit: 1 });
      await t.expire(10, 10);
      prepared = [...new Set(spy.mock.calls.map((c) => String(c[0])))];
    } finally {
      spy.mockRestore();
    }
    const plan = (sql: string) =>
      inspect((db) => {
        const params = (sql.match(/\?/g) ?? []).map(() => Buffer.alloc(1));
        return db
          .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
          .all(...params)
          .map((r) => r.detail);
      });
    const touching = prepared.filter((sql) => /\btable_(items|index_items|streams)\b/.test(sql));
    expect(touching.length).toBeGreaterThan(20);
    for (const sql of touching) {
      for (const detail of plan(sql)) {
        expect(detail, sql).not.toMatch(/^SCAN |TEMP B-TREE/);
      }
    }
    // Each Query shape is one SEARCH of the primary key index bounded by the partition and the sort key.
    const queries = prepared.filter((sql) => /^SELECT item FROM table_(index_)?items .*\bpk = \?/s.test(sql));
    expect(queries.length).toBeGreaterThanOrEqual(14);
    for (const sql of queries) {
      const [detail, ...rest] = plan(sql);
      expect(rest, sql).toEqual([]);
      expect(detail, sql).toMatch(
        /^SEARCH table_(index_)?items USING INDEX sqlite_autoindex_table_(index_)?items_1 \(project=\? AND table_name=\? (AND index_name=\? )?AND pk=\?/,
      );
      if (/\bsk [<>]/.test(sql)) expect(detail, sql).toMatch(/sk\)?[<>]/);
    }
    const expiry = prepared.find((sql) => /FROM table_items\s+WHERE ttl IS NOT NULL/.test(sql))!;
    expect(plan(expiry)).toEqual(['SEARCH table_items USING INDEX table_items_ttl (ttl>? AND ttl<?)']);
  });

  it('works in memory', async () => {
    const store = openSqliteStore({ path: ':memory:' });
    open.push(store);
    await store.functions.deploy(deploy('svc', [fn('a')], 'x'));
    expect((await store.functions.getFunction(ref('a')))?.version).toBe(1);
  });
});

function deploy(service: string, functions: FunctionConfig[], content: string) {
  const archive = Buffer.from(content);
  return {
    project: 'default',
    service,
    functions,
    code: { sha256: createHash('sha256').update(archive).digest('hex'), archive },
  };
}

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../src/clock/clock.js';
import { TableNotFoundError } from '../src/store/errors.js';
import type { IndexDef } from '../src/tables/types.js';
import {
  codeOf,
  deployOf,
  fn,
  queue,
  record,
  storeConformance,
  tableDef,
} from '../src/store/conformance/index.js';
import {
  MIGRATIONS,
  MIGRATIONS_TABLE,
  SCHEMA_VERSION,
  SchemaTooNewError,
  openPostgresStore,
  parsePostgresUrl,
  type PostgresStore,
  type PostgresStoreOptions,
} from '../src/store/postgres/index.js';
import {
  TEST_POSTGRES_URL,
  createTestSchema,
  postgresAvailable,
  withClient,
  type TestSchema,
} from './support/postgres.js';

const available = await postgresAvailable();

describe.runIf(available)('PostgreSQL store', () => {
  storeConformance('postgresql', async (opts = {}) => {
    const ts = await createTestSchema('conformance');
    const clock = new ManualClock();
    // A small pool: many harnesses open one after another and the server allows about 100 connections.
    const open = () => openPostgresStore({ url: ts.url, clock, poolSize: 4, ...opts });
    let current = await open();
    return {
      store: current,
      clock,
      async reopen() {
        await current.close();
        current = await open();
        return current;
      },
      async cleanup() {
        await current.close();
        await ts.drop();
      },
      async injectVersionFailure(name) {
        await withClient(async (c) => {
          await c.query(
            `CREATE FUNCTION ${ts.schema}.fail_version() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.name = '${name}' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$`,
          );
          await c.query(
            `CREATE TRIGGER fail_version BEFORE INSERT ON ${ts.schema}.versions
             FOR EACH ROW EXECUTE FUNCTION ${ts.schema}.fail_version()`,
          );
        });
      },
    };
  });

  describe('PostgresStore', () => {
    let ts: TestSchema | undefined;
    const opened: PostgresStore[] = [];
    const schema = async () => (ts ??= await createTestSchema('pgstore'));
    const openStore = async (opts: Partial<PostgresStoreOptions> = {}) => {
      const s = await openPostgresStore({ url: (await schema()).url, poolSize: 4, ...opts });
      opened.push(s);
      return s;
    };
    const sql = async <R extends pg.QueryResultRow>(text: string, params: unknown[] = []) =>
      withClient(async (c) => (await c.query<R>(text, params)).rows);

    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
      await ts?.drop();
      ts = undefined;
    });

    it('records every migration once in the version table, and runs none again on reopen', async () => {
      await (await openStore()).close();
      await openStore();
      const { schema: name } = await schema();
      const rows = await sql<{ version: number; description: string }>(
        `SELECT version, description FROM ${name}.${MIGRATIONS_TABLE} ORDER BY version`,
      );
      expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, description: m.description })));
      expect(SCHEMA_VERSION).toBe(MIGRATIONS.at(-1)!.version);
    });

    it('creates its tables in its own schema only', async () => {
      const store = await openStore();
      const tables = await sql<{ table_schema: string; table_name: string }>(
        `SELECT table_schema, table_name FROM information_schema.tables
         WHERE table_name IN ('functions', 'events', $1) AND table_schema = $2 ORDER BY table_name`,
        [MIGRATIONS_TABLE, store.schema],
      );
      expect(tables.map((t) => t.table_name)).toEqual(['events', 'functions', MIGRATIONS_TABLE]);
      const { url, schema: name } = await schema();
      expect(store.location).toBe(parsePostgresUrl(url).location);
      expect(store.location).toMatch(new RegExp(`[?&]schema=${name}$`));
    });

    it('lets two stores open one fresh schema at the same moment, migrating it once', async () => {
      // Not createTestSchema: the race includes creating the schema itself.
      const name = `nimbus_t_race_${randomBytes(6).toString('hex')}`;
      const url = `${TEST_POSTGRES_URL}${TEST_POSTGRES_URL.includes('?') ? '&' : '?'}schema=${name}`;
      try {
        const both = await Promise.all([
          openPostgresStore({ url, poolSize: 2 }),
          openPostgresStore({ url, poolSize: 2 }),
        ]);
        opened.push(...both);
        expect(both.map((s) => s.schema)).toEqual([name, name]);
        // Version rows are primary keys, so a migration run twice would have failed one of the opens.

        const versions = await sql<{ version: number }>(`SELECT version FROM ${name}.${MIGRATIONS_TABLE}`);
        expect(versions.map((v) => v.version)).toEqual(MIGRATIONS.map((m) => m.version));
        expect((await both[1]!.projects.list()).map((p) => p.name)).toEqual(['default']);
      } finally {
        for (const s of opened.splice(0)) await s.close();
        await sql(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      }
    });

    it('refuses a schema written by a newer Nimbus with SchemaTooNewError, leaving no connection open', async () => {
      await (await openStore()).close();
      const { schema: name, url } = await schema();
      await sql(
        `INSERT INTO ${name}.${MIGRATIONS_TABLE} (version, description) VALUES ($1, 'from the future')`,
        [SCHEMA_VERSION + 1],
      );
      const app = `nimbus_toonew_${randomBytes(4).toString('hex')}`;
      const err = await openPostgresStore({ url: `${url}&application_name=${app}` }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SchemaTooNewError);
      expect(err).toMatchObject({ found: SCHEMA_VERSION + 1, supported: SCHEMA_VERSION });
      // The server may take a moment to notice a closed socket; the pool must have closed it either way.
      const deadline = Date.now() + 5000;
      let left = -1;
      while (left !== 0 && Date.now() < deadline) {
        const [row] = await sql<{ n: string }>(
          'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1',
          [app],
        );
        left = Number(row?.n);
        if (left !== 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(left).toBe(0);
    });

    it('never shows a password in its location or its errors', async () => {
      const target = parsePostgresUrl('postgresql://u:secret@127.0.0.1:5432/test?schema=app');
      expect(target.location).toBe('postgresql://u@127.0.0.1:5432/test?schema=app');
      expect(target.schema).toBe('app');
      expect(target.connectionString).toContain('secret');
      expect(target.connectionString).not.toContain('schema=');
      expect(parsePostgresUrl('postgres://u:secret@db.example/x', 'other').location).toBe(
        'postgres://u@db.example/x?schema=other',
      );
      const err = await openPostgresStore({ url: 'postgresql://u:secret@127.0.0.1:1/test' }).catch(
        (e: unknown) => e as Error,
      );
      expect(String(err)).not.toContain('secret');
      expect(() => parsePostgresUrl('postgresql://u:secret@[bad/x')).toThrow(/not a valid URL/);
      expect(() => parsePostgresUrl('postgresql://u:secret@[bad/x')).not.toThrow(/secret/);
      // pg also reads a password from the query string.
      const q = parsePostgresUrl('postgresql://u@127.0.0.1/test?password=s3cret&sslpassword=k3y&schema=x');
      expect(q.location).not.toMatch(/s3cret|k3y/);
      expect(q.connectionString).toContain('s3cret');
    });

    it('refuses an options parameter, which would move queries away from the schema', () => {
      expect(() =>
        parsePostgresUrl('postgresql://127.0.0.1/test?schema=a&options=-c%20search_path%3Db'),
      ).toThrow(/must not set "options"/);
      expect(() => parsePostgresUrl('mysql://localhost/x')).toThrow(/postgresql:\/\//);
    });

    it('says readably that the server cannot be reached', async () => {
      const err = await openPostgresStore({ url: 'postgresql://127.0.0.1:1/test' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe(
        'cannot reach PostgreSQL at 127.0.0.1:1 (ECONNREFUSED); start it, or point NIMBUS_STORE at a reachable server',
      );
    });

    it('refuses schema names that are not lowercase identifiers, before connecting', async () => {
      const { url } = await schema();
      for (const bad of ['Bad', 'a-b', '1x', 'x'.repeat(64), 'x; drop schema public', 'pg_mine', '']) {
        await expect(openPostgresStore({ url, schema: bad })).rejects.toThrow(/schema name/);
      }
      const viaUrl = url.replace(/schema=[^&]*/, 'schema=No%20Way');
      await expect(openPostgresStore({ url: viaUrl })).rejects.toThrow(/schema name/);
      // Refused before any connection is tried: this server does not even exist.
      await expect(openPostgresStore({ url: 'postgresql://127.0.0.1:1/x', schema: 'Bad' })).rejects.toThrow(
        /schema name/,
      );
    });

    it('serializes deploys of one service from two stores: versions 1 and 2, never a clash', async () => {
      const a = await openStore();
      const b = await openStore();
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all([
          a.functions.deploy(deployOf('svc', [fn('x'), fn('y')], codeOf(`a${round}`))),
          b.functions.deploy(deployOf('svc', [fn('x'), fn('y')], codeOf(`b${round}`))),
        ]);
        const versions = results
          .flatMap((r) => r.functions.map((f) => [f.name, f.version, f.changed] as const))
          .sort((p, q) => p[0].localeCompare(q[0]) || p[1] - q[1]);
        expect(versions).toEqual([
          ['x', 2 * round + 1, true],
          ['x', 2 * round + 2, true],
          ['y', 2 * round + 1, true],
          ['y', 2 * round + 2, true],
        ]);
      }
      const rows = await sql<{ n: string }>(
        `SELECT count(*) AS n FROM ${a.schema}.versions GROUP BY name ORDER BY name`,
      );
      expect(rows.map((r) => Number(r.n))).toEqual([10, 10]);
    });

    it('gives each event to one of two stores claiming from one queue at once', async () => {
      const clock = new ManualClock();
      const a = await openStore({ clock });
      const b = await openStore({ clock });
      const ids = Array.from({ length: 60 }, (_, i) => `e${String(i).padStart(2, '0')}`);
      for (const id of ids) {
        await a.events.enqueue({
          id,
          project: 'default',
          functionName: 'w',
          source: 'invoke',
          payload: '{}',
        });
      }
      const seen: string[] = [];
      for (;;) {
        const rounds = await Promise.all(
          [a, b].flatMap((s, n) =>
            [0, 1, 2, 3].map((i) => s.events.claim({ owner: `node${n}-${i}`, limit: 3, leaseMs: 60_000 })),
          ),
        );
        const got = rounds.flat().map((e) => e.id);
        if (got.length === 0) break;
        seen.push(...got);
      }
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.sort()).toEqual(ids);
    });

    it('gives each message of a standard queue to one of two stores receiving at once', async () => {
      const clock = new ManualClock();
      const a = await openStore({ clock });
      const b = await openStore({ clock });
      await a.functions.deploy({ ...deployOf('svc', [fn('w')], codeOf('q')), queues: [queue('jobs')] });
      const sent = await a.queues.send(
        'default',
        'jobs',
        Array.from({ length: 200 }, (_, i) => ({ body: `m${i}` })),
      );
      const seen: string[] = [];
      for (;;) {
        const rounds = await Promise.all(
          [a, b].flatMap((s) =>
            [0, 1, 2, 3].map(() => s.queues.receive('default', 'jobs', { max: 7, visibilityTimeout: 600 })),
          ),
        );
        const got = rounds.flat().map((m) => m.id);
        if (got.length === 0) break;
        seen.push(...got);
      }
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.sort()).toEqual(sent.map((m) => m.id).sort());
    });

    it('never lets two stores hold messages of one FIFO group at once, and keeps each group in order', async () => {
      const clock = new ManualClock();
      const a = await openStore({ clock });
      const b = await openStore({ clock });
      await a.functions.deploy({
        ...deployOf('svc', [fn('w')], codeOf('q')),
        queues: [queue('jobs.fifo', { visibilityTimeout: 600 })],
      });
      const groups = Array.from({ length: 10 }, (_, g) => `g${g}`);
      await a.queues.send(
        'default',
        'jobs.fifo',
        Array.from({ length: 200 }, (_, i) => ({
          body: String(Math.floor(i / groups.length)),
          groupId: groups[i % groups.length]!,
          deduplicationId: `d${i}`,
        })),
      );
      const next = new Map(groups.map((g) => [g, 0]));
      let received = 0;
      while (received < 200) {
        const rounds = await Promise.all(
          [a, b].flatMap((s) => [0, 1, 2, 3].map(() => s.queues.receive('default', 'jobs.fifo', { max: 5 }))),
        );
        // Nothing is deleted during a round, so a group two receivers got would have been in flight twice.
        const held = rounds.flatMap((ms) => [...new Set(ms.map((m) => m.groupId))]);
        expect(new Set(held).size).toBe(held.length);
        const got = rounds.flat();
        expect(got.length).toBeGreaterThan(0);
        for (const m of got) {
          expect(Number(m.body)).toBe(next.get(m.groupId!));
          next.set(m.groupId!, Number(m.body) + 1);
        }
        received += got.length;
        for (const m of got)
          expect(await a.queues.delete('default', 'jobs.fifo', m.receiptHandle!)).toBe(true);
      }
      expect(await a.queues.peek('default', 'jobs.fifo')).toEqual([]);
    });

    it('writes 1000 buffered records on close, in many batches, all there after a reopen', async () => {
      const errors: Error[] = [];
      const store = await openStore({
        maxBatch: 64,
        flushIntervalMs: 60_000,
        onError: (e) => errors.push(e),
      });
      const ids: string[] = [];
      for (let i = 0; i < 1000; i++) {
        const rec = record({ functionName: 'bulk', start: 1000 + i });
        store.invocations.write(rec);
        ids.push(rec.requestId);
      }
      await store.close();
      const again = await openStore();
      const back = await again.invocations.query({ functionName: 'bulk', ascending: true, limit: 1000 });
      expect(back.map((r) => r.requestId)).toEqual(ids);
      expect(errors).toEqual([]);
    });

    it("writes a cold start's record without waiting for the interval", async () => {
      const written: number[] = [];
      let wrote: () => void = () => {};
      const once = new Promise<void>((r) => (wrote = r));
      const store = await openStore({
        flushIntervalMs: 60_000,
        onBatchWritten: (_ms, n) => {
          written.push(n);
          wrote();
        },
      });
      const cold = record({ functionName: 'coldwrite', cold: true, initMs: 3 });
      store.invocations.write(cold);
      // Only a write on its own can settle this: the interval is a minute, and nothing flushes.
      await once;
      expect(written).toEqual([1]);
      const n = await sql<{ n: string }>(
        `SELECT count(*) AS n FROM ${store.schema}.invocations WHERE request_id = $1`,
        [cold.requestId],
      );
      expect(Number(n[0]?.n)).toBe(1);
    });

    it('flush waits for a batch already in flight as well as the buffered rest', async () => {
      const store = await openStore({ maxBatch: 500, flushIntervalMs: 60_000 });
      const recs = Array.from({ length: 600 }, () => record({ functionName: 'inflight' }));
      for (const r of recs.slice(0, 500)) store.invocations.write(r);
      // The full batch leaves on the next turn of the event loop; the rest arrive while it is in flight.
      await new Promise((r) => setImmediate(r));
      for (const r of recs.slice(500)) store.invocations.write(r);
      await store.invocations.flush();
      const n = await sql<{ n: string }>(`SELECT count(*) AS n FROM ${store.schema}.invocations`);
      expect(Number(n[0]?.n)).toBe(600);
    });

    it('reports how many records a batch lost, and only those', async () => {
      const errors: Error[] = [];
      const store = await openStore({ onError: (e) => errors.push(e) });
      const bad = { ...record(), status: null } as unknown as ReturnType<typeof record>;
      const good = [record(), record()];
      store.invocations.write(good[0]!);
      store.invocations.write(bad);
      store.invocations.write(good[1]!);
      await store.invocations.flush();
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message).toMatch(/^dropped 1 of 3 invocation records \(request [\w-]+\): .*status/);
      expect(errors[0]!.message).toContain(bad.requestId);
      expect((await store.invocations.query({ ascending: true })).map((r) => r.requestId)).toEqual(
        good.map((r) => r.requestId),
      );
    });

    it('reports, and recovers from, the server dropping its idle connections', async () => {
      const errors: Error[] = [];
      const app = `nimbus_drop_${randomBytes(4).toString('hex')}`;
      const url = `${(await schema()).url}&application_name=${app}`;
      const store = await openStore({ url, onError: (e) => errors.push(e) });
      await Promise.all([store.projects.list(), store.nodes.list()]);
      const killed = await sql(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [app],
      );
      expect(killed.length).toBeGreaterThan(0);
      // Until the pool has heard of every loss it may still hand out a dead connection (as pg always may).
      const deadline = Date.now() + 5000;
      while (errors.length < killed.length && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(errors).toHaveLength(killed.length);
      expect(errors[0]?.message).toMatch(/^PostgreSQL connection lost/);
      expect((await store.projects.list()).map((p) => p.name)).toEqual(['default']);
    });

    it('applies parallel read-modify-writes of one item from two stores one after the other', async () => {
      const a = await openStore();
      const b = await openStore();
      await a.tables.createTable(
        'default',
        tableDef('counters', { stream: { viewType: 'NEW_IMAGE' } }),
        null,
      );
      const key = { pk: { S: 'hits' }, sk: { N: '0' } };
      const increment = (s: PostgresStore) =>
        s.tables.write('default', {
          table: 'counters',
          key,
          // The item does not exist before the first write: creating it must serialize too.
          decide: (cur) => ({
            ...key,
            n: { N: String(Number((cur?.n as { N: string } | undefined)?.N ?? 0) + 1) },
          }),
        });
      const writes = 60;
      const results = await Promise.all(
        Array.from({ length: writes }, (_, i) => increment(i % 2 === 0 ? a : b)),
      );
      expect(await b.tables.getItem('default', 'counters', key)).toStrictEqual({
        ...key,
        n: { N: String(writes) },
      });
      // Every write saw the one before it: the new values are exactly 1..writes.
      const seen = results.map((r) => Number((r.new!.n as { N: string }).N)).sort((x, y) => x - y);
      expect(seen).toEqual(Array.from({ length: writes }, (_, i) => i + 1));
      // The stream has one record per write, in commit order: INSERT, then MODIFYs counting up.
      const records = await a.tables.streamRecords('default', 'counters', 0, 1000);
      expect(records.map((r) => r.eventName)).toEqual(['INSERT', ...Array(writes - 1).fill('MODIFY')]);
      expect(records.map((r) => r.newImage?.n)).toEqual(seen.map((n) => ({ N: String(n) })));
      expect(await a.tables.getTable('default', 'counters')).toMatchObject({ itemCount: 1 });
    });

    it("sees another node's change of a table definition at its next item operation on it", async () => {
      const a = await openStore();
      const b = await openStore();
      const byColor: IndexDef = {
        name: 'byColor',
        kind: 'global',
        key: { partition: { name: 'color', type: 'S' } },
        projection: { type: 'ALL' },
      };
      await a.tables.createTable('default', tableDef('t'), null);
      const item = { pk: { S: 'a' }, sk: { N: '1' }, color: { S: 'red' } };
      await a.tables.write('default', { table: 't', key: { pk: item.pk, sk: item.sk }, decide: () => item });
      expect(await a.tables.getItem('default', 't', { pk: item.pk, sk: item.sk })).toStrictEqual(item);
      expect((await a.tables.definition('default', 't'))?.indexes).toEqual([]);
      // b adds an index: a's next write to the table reads the new definition and fills the index.
      await b.tables.updateTable('default', tableDef('t', { indexes: [byColor] }));
      const blue = { pk: { S: 'b' }, sk: { N: '1' }, color: { S: 'blue' } };
      await a.tables.write('default', { table: 't', key: { pk: blue.pk, sk: blue.sk }, decide: () => blue });
      expect((await a.tables.definition('default', 't'))?.indexes).toEqual([byColor]);
      const page = await a.tables.query('default', {
        table: 't',
        index: 'byColor',
        partition: { S: 'blue' },
      });
      expect(page.items).toStrictEqual([blue]);
      // b makes the table again with another key schema: a's GetItem by the new key finds the new item.
      await b.tables.deleteTable('default', 't');
      const byId = tableDef('t', { key: { partition: { name: 'id', type: 'S' } } });
      await b.tables.createTable('default', byId, null);
      const other = { id: { S: 'x' }, n: { N: '7' } };
      await b.tables.write('default', { table: 't', key: { id: other.id }, decide: () => other });
      expect(await a.tables.getItem('default', 't', { id: other.id })).toStrictEqual(other);
      expect((await a.tables.definition('default', 't'))?.key).toEqual(byId.key);
      await b.tables.deleteTable('default', 't');
      await expect(a.tables.getItem('default', 't', { id: other.id })).rejects.toBeInstanceOf(
        TableNotFoundError,
      );
      expect(await a.tables.definition('default', 't')).toBeUndefined();
    });

    it('refuses with TableInputError a key too large for a btree entry, which SQLite would take', async () => {
      const store = await openStore();
      const bytes = {
        partition: { name: 'pk', type: 'B' as const },
        sort: { name: 'sk', type: 'B' as const },
      };
      await store.tables.createTable('default', tableDef('t', { key: bytes }), null);
      // Both keys at DynamoDB's maxima, incompressible: more than the 2704 bytes a btree entry may hold.
      const item = {
        pk: { B: randomBytes(2048).toString('base64') },
        sk: { B: randomBytes(1024).toString('base64') },
      };
      const err = await store.tables
        .write('default', { table: 't', key: item, decide: () => item })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'TableInputError' });
      expect(await store.tables.getTable('default', 't')).toMatchObject({ itemCount: 0 });
    });

    it('reads tables by ranges of their primary key indexes: a Query never scans the table', async () => {
      const store = await openStore();
      const t = store.tables;
      const byStatus = {
        name: 'byStatus',
        kind: 'global' as const,
        key: { partition: { name: 'status', type: 'S' as const }, sort: { name: 'at', type: 'N' as const } },
        projection: { type: 'ALL' as const },
      };
      await t.createTable('default', tableDef('n', { ttlAttribute: 'exp', indexes: [byStatus] }), null);
      const sdef = tableDef('s', {
        key: { partition: { name: 'pk', type: 'S' }, sort: { name: 'sk', type: 'S' } },
      });
      await t.createTable('default', sdef, null);
      // Enough rows, spread over partitions and analyzed, that the planner weighs its choices as it would in use.
      for (let batch = 0; batch < 10; batch++) {
        await t.transact(
          'default',
          Array.from({ length: 50 }, (_, j) => {
            const i = batch * 50 + j;
            const item = {
              pk: { S: `p${i % 25}` },
              sk: { N: String(i) },
              status: { S: `s${i % 5}` },
              at: { N: String(i % 11) },
              exp: { N: String(i) },
            };
            return { table: 'n', key: { pk: item.pk, sk: item.sk }, decide: () => item };
          }),
        );
        await t.transact(
          'default',
          Array.from({ length: 50 }, (_, j) => {
            const item = { pk: { S: `p${j % 10}` }, sk: { S: `k${batch}-${j}` } };
            return { table: 's', key: item, decide: () => item };
          }),
        );
      }
      const { schema: name } = await schema();
      await sql(`ANALYZE ${name}.table_items`);
      await sql(`ANALYZE ${name}.table_index_items`);

      const spy = vi.spyOn(pg.Pool.prototype, 'query');
      let calls: [string, unknown[]][];
      try {
        const start = { pk: { S: 'p3' }, sk: { N: '103' } };
        for (const forward of [true, false]) {
          for (const sort of [
            undefined,
            { op: '=' as const, value: { N: '103' } },
            { op: '<' as const, value: { N: '300' } },
            { op: '>=' as const, value: { N: '50' } },
            { op: 'between' as const, low: { N: '10' }, high: { N: '400' } },
          ]) {
            await t.query('default', { table: 'n', partition: { S: 'p3' }, sort, forward, limit: 5 });
            await t.query('default', {
              table: 'n',
              partition: { S: 'p3' },
              sort,
              forward,
              limit: 5,
              exclusiveStartKey: start,
            });
          }
          const prefix = { op: 'begins_with' as const, prefix: { S: 'k3' } };
          await t.query('default', { table: 's', partition: { S: 'p1' }, sort: prefix, forward, limit: 5 });
          await t.query('default', {
            table: 'n',
            index: 'byStatus',
            partition: { S: 's2' },
            sort: { op: '>', value: { N: '1' } },
            forward,
            limit: 5,
            exclusiveStartKey: { ...start, status: { S: 's2' }, at: { N: '3' } },
          });
        }
        await t.expire(10, 5);
        calls = spy.mock.calls.map((c) => [String(c[0]), (c[1] ?? []) as unknown[]]);
      } finally {
        spy.mockRestore();
      }
      const explain = (text: string, params: unknown[]) =>
        withClient(async (c) => {
          await c.query(`SET search_path TO ${name}`);
          const res = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${text}`, params);
          return res.rows.map((r) => r['QUERY PLAN']).join('\n');
        });
      const queries = calls.filter(([text]) =>
        /^SELECT item FROM table_(index_)?items .*\bpk = \$/s.test(text),
      );
      expect(queries).toHaveLength(24);
      for (const [text, params] of queries) {
        const plan = await explain(text, params);
        expect(plan, text).not.toMatch(/Seq Scan/);
        const table = /FROM (table_\w+)/.exec(text)![1];
        expect(plan, text).toMatch(
          new RegExp(`Index Scan (Backward )?using ${table}_pkey|Bitmap Index Scan on ${table}_pkey`),
        );
        // The partition and the sort key bounds are conditions of the index scan, not filters after it.
        const cond = /Index Cond: (.*)/.exec(plan)?.[1] ?? '';
        expect(cond, plan).toMatch(/\(pk = /);
        if (/\bsk [<>]/.test(text)) expect(cond, plan).toMatch(/\(sk [<>]=? /);
        expect(plan, text).not.toMatch(/Filter:/);
      }
      const [expiry] = calls.filter(([text]) => /FROM table_items\s+WHERE ttl IS NOT NULL/.test(text));
      expect(await explain(...expiry!)).toMatch(/Index Scan using table_items_ttl/);
    });

    it('keeps event times with a fraction of a millisecond, and int8 parsing to its own pools', async () => {
      const store = await openStore();
      await store.events.enqueue({
        id: 'f',
        project: 'default',
        functionName: 'w',
        source: 'invoke',
        payload: '{}',
        enqueuedAt: 1000.25,
        nextAttemptAt: 1500.5,
      });
      expect(await store.events.get('f')).toMatchObject({ enqueuedAt: 1000.25, nextAttemptAt: 1500.5 });
      // The store's number parsing must not have changed how every other pg user in the process reads int8.
      expect(pg.types.getTypeParser(pg.types.builtins.INT8, 'text')('42')).toBe('42');
    });
  });
});

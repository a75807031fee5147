// TableStore on PostgreSQL, for nodes writing one table at once. An item write is one transaction that takes,
// always in this order: the table's row FOR KEY SHARE (an updateTable or deleteTable waits for the writes in
// flight and the writes after it wait for it), a transaction advisory lock per item key (two writers of one
// key, even one that does not exist yet, run one after the other, so a read-modify-write never loses an
// update), the items' rows FOR UPDATE (a TTL expiry skips an item being written), the table row's stream
// counter (a stream's records commit in sequence order), then the count shards. Locks of several items or
// shards are taken in a sorted order, so two transactions never wait for each other. Every "now" is the
// store clock's.
import { createHash } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { Clock } from '../../clock/clock.js';
import { ProjectNotFoundError, TableExistsError, TableInputError, TableNotFoundError } from '../errors.js';
import { toStreamRecord, toTable, type StreamRow, type TableRow } from '../rows.js';
import {
  MAX_PAGE,
  STREAM_RETENTION_MS,
  TTL_HORIZON_S,
  TTL_IDENTITY,
  atWrite,
  checkTableDef,
  checkCollection,
  collectionsChange,
  ITEM_COLLECTION_LIMIT,
  localIndexes,
  frozenDef,
  indexEntries,
  keyedWrites,
  planQuery,
  planScan,
  planTableUpdate,
  nextStream,
  planWrite,
  querySql,
  scanSql,
  streamLabel,
  tableDefOf,
  tableDefText,
  toPage,
  ttlOf,
  writeKey,
  type IndexEntry,
  type ItemChange,
  type TableState,
} from '../table-rules.js';
import type {
  ItemPage,
  ItemQuery,
  ItemScan,
  ItemWrite,
  StoredTable,
  StreamRecord,
  TableStore,
  WriteResult,
} from '../types.js';
import { queryLimit } from '../validate.js';
import type { EncodedKey } from '../../tables/keys.js';
import type { Item, TableDef } from '../../tables/types.js';
import { pgCode, type Db } from './db.js';

/** Count shards per table: writes to one table spread their counter updates over this many rows. */
const COUNT_SHARDS = 16;
/** Items read per step when an updateTable walks a table (filling new indexes, recomputing TTLs). */
const WALK_BATCH = 1000;

const TABLE_COLUMNS = `t.project, t.name, t.service, t.def, t.created_at, t.stream_label, t.stream_seq,
  coalesce((SELECT sum(c.items) FROM table_counts c WHERE c.project = t.project AND c.table_name = t.name), 0)::bigint
    AS item_count,
  coalesce((SELECT sum(c.bytes) FROM table_counts c WHERE c.project = t.project AND c.table_name = t.name), 0)::bigint
    AS size_bytes`;

type Querier = Pick<PoolClient, 'query'>;

export class PgTableStore implements TableStore {
  /**
   * Parsed definitions by project and table, with the text they were parsed from. Other nodes may change a
   * definition, so an entry is never trusted alone: every item operation reads the table row's text in a
   * statement it runs anyway (GetItem in its one SELECT, a write with the row's KEY SHARE lock) and
   * re-parses only when the text differs. definition() answers from here, so a node learns of another
   * node's UpdateTable at its next item operation on that table.
   */
  private readonly defs = new Map<string, { text: string; state: TableState }>();

  constructor(
    private readonly db: Db,
    private readonly schema: string,
    private readonly clock: Clock,
    private readonly collectionLimit = ITEM_COLLECTION_LIMIT,
  ) {}

  async createTable(project: string, def: TableDef, service: string | null): Promise<StoredTable> {
    this.db.assertOpen();
    checkTableDef(def);
    const now = this.clock.now();
    this.defs.delete(`${project}\n${def.name}`);
    return this.db.tx(async (c) => {
      const p = await c.query('SELECT 1 FROM projects WHERE name = $1 FOR KEY SHARE', [project]);
      if (p.rowCount === 0) throw new ProjectNotFoundError(project);
      const res = await c.query(
        `INSERT INTO tables (project, name, service, def, created_at, stream_label) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (project, name) DO NOTHING`,
        [project, def.name, service, tableDefText(def), now, def.stream ? streamLabel(now) : null],
      );
      if (res.rowCount === 0) throw new TableExistsError(project, def.name);
      return (await tableRow(c, project, def.name))!;
    });
  }

  async getTable(project: string, name: string): Promise<StoredTable | undefined> {
    this.db.assertOpen();
    return tableRow(this.db.pool, project, name);
  }

  async definition(project: string, name: string): Promise<TableDef | undefined> {
    this.db.assertOpen();
    const known = this.defs.get(`${project}\n${name}`);
    if (known) return known.state.def;
    try {
      return (await this.tableIn(this.db.pool, project, name)).def;
    } catch (err) {
      if (err instanceof TableNotFoundError) return undefined;
      throw err;
    }
  }

  /** The table's state from its row (locked as asked), through the cache. */
  private async tableIn(q: Querier, project: string, name: string, lock = ''): Promise<TableState> {
    const res = await q.query<{ def: string; stream_label: string | null }>(
      `SELECT def, stream_label FROM tables WHERE project = $1 AND name = $2 ${lock}`,
      [project, name],
    );
    return this.known(project, name, res.rows[0]);
  }

  /** The cached state for a table row just read (parsed again if its text changed); no row: no table. */
  private known(
    project: string,
    name: string,
    row: { def: string; stream_label: string | null } | undefined,
  ): TableState {
    const id = `${project}\n${name}`;
    if (!row) {
      this.defs.delete(id);
      throw new TableNotFoundError(project, name);
    }
    const streaming = row.stream_label !== null;
    const cur = this.defs.get(id);
    if (cur && cur.text === row.def && cur.state.streaming === streaming) return cur.state;
    const state = { def: frozenDef(row.def), streaming };
    this.defs.set(id, { text: row.def, state });
    return state;
  }

  async listTables(project: string): Promise<StoredTable[]> {
    const rows = await this.db.rows<TableRow>(
      `SELECT ${TABLE_COLUMNS} FROM tables t WHERE t.project = $1 ORDER BY t.name`,
      [project],
    );
    return rows.map(toTable);
  }

  async updateTable(project: string, def: TableDef): Promise<StoredTable> {
    this.db.assertOpen();
    const now = this.clock.now();
    // This node's own change is seen at once; other nodes' at their next item operation on the table.
    this.defs.delete(`${project}\n${def.name}`);
    return this.db
      .tx(async (c) => {
        // FOR UPDATE conflicts with the writers' KEY SHARE: no item changes while the indexes are refilled.
        const res = await c.query<{ def: string; stream_label: string | null }>(
          'SELECT def, stream_label FROM tables WHERE project = $1 AND name = $2 FOR UPDATE',
          [project, def.name],
        );
        const row = res.rows[0];
        if (!row) throw new TableNotFoundError(project, def.name);
        const cur = JSON.parse(row.def) as TableDef;
        // An index whose definition changed is dropped and filled again, like a removed and a new one.
        const { dropped, added, ttlChanged } = planTableUpdate(cur, def);
        if (collectionsChange(cur, def, dropped, added)) {
          await c.query('DELETE FROM table_collections WHERE project = $1 AND table_name = $2', [
            project,
            def.name,
          ]);
        }
        await c.query(
          'DELETE FROM table_index_items WHERE project = $1 AND table_name = $2 AND index_name = ANY($3::text[])',
          [project, def.name, dropped],
        );
        const { label, fresh } = nextStream({ stream: cur.stream, streamLabel: row.stream_label }, def, now);
        if (fresh) {
          await c.query('DELETE FROM table_streams WHERE project = $1 AND table_name = $2', [
            project,
            def.name,
          ]);
        }
        await c.query('UPDATE tables SET def = $3, stream_label = $4 WHERE project = $1 AND name = $2', [
          project,
          def.name,
          tableDefText(def),
          label,
        ]);
        const next = tableDefOf(def);
        if (added.length > 0 || ttlChanged) {
          await walk(c, project, def.name, async (rows) => {
            const entries = rows.flatMap((r) =>
              indexEntries({ ...next, indexes: added }, r.item, true).map((e) => ({
                e,
                table: def.name,
                key: r,
              })),
            );
            await putEntries(c, project, entries);
            if (ttlChanged) {
              await c.query(
                `UPDATE table_items i SET ttl = u.ttl
               FROM unnest($3::bytea[], $4::bytea[], $5::double precision[]) AS u (pk, sk, ttl)
               WHERE i.project = $1 AND i.table_name = $2 AND i.pk = u.pk AND i.sk = u.sk`,
                [
                  project,
                  def.name,
                  rows.map((r) => r.pk),
                  rows.map((r) => r.sk),
                  rows.map((r) => ttlOf(next, r.item)),
                ],
              );
            }
          });
        }
        return (await tableRow(c, project, def.name))!;
      })
      .finally(() => this.defs.delete(`${project}\n${def.name}`));
  }

  async deleteTable(project: string, name: string): Promise<boolean> {
    this.db.assertOpen();
    // Items, index entries, stream records and counts go with it (ON DELETE CASCADE).
    this.defs.delete(`${project}\n${name}`);
    const n = await this.db.changed('DELETE FROM tables WHERE project = $1 AND name = $2', [project, name]);
    this.defs.delete(`${project}\n${name}`);
    return n > 0;
  }

  async getItem(project: string, table: string, key: Item): Promise<Item | undefined> {
    this.db.assertOpen();
    // With a cached definition, one statement: the key encoded by it, the table row read beside the item
    // to confirm it (a key schema only changes by deleting and creating the table again).
    const known = this.defs.get(`${project}\n${table}`);
    const cachedKey = known && encodedOrUndefined(known.state.def, key);
    if (known && cachedKey) {
      const k = cachedKey;
      const rows = await this.db.rows<{ def: string; stream_label: string | null; item: string | null }>(
        `SELECT t.def, t.stream_label, i.item FROM tables t
         LEFT JOIN table_items i ON i.project = t.project AND i.table_name = t.name AND i.pk = $3 AND i.sk = $4
         WHERE t.project = $1 AND t.name = $2`,
        [project, table, k.pk, k.sk],
      );
      const row = rows[0];
      if (row && row.def === known.text)
        return row.item === null ? undefined : (JSON.parse(row.item) as Item);
      this.known(project, table, row);
    }
    const k = writeKey((await this.tableIn(this.db.pool, project, table)).def, key);
    const rows = await this.db.rows<{ item: string }>(
      'SELECT item FROM table_items WHERE project = $1 AND table_name = $2 AND pk = $3 AND sk = $4',
      [project, table, k.pk, k.sk],
    );
    return rows[0] && (JSON.parse(rows[0].item) as Item);
  }

  async write(project: string, w: ItemWrite): Promise<WriteResult> {
    this.db.assertOpen();
    const now = this.clock.now();
    return (await this.db.tx((c) => this.apply(c, project, [w], now, false)))[0]!;
  }

  async transact(project: string, writes: readonly ItemWrite[]): Promise<WriteResult[]> {
    this.db.assertOpen();
    const now = this.clock.now();
    return this.db.tx((c) => this.apply(c, project, writes, now, true));
  }

  /** Every decide sees the items as they were before any of the writes; then all of them are written. */
  private async apply(
    c: PoolClient,
    project: string,
    writes: readonly ItemWrite[],
    now: number,
    indexed: boolean,
  ): Promise<WriteResult[]> {
    const tables = new Map<string, TableState>();
    for (const name of [...new Set(writes.map((w) => w.table))].sort()) {
      try {
        tables.set(name, await this.tableIn(c, project, name, 'FOR KEY SHARE'));
      } catch (err) {
        throw indexed
          ? atWrite(
              err,
              writes.findIndex((w) => w.table === name),
            )
          : err;
      }
    }
    const keyed = keyedWrites(writes, (name) => tables.get(name)!.def, indexed);
    const locks = keyed.map((w) => lockKey(this.schema, project, w.table, w.encoded));
    await c.query('SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY k) l', [
      [...new Set(locks)].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)),
    ]);
    const found = await c.query<{ ord: number; item: string }>(
      `SELECT w.ord::integer AS ord, i.item
       FROM unnest($2::text[], $3::bytea[], $4::bytea[]) WITH ORDINALITY AS w (table_name, pk, sk, ord)
       JOIN table_items i ON i.project = $1 AND i.table_name = w.table_name AND i.pk = w.pk AND i.sk = w.sk
       FOR UPDATE OF i`,
      [project, keyed.map((w) => w.table), keyed.map((w) => w.encoded.pk), keyed.map((w) => w.encoded.sk)],
    );
    const current = new Map(found.rows.map((r) => [r.ord - 1, JSON.parse(r.item) as Item]));
    const changes = keyed.map((w, i) => {
      try {
        const cur = current.get(i);
        return {
          table: w.table,
          change: planWrite(tables.get(w.table)!, w.encoded, cur, w.decide(cur), now),
        };
      } catch (err) {
        throw indexed ? atWrite(err, i) : err;
      }
    });
    await this.measure(c, project, changes, (name) => tables.get(name)!.def, indexed);
    await runChanges(c, project, changes);
    return changes.map((x) => x.change.result);
  }

  async query(project: string, q: ItemQuery): Promise<ItemPage> {
    this.db.assertOpen();
    const { def } = await this.tableIn(this.db.pool, project, q.table);
    const plan = planQuery(def, q);
    const sql = querySql(project, q.table, plan, (n) => `$${n}`);
    const rows = await this.db.rows<{ item: string }>(sql.text, sql.params);
    return toPage(
      def,
      plan.index,
      rows.map((r) => r.item),
      plan.limit,
    );
  }

  async scan(project: string, s: ItemScan): Promise<ItemPage> {
    this.db.assertOpen();
    const { def } = await this.tableIn(this.db.pool, project, s.table);
    const plan = planScan(def, s);
    const sql = scanSql(project, s.table, plan, (n) => `$${n}`);
    const rows = await this.db.rows<{ item: string }>(sql.text, sql.params);
    return toPage(
      def,
      plan.index,
      rows.map((r) => r.item),
      plan.limit,
    );
  }

  async streamRecords(
    project: string,
    table: string,
    afterSeq: number,
    limit: number,
  ): Promise<StreamRecord[]> {
    this.db.assertOpen();
    await this.tableIn(this.db.pool, project, table);
    const rows = await this.db.rows<StreamRow>(
      'SELECT * FROM table_streams WHERE project = $1 AND table_name = $2 AND seq > $3 ORDER BY seq LIMIT $4',
      [project, table, afterSeq, queryLimit(limit, 1000, MAX_PAGE)],
    );
    return rows.map(toStreamRecord);
  }

  async streamCursor(project: string, table: string, consumer: string): Promise<number | undefined> {
    this.db.assertOpen();
    const rows = await this.db.rows<{ after_seq: number }>(
      'SELECT after_seq FROM stream_cursors WHERE project = $1 AND table_name = $2 AND consumer = $3',
      [project, table, consumer],
    );
    return rows[0]?.after_seq;
  }

  async setStreamCursor(project: string, table: string, consumer: string, afterSeq: number): Promise<void> {
    this.db.assertOpen();
    const n = await this.db.changed(
      `INSERT INTO stream_cursors (project, table_name, consumer, after_seq, updated_at)
       SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM tables WHERE project = $1 AND name = $2)
       ON CONFLICT (project, table_name, consumer) DO UPDATE SET after_seq = excluded.after_seq, updated_at = excluded.updated_at`,
      [project, table, consumer, afterSeq, this.clock.now()],
    );
    if (n === 0) throw new TableNotFoundError(project, table);
  }

  /** One transaction per table; an item a writer holds is skipped (its write may move its TTL) and expires
   *  at a later call if it still should. */
  async expire(nowSeconds: number, limit: number): Promise<number> {
    this.db.assertOpen();
    const now = this.clock.now();
    const floor = nowSeconds - TTL_HORIZON_S;
    const due = await this.db.rows<{ project: string; table_name: string; pk: Buffer; sk: Buffer }>(
      `SELECT project, table_name, pk, sk FROM table_items
       WHERE ttl IS NOT NULL AND ttl <= $1 AND ttl > $2 ORDER BY ttl LIMIT $3`,
      [nowSeconds, floor, queryLimit(limit, MAX_PAGE, MAX_PAGE)],
    );
    const byTable = new Map<string, typeof due>();
    for (const r of due) {
      const id = `${r.project}\n${r.table_name}`;
      byTable.set(id, [...(byTable.get(id) ?? []), r]);
    }
    let deleted = 0;
    for (const [id, rows] of [...byTable].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const [project, table] = id.split('\n') as [string, string];
      deleted += await this.db.tx(async (c) => {
        const t = await this.tableIn(c, project, table, 'FOR KEY SHARE').catch((err: unknown) => {
          if (err instanceof TableNotFoundError) return undefined;
          throw err;
        });
        if (!t) return 0;
        const locked = await c.query<{ pk: Buffer; sk: Buffer; item: string }>(
          `SELECT i.pk, i.sk, i.item FROM table_items i
           JOIN unnest($3::bytea[], $4::bytea[]) AS d (pk, sk) ON i.pk = d.pk AND i.sk = d.sk
           WHERE i.project = $1 AND i.table_name = $2 AND i.ttl <= $5 AND i.ttl > $6
           FOR UPDATE OF i SKIP LOCKED`,
          [project, table, rows.map((r) => r.pk), rows.map((r) => r.sk), nowSeconds, floor],
        );
        const changes = locked.rows.map((r) => ({
          table,
          change: planWrite(t, r, JSON.parse(r.item) as Item, null, now, TTL_IDENTITY),
        }));
        await this.measure(c, project, changes, () => t.def, false);
        await runChanges(c, project, changes);
        return changes.length;
      });
    }
    await this.db.changed('DELETE FROM table_streams WHERE at < $1', [now - STREAM_RETENTION_MS]);
    return deleted;
  }

  /** Counts the changes into their item collections before any row changes (a partition's first write since
   *  the migration, or since its local indexes changed, measures the rows as they stand), one partition at a
   *  time in (table, pk) order; the collection row's lock serializes writers of one partition. */
  private async measure(
    c: PoolClient,
    project: string,
    changes: readonly TableChange[],
    defOf: (table: string) => TableDef,
    indexed: boolean,
  ): Promise<void> {
    const groups = new Map<string, { table: string; pk: Buffer; delta: number; of: ItemChange[] }>();
    changes.forEach(({ table, change }) => {
      if (change.collection === undefined || change.row === undefined) return;
      const id = `${table}\n${change.key.pk.toString('hex')}`;
      const g = groups.get(id) ?? { table, pk: change.key.pk, delta: 0, of: [] };
      g.delta += change.collection;
      g.of.push(change);
      groups.set(id, g);
    });
    for (const [, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
      await c.query(
        `INSERT INTO table_collections (project, table_name, pk, bytes)
         SELECT $1, $2, $3,
           coalesce((SELECT sum(size) FROM table_items WHERE project = $1 AND table_name = $2 AND pk = $3), 0)
           + coalesce((SELECT sum(octet_length(item)) FROM table_index_items
               WHERE project = $1 AND table_name = $2 AND index_name = ANY($4::text[]) AND pk = $3), 0)
         ON CONFLICT (project, table_name, pk) DO NOTHING`,
        [project, g.table, g.pk, localIndexes(defOf(g.table))],
      );
      const res = await c.query<{ bytes: number }>(
        `UPDATE table_collections SET bytes = bytes + $4 WHERE project = $1 AND table_name = $2 AND pk = $3
         RETURNING bytes::double precision AS bytes`,
        [project, g.table, g.pk, g.delta],
      );
      const after = res.rows[0]!.bytes;
      try {
        checkCollection(g.table, g.delta, after, this.collectionLimit);
      } catch (err) {
        throw indexed
          ? atWrite(
              err,
              changes.findIndex((x) => g.of.includes(x.change) && (x.change.collection ?? 0) > 0),
            )
          : err;
      }
      for (const ch of g.of) ch.result.collectionBytes = after;
    }
  }
}

async function tableRow(q: Querier, project: string, name: string): Promise<StoredTable | undefined> {
  const res = await q.query<TableRow>(
    `SELECT ${TABLE_COLUMNS} FROM tables t WHERE t.project = $1 AND t.name = $2`,
    [project, name],
  );
  return res.rows[0] && toTable(res.rows[0]);
}

/** The key encoded by a definition, or undefined when it does not fit it (the slow path then says why). */
function encodedOrUndefined(def: TableDef, key: Item): EncodedKey | undefined {
  try {
    return writeKey(def, key);
  } catch {
    return undefined;
  }
}

/** A 64-bit advisory lock key for one item; schema-qualified, since advisory locks are database-wide. */
function lockKey(schema: string, project: string, table: string, k: EncodedKey): string {
  const h = createHash('sha256')
    .update(`${schema}\n${project}\n${table}\n`)
    .update(k.pk.toString('hex'))
    .update('\n')
    .update(k.sk.toString('hex'))
    .digest();
  return h.readBigInt64BE(0).toString();
}

/** Calls fn with every item of a table, in key order, a batch at a time. */
async function walk(
  c: PoolClient,
  project: string,
  table: string,
  fn: (rows: { pk: Buffer; sk: Buffer; item: Item }[]) => Promise<void>,
): Promise<void> {
  let last: { pk: Buffer; sk: Buffer } | undefined;
  for (;;) {
    const res = await c.query<{ pk: Buffer; sk: Buffer; item: string }>(
      `SELECT pk, sk, item FROM table_items WHERE project = $1 AND table_name = $2
         AND ($3::bytea IS NULL OR (pk, sk) > ($3::bytea, $4::bytea))
       ORDER BY pk, sk LIMIT $5`,
      [project, table, last?.pk ?? null, last?.sk ?? null, WALK_BATCH],
    );
    if (res.rows.length === 0) return;
    await fn(res.rows.map((r) => ({ pk: r.pk, sk: r.sk, item: JSON.parse(r.item) as Item })));
    last = res.rows[res.rows.length - 1];
  }
}

interface TableChange {
  table: string;
  change: ItemChange;
}

/** Writes planned changes with one statement per kind: rows, index entries, stream records, counts. */
async function runChanges(c: PoolClient, project: string, all: readonly TableChange[]): Promise<void> {
  const changes = all.filter((x) => x.change.row !== undefined);
  if (changes.length === 0) return;
  try {
    const gone = changes.filter((x) => x.change.row === null);
    if (gone.length > 0) {
      await c.query(
        `DELETE FROM table_items i USING unnest($2::text[], $3::bytea[], $4::bytea[]) AS d (table_name, pk, sk)
         WHERE i.project = $1 AND i.table_name = d.table_name AND i.pk = d.pk AND i.sk = d.sk`,
        [
          project,
          gone.map((x) => x.table),
          gone.map((x) => x.change.key.pk),
          gone.map((x) => x.change.key.sk),
        ],
      );
    }
    const put = changes.filter((x) => x.change.row);
    if (put.length > 0) {
      const rows = put.map((x) => x.change.row!);
      await c.query(
        `INSERT INTO table_items (project, table_name, pk, sk, seg, item, size, ttl)
         SELECT $1, * FROM unnest($2::text[], $3::bytea[], $4::bytea[], $5::smallint[], $6::text[], $7::integer[],
           $8::double precision[])
         ON CONFLICT (project, table_name, pk, sk) DO UPDATE
           SET item = excluded.item, size = excluded.size, ttl = excluded.ttl`,
        [
          project,
          put.map((x) => x.table),
          put.map((x) => x.change.key.pk),
          put.map((x) => x.change.key.sk),
          put.map((x) => x.change.key.seg),
          rows.map((r) => r.item),
          rows.map((r) => r.size),
          rows.map((r) => r.ttl),
        ],
      );
    }
    const oldEntries = changes.flatMap((x) =>
      x.change.oldEntries.map((e) => ({ e, table: x.table, key: x.change.key })),
    );
    if (oldEntries.length > 0) {
      await c.query(
        `DELETE FROM table_index_items x
         USING unnest($2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[])
           AS d (table_name, index_name, pk, sk, table_pk, table_sk)
         WHERE x.project = $1 AND x.table_name = d.table_name AND x.index_name = d.index_name AND x.pk = d.pk
           AND x.sk = d.sk AND x.table_pk = d.table_pk AND x.table_sk = d.table_sk`,
        [
          project,
          oldEntries.map((o) => o.table),
          oldEntries.map((o) => o.e.index),
          oldEntries.map((o) => o.e.pk),
          oldEntries.map((o) => o.e.sk),
          oldEntries.map((o) => o.key.pk),
          oldEntries.map((o) => o.key.sk),
        ],
      );
    }
    await putEntries(
      c,
      project,
      changes.flatMap((x) => x.change.newEntries.map((e) => ({ e, table: x.table, key: x.change.key }))),
    );
    await appendRecords(c, project, changes);
    await count(c, project, changes);
  } catch (err) {
    // btree entries are at most 2704 bytes: keys near both of DynamoDB's key size limits at once do not fit.
    if (pgCode(err) === '54000') {
      throw new TableInputError(
        'One or more parameter values were invalid: the key is too large for an index of this store',
      );
    }
    throw err;
  }
}

async function putEntries(
  c: PoolClient,
  project: string,
  entries: { e: IndexEntry; table: string; key: EncodedKey }[],
): Promise<void> {
  if (entries.length === 0) return;
  await c.query(
    `INSERT INTO table_index_items (project, table_name, index_name, pk, sk, table_pk, table_sk, seg, item)
     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::bytea[], $7::bytea[],
       $8::smallint[], $9::text[])
     ON CONFLICT (project, table_name, index_name, pk, sk, table_pk, table_sk) DO UPDATE SET item = excluded.item`,
    [
      project,
      entries.map((x) => x.table),
      entries.map((x) => x.e.index),
      entries.map((x) => x.e.pk),
      entries.map((x) => x.e.sk),
      entries.map((x) => x.key.pk),
      entries.map((x) => x.key.sk),
      entries.map((x) => x.e.seg),
      entries.map((x) => x.e.item),
    ],
  );
}

/** Takes the next sequence numbers from the table's row (held until commit, so records commit in order). */
async function appendRecords(c: PoolClient, project: string, changes: readonly TableChange[]): Promise<void> {
  const byTable = new Map<string, NonNullable<ItemChange['stream']>[]>();
  for (const x of changes) {
    if (x.change.stream) byTable.set(x.table, [...(byTable.get(x.table) ?? []), x.change.stream]);
  }
  for (const [table, records] of [...byTable].sort(([a], [b]) => (a < b ? -1 : 1))) {
    await c.query(
      `WITH s AS (
         UPDATE tables SET stream_seq = stream_seq + $3 WHERE project = $1 AND name = $2 RETURNING stream_seq)
       INSERT INTO table_streams (project, table_name, seq, event_name, keys, new_image, old_image, at,
         user_identity, size)
       SELECT $1, $2, s.stream_seq - $3 + r.ord, r.event_name, r.keys, r.new_image, r.old_image, r.at,
         r.user_identity, r.size
       FROM s, unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::double precision[], $9::text[],
         $10::integer[]) WITH ORDINALITY AS r (event_name, keys, new_image, old_image, at, user_identity, size, ord)`,
      [
        project,
        table,
        records.length,
        records.map((r) => r.eventName),
        records.map((r) => r.keys),
        records.map((r) => r.newImage),
        records.map((r) => r.oldImage),
        records.map((r) => r.at),
        records.map((r) => r.userIdentity),
        records.map((r) => r.size),
      ],
    );
  }
}

/** Adds the changes' counts to the shards of their partition keys, in (table, shard) order. */
async function count(c: PoolClient, project: string, changes: readonly TableChange[]): Promise<void> {
  const deltas = new Map<string, { table: string; shard: number; items: number; bytes: number }>();
  for (const { table, change } of changes) {
    if (change.items === 0 && change.bytes === 0) continue;
    const shard = change.key.seg % COUNT_SHARDS;
    const id = `${table}\n${String(shard).padStart(2, '0')}`;
    const d = deltas.get(id) ?? { table, shard, items: 0, bytes: 0 };
    d.items += change.items;
    d.bytes += change.bytes;
    deltas.set(id, d);
  }
  if (deltas.size === 0) return;
  const rows = [...deltas].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, d]) => d);
  await c.query(
    `INSERT INTO table_counts (project, table_name, shard, items, bytes)
     SELECT $1, * FROM unnest($2::text[], $3::smallint[], $4::bigint[], $5::bigint[])
     ON CONFLICT (project, table_name, shard) DO UPDATE
       SET items = table_counts.items + excluded.items, bytes = table_counts.bytes + excluded.bytes`,
    [
      project,
      rows.map((d) => d.table),
      rows.map((d) => d.shard),
      rows.map((d) => d.items),
      rows.map((d) => d.bytes),
    ],
  );
}

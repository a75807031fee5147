// TableStore on SQLite. An item write is one IMMEDIATE transaction (a savepoint of its group commit) on the one
// connection: it reads the item, decides, and writes the item, its index entries, its stream record and the
// table's counters before any other caller runs, so read-modify-writes never interleave. Writes resolve once
// the WAL is synced (an acknowledged PutItem survives power loss); definitions change with durably().
import type { Statement } from 'better-sqlite3';
import { ProjectNotFoundError, TableExistsError, TableNotFoundError } from '../errors.js';
import { toStreamRecord, toTable, type StreamRow, type TableRow } from '../rows.js';
import {
  MAX_PAGE,
  STREAM_RETENTION_MS,
  TTL_HORIZON_S,
  TTL_IDENTITY,
  atWrite,
  checkTableDef,
  checkCollection,
  ITEM_COLLECTION_LIMIT,
  collectionsChange,
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
  type ItemChange,
  type Sql,
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
import type { Item, TableDef } from '../../tables/types.js';
import type { SqliteDb } from './db.js';

type Ref = [project: string, table: string];

/** Items read per step when an updateTable walks a table (filling new indexes, recomputing TTLs). */
const WALK_BATCH = 1000;

export class SqliteTableStore implements TableStore {
  private readonly st: ReturnType<typeof prepare>;
  /** Query and Scan statements by their text: a handful of shapes (index or not, bounds, direction). */
  private readonly ranges = new Map<string, Statement<unknown[], string>>();
  /** Parsed definitions by project and table. Only this process writes the file (the data dir lock), and
   *  every definition change goes through createTable, updateTable or deleteTable here, which drop the
   *  entry: so an entry is always current, and an item request reads no table row. */
  private readonly defs = new Map<string, TableState>();

  constructor(
    private readonly s: SqliteDb,
    private readonly collectionLimit = ITEM_COLLECTION_LIMIT,
  ) {
    this.st = prepare(s);
  }

  async createTable(project: string, def: TableDef, service: string | null): Promise<StoredTable> {
    this.s.assertOpen();
    checkTableDef(def);
    const now = this.s.clock.now();
    this.forget(project, def.name);
    return this.s.durably(() =>
      this.s.transaction(() => {
        if (!this.st.project.get(project)) throw new ProjectNotFoundError(project);
        if (this.st.getTable.get(project, def.name)) throw new TableExistsError(project, def.name);
        const label = def.stream ? streamLabel(now) : null;
        this.st.insertTable.run(project, def.name, service, tableDefText(def), now, label);
        return toTable(this.st.getTable.get(project, def.name)!);
      }),
    );
  }

  async getTable(project: string, name: string): Promise<StoredTable | undefined> {
    this.s.assertOpen();
    const row = this.st.getTable.get(project, name);
    return row && toTable(row);
  }

  async definition(project: string, name: string): Promise<TableDef | undefined> {
    this.s.assertOpen();
    try {
      return this.table(project, name).def;
    } catch (err) {
      if (err instanceof TableNotFoundError) return undefined;
      throw err;
    }
  }

  async listTables(project: string): Promise<StoredTable[]> {
    this.s.assertOpen();
    return this.st.listTables.all(project).map(toTable);
  }

  async updateTable(project: string, def: TableDef): Promise<StoredTable> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    this.forget(project, def.name);
    return this.s.durably(() =>
      this.s.transaction(() => {
        this.forget(project, def.name);
        const row = this.st.getTable.get(project, def.name);
        if (!row) throw new TableNotFoundError(project, def.name);
        const cur = toTable(row);
        // An index whose definition changed is dropped and filled again, like a removed and a new one.
        const { dropped, added, ttlChanged } = planTableUpdate(cur, def);
        for (const name of dropped) this.st.dropIndex.run(project, def.name, name);
        // Collections measured by other local indexes are measured again, partition by partition, as written.
        if (collectionsChange(cur, def, dropped, added)) {
          this.st.deleteCollections.run(project, def.name);
        }
        const { label, fresh } = nextStream(cur, def, now);
        if (fresh) this.st.deleteStream.run(project, def.name);
        this.st.updateTable.run(tableDefText(def), label, project, def.name);
        const next = tableDefOf(def);
        if (added.length > 0 || ttlChanged) {
          this.walk(project, def.name, (pk, sk, item) => {
            for (const e of indexEntries({ ...next, indexes: added }, item, true)) {
              this.st.putEntry.run(project, def.name, e.index, e.pk, e.sk, pk, sk, e.seg, e.item);
            }
            if (ttlChanged) this.st.setTtl.run(ttlOf(next, item), project, def.name, pk, sk);
          });
        }
        return toTable(this.st.getTable.get(project, def.name)!);
      }),
    );
  }

  /** Calls fn for every item of a table, in key order, a batch at a time (fn may write to the table). */
  private walk(project: string, table: string, fn: (pk: Buffer, sk: Buffer, item: Item) => void): void {
    let rows = this.st.walkFirst.all(project, table, WALK_BATCH);
    while (rows.length > 0) {
      for (const r of rows) fn(r.pk, r.sk, JSON.parse(r.item) as Item);
      const last = rows[rows.length - 1]!;
      rows = this.st.walkNext.all(project, table, last.pk, last.sk, WALK_BATCH);
    }
  }

  async deleteTable(project: string, name: string): Promise<boolean> {
    this.s.assertOpen();
    // Dependent rows go explicitly rather than by ON DELETE CASCADE, which needs foreign_keys on.
    this.forget(project, name);
    return this.s.durably(() =>
      this.s.transaction(() => {
        this.forget(project, name);
        this.st.deleteEntries.run(project, name);
        this.st.deleteItems.run(project, name);
        this.st.deleteStream.run(project, name);
        this.st.deleteCollections.run(project, name);
        return this.st.deleteTable.run(project, name).changes > 0;
      }),
    );
  }

  async getItem(project: string, table: string, key: Item): Promise<Item | undefined> {
    this.s.assertOpen();
    const k = writeKey(this.table(project, table).def, key);
    const row = this.st.getItem.get(project, table, k.pk, k.sk);
    return row && (JSON.parse(row.item) as Item);
  }

  async write(project: string, w: ItemWrite): Promise<WriteResult> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.grouped(() => this.s.transaction(() => this.apply(project, [w], now, false)[0]!), true);
  }

  async transact(project: string, writes: readonly ItemWrite[]): Promise<WriteResult[]> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.grouped(() => this.s.transaction(() => this.apply(project, writes, now, true)), true);
  }

  /** Every decide sees the items as they were before any of the writes; then all of them are written. */
  private apply(project: string, writes: readonly ItemWrite[], now: number, indexed: boolean): WriteResult[] {
    const tables = new Map<string, TableState>();
    const stateOf = (name: string): TableState => {
      let t = tables.get(name);
      if (!t) tables.set(name, (t = this.table(project, name)));
      return t;
    };
    const keyed = keyedWrites(writes, (name) => stateOf(name).def, indexed);
    const changes = keyed.map((w, i): ItemChange => {
      try {
        const row = this.st.getItem.get(project, w.table, w.encoded.pk, w.encoded.sk);
        const current = row && (JSON.parse(row.item) as Item);
        return planWrite(stateOf(w.table), w.encoded, current, w.decide(current), now);
      } catch (err) {
        throw indexed ? atWrite(err, i) : err;
      }
    });
    changes.forEach((c, i) => {
      try {
        this.run(project, keyed[i]!.table, c, stateOf(keyed[i]!.table).def);
      } catch (err) {
        throw indexed ? atWrite(err, i) : err;
      }
    });
    return changes.map((c) => c.result);
  }

  /** Writes one planned change: the item's row, its index entries, its stream record, the counters. */
  private run(project: string, table: string, c: ItemChange, def: TableDef): void {
    if (c.row === undefined) return;
    const { pk, sk, seg } = c.key;
    if (c.collection !== undefined) {
      // Measured before the item's rows change: a partition's first write since the migration (or since its
      // local indexes changed) counts the rows as they stand.
      const before = this.st.collection.get(project, table, pk) ?? this.measure(project, table, pk, def);
      const after = before + c.collection;
      checkCollection(table, c.collection, after, this.collectionLimit);
      this.st.setCollection.run(project, table, pk, after);
      c.result.collectionBytes = after;
    }
    if (c.row === null) this.st.deleteItem.run(project, table, pk, sk);
    else this.st.putItem.run(project, table, pk, sk, seg, c.row.item, c.row.size, c.row.ttl);
    for (const e of c.oldEntries) this.st.deleteEntry.run(project, table, e.index, e.pk, e.sk, pk, sk);
    for (const e of c.newEntries)
      this.st.putEntry.run(project, table, e.index, e.pk, e.sk, pk, sk, e.seg, e.item);
    if (c.stream) {
      const { seq } = this.st.nextSeq.get(project, table)!;
      const r = c.stream;
      this.st.insertRecord.run(
        project,
        table,
        seq,
        r.eventName,
        r.keys,
        r.newImage,
        r.oldImage,
        r.at,
        r.userIdentity,
        r.size,
      );
    }
    if (c.items !== 0 || c.bytes !== 0) this.st.count.run(c.items, c.bytes, project, table);
  }

  /** An item collection's size from its rows as they stand (its first write since it was last measured). */
  private measure(project: string, table: string, pk: Buffer, def: TableDef): number {
    let bytes = this.st.itemBytes.get(project, table, pk)!;
    for (const ix of localIndexes(def)) bytes += this.st.entryBytes.get(project, table, ix, pk)!;
    return bytes;
  }

  async query(project: string, q: ItemQuery): Promise<ItemPage> {
    this.s.assertOpen();
    const { def } = this.table(project, q.table);
    const plan = planQuery(def, q);
    return toPage(def, plan.index, this.range(querySql(project, q.table, plan, () => '?')), plan.limit);
  }

  async scan(project: string, s: ItemScan): Promise<ItemPage> {
    this.s.assertOpen();
    const { def } = this.table(project, s.table);
    const plan = planScan(def, s);
    return toPage(def, plan.index, this.range(scanSql(project, s.table, plan, () => '?')), plan.limit);
  }

  private range(sql: Sql): string[] {
    let st = this.ranges.get(sql.text);
    // pluck: the item column's text itself, not a row object around it.
    if (!st) this.ranges.set(sql.text, (st = this.s.db.prepare<unknown[], string>(sql.text).pluck()));
    return st.all(...sql.params);
  }

  async streamRecords(
    project: string,
    table: string,
    afterSeq: number,
    limit: number,
  ): Promise<StreamRecord[]> {
    this.s.assertOpen();
    this.table(project, table);
    return this.st.records
      .all(project, table, afterSeq, queryLimit(limit, 1000, MAX_PAGE))
      .map(toStreamRecord);
  }

  async streamCursor(project: string, table: string, consumer: string): Promise<number | undefined> {
    this.s.assertOpen();
    return this.st.cursor.get(project, table, consumer)?.after_seq;
  }

  /** Grouped, not synced: a cursor a power cut sets back delivers those records again (at least once). */
  async setStreamCursor(project: string, table: string, consumer: string, afterSeq: number): Promise<void> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    await this.s.grouped(() => {
      this.table(project, table);
      this.st.setCursor.run(project, table, consumer, afterSeq, now);
    });
  }

  /** Grouped, not synced: an expiry a power cut loses (with its stream record) simply happens again. */
  async expire(nowSeconds: number, limit: number): Promise<number> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    const n = queryLimit(limit, MAX_PAGE, MAX_PAGE);
    return this.s.grouped(() =>
      this.s.transaction(() => {
        const tables = new Map<string, TableState>();
        const rows = this.st.expired.all(nowSeconds, nowSeconds - TTL_HORIZON_S, n);
        for (const r of rows) {
          const id = `${r.project}\n${r.table_name}`;
          let t = tables.get(id);
          if (!t) tables.set(id, (t = this.table(r.project, r.table_name)));
          const current = JSON.parse(r.item) as Item;
          this.run(r.project, r.table_name, planWrite(t, r, current, null, now, TTL_IDENTITY), t.def);
        }
        this.st.trimStreams.run(now - STREAM_RETENTION_MS);
        return rows.length;
      }),
    );
  }

  private table(project: string, name: string): TableState {
    const id = `${project}\n${name}`;
    let t = this.defs.get(id);
    if (t) return t;
    const row = this.st.getDef.get(project, name);
    if (!row) throw new TableNotFoundError(project, name);
    t = { def: frozenDef(row.def), streaming: row.stream_label !== null };
    this.defs.set(id, t);
    return t;
  }

  /** Drops a cached definition: before a change (and again inside its transaction, in case a read between
   *  the two cached the old one). */
  private forget(project: string, name: string): void {
    this.defs.delete(`${project}\n${name}`);
  }
}

interface KeyRow {
  pk: Buffer;
  sk: Buffer;
  item: string;
}

function prepare({ db }: SqliteDb) {
  return {
    project: db.prepare<[string], { name: string }>('SELECT name FROM projects WHERE name = ?'),
    getTable: db.prepare<Ref, TableRow>('SELECT * FROM tables WHERE project = ? AND name = ?'),
    getDef: db.prepare<Ref, { def: string; stream_label: string | null }>(
      'SELECT def, stream_label FROM tables WHERE project = ? AND name = ?',
    ),
    listTables: db.prepare<[string], TableRow>('SELECT * FROM tables WHERE project = ? ORDER BY name'),
    insertTable: db.prepare<[string, string, string | null, string, number, string | null]>(
      `INSERT INTO tables (project, name, service, def, created_at, stream_label) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    updateTable: db.prepare<[string, string | null, string, string]>(
      'UPDATE tables SET def = ?, stream_label = ? WHERE project = ? AND name = ?',
    ),
    dropIndex: db.prepare<[string, string, string]>(
      'DELETE FROM table_index_items WHERE project = ? AND table_name = ? AND index_name = ?',
    ),
    walkFirst: db.prepare<[string, string, number], KeyRow>(
      'SELECT pk, sk, item FROM table_items WHERE project = ? AND table_name = ? ORDER BY pk, sk LIMIT ?',
    ),
    walkNext: db.prepare<[string, string, Buffer, Buffer, number], KeyRow>(
      `SELECT pk, sk, item FROM table_items WHERE project = ? AND table_name = ? AND (pk, sk) > (?, ?)
       ORDER BY pk, sk LIMIT ?`,
    ),
    setTtl: db.prepare<[number | null, string, string, Buffer, Buffer]>(
      'UPDATE table_items SET ttl = ? WHERE project = ? AND table_name = ? AND pk = ? AND sk = ?',
    ),
    deleteEntries: db.prepare<Ref>('DELETE FROM table_index_items WHERE project = ? AND table_name = ?'),
    deleteItems: db.prepare<Ref>('DELETE FROM table_items WHERE project = ? AND table_name = ?'),
    deleteStream: db.prepare<Ref>('DELETE FROM table_streams WHERE project = ? AND table_name = ?'),
    deleteTable: db.prepare<Ref>('DELETE FROM tables WHERE project = ? AND name = ?'),
    getItem: db.prepare<[string, string, Buffer, Buffer], { item: string }>(
      'SELECT item FROM table_items WHERE project = ? AND table_name = ? AND pk = ? AND sk = ?',
    ),
    putItem: db.prepare<[string, string, Buffer, Buffer, number, string, number, number | null]>(
      `INSERT INTO table_items (project, table_name, pk, sk, seg, item, size, ttl) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (project, table_name, pk, sk) DO UPDATE
         SET item = excluded.item, size = excluded.size, ttl = excluded.ttl`,
    ),
    deleteItem: db.prepare<[string, string, Buffer, Buffer]>(
      'DELETE FROM table_items WHERE project = ? AND table_name = ? AND pk = ? AND sk = ?',
    ),
    putEntry: db.prepare<[string, string, string, Buffer, Buffer, Buffer, Buffer, number, string]>(
      `INSERT INTO table_index_items (project, table_name, index_name, pk, sk, table_pk, table_sk, seg, item)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (project, table_name, index_name, pk, sk, table_pk, table_sk) DO UPDATE SET item = excluded.item`,
    ),
    deleteEntry: db.prepare<[string, string, string, Buffer, Buffer, Buffer, Buffer]>(
      `DELETE FROM table_index_items
       WHERE project = ? AND table_name = ? AND index_name = ? AND pk = ? AND sk = ? AND table_pk = ? AND table_sk = ?`,
    ),
    nextSeq: db.prepare<Ref, { seq: number }>(
      'UPDATE tables SET stream_seq = stream_seq + 1 WHERE project = ? AND name = ? RETURNING stream_seq AS seq',
    ),
    insertRecord: db.prepare<
      [string, string, number, string, string, string | null, string | null, number, string | null, number]
    >(
      `INSERT INTO table_streams (project, table_name, seq, event_name, keys, new_image, old_image, at,
         user_identity, size)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    count: db.prepare<[number, number, string, string]>(
      `UPDATE tables SET item_count = item_count + ?, size_bytes = size_bytes + ? WHERE project = ? AND name = ?`,
    ),
    cursor: db.prepare<[string, string, string], { after_seq: number }>(
      'SELECT after_seq FROM stream_cursors WHERE project = ? AND table_name = ? AND consumer = ?',
    ),
    setCursor: db.prepare<[string, string, string, number, number]>(
      `INSERT INTO stream_cursors (project, table_name, consumer, after_seq, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (project, table_name, consumer) DO UPDATE SET after_seq = excluded.after_seq, updated_at = excluded.updated_at`,
    ),
    records: db.prepare<[string, string, number, number], StreamRow>(
      'SELECT * FROM table_streams WHERE project = ? AND table_name = ? AND seq > ? ORDER BY seq LIMIT ?',
    ),
    expired: db.prepare<[number, number, number], KeyRow & { project: string; table_name: string }>(
      `SELECT project, table_name, pk, sk, item FROM table_items
       WHERE ttl IS NOT NULL AND ttl <= ? AND ttl > ? ORDER BY ttl LIMIT ?`,
    ),
    trimStreams: db.prepare<[number]>('DELETE FROM table_streams WHERE at < ?'),
    collection: db
      .prepare<[string, string, Buffer], number>(
        'SELECT bytes FROM table_collections WHERE project = ? AND table_name = ? AND pk = ?',
      )
      .pluck(),
    // Items by their DynamoDB size, local index entries by their stored JSON's bytes (as ItemChange counts).
    itemBytes: db
      .prepare<[string, string, Buffer], number>(
        'SELECT coalesce(sum(size), 0) FROM table_items WHERE project = ? AND table_name = ? AND pk = ?',
      )
      .pluck(),
    entryBytes: db
      .prepare<[string, string, string, Buffer], number>(
        `SELECT coalesce(sum(length(CAST(item AS BLOB))), 0) FROM table_index_items
         WHERE project = ? AND table_name = ? AND index_name = ? AND pk = ?`,
      )
      .pluck(),
    setCollection: db.prepare<[string, string, Buffer, number]>(
      `INSERT INTO table_collections (project, table_name, pk, bytes) VALUES (?, ?, ?, ?)
       ON CONFLICT (project, table_name, pk) DO UPDATE SET bytes = excluded.bytes`,
    ),
    deleteCollections: db.prepare<Ref>('DELETE FROM table_collections WHERE project = ? AND table_name = ?'),
  };
}

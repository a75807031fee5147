// What both backends decide the same way for tables, so they answer alike: what an item write does to the
// item's row, its index entries, its stream and the table's counters; how a Query or Scan becomes a range of
// encoded keys; TTL and segment arithmetic. The backends only run the SQL.
import { ItemCollectionSizeLimitError, TableInputError } from './errors.js';
import { canonicalJson } from './canonical-json.js';
import {
  MAX_ITEM_SIZE,
  encodeKey,
  itemKey,
  itemSize,
  keyAttributes,
  prefixEnd,
  sameItem,
  type EncodedKey,
} from '../tables/keys.js';
import type { IndexDef, Item, KeySchema, TableDef } from '../tables/types.js';
import type {
  ItemPage,
  ItemQuery,
  ItemScan,
  ItemWrite,
  StreamRecord,
  WriteDecision,
  WriteResult,
} from './types.js';

/** DynamoDB's limit on an item collection of a table with a local secondary index: 10 GB. */
export const ITEM_COLLECTION_LIMIT = 10 * 1024 ** 3;

/** Query and Scan pages hold at most this many items (the API's 1 MB page usually ends them sooner). */
export const MAX_PAGE = 10_000;
/** Items hash to a segment slot 0..SEGMENTS-1 by partition key; a parallel Scan takes a range of slots. */
export const SEGMENTS = 1000;
/** DynamoDB's TotalSegments limit. */
export const MAX_TOTAL_SEGMENTS = 1_000_000;
/** TTL values more than five years in the past are not expiries (DynamoDB ignores them too). */
export const TTL_HORIZON_S = 5 * 365 * 24 * 3600;
/** Stream records are kept 24 hours, as DynamoDB Streams keeps them. */
export const STREAM_RETENTION_MS = 24 * 3600 * 1000;
/** Who a TTL deletion's stream record says deleted the item. */
export const TTL_IDENTITY = { type: 'Service', principalId: 'dynamodb.amazonaws.com' } as const;

/** The TableDef fields only: a caller may pass a StoredTable (with counts and project) as the definition. */
export function tableDefOf(d: TableDef): TableDef {
  return {
    name: d.name,
    key: d.key,
    indexes: d.indexes,
    stream: d.stream,
    ttlAttribute: d.ttlAttribute,
    billingMode: d.billingMode,
    provisionedThroughput: d.provisionedThroughput,
  };
}

export function tableDefText(d: TableDef): string {
  return canonicalJson(tableDefOf(d));
}

/** DynamoDB's StreamLabel: the stream's creation time, ISO 8601 without the zone. */
export function streamLabel(now: number): string {
  return new Date(now).toISOString().replace(/Z$/, '');
}

/**
 * The stream label after an updateTable, and whether it starts a new stream. A label names one stream: it is
 * kept while the stream stays on with the same view type, and gone when it is turned off; turning a stream
 * on, or changing its view type, starts a new one with a new label, whose records begin empty (`fresh`: the
 * backend drops the records of the stream before, which no reader can reach any more).
 */
export function nextStream(
  cur: { stream?: TableDef['stream']; streamLabel: string | null },
  next: TableDef,
  now: number,
): { label: string | null; fresh: boolean } {
  if (!next.stream) return { label: null, fresh: false };
  if (cur.stream && cur.streamLabel !== null && cur.stream.viewType === next.stream.viewType) {
    return { label: cur.streamLabel, fresh: false };
  }
  // Never the label of the stream before (two updates in one millisecond): its ARN must not name this one.
  const after = cur.streamLabel === null ? NaN : Date.parse(`${cur.streamLabel}Z`);
  return { label: streamLabel(Number.isNaN(after) ? now : Math.max(now, after + 1)), fresh: true };
}

/** Refuses definitions the store cannot keep apart (an index named twice). */
export function checkTableDef(d: TableDef): void {
  const names = new Set<string>();
  for (const ix of d.indexes) {
    if (names.has(ix.name)) {
      throw new TableInputError(
        `One or more parameter values were invalid: Duplicate index name: ${ix.name}`,
      );
    }
    names.add(ix.name);
  }
}

/** What an updateTable changes: indexes to empty (removed, or changed and so rebuilt), indexes to fill from
 *  the items, and whether the items' TTLs must be read again. The key schema is the table's for good. */
export function planTableUpdate(
  cur: TableDef,
  next: TableDef,
): { dropped: string[]; added: IndexDef[]; ttlChanged: boolean } {
  checkTableDef(next);
  if (canonicalJson(cur.key) !== canonicalJson(next.key)) {
    throw new TableInputError('Cannot update the key schema of a table');
  }
  const before = new Map(cur.indexes.map((ix) => [ix.name, canonicalJson(ix)]));
  const after = new Map(next.indexes.map((ix) => [ix.name, canonicalJson(ix)]));
  return {
    dropped: cur.indexes.filter((ix) => after.get(ix.name) !== before.get(ix.name)).map((ix) => ix.name),
    added: next.indexes.filter((ix) => before.get(ix.name) !== after.get(ix.name)),
    ttlChanged: cur.ttlAttribute !== next.ttlAttribute,
  };
}

/** The segment slot of an encoded partition key (FNV-1a): deterministic, so every node agrees. */
export function segmentOf(pk: Buffer): number {
  let h = 0x811c9dc5;
  for (const byte of pk) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h % SEGMENTS;
}

/** The slots [from, to) of a parallel Scan's segment; the segments of one total tile 0..SEGMENTS exactly. */
export function segmentRange(segment?: number, total?: number): [number, number] | undefined {
  if (segment === undefined && total === undefined) return undefined;
  if (total === undefined || !Number.isInteger(total) || total < 1 || total > MAX_TOTAL_SEGMENTS) {
    throw new TableInputError(
      `1 validation error detected: Value '${total}' at 'totalSegments' failed to satisfy constraint: Member must have value between 1 and ${MAX_TOTAL_SEGMENTS}`,
    );
  }
  if (segment === undefined || !Number.isInteger(segment) || segment < 0 || segment >= total) {
    throw new TableInputError(
      `The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: ${segment} is not less than TotalSegments: ${total}`,
    );
  }
  return [Math.floor((segment * SEGMENTS) / total), Math.floor(((segment + 1) * SEGMENTS) / total)];
}

/** The item's expiry (epoch seconds) when the table has TTL and the attribute is a number; else null. */
export function ttlOf(def: TableDef, item: Item): number | null {
  if (def.ttlAttribute === undefined) return null;
  const v = item[def.ttlAttribute];
  if (!v || !('N' in v)) return null;
  const n = Number(v.N);
  return Number.isFinite(n) ? n : null;
}

/** Sets `writeIndex` on what a transaction's write number `index` threw (the API names it as the reason). */
export function atWrite(err: unknown, index: number): unknown {
  if (err !== null && typeof err === 'object') {
    try {
      (err as { writeIndex?: number }).writeIndex = index;
    } catch {
      // A frozen error object keeps its shape; the caller still gets it.
    }
  }
  return err;
}

/** The key of a write, checked: exactly the table's key attributes, of their types. */
export function writeKey(def: TableDef, key: Item): EncodedKey {
  const names = [def.key.partition.name, ...(def.key.sort ? [def.key.sort.name] : [])];
  if (Object.keys(key).length !== names.length || !names.every((n) => key[n] !== undefined)) {
    throw new TableInputError('The provided key element does not match the schema');
  }
  try {
    return itemKey(def.key, key);
  } catch (err) {
    if (err instanceof TableInputError && /Type mismatch/.test(err.message)) {
      throw new TableInputError('The provided key element does not match the schema');
    }
    throw err;
  }
}

/** Refuses a transaction that names one item twice (DynamoDB refuses it the same way). */
export function checkDistinct(writes: readonly { table: string; key: EncodedKey }[]): void {
  const seen = new Set<string>();
  for (const w of writes) {
    const id = `${w.table}\n${w.key.pk.toString('hex')}\n${w.key.sk.toString('hex')}`;
    if (seen.has(id)) {
      throw new TableInputError('Transaction request cannot include multiple operations on one item');
    }
    seen.add(id);
  }
}

/** One index entry of an item: its position in the index and the projected item. */
export interface IndexEntry {
  index: string;
  pk: Buffer;
  sk: Buffer;
  seg: number;
  item: string;
}

/** The attributes an index keeps of an item: all, or the table's and the index's keys (plus INCLUDE's). */
export function projectItem(def: TableDef, ix: IndexDef, item: Item): Item {
  if (ix.projection.type === 'ALL') return item;
  const out: Item = { ...keyAttributes(def.key, item), ...keyAttributes(ix.key, item) };
  if (ix.projection.type === 'INCLUDE') {
    for (const name of ix.projection.attributes ?? []) if (item[name] !== undefined) out[name] = item[name]!;
  }
  return out;
}

/**
 * The item's entries in the table's indexes. An item lacking an index's key attribute is not in that index
 * (a sparse index). One that has them with a wrong type or an empty value is refused on write, as DynamoDB
 * refuses it; filling a new index (`lenient`) leaves such an item out instead, as DynamoDB's backfill does.
 */
export function indexEntries(def: TableDef, item: Item, lenient = false): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (const ix of def.indexes) {
    if (item[ix.key.partition.name] === undefined) continue;
    if (ix.key.sort && item[ix.key.sort.name] === undefined) continue;
    let key: EncodedKey;
    try {
      key = itemKey(ix.key, item, { index: ix.name });
    } catch (err) {
      if (lenient && err instanceof TableInputError) continue;
      throw err;
    }
    const projected = projectItem(def, ix, item);
    out.push({ index: ix.name, ...key, seg: segmentOf(key.pk), item: JSON.stringify(projected) });
  }
  return out;
}

/** A stream record as both backends store it (JSON text for the item parts). */
export interface NewStreamRecord {
  eventName: StreamRecord['eventName'];
  keys: string;
  newImage: string | null;
  oldImage: string | null;
  at: number;
  userIdentity: string | null;
  size: number;
}

/** What one item write does to the database; the backend runs it as it stands. */
export interface ItemChange {
  key: EncodedKey & { seg: number };
  /** The row to upsert, null to delete it, undefined to leave it. */
  row: { item: string; size: number; ttl: number | null } | null | undefined;
  /** Entries to delete (the old item's) and to insert (the new item's). */
  oldEntries: IndexEntry[];
  newEntries: IndexEntry[];
  stream: NewStreamRecord | undefined;
  /** Changes to the table's item count and total size. */
  items: number;
  bytes: number;
  /** On a table with a local secondary index: what the write adds to its item collection (negative: takes
   *  away), counting the item's size and the byte length of each local index entry's stored JSON. */
  collection: number | undefined;
  result: WriteResult;
}

export interface TableState {
  def: TableDef;
  /** Whether the table records a stream (it has a label). */
  streaming: boolean;
}

/**
 * Works out a write from the current item and what decide() made of it: checks the new item (its key must be
 * the write's, of the schema's types, and it must fit in 400 KB), its index entries, and the stream record
 * (MODIFY only when something changed). Throws TableInputError for an item the table refuses.
 */
export function planWrite(
  t: TableState,
  key: EncodedKey,
  current: Item | undefined,
  decision: WriteDecision,
  now: number,
  userIdentity?: StreamRecord['userIdentity'],
): ItemChange {
  const seg = segmentOf(key.pk);
  const base: ItemChange = {
    key: { ...key, seg },
    row: undefined,
    oldEntries: [],
    newEntries: [],
    stream: undefined,
    items: 0,
    bytes: 0,
    collection: undefined,
    result: { old: current, new: current },
  };
  if (decision === undefined) return base;
  const oldSize = current ? itemSize(current) : 0;
  const oldEntries = current ? indexEntries(t.def, current, true) : [];
  if (decision === null) {
    if (!current) return { ...base, result: { old: undefined, new: undefined } };
    return {
      ...base,
      row: null,
      oldEntries,
      stream: t.streaming ? streamRecord(t.def, 'REMOVE', current, undefined, now, userIdentity) : undefined,
      items: -1,
      bytes: -oldSize,
      collection: collectionDelta(t.def, 0, [], oldSize, oldEntries),
      result: { old: current, new: undefined },
    };
  }
  const itemKeyOf = itemKey(t.def.key, decision);
  if (!itemKeyOf.pk.equals(key.pk) || !itemKeyOf.sk.equals(key.sk)) {
    throw new TableInputError("The item's key is not the key it is written under");
  }
  const size = itemSize(decision);
  if (size > MAX_ITEM_SIZE) throw new TableInputError('Item size has exceeded the maximum allowed size');
  const changed = !current || !sameItem(current, decision);
  const newEntries = indexEntries(t.def, decision);
  return {
    ...base,
    row: { item: JSON.stringify(decision), size, ttl: ttlOf(t.def, decision) },
    oldEntries,
    newEntries,
    collection: collectionDelta(t.def, size, newEntries, oldSize, oldEntries),
    stream:
      t.streaming && changed
        ? streamRecord(t.def, current ? 'MODIFY' : 'INSERT', current, decision, now, userIdentity)
        : undefined,
    items: current ? 0 : 1,
    bytes: size - oldSize,
    result: { old: current, new: decision },
  };
}

/** The local index names of a definition (empty: the table has no item collections to measure). */
export function localIndexes(def: TableDef): string[] {
  return def.indexes.filter((ix) => ix.kind === 'local').map((ix) => ix.name);
}

/** Whether an updateTable changes how item collections are measured (a local index added, dropped or
 *  redefined): their sizes are then measured again, each at its partition's next write. */
export function collectionsChange(
  cur: TableDef,
  next: TableDef,
  dropped: string[],
  added: IndexDef[],
): boolean {
  const local = new Set([...localIndexes(cur), ...localIndexes(next)]);
  return [...dropped, ...added.map((ix) => ix.name)].some((n) => local.has(n));
}

function collectionDelta(
  def: TableDef,
  size: number,
  entries: IndexEntry[],
  oldSize: number,
  oldEntries: IndexEntry[],
): number | undefined {
  const local = localIndexes(def);
  if (local.length === 0) return undefined;
  const sum = (es: IndexEntry[]) =>
    es.reduce((n, e) => (local.includes(e.index) ? n + Buffer.byteLength(e.item) : n), 0);
  return size + sum(entries) - oldSize - sum(oldEntries);
}

/** The write's new collection size checked against the limit: only growth is refused, so an item collection
 *  over the limit (the limit lowered) can still shrink. */
export function checkCollection(table: string, delta: number, after: number, limit: number): void {
  if (delta > 0 && after > limit) throw new ItemCollectionSizeLimitError(table, limit);
}

function streamRecord(
  def: TableDef,
  eventName: StreamRecord['eventName'],
  old: Item | undefined,
  next: Item | undefined,
  at: number,
  userIdentity: StreamRecord['userIdentity'],
): NewStreamRecord {
  const keys = keyAttributes(def.key, (next ?? old)!);
  const view = def.stream?.viewType ?? 'KEYS_ONLY';
  const newImage = next && (view === 'NEW_IMAGE' || view === 'NEW_AND_OLD_IMAGES') ? next : undefined;
  const oldImage = old && (view === 'OLD_IMAGE' || view === 'NEW_AND_OLD_IMAGES') ? old : undefined;
  return {
    eventName,
    keys: JSON.stringify(keys),
    newImage: newImage ? JSON.stringify(newImage) : null,
    oldImage: oldImage ? JSON.stringify(oldImage) : null,
    at,
    userIdentity: userIdentity ? JSON.stringify(userIdentity) : null,
    size: itemSize(keys) + (newImage ? itemSize(newImage) : 0) + (oldImage ? itemSize(oldImage) : 0),
  };
}

/** A bound of a key range: the encoded value and whether it is in the range. */
export interface Bound {
  value: Buffer;
  inclusive: boolean;
}

/** A Query as a range of one partition of the table or an index. */
export interface QueryPlan {
  /** The index queried, or undefined for the table. */
  index: IndexDef | undefined;
  pk: Buffer;
  lower: Bound | undefined;
  upper: Bound | undefined;
  /** Continue strictly past this position in the order read: [sk] on the table, [sk, table_pk, table_sk]
   *  on an index (its entries with equal keys are in table key order). */
  after: Buffer[] | undefined;
  forward: boolean;
  /** Rows to read: one more than the page, so a page knows whether more follow. */
  limit: number;
}

/** A Scan as a walk of the table's (or an index's) key order, within a segment's slots. */
export interface ScanPlan {
  index: IndexDef | undefined;
  segments: [number, number] | undefined;
  /** [pk, sk] on the table, [pk, sk, table_pk, table_sk] on an index. */
  after: Buffer[] | undefined;
  limit: number;
}

export function pageLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return MAX_PAGE;
  return Math.min(MAX_PAGE, Math.max(1, Math.floor(limit)));
}

function indexOf(def: TableDef, name: string | undefined): IndexDef | undefined {
  if (name === undefined) return undefined;
  const ix = def.indexes.find((i) => i.name === name);
  if (!ix) throw new TableInputError(`The table does not have the specified index: ${name}`);
  return ix;
}

export function planQuery(def: TableDef, q: ItemQuery): QueryPlan {
  const index = indexOf(def, q.index);
  const schema: KeySchema = index?.key ?? def.key;
  const pk = encodeKey(q.partition, schema.partition.type);
  let lower: Bound | undefined;
  let upper: Bound | undefined;
  if (q.sort) {
    const sort = schema.sort;
    if (!sort) throw new TableInputError('Query key condition not supported');
    const c = q.sort;
    if (c.op === 'between') {
      const low = encodeKey(c.low, sort.type);
      const high = encodeKey(c.high, sort.type);
      if (Buffer.compare(low, high) > 0) {
        throw new TableInputError(
          'Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound',
        );
      }
      lower = { value: low, inclusive: true };
      upper = { value: high, inclusive: true };
    } else if (c.op === 'begins_with') {
      if (sort.type === 'N') {
        throw new TableInputError(
          'Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N',
        );
      }
      // S and B encode as their own bytes, so a prefix of the value is a prefix of the encoding.
      const prefix = encodeKey(c.prefix, sort.type);
      const end = prefixEnd(prefix);
      lower = { value: prefix, inclusive: true };
      upper = end && { value: end, inclusive: false };
    } else {
      const v = encodeKey(c.value, sort.type);
      if (c.op === '=' || c.op === '>=' || c.op === '>') lower = { value: v, inclusive: c.op !== '>' };
      if (c.op === '=' || c.op === '<=' || c.op === '<') upper = { value: v, inclusive: c.op !== '<' };
    }
  }
  let after: Buffer[] | undefined;
  if (q.exclusiveStartKey) {
    const start = startKey(def, index, q.exclusiveStartKey);
    if (!start.pk.equals(pk)) throw new TableInputError('The provided starting key is invalid');
    after = start.position.slice(1);
  }
  return { index, pk, lower, upper, after, forward: q.forward !== false, limit: pageLimit(q.limit) + 1 };
}

export function planScan(def: TableDef, s: ItemScan): ScanPlan {
  const index = indexOf(def, s.index);
  return {
    index,
    segments: segmentRange(s.segment, s.totalSegments),
    after: s.exclusiveStartKey && startKey(def, index, s.exclusiveStartKey).position,
    limit: pageLimit(s.limit) + 1,
  };
}

/** Where an exclusiveStartKey points: [pk, sk] (table) or [pk, sk, table_pk, table_sk] (index). */
function startKey(def: TableDef, index: IndexDef | undefined, esk: Item): { pk: Buffer; position: Buffer[] } {
  try {
    const table = itemKey(def.key, esk);
    if (!index) return { pk: table.pk, position: [table.pk, table.sk] };
    const ix = itemKey(index.key, esk, { index: index.name });
    return { pk: ix.pk, position: [ix.pk, ix.sk, table.pk, table.sk] };
  } catch (err) {
    if (!(err instanceof TableInputError)) throw err;
    throw new TableInputError(
      'The provided starting key is invalid: The provided key element does not match the schema',
    );
  }
}

/** A page from the rows read (their stored JSON; one more than asked for when more follow), with the key to
 *  continue from. Only the last item is parsed here: a Query answered as it is stored never parses the rest. */
export function toPage(def: TableDef, index: IndexDef | undefined, texts: string[], limit: number): ItemPage {
  const page = texts.length < limit ? texts : texts.slice(0, limit - 1);
  let items: Item[] | undefined;
  const out: ItemPage = {
    texts: page,
    get items() {
      return (items ??= page.map((t) => JSON.parse(t) as Item));
    },
  };
  if (page.length < texts.length) {
    const last = JSON.parse(page[page.length - 1]!) as Item;
    out.lastKey = { ...keyAttributes(def.key, last), ...(index ? keyAttributes(index.key, last) : {}) };
  }
  return out;
}

/** Parsed table definitions are shared by every request that reads them, so none may change one. */
export function frozenDef(text: string): TableDef {
  return deepFreeze(JSON.parse(text) as TableDef);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** The writes with their encoded keys, checked against their tables and (a transaction's) each other;
 *  `indexed`: what one write throws carries its writeIndex. */
export function keyedWrites<W extends ItemWrite>(
  writes: readonly W[],
  defOf: (table: string) => TableDef,
  indexed: boolean,
): (W & { encoded: EncodedKey })[] {
  const out = writes.map((w, i) => {
    try {
      return { ...w, encoded: writeKey(defOf(w.table), w.key) };
    } catch (err) {
      throw indexed ? atWrite(err, i) : err;
    }
  });
  checkDistinct(out.map((w) => ({ table: w.table, key: w.encoded })));
  return out;
}

/** SQL text and its parameters; `mark(n)` writes the n-th placeholder (SQLite "?", PostgreSQL "$n"). */
export interface Sql {
  text: string;
  params: unknown[];
}

type Mark = (n: number) => string;

/**
 * A Query as one range of the primary key index of table_items or table_index_items: equality on every
 * column up to pk, then bounds on sk, then (for a page after the first) a row-value bound on the rest of
 * the key, read in index order (backward for a reverse query), so the database never sorts or filters.
 */
export function querySql(project: string, table: string, p: QueryPlan, mark: Mark): Sql {
  const params: unknown[] = [];
  const bind = (v: unknown) => mark(params.push(v));
  const where = [`project = ${bind(project)}`, `table_name = ${bind(table)}`];
  if (p.index) where.push(`index_name = ${bind(p.index.name)}`);
  where.push(`pk = ${bind(p.pk)}`);
  if (p.lower) where.push(`sk ${p.lower.inclusive ? '>=' : '>'} ${bind(p.lower.value)}`);
  if (p.upper) where.push(`sk ${p.upper.inclusive ? '<=' : '<'} ${bind(p.upper.value)}`);
  const cols = p.index ? ['sk', 'table_pk', 'table_sk'] : ['sk'];
  if (p.after) where.push(rowBound(cols, p.forward ? '>' : '<', p.after, bind));
  const dir = p.forward ? '' : ' DESC';
  return {
    text: `SELECT item FROM ${p.index ? 'table_index_items' : 'table_items'} WHERE ${where.join(' AND ')}
      ORDER BY ${cols.map((c) => c + dir).join(', ')} LIMIT ${bind(p.limit)}`,
    params,
  };
}

/** A Scan page: the table's (or index's) primary key order from a position, within a segment's slots. */
export function scanSql(project: string, table: string, p: ScanPlan, mark: Mark): Sql {
  const params: unknown[] = [];
  const bind = (v: unknown) => mark(params.push(v));
  const where = [`project = ${bind(project)}`, `table_name = ${bind(table)}`];
  if (p.index) where.push(`index_name = ${bind(p.index.name)}`);
  const cols = p.index ? ['pk', 'sk', 'table_pk', 'table_sk'] : ['pk', 'sk'];
  if (p.after) where.push(rowBound(cols, '>', p.after, bind));
  if (p.segments) where.push(`seg >= ${bind(p.segments[0])} AND seg < ${bind(p.segments[1])}`);
  return {
    text: `SELECT item FROM ${p.index ? 'table_index_items' : 'table_items'} WHERE ${where.join(' AND ')}
      ORDER BY ${cols.join(', ')} LIMIT ${bind(p.limit)}`,
    params,
  };
}

function rowBound(cols: string[], op: '>' | '<', values: Buffer[], bind: (v: unknown) => string): string {
  if (cols.length === 1) return `${cols[0]} ${op} ${bind(values[0])}`;
  return `(${cols.join(', ')}) ${op} (${values.map(bind).join(', ')})`;
}

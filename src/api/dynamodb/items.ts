// Item operations: PutItem, GetItem, DeleteItem, UpdateItem, Query, Scan, the batch and transaction
// operations. Expressions are parsed and evaluated by src/tables/expr (through ./expressions.ts); the store
// does the read-modify-write atomically, so a condition is checked against the item as it is written.
import { createHash } from 'node:crypto';
import type { ItemPage, ItemWrite, TableStore, WriteResult } from '../../store/types.js';
import type { AttributeValue, IndexDef, Item, KeySchema, TableDef } from '../../tables/types.js';
import { normalizeValue, setOwn } from '../../tables/values.js';
import { ApiError } from '../errors.js';
import { checkItem, compileFor } from './expressions.js';
import { JsonText, conditionFailed, constraint, notFound, validation } from './protocol.js';
import { tableDefinition, tableName, type TableOpsDeps } from './tables.js';

export interface ItemOpsDeps extends TableOpsDeps {
  store: { tables: TableStore };
  clock?: { now(): number };
}

type Input = Record<string, unknown>;
type Op = (project: string, input: Input) => Promise<unknown>;

/** DynamoDB's page: a Query or Scan stops once it has read 1 MB. */
export const PAGE_BYTES = 1024 * 1024;
const TOKEN_WINDOW_MS = 10 * 60_000;

export function itemOperations(d: ItemOpsDeps): Record<string, Op> {
  const tokens = new Map<string, { hash: string; at: number; answer: unknown }>();
  return {
    PutItem: (p, i) => putItem(d, p, i),
    GetItem: (p, i) => getItem(d, p, i),
    DeleteItem: (p, i) => deleteItem(d, p, i),
    UpdateItem: (p, i) => updateItem(d, p, i),
    Query: (p, i) => query(d, p, i),
    Scan: (p, i) => scan(d, p, i),
    BatchGetItem: (p, i) => batchGet(d, p, i),
    BatchWriteItem: (p, i) => batchWrite(d, p, i),
    TransactGetItems: (p, i) => transactGet(d, p, i),
    TransactWriteItems: (p, i) => transactWrite(d, p, i, tokens),
  };
}

// --- single items ---

async function putItem(d: ItemOpsDeps, project: string, input: Input): Promise<unknown> {
  const t = await tableDefinition(d, project, tableName(input));
  const item = input['Item'];
  checkItem(item, 'item');
  const key = keyOf(t, item as Item, 'put');
  const cond = compileFor('PutItem', input, t).condition;
  const rv = returnValues(input, ['NONE', 'ALL_OLD']);
  const metrics = wantsMetrics(input);
  const r = await write(d, project, {
    table: t.name,
    key,
    decide: (cur) => {
      if (cond && !cond(cur)) throw conditionFailed(failedItem(input, cur));
      return item as Item;
    },
  });
  return withCapacity(input, t, {
    ...(rv === 'ALL_OLD' && r.old ? { Attributes: r.old } : {}),
    ...collectionMetrics(metrics, t, key, r),
  });
}

async function getItem(d: ItemOpsDeps, project: string, input: Input): Promise<unknown> {
  const t = await tableDefinition(d, project, tableName(input));
  const key = keyOf(t, input['Key'], 'get');
  const proj = compileFor('GetItem', input, t).projection;
  const item = await d.store.tables.getItem(project, t.name, key);
  return withCapacity(input, t, item ? { Item: proj ? proj(item) : item } : {});
}

async function deleteItem(d: ItemOpsDeps, project: string, input: Input): Promise<unknown> {
  const t = await tableDefinition(d, project, tableName(input));
  const key = keyOf(t, input['Key'], 'get');
  const cond = compileFor('DeleteItem', input, t).condition;
  const rv = returnValues(input, ['NONE', 'ALL_OLD']);
  const metrics = wantsMetrics(input);
  const r = await write(d, project, {
    table: t.name,
    key,
    decide: (cur) => {
      if (cond && !cond(cur)) throw conditionFailed(failedItem(input, cur));
      return cur ? null : undefined;
    },
  });
  return withCapacity(input, t, {
    ...(rv === 'ALL_OLD' && r.old ? { Attributes: r.old } : {}),
    ...collectionMetrics(metrics, t, key, r),
  });
}

async function updateItem(d: ItemOpsDeps, project: string, input: Input): Promise<unknown> {
  const t = await tableDefinition(d, project, tableName(input));
  const key = keyOf(t, input['Key'], 'get');
  const { update, condition: cond } = compileFor('UpdateItem', input, t);
  const rv = returnValues(input, ['NONE', 'ALL_OLD', 'UPDATED_OLD', 'ALL_NEW', 'UPDATED_NEW']);
  const metrics = wantsMetrics(input);
  const r = await write(d, project, {
    table: t.name,
    key,
    decide: (cur) => {
      if (cond && !cond(cur)) throw conditionFailed(failedItem(input, cur));
      const base: Item = cur ?? { ...key };
      return update ? { ...update.apply(base), ...key } : base;
    },
  });
  let attrs: Item | undefined;
  if (rv === 'ALL_OLD') attrs = r.old;
  else if (rv === 'ALL_NEW') attrs = r.new;
  else if (rv === 'UPDATED_OLD' || rv === 'UPDATED_NEW') {
    const changed = update?.paths ?? [];
    attrs = pick(rv === 'UPDATED_OLD' ? r.old : r.new, changed);
  }
  return withCapacity(input, t, {
    ...(attrs && Object.keys(attrs).length > 0 ? { Attributes: attrs } : {}),
    ...collectionMetrics(metrics, t, key, r),
  });
}

// --- reads of many items ---

async function query(d: ItemOpsDeps, project: string, input: Input): Promise<unknown> {
  const t = await tableDefinition(d, project, tableName(input));
  const index = indexOf(t, input['IndexName']);
  if (index?.kind === 'global' && input['ConsistentRead'] === true) {
    throw validation('Consistent reads are not supported on global secondary indexes');
  }
  const c = compileFor('Query', input, t, index);
  if (!c.key)
    throw validation(
      'Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.',
    );
  const kc = c.key;
  const filter = c.filter;
  const { proj, count } = selection(input, c.projection, index);
  const limit = limitOf(input);
  const start = startKey(t, index, input['ExclusiveStartKey']);
  return readPages(
    input,
    t,
    limit,
    filter,
    proj,
    count,
    (n, after) =>
      d.store.tables.query(project, {
        table: t.name,
        ...(index ? { index: index.name } : {}),
        partition: kc.partition,
        ...(kc.sort ? { sort: kc.sort } : {}),
        forward: input['ScanIndexForward'] !== false,
        limit: n,
        ...(after ? { exclusiveStartKey: after } : {}),
      }),
    start,
    index,
  );
}

async function scan(d: ItemOpsDeps, project: string, input: Input): Promise<unknown> {
  const t = await tableDefinition(d, project, tableName(input));
  const index = indexOf(t, input['IndexName']);
  const c = compileFor('Scan', input, t, index);
  const filter = c.filter;
  const { proj, count } = selection(input, c.projection, index);
  const seg = input['Segment'];
  const total = input['TotalSegments'];
  if ((seg === undefined) !== (total === undefined)) {
    throw validation(
      seg === undefined
        ? 'The TotalSegments parameter is specified but the Segment parameter is not'
        : 'The Segment parameter is specified but the TotalSegments parameter is not',
    );
  }
  if (total !== undefined) {
    if (typeof total !== 'number' || !Number.isInteger(total) || total < 1 || total > 1_000_000) {
      throw constraint(total, 'totalSegments', 'Member must have value less than or equal to 1000000');
    }
    if (typeof seg !== 'number' || !Number.isInteger(seg) || seg < 0 || seg >= total) {
      throw validation(
        `The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: ${String(seg)} is not less than TotalSegments: ${total}`,
      );
    }
  }
  const limit = limitOf(input);
  const start = startKey(t, index, input['ExclusiveStartKey']);
  return readPages(
    input,
    t,
    limit,
    filter,
    proj,
    count,
    (n, after) =>
      d.store.tables.scan(project, {
        table: t.name,
        ...(index ? { index: index.name } : {}),
        ...(total !== undefined ? { segment: seg as number, totalSegments: total } : {}),
        limit: n,
        ...(after ? { exclusiveStartKey: after } : {}),
      }),
    start,
    index,
  );
}

/** Reads until Limit items were evaluated, the 1 MB page is full, or nothing is left; filters after reading
 *  (Count and ScannedCount as DynamoDB counts them). */
async function readPages(
  input: Input,
  t: TableDef,
  limit: number | undefined,
  filter: ((item: Item) => boolean) | undefined,
  proj: ((item: Item) => Item) | undefined,
  count: boolean,
  read: (n: number, after: Item | undefined) => Promise<ItemPage>,
  start: Item | undefined,
  index: IndexDef | undefined,
): Promise<unknown> {
  // The answer's items as JSON text: the stored text itself unless a projection reshapes them, so a plain
  // Query neither parses nor re-serializes its items (a filter parses them to evaluate it).
  const { kept, scanned, last } = await collectPages(
    t,
    index,
    limit,
    filter,
    read,
    start,
    PAGE_BYTES,
    (text, item) => (proj ? JSON.stringify(proj(item())) : text),
  );
  const rest = withCapacity(input, t, {
    Count: kept.length,
    ScannedCount: scanned,
    ...(last ? { LastEvaluatedKey: last } : {}),
  });
  if (count) return rest;
  return new JsonText(`{"Items":[${kept.join(',')}],${JSON.stringify(rest).slice(1)}`);
}

/** One page of a Query or Scan (PartiQL's SELECT too): what keep() made of the items that passed the filter,
 *  how many were read, their stored size, and where to continue when more may follow. */
export async function collectPages<T>(
  t: TableDef,
  index: IndexDef | undefined,
  limit: number | undefined,
  filter: ((item: Item) => boolean) | undefined,
  read: (n: number, after: Item | undefined) => Promise<ItemPage>,
  start: Item | undefined,
  /** What is left of the 1 MB page (a SELECT over several partitions shares one). */
  budget: number,
  /** The answer's form of an item, from its stored text or (parsed on demand) the item. */
  keep: (text: string, item: () => Item) => T,
): Promise<{ kept: T[]; scanned: number; bytes: number; last?: Item }> {
  const kept: T[] = [];
  let scanned = 0;
  let bytes = 0;
  let after = start;
  for (;;) {
    const want = limit === undefined ? 1000 : Math.min(1000, limit - scanned);
    const page = await read(want, after);
    for (let i = 0; i < page.texts.length; i++) {
      const text = page.texts[i]!;
      // page.items parses every text on first use: only touched when a filter, a projection or keep needs it.
      const item = (): Item => page.items[i]!;
      scanned++;
      bytes += Buffer.byteLength(text);
      if (!filter || filter(item())) kept.push(keep(text, item));
      const full = bytes >= budget || (limit !== undefined && scanned >= limit);
      if (full) {
        if (i < page.texts.length - 1 || page.lastKey) {
          return { kept, scanned, bytes, last: positionOf(t, index, JSON.parse(text) as Item) };
        }
        return { kept, scanned, bytes };
      }
    }
    if (!page.lastKey) return { kept, scanned, bytes };
    after = page.lastKey;
  }
}

// --- batches and transactions ---

async function batchGet(d: ItemOpsDeps, project: string, input: Input): Promise<unknown> {
  const req = input['RequestItems'];
  if (!req || typeof req !== 'object' || Object.keys(req).length === 0) {
    throw constraint(req, 'requestItems', 'Member must have length greater than or equal to 1');
  }
  const entries = Object.entries(req as Record<string, Input>);
  const total = entries.reduce(
    (n, [, r]) => n + (Array.isArray(r?.['Keys']) ? (r['Keys'] as unknown[]).length : 0),
    0,
  );
  if (total > 100) throw validation('Too many items requested for the BatchGetItem call');
  const responses: Record<string, Item[]> = {};
  for (const [name, r] of entries) {
    const t = await tableDefinition(d, project, name);
    const keys = r?.['Keys'];
    if (!Array.isArray(keys) || keys.length === 0)
      throw constraint(
        keys,
        `requestItems.${name}.member.keys`,
        'Member must have length greater than or equal to 1',
      );
    const proj = compileFor('BatchGetItem', r, t).projection;
    const seen = new Set<string>();
    responses[name] = [];
    for (const k of keys) {
      const key = keyOf(t, k, 'get');
      const id = JSON.stringify(key);
      if (seen.has(id)) throw validation('Provided list of item keys contains duplicates');
      seen.add(id);
      const item = await d.store.tables.getItem(project, t.name, key);
      if (item) responses[name]!.push(proj ? proj(item) : item);
    }
  }
  return { Responses: responses, UnprocessedKeys: {} };
}

async function batchWrite(d: ItemOpsDeps, project: string, input: Input): Promise<unknown> {
  const req = input['RequestItems'];
  if (!req || typeof req !== 'object' || Object.keys(req).length === 0) {
    throw constraint(req, 'requestItems', 'Member must have length greater than or equal to 1');
  }
  const writes: ItemWrite[] = [];
  for (const [name, list] of Object.entries(req as Record<string, unknown>)) {
    const t = await tableDefinition(d, project, name);
    if (!Array.isArray(list) || list.length === 0) {
      throw constraint(
        list,
        `requestItems.${name}.member`,
        'Member must have length greater than or equal to 1',
      );
    }
    for (const w of list as Input[]) {
      const put = w?.['PutRequest'] as Input | undefined;
      const del = w?.['DeleteRequest'] as Input | undefined;
      if ((put === undefined) === (del === undefined)) {
        throw validation(
          'Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes',
        );
      }
      if (put) {
        checkItem(put['Item'], 'item');
        const item = put['Item'] as Item;
        writes.push({ table: t.name, key: keyOf(t, item, 'put'), decide: () => item });
      } else {
        writes.push({
          table: t.name,
          key: keyOf(t, del!['Key'], 'get'),
          decide: (cur) => (cur ? null : undefined),
        });
      }
    }
  }
  if (writes.length > 25) {
    throw constraint(
      '[...]',
      'requestItems',
      'Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]',
    );
  }
  const ids = new Set<string>();
  for (const w of writes) {
    const id = `${w.table}\n${JSON.stringify(w.key)}`;
    if (ids.has(id)) throw validation('Provided list of item keys contains duplicates');
    ids.add(id);
  }
  // Each item is written on its own, as DynamoDB's BatchWriteItem is not a transaction; Nimbus never
  // throttles, so nothing is left unprocessed.
  for (const w of writes) await write(d, project, w);
  return { UnprocessedItems: {} };
}

async function transactGet(d: ItemOpsDeps, project: string, input: Input): Promise<unknown> {
  const list = input['TransactItems'];
  if (!Array.isArray(list) || list.length === 0 || list.length > 100) {
    throw constraint(list, 'transactItems', 'Member must have length less than or equal to 100');
  }
  const out: unknown[] = [];
  for (const e of list as Input[]) {
    const g = e?.['Get'] as Input | undefined;
    if (!g) throw validation('TransactItems can only contain Get');
    const t = await tableDefinition(d, project, tableName(g, 'transactItems.member.get.tableName'));
    const key = keyOf(t, g['Key'], 'get');
    const proj = compileFor('TransactGetItem', g, t).projection;
    const item = await d.store.tables.getItem(project, t.name, key);
    out.push(item ? { Item: proj ? proj(item) : item } : {});
  }
  return { Responses: out };
}

async function transactWrite(
  d: ItemOpsDeps,
  project: string,
  input: Input,
  tokens: Map<string, { hash: string; at: number; answer: unknown }>,
): Promise<unknown> {
  const list = input['TransactItems'];
  if (!Array.isArray(list) || list.length === 0 || list.length > 100) {
    throw constraint(list, 'transactItems', 'Member must have length less than or equal to 100');
  }
  const token = input['ClientRequestToken'];
  const now = d.clock?.now() ?? Date.now();
  const hash = createHash('sha256').update(JSON.stringify(list)).digest('hex');
  if (typeof token === 'string') {
    for (const [k, v] of tokens) if (now - v.at > TOKEN_WINDOW_MS) tokens.delete(k);
    const seen = tokens.get(`${project}\n${token}`);
    if (seen) {
      if (seen.hash !== hash) {
        throw new ApiError(
          400,
          'IdempotentParameterMismatchException',
          'The request uses the same client token as a previous, but non-identical request.',
        );
      }
      return seen.answer;
    }
  }
  const writes: ItemWrite[] = [];
  const failures: (Item | undefined | null)[] = [];
  for (const [i, e] of (list as Input[]).entries()) {
    const kinds = ['ConditionCheck', 'Put', 'Delete', 'Update'].filter((k) => e?.[k] !== undefined);
    if (kinds.length !== 1) {
      throw validation('TransactItems can only contain one of Check, Put, Update or Delete');
    }
    const kind = kinds[0]!;
    const op = e[kind] as Input;
    const t = await tableDefinition(
      d,
      project,
      tableName(op, `transactItems.${i + 1}.member.${kind.toLowerCase()}.tableName`),
    );
    const c = compileFor(
      kind === 'ConditionCheck'
        ? 'ConditionCheck'
        : kind === 'Put'
          ? 'PutItem'
          : kind === 'Delete'
            ? 'DeleteItem'
            : 'UpdateItem',
      op,
      t,
    );
    const cond = c.condition;
    const wantOld = op['ReturnValuesOnConditionCheckFailure'] === 'ALL_OLD';
    const fail = (cur: Item | undefined): never => {
      failures[i] = wantOld ? (cur ?? null) : null;
      throw conditionFailed();
    };
    if (kind === 'Put') {
      checkItem(op['Item'], 'item');
      const item = op['Item'] as Item;
      writes.push({
        table: t.name,
        key: keyOf(t, item, 'put'),
        decide: (cur) => (cond && !cond(cur) ? fail(cur) : item),
      });
    } else if (kind === 'Delete') {
      writes.push({
        table: t.name,
        key: keyOf(t, op['Key'], 'get'),
        decide: (cur) => (cond && !cond(cur) ? fail(cur) : cur ? null : undefined),
      });
    } else if (kind === 'Update') {
      const key = keyOf(t, op['Key'], 'get');
      const update = c.update;
      writes.push({
        table: t.name,
        key,
        decide: (cur) => {
          if (cond && !cond(cur)) return fail(cur);
          const base: Item = cur ?? { ...key };
          return update ? { ...update.apply(base), ...key } : base;
        },
      });
    } else {
      if (!cond) throw validation('The ConditionExpression parameter is required for ConditionCheck');
      writes.push({
        table: t.name,
        key: keyOf(t, op['Key'], 'get'),
        decide: (cur) => (cond(cur) ? undefined : fail(cur)),
      });
    }
  }
  try {
    await d.store.tables.transact(project, writes.map(normalized));
  } catch (err) {
    const at = (err as { writeIndex?: unknown }).writeIndex;
    if (err instanceof ApiError && err.code === 'ConditionalCheckFailedException' && typeof at === 'number') {
      throw cancelled(writes.length, at, failures[at]);
    }
    if ((err as { name?: string }).name === 'ItemCollectionSizeLimitError' && typeof at === 'number') {
      throw cancelled(writes.length, at, undefined, 'ItemCollectionSizeLimitExceeded');
    }
    throw storeError(err);
  }
  const result = {};
  if (typeof token === 'string') tokens.set(`${project}\n${token}`, { hash, at: now, answer: result });
  return result;
}

function cancelled(
  n: number,
  at: number,
  item: Item | undefined | null,
  code: 'ConditionalCheckFailed' | 'ItemCollectionSizeLimitExceeded' = 'ConditionalCheckFailed',
): ApiError {
  const reasons = Array.from({ length: n }, (_, i) =>
    i === at
      ? {
          Code: code,
          Message:
            code === 'ConditionalCheckFailed'
              ? 'The conditional request failed'
              : 'Item collection size limit exceeded',
          ...(item ? { Item: item } : {}),
        }
      : { Code: 'None' },
  );
  return new ApiError(
    400,
    'TransactionCanceledException',
    `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
    undefined,
    { CancellationReasons: reasons } as unknown as Record<string, string>,
  );
}

// --- helpers ---

/** One item's read-modify-write through the store, numbers normalized, refusals in DynamoDB's words. */
export async function write(d: ItemOpsDeps, project: string, w: ItemWrite): Promise<WriteResult> {
  try {
    return await d.store.tables.write(project, normalized(w));
  } catch (err) {
    throw storeError(err);
  }
}

/** Items are kept as DynamoDB keeps them: numbers in canonical form ("12.50" reads back as "12.5"). */
function normalized(w: ItemWrite): ItemWrite {
  return {
    ...w,
    decide: (cur) => {
      const next = w.decide(cur);
      return next ? normalizeItem(next) : next;
    },
  };
}

function normalizeItem(item: Item): Item {
  const out: Item = {};
  for (const [k, v] of Object.entries(item)) setOwn(out, k, normalizeValue(v));
  return out;
}

/** The store's refusals in DynamoDB's words; ApiErrors (a failed condition) pass as they are. */
function storeError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  const name = (err as { name?: string } | null)?.name;
  if (name === 'TableInputError') return validation((err as Error).message);
  if (name === 'TableNotFoundError') return notFound();
  if (name === 'ItemCollectionSizeLimitError') return collectionTooLarge();
  return err;
}

function collectionTooLarge(): ApiError {
  return new ApiError(400, 'ItemCollectionSizeLimitExceededException', 'Item collection size limit exceeded');
}

/** Whether the request asks for ItemCollectionMetrics (checked before anything is written). */
function wantsMetrics(input: Input): boolean {
  const rm = input['ReturnItemCollectionMetrics'];
  if (rm !== undefined && rm !== 'SIZE' && rm !== 'NONE') {
    throw constraint(rm, 'returnItemCollectionMetrics', 'Member must satisfy enum value set: [SIZE, NONE]');
  }
  return rm === 'SIZE';
}

/** ItemCollectionMetrics of a table with a local secondary index: the collection's partition key and
 *  DynamoDB's estimate of its size, a range of whole gigabytes. */
function collectionMetrics(want: boolean, t: TableDef, key: Item, r: WriteResult): Record<string, unknown> {
  if (!want || r.collectionBytes === undefined) return {};
  const gb = Math.floor(r.collectionBytes / 1024 ** 3);
  const pk = t.key.partition.name;
  return {
    ItemCollectionMetrics: { ItemCollectionKey: { [pk]: key[pk] }, SizeEstimateRangeGB: [gb, gb + 1] },
  };
}

function keyNames(t: TableDef): string[] {
  return [t.key.partition.name, ...(t.key.sort ? [t.key.sort.name] : [])];
}

/** The key attributes of an item (put) or a Key parameter (get), checked against the table's schema. */
export function keyOf(t: TableDef, raw: unknown, mode: 'put' | 'get'): Item {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw constraint(raw, mode === 'put' ? 'item' : 'key', 'Member must not be null');
  }
  if (mode === 'get') checkItem(raw, 'key');
  const item = raw as Item;
  const names = keyNames(t);
  if (mode === 'get' && Object.keys(item).length !== names.length) {
    throw validation('The provided key element does not match the schema');
  }
  const key: Item = {};
  for (const a of [t.key.partition, ...(t.key.sort ? [t.key.sort] : [])]) {
    const v = item[a.name];
    if (v === undefined) {
      throw validation(
        mode === 'put'
          ? `One or more parameter values were invalid: Missing the key ${a.name} in the item`
          : 'The provided key element does not match the schema',
      );
    }
    if (!(a.type in v)) {
      throw validation(
        mode === 'put'
          ? `One or more parameter values were invalid: Type mismatch for key ${a.name} expected: ${a.type} actual: ${Object.keys(v)[0]}`
          : 'The provided key element does not match the schema',
      );
    }
    if ((a.type === 'S' || a.type === 'B') && (v as { S?: string; B?: string })[a.type] === '') {
      throw validation(
        `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty ${a.type === 'S' ? 'string' : 'binary'} value. Key: ${a.name}`,
      );
    }
    key[a.name] = v;
  }
  return key;
}

export function indexOf(t: TableDef, name: unknown): IndexDef | undefined {
  if (name === undefined) return undefined;
  const ix = t.indexes.find((i) => i.name === name);
  if (!ix) throw validation(`The table does not have the specified index: ${String(name)}`);
  return ix;
}

export function limitOf(input: Input): number | undefined {
  const l = input['Limit'];
  if (l === undefined) return undefined;
  if (typeof l !== 'number' || !Number.isInteger(l) || l < 1) {
    throw constraint(l, 'limit', 'Member must have value greater than or equal to 1');
  }
  return l;
}

export function startKey(t: TableDef, index: IndexDef | undefined, raw: unknown): Item | undefined {
  if (raw === undefined) return undefined;
  checkItem(raw, 'exclusiveStartKey');
  const k = raw as Item;
  const need = new Set(keyNames(t));
  if (index) {
    need.add(index.key.partition.name);
    if (index.key.sort) need.add(index.key.sort.name);
  }
  for (const n of need) {
    if (!(n in k))
      throw validation(
        'The provided starting key is invalid: The provided key element does not match the schema',
      );
  }
  if (Object.keys(k).length !== need.size) {
    throw validation(
      'The provided starting key is invalid: The provided key element does not match the schema',
    );
  }
  return k;
}

/** Where a page stopped: the table's key, plus the index's when reading an index. */
function positionOf(t: TableDef, index: IndexDef | undefined, item: Item): Item {
  const out: Item = {};
  const schemas: KeySchema[] = [t.key, ...(index ? [index.key] : [])];
  for (const s of schemas) {
    for (const a of [s.partition, s.sort]) if (a && item[a.name] !== undefined) out[a.name] = item[a.name]!;
  }
  return out;
}

function selection(
  input: Input,
  proj: ((item: Item) => Item) | undefined,
  index: IndexDef | undefined,
): { proj: ((item: Item) => Item) | undefined; count: boolean } {
  const select = input['Select'];
  if (
    select !== undefined &&
    !['ALL_ATTRIBUTES', 'ALL_PROJECTED_ATTRIBUTES', 'SPECIFIC_ATTRIBUTES', 'COUNT'].includes(select as string)
  ) {
    throw constraint(
      select,
      'select',
      'Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]',
    );
  }
  if (select === 'COUNT' && proj) {
    throw validation('Cannot specify the AttributesToGet when choosing to get only the Count');
  }
  if (select === 'ALL_PROJECTED_ATTRIBUTES' && !index) {
    throw validation('ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName');
  }
  if (select === 'SPECIFIC_ATTRIBUTES' && !proj) {
    throw validation(
      'Must specify the AttributesToGet or the ProjectionExpression when choosing to get SPECIFIC_ATTRIBUTES',
    );
  }
  if (select === 'ALL_ATTRIBUTES' && proj) {
    throw validation('Cannot specify the ProjectionExpression when choosing to get ALL_ATTRIBUTES');
  }
  return { proj, count: select === 'COUNT' };
}

function returnValues(input: Input, allowed: string[]): string {
  const rv = input['ReturnValues'] ?? 'NONE';
  if (typeof rv !== 'string' || !allowed.includes(rv)) {
    throw validation(`Return values set to invalid value`);
  }
  const onFail = input['ReturnValuesOnConditionCheckFailure'];
  if (onFail !== undefined && onFail !== 'ALL_OLD' && onFail !== 'NONE') {
    throw constraint(
      onFail,
      'returnValuesOnConditionCheckFailure',
      'Member must satisfy enum value set: [ALL_OLD, NONE]',
    );
  }
  return rv;
}

function failedItem(input: Input, cur: Item | undefined): Item | undefined {
  return input['ReturnValuesOnConditionCheckFailure'] === 'ALL_OLD' ? cur : undefined;
}

export function pick(item: Item | undefined, paths: readonly string[]): Item | undefined {
  if (!item) return undefined;
  const out: Item = {};
  for (const p of paths) if (item[p] !== undefined) out[p] = item[p]!;
  return out;
}

function withCapacity(input: Input, t: TableDef, body: Record<string, unknown>): Record<string, unknown> {
  const rc = input['ReturnConsumedCapacity'];
  if (rc === 'TOTAL' || rc === 'INDEXES') body['ConsumedCapacity'] = { TableName: t.name, CapacityUnits: 1 };
  return body;
}

export type { AttributeValue };

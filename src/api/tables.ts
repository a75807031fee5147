// The control API's view of DynamoDB tables (/v1/tables/...), for `nimbus table`: list them, read items,
// drop one. Items are answered in DynamoDB's JSON, as the DynamoDB API gives them.
import type { TableStore } from '../store/types.js';
import type { AttributeValue, Item } from '../tables/types.js';
import { badRequest, notFound } from './errors.js';

export interface TableDeps {
  store: { tables: TableStore };
}

interface Req {
  principal: { project: string };
  params: Record<string, string>;
  url: URL;
}

export async function listTablesView(d: TableDeps, c: Req): Promise<unknown> {
  const tables = await d.store.tables.listTables(c.principal.project);
  return {
    tables: tables.map((t) => ({
      name: t.name,
      service: t.service,
      key: t.key,
      indexes: t.indexes.map((i) => ({ name: i.name, kind: i.kind, key: i.key })),
      stream: t.stream?.viewType ?? null,
      ttlAttribute: t.ttlAttribute ?? null,
      itemCount: t.itemCount,
      sizeBytes: t.sizeBytes,
      createdAt: t.createdAt,
    })),
  };
}

export async function scanItems(d: TableDeps, c: Req): Promise<unknown> {
  const t = await existing(d, c);
  const raw = c.url.searchParams.get('limit');
  const limit = raw === null ? 25 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw badRequest('query parameter limit must be a whole number from 1 to 1000', `got "${raw}"`);
  }
  const page = await d.store.tables.scan(c.principal.project, { table: t.name, limit });
  return { items: page.items, ...(page.lastKey ? { lastKey: page.lastKey } : {}) };
}

export async function getItemView(d: TableDeps, c: Req): Promise<unknown> {
  const t = await existing(d, c);
  const raw = c.url.searchParams.get('key');
  let given: unknown;
  try {
    given = JSON.parse(raw ?? '');
  } catch {
    throw badRequest('query parameter key must be JSON, e.g. {"id":"a1"}', `got ${JSON.stringify(raw)}`);
  }
  if (given === null || typeof given !== 'object' || Array.isArray(given)) {
    throw badRequest('the key must be a JSON object of the key attributes, e.g. {"id":"a1"}');
  }
  const key: Item = {};
  for (const a of [t.key.partition, ...(t.key.sort ? [t.key.sort] : [])]) {
    const v = (given as Record<string, unknown>)[a.name];
    if (v === undefined) {
      throw badRequest(
        `the key of table ${t.name} needs "${a.name}" (${a.type})`,
        `for example {"${a.name}": ${a.type === 'N' ? '1' : '"a1"'}}`,
      );
    }
    key[a.name] = asKeyValue(v, a.type);
  }
  const item = await d.store.tables.getItem(c.principal.project, t.name, key);
  if (!item) throw notFound(`item ${JSON.stringify(given)} of table ${t.name}`);
  return { item };
}

export async function dropTable(d: TableDeps, c: Req): Promise<unknown> {
  const t = await existing(d, c);
  await d.store.tables.deleteTable(c.principal.project, t.name);
  return { removed: t.name };
}

async function existing(d: TableDeps, c: Req) {
  const name = c.params['name']!;
  const t = await d.store.tables.getTable(c.principal.project, name);
  if (!t) throw notFound(`table ${name}`, 'list the tables with `nimbus table ls`');
  return t;
}

/** A key value as a person types it ("a1", 7) or as DynamoDB JSON ({"S": "a1"}). */
function asKeyValue(v: unknown, type: 'S' | 'N' | 'B'): AttributeValue {
  if (v !== null && typeof v === 'object' && type in (v as object)) return v as AttributeValue;
  if (type === 'N' && (typeof v === 'number' || typeof v === 'string')) return { N: String(v) };
  if (type === 'S' && typeof v === 'string') return { S: v };
  if (type === 'B' && typeof v === 'string') return { B: v };
  throw badRequest(`a ${type} key value must be ${type === 'N' ? 'a number' : 'a string'}`);
}

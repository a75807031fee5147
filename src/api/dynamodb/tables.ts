// Table operations: CreateTable, DescribeTable, ListTables, DeleteTable, UpdateTable and the TTL pair, with
// DynamoDB's validation and its TableDescription shape.
import type { StoredTable, TableStore } from '../../store/types.js';
import type {
  IndexDef,
  KeyAttribute,
  KeySchema,
  KeyType,
  Projection,
  StreamViewType,
  TableDef,
} from '../../tables/types.js';
import { constraint, inUse, notFound, validation } from './protocol.js';

export interface TableOpsDeps {
  store: { tables: TableStore };
  region: string;
  accountId: string;
}

const TABLE_NAME = /^[a-zA-Z0-9_.-]{3,255}$/;
const VIEW_TYPES: readonly StreamViewType[] = ['KEYS_ONLY', 'NEW_IMAGE', 'OLD_IMAGE', 'NEW_AND_OLD_IMAGES'];

type Input = Record<string, unknown>;

export function tableName(input: Input, field = 'tableName'): string {
  const name = input['TableName'];
  if (typeof name !== 'string') throw constraint(name, field, 'Member must not be null');
  if (!TABLE_NAME.test(name)) {
    throw constraint(
      name,
      field,
      name.length < 3 || name.length > 255
        ? 'Member must have length greater than or equal to 3'
        : 'Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+',
    );
  }
  return name;
}

/** The table, or DynamoDB's not-found answer. */
export async function existingTable(d: TableOpsDeps, project: string, name: string): Promise<StoredTable> {
  const t = await d.store.tables.getTable(project, name);
  if (!t) throw notFound('Requested resource not found');
  return t;
}

/** The definition item operations check a request against (no counts, so no SELECT of them). */
export async function tableDefinition(d: TableOpsDeps, project: string, name: string): Promise<TableDef> {
  const t = await d.store.tables.definition(project, name);
  if (!t) throw notFound('Requested resource not found');
  return t;
}

export async function createTable(d: TableOpsDeps, project: string, input: Input): Promise<unknown> {
  const def = parseTableDef(input);
  if (await d.store.tables.getTable(project, def.name)) throw inUse(`Table already exists: ${def.name}`);
  try {
    const t = await d.store.tables.createTable(project, def, null);
    return { TableDescription: describe(d, t) };
  } catch (err) {
    if ((err as { name?: string }).name === 'TableExistsError')
      throw inUse(`Table already exists: ${def.name}`);
    throw err;
  }
}

export async function describeTable(d: TableOpsDeps, project: string, input: Input): Promise<unknown> {
  const name = tableName(input);
  const t = await d.store.tables.getTable(project, name);
  if (!t) throw notFound(`Requested resource not found: Table: ${name} not found`);
  return { Table: describe(d, t) };
}

export async function listTables(d: TableOpsDeps, project: string, input: Input): Promise<unknown> {
  const limit = input['Limit'];
  if (
    limit !== undefined &&
    (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 100)
  ) {
    throw constraint(limit, 'limit', 'Member must have value less than or equal to 100');
  }
  const start = input['ExclusiveStartTableName'];
  const names = (await d.store.tables.listTables(project))
    .map((t) => t.name)
    .filter((n) => typeof start !== 'string' || n > start);
  const n = typeof limit === 'number' ? limit : 100;
  const page = names.slice(0, n);
  return {
    TableNames: page,
    ...(names.length > n ? { LastEvaluatedTableName: page[page.length - 1] } : {}),
  };
}

export async function deleteTable(d: TableOpsDeps, project: string, input: Input): Promise<unknown> {
  const name = tableName(input);
  const t = await d.store.tables.getTable(project, name);
  if (!t || !(await d.store.tables.deleteTable(project, name))) {
    throw notFound(`Requested resource not found: Table: ${name} not found`);
  }
  return { TableDescription: { ...describe(d, t), TableStatus: 'DELETING' } };
}

export async function updateTable(d: TableOpsDeps, project: string, input: Input): Promise<unknown> {
  const name = tableName(input);
  const t = await existingTable(d, project, name);
  const next: TableDef = { ...tableDefOf(t) };
  const types = attributeTypes(input, true);
  for (const a of [t.key.partition, t.key.sort, ...t.indexes.flatMap((i) => [i.key.partition, i.key.sort])]) {
    if (a && !types.has(a.name)) types.set(a.name, a.type);
  }
  if (input['BillingMode'] !== undefined) next.billingMode = billingMode(input['BillingMode']);
  if (input['ProvisionedThroughput'] !== undefined) {
    next.provisionedThroughput = throughput(input['ProvisionedThroughput'], 'provisionedThroughput');
  }
  const updates = input['GlobalSecondaryIndexUpdates'];
  if (updates !== undefined) {
    if (!Array.isArray(updates)) throw validation('GlobalSecondaryIndexUpdates must be a list');
    let indexes = [...next.indexes];
    for (const u of updates as Input[]) {
      if (u['Create']) {
        const ix = parseIndex(u['Create'] as Input, 'global', types, t.key);
        if (indexes.some((i) => i.name === ix.name)) {
          throw validation(`Attempting to create an index which already exists`);
        }
        indexes.push(ix);
      } else if (u['Delete']) {
        const ixName = (u['Delete'] as Input)['IndexName'];
        if (!indexes.some((i) => i.name === ixName && i.kind === 'global')) {
          throw notFound(`Requested resource not found`);
        }
        indexes = indexes.filter((i) => i.name !== ixName);
      } else if (u['Update']) {
        const ixName = (u['Update'] as Input)['IndexName'];
        if (!indexes.some((i) => i.name === ixName && i.kind === 'global')) throw notFound();
      } else {
        throw validation(
          'One or more parameter values were invalid: GlobalSecondaryIndexUpdate must have one of Create, Update or Delete',
        );
      }
    }
    next.indexes = indexes;
  }
  const spec = input['StreamSpecification'];
  if (spec !== undefined) {
    const s = streamSpec(spec);
    if (s && t.stream) throw validation(`Table already has an enabled stream: ${streamArn(d, t)}`);
    if (!s && !t.stream) throw validation('Table already has no stream enabled');
    if (s) next.stream = s;
    else delete next.stream;
  }
  const updated = await d.store.tables.updateTable(project, next);
  return { TableDescription: describe(d, updated) };
}

export async function updateTimeToLive(d: TableOpsDeps, project: string, input: Input): Promise<unknown> {
  const name = tableName(input);
  const t = await existingTable(d, project, name);
  const spec = input['TimeToLiveSpecification'] as Input | undefined;
  if (!spec || typeof spec !== 'object')
    throw constraint(spec, 'timeToLiveSpecification', 'Member must not be null');
  const attr = spec['AttributeName'];
  const enabled = spec['Enabled'];
  if (typeof attr !== 'string' || attr.length === 0) {
    throw constraint(attr, 'timeToLiveSpecification.attributeName', 'Member must not be null');
  }
  if (typeof enabled !== 'boolean')
    throw constraint(enabled, 'timeToLiveSpecification.enabled', 'Member must not be null');
  if (enabled && t.ttlAttribute !== undefined) throw validation('TimeToLive is already enabled');
  if (!enabled && t.ttlAttribute === undefined) throw validation('TimeToLive is already disabled');
  const next = tableDefOf(t);
  if (enabled) next.ttlAttribute = attr;
  else delete next.ttlAttribute;
  await d.store.tables.updateTable(project, next);
  return { TimeToLiveSpecification: { AttributeName: attr, Enabled: enabled } };
}

export async function describeTimeToLive(d: TableOpsDeps, project: string, input: Input): Promise<unknown> {
  const t = await existingTable(d, project, tableName(input));
  return {
    TimeToLiveDescription:
      t.ttlAttribute !== undefined
        ? { TimeToLiveStatus: 'ENABLED', AttributeName: t.ttlAttribute }
        : { TimeToLiveStatus: 'DISABLED' },
  };
}

/** CreateTable's input, checked as DynamoDB checks it. */
export function parseTableDef(input: Input): TableDef {
  const name = tableName(input);
  const types = attributeTypes(input, false);
  const key = keySchema(input['KeySchema'], types, 'keySchema');
  const indexes: IndexDef[] = [];
  for (const [field, kind] of [
    ['GlobalSecondaryIndexes', 'global'],
    ['LocalSecondaryIndexes', 'local'],
  ] as const) {
    const list = input[field];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0) {
      throw validation(`One or more parameter values were invalid: List of ${field} is empty`);
    }
    for (const raw of list as Input[]) indexes.push(parseIndex(raw, kind, types, key));
  }
  const names = new Set<string>();
  for (const ix of indexes) {
    if (names.has(ix.name))
      throw validation(`One or more parameter values were invalid: Duplicate index name: ${ix.name}`);
    names.add(ix.name);
  }
  // Every defined attribute must be used by a key, as DynamoDB insists.
  const used = new Set([
    key.partition.name,
    key.sort?.name,
    ...indexes.flatMap((i) => [i.key.partition.name, i.key.sort?.name]),
  ]);
  for (const a of types.keys()) {
    if (!used.has(a)) {
      throw validation(
        'One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions',
      );
    }
  }
  const mode = input['BillingMode'] === undefined ? 'PROVISIONED' : billingMode(input['BillingMode']);
  const pt = input['ProvisionedThroughput'];
  if (mode === 'PROVISIONED' && pt === undefined) {
    throw validation(
      'One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED',
    );
  }
  if (mode === 'PAY_PER_REQUEST' && pt !== undefined) {
    throw validation(
      'One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST',
    );
  }
  const stream =
    input['StreamSpecification'] === undefined ? undefined : streamSpec(input['StreamSpecification']);
  return {
    name,
    key,
    indexes,
    billingMode: mode,
    ...(pt !== undefined ? { provisionedThroughput: throughput(pt, 'provisionedThroughput') } : {}),
    ...(stream ? { stream } : {}),
  };
}

function attributeTypes(input: Input, optional: boolean): Map<string, KeyType> {
  const defs = input['AttributeDefinitions'];
  const out = new Map<string, KeyType>();
  if (defs === undefined && optional) return out;
  if (!Array.isArray(defs)) throw constraint(defs, 'attributeDefinitions', 'Member must not be null');
  for (const [i, raw] of (defs as Input[]).entries()) {
    const n = raw?.['AttributeName'];
    const t = raw?.['AttributeType'];
    if (typeof n !== 'string' || n.length === 0) {
      throw constraint(n, `attributeDefinitions.${i + 1}.member.attributeName`, 'Member must not be null');
    }
    if (t !== 'S' && t !== 'N' && t !== 'B') {
      throw constraint(
        t,
        `attributeDefinitions.${i + 1}.member.attributeType`,
        'Member must satisfy enum value set: [B, N, S]',
      );
    }
    if (out.has(n)) throw validation(`Cannot have two attributes with the same name: ${n}`);
    out.set(n, t);
  }
  return out;
}

function keySchema(raw: unknown, types: Map<string, KeyType>, field: string): KeySchema {
  if (!Array.isArray(raw) || raw.length === 0)
    throw constraint(raw, field, 'Member must have length greater than or equal to 1');
  if (raw.length > 2) throw constraint(raw, field, 'Member must have length less than or equal to 2');
  const attr = (e: Input, i: number): KeyAttribute & { keyType: string } => {
    const name = e?.['AttributeName'];
    const keyType = e?.['KeyType'];
    if (typeof name !== 'string')
      throw constraint(name, `${field}.${i + 1}.member.attributeName`, 'Member must not be null');
    if (keyType !== 'HASH' && keyType !== 'RANGE') {
      throw constraint(
        keyType,
        `${field}.${i + 1}.member.keyType`,
        'Member must satisfy enum value set: [HASH, RANGE]',
      );
    }
    const type = types.get(name);
    if (!type) {
      throw validation(
        `One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [${name}], AttributeDefinitions: [${[...types.keys()].join(', ')}]`,
      );
    }
    return { name, type, keyType };
  };
  const list = (raw as Input[]).map(attr);
  const hash = list.filter((a) => a.keyType === 'HASH');
  const range = list.filter((a) => a.keyType === 'RANGE');
  if (hash.length !== 1 || list[0]!.keyType !== 'HASH') {
    throw validation('Invalid KeySchema: The first KeySchemaElement is not a HASH key type');
  }
  if (range.length > 1) throw validation('Too many range keys');
  if (range[0] && range[0].name === hash[0]!.name) {
    throw validation('Both the Hash Key and the Range Key element in the KeySchema have the same name');
  }
  return {
    partition: { name: hash[0]!.name, type: hash[0]!.type },
    ...(range[0] ? { sort: { name: range[0].name, type: range[0].type } } : {}),
  };
}

function parseIndex(
  raw: Input,
  kind: 'global' | 'local',
  types: Map<string, KeyType>,
  table: KeySchema,
): IndexDef {
  const name = raw?.['IndexName'];
  if (typeof name !== 'string' || !TABLE_NAME.test(name)) {
    throw constraint(name, 'indexName', 'Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+');
  }
  const key = keySchema(raw['KeySchema'], types, 'keySchema');
  if (kind === 'local') {
    if (key.partition.name !== table.partition.name) {
      throw validation(
        `One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: ${name}. index hash key: ${key.partition.name}, table hash key: ${table.partition.name}`,
      );
    }
    if (!table.sort)
      throw validation(
        'One or more parameter values were invalid: Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex',
      );
    if (!key.sort)
      throw validation(
        `One or more parameter values were invalid: Index KeySchema: ${name} does not have a range key`,
      );
  }
  const p = raw['Projection'] as Input | undefined;
  const type = p?.['ProjectionType'];
  if (type !== 'ALL' && type !== 'KEYS_ONLY' && type !== 'INCLUDE') {
    throw constraint(
      type,
      'projection.projectionType',
      'Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]',
    );
  }
  const attrs = p?.['NonKeyAttributes'];
  if (type === 'INCLUDE' && (!Array.isArray(attrs) || attrs.length === 0)) {
    throw validation(
      'One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not specified',
    );
  }
  if (type !== 'INCLUDE' && attrs !== undefined) {
    throw validation(
      `One or more parameter values were invalid: ProjectionType is ${type}, but NonKeyAttributes is specified`,
    );
  }
  const projection: Projection = type === 'INCLUDE' ? { type, attributes: attrs as string[] } : { type };
  return { name, kind, key, projection };
}

function billingMode(v: unknown): TableDef['billingMode'] {
  if (v !== 'PROVISIONED' && v !== 'PAY_PER_REQUEST') {
    throw constraint(v, 'billingMode', 'Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]');
  }
  return v;
}

function throughput(v: unknown, field: string): NonNullable<TableDef['provisionedThroughput']> {
  const p = v as Input;
  const r = p?.['ReadCapacityUnits'];
  const w = p?.['WriteCapacityUnits'];
  if (typeof r !== 'number' || r < 1)
    throw constraint(r, `${field}.readCapacityUnits`, 'Member must have value greater than or equal to 1');
  if (typeof w !== 'number' || w < 1)
    throw constraint(w, `${field}.writeCapacityUnits`, 'Member must have value greater than or equal to 1');
  return { readCapacityUnits: r, writeCapacityUnits: w };
}

function streamSpec(v: unknown): TableDef['stream'] {
  const s = v as Input;
  const enabled = s?.['StreamEnabled'];
  if (typeof enabled !== 'boolean')
    throw constraint(enabled, 'streamSpecification.streamEnabled', 'Member must not be null');
  if (!enabled) return undefined;
  const view = s['StreamViewType'];
  if (!VIEW_TYPES.includes(view as StreamViewType)) {
    throw validation(
      'One or more parameter values were invalid: StreamViewType must be specified when StreamEnabled is true',
    );
  }
  return { viewType: view as StreamViewType };
}

function tableDefOf(t: StoredTable): TableDef {
  return {
    name: t.name,
    key: t.key,
    indexes: t.indexes,
    billingMode: t.billingMode,
    ...(t.provisionedThroughput ? { provisionedThroughput: t.provisionedThroughput } : {}),
    ...(t.stream ? { stream: t.stream } : {}),
    ...(t.ttlAttribute !== undefined ? { ttlAttribute: t.ttlAttribute } : {}),
  };
}

export function tableArn(d: TableOpsDeps, name: string): string {
  return `arn:aws:dynamodb:${d.region}:${d.accountId}:table/${name}`;
}

export function streamArn(d: TableOpsDeps, t: StoredTable): string {
  return `${tableArn(d, t.name)}/stream/${t.streamLabel ?? ''}`;
}

export function keySchemaOut(k: KeySchema): unknown[] {
  return [
    { AttributeName: k.partition.name, KeyType: 'HASH' },
    ...(k.sort ? [{ AttributeName: k.sort.name, KeyType: 'RANGE' }] : []),
  ];
}

function projectionOut(p: Projection): unknown {
  return {
    ProjectionType: p.type,
    ...(p.type === 'INCLUDE' ? { NonKeyAttributes: p.attributes ?? [] } : {}),
  };
}

/** DynamoDB's TableDescription. */
export function describe(d: TableOpsDeps, t: StoredTable): Record<string, unknown> {
  const attrs = new Map<string, KeyType>();
  for (const k of [t.key, ...t.indexes.map((i) => i.key)]) {
    attrs.set(k.partition.name, k.partition.type);
    if (k.sort) attrs.set(k.sort.name, k.sort.type);
  }
  const pt = t.provisionedThroughput
    ? {
        ReadCapacityUnits: t.provisionedThroughput.readCapacityUnits,
        WriteCapacityUnits: t.provisionedThroughput.writeCapacityUnits,
      }
    : { ReadCapacityUnits: 0, WriteCapacityUnits: 0 };
  const arn = tableArn(d, t.name);
  const gsis = t.indexes.filter((i) => i.kind === 'global');
  const lsis = t.indexes.filter((i) => i.kind === 'local');
  return {
    TableName: t.name,
    TableStatus: 'ACTIVE',
    TableArn: arn,
    TableId: t.name,
    CreationDateTime: t.createdAt / 1000,
    AttributeDefinitions: [...attrs].map(([AttributeName, AttributeType]) => ({
      AttributeName,
      AttributeType,
    })),
    KeySchema: keySchemaOut(t.key),
    ItemCount: t.itemCount,
    TableSizeBytes: t.sizeBytes,
    ProvisionedThroughput: { ...pt, NumberOfDecreasesToday: 0 },
    ...(t.billingMode === 'PAY_PER_REQUEST'
      ? {
          BillingModeSummary: {
            BillingMode: 'PAY_PER_REQUEST',
            LastUpdateToPayPerRequestDateTime: t.createdAt / 1000,
          },
        }
      : {}),
    ...(gsis.length > 0
      ? {
          GlobalSecondaryIndexes: gsis.map((i) => ({
            IndexName: i.name,
            KeySchema: keySchemaOut(i.key),
            Projection: projectionOut(i.projection),
            IndexStatus: 'ACTIVE',
            IndexArn: `${arn}/index/${i.name}`,
            ProvisionedThroughput: { ...pt, NumberOfDecreasesToday: 0 },
            ItemCount: 0,
            IndexSizeBytes: 0,
          })),
        }
      : {}),
    ...(lsis.length > 0
      ? {
          LocalSecondaryIndexes: lsis.map((i) => ({
            IndexName: i.name,
            KeySchema: keySchemaOut(i.key),
            Projection: projectionOut(i.projection),
            IndexArn: `${arn}/index/${i.name}`,
            ItemCount: 0,
            IndexSizeBytes: 0,
          })),
        }
      : {}),
    ...(t.stream
      ? {
          StreamSpecification: { StreamEnabled: true, StreamViewType: t.stream.viewType },
          LatestStreamLabel: t.streamLabel,
          LatestStreamArn: streamArn(d, t),
        }
      : {}),
  };
}

// DynamoDB's PartiQL operations: ExecuteStatement, BatchExecuteStatement and ExecuteTransaction. Statements are
// parsed by src/tables/partiql into the expression engine's conditions and updates, then run on the paths the
// item operations use (items.ts: the store's read-modify-write, the page loop, numbers normalized), so
// streams, TTL, the 400 KB limit and index maintenance hold for them too. A SELECT whose WHERE pins the
// partition key (= or IN) is a Query; any other SELECT is a Scan. The tables a statement names are only known
// once it is parsed, so each operation checks the caller's access itself (PartiQL's own IAM action names).
import { createHash } from 'node:crypto';
import type { ItemWrite, StoredTable } from '../../store/types.js';
import {
  DynamoValidationError,
  applyUpdate,
  evaluateCondition,
  keyAttributeNames,
  project as projectItem,
  updatedPaths,
  type Condition,
} from '../../tables/expr/index.js';
import { fullKey, parseStatement, queryPlan, type Statement } from '../../tables/partiql/index.js';
import type { AttributeValue, Item } from '../../tables/types.js';
import { parseNumber } from '../../tables/values.js';
import type { Principal } from '../auth.js';
import { ApiError } from '../errors.js';
import { checkItem } from './expressions.js';
import {
  collectPages,
  indexOf,
  keyOf,
  limitOf,
  PAGE_BYTES,
  pick,
  startKey,
  write,
  type ItemOpsDeps,
} from './items.js';
import { conditionFailed, constraint, validation } from './protocol.js';
import { existingTable } from './tables.js';
import { checkValue } from './values.js';

type Input = Record<string, unknown>;
type Op = (project: string, input: Input, principal: Principal) => Promise<unknown>;
/** Throws AccessDeniedException when the caller may not run `action` on the table. */
export type TableAccess = (principal: Principal, action: string, table: string) => void;

const MAX_STATEMENT = 8192;
const ACTIONS = {
  select: 'PartiQLSelect',
  insert: 'PartiQLInsert',
  update: 'PartiQLUpdate',
  delete: 'PartiQLDelete',
} as const;

/** How long ExecuteTransaction remembers a ClientRequestToken, as TransactWriteItems does. */
const TOKEN_WINDOW_MS = 10 * 60_000;

type Seen = Map<string, { hash: string; at: number; answer: unknown }>;

export function partiqlOperations(d: ItemOpsDeps, allow: TableAccess): Record<string, Op> {
  const seen: Seen = new Map();
  return {
    ExecuteStatement: (p, i, principal) => executeStatement(d, allow, p, i, principal),
    BatchExecuteStatement: (p, i, principal) => batchExecute(d, allow, p, i, principal),
    ExecuteTransaction: (p, i, principal) =>
      idempotent(d, seen, p, i, () => executeTransaction(d, allow, p, i, principal)),
  };
}

// --- ExecuteStatement ---

async function executeStatement(
  d: ItemOpsDeps,
  allow: TableAccess,
  project: string,
  input: Input,
  principal: Principal,
): Promise<unknown> {
  const { text, parameters } = statementOf(input, '');
  const s = parseStatement(text, parameters);
  allow(principal, ACTIONS[s.kind], s.table);
  const t = await existingTable(d, project, s.table);
  const onFail = onConditionFailure(input, 'returnValuesOnConditionCheckFailure');
  if (s.kind === 'select') {
    return withCapacity(input, t, await select(d, project, t, s, input, fingerprint(text, parameters)));
  }
  const item = await runWrite(d, project, t, s, onFail);
  return withCapacity(input, t, { Items: item ? [item] : [] });
}

async function select(
  d: ItemOpsDeps,
  project: string,
  t: StoredTable,
  s: Extract<Statement, { kind: 'select' }>,
  input: Input,
  print: string,
): Promise<Record<string, unknown>> {
  const index = s.index === undefined ? undefined : indexOf(t, s.index);
  if (index?.kind === 'global' && input['ConsistentRead'] === true) {
    throw validation('Consistent reads are not supported on global secondary indexes');
  }
  const schema = index?.key ?? t.key;
  const plan = queryPlan(s.where, schema);
  let forward = true;
  if (s.orderBy) {
    if (!plan) {
      throw validation(
        'Must have at least one non-optional hash key condition in WHERE clause when using ORDER BY clause.',
      );
    }
    const sk = schema.sort?.name;
    if (s.orderBy.path.length !== 1 || s.orderBy.path[0] !== sk) {
      throw validation('Order by is only supported on the sort key of the table or index');
    }
    forward = !s.orderBy.descending;
  }
  const where = s.where;
  const filter = where ? (item: Item) => evaluateCondition(where, item) : undefined;
  const limit = limitOf(input);
  const token = readToken(input['NextToken'], print, t, index);
  const partitions = plan?.partitions ?? [undefined];
  const items: Item[] = [];
  let next: Token | undefined;
  let read = 0;
  let bytes = 0;
  for (let p = token?.p ?? 0; p < partitions.length; p++) {
    const partition = partitions[p];
    const left = limit === undefined ? undefined : limit - read;
    const page = await collectPages(
      t,
      index,
      left,
      filter,
      (n, after) => {
        const common = {
          table: t.name,
          ...(index ? { index: index.name } : {}),
          limit: n,
          ...(after ? { exclusiveStartKey: after } : {}),
        };
        return partition === undefined
          ? d.store.tables.scan(project, common)
          : d.store.tables.query(project, {
              ...common,
              partition,
              ...(plan?.sort ? { sort: plan.sort } : {}),
              forward,
            });
      },
      p === token?.p ? token.k : undefined,
      PAGE_BYTES - bytes,
      (_text, item) => item(),
    );
    items.push(...page.kept);
    read += page.scanned;
    bytes += page.bytes;
    if (page.last) {
      next = { p, k: page.last };
      break;
    }
    // Limit counts items read and the 1 MB page what was read, in every partition together.
    const full = (limit !== undefined && read >= limit) || bytes >= PAGE_BYTES;
    if (full && p + 1 < partitions.length) {
      next = { p: p + 1 };
      break;
    }
  }
  const paths = s.projection;
  return {
    Items: paths ? items.map((item) => projectItem(item, paths)) : items,
    ...(next ? { NextToken: writeToken(next, print) } : {}),
  };
}

/** INSERT, UPDATE or DELETE of one item; what RETURNING asks for, if anything. */
async function runWrite(
  d: ItemOpsDeps,
  project: string,
  t: StoredTable,
  s: Exclude<Statement, { kind: 'select' }>,
  onFail: boolean,
): Promise<Item | undefined> {
  const w = planWrite(t, s, onFail);
  const r = await write(d, project, w);
  if (s.kind === 'insert' || !s.returning) return undefined;
  const changed = s.kind === 'update' ? [...new Set(updatedPaths(s.update).map((p) => String(p[0])))] : [];
  const attrs =
    s.returning === 'ALL_OLD'
      ? r.old
      : s.returning === 'ALL_NEW'
        ? r.new
        : pick(s.returning === 'MODIFIED_OLD' ? r.old : r.new, changed);
  return attrs && Object.keys(attrs).length > 0 ? attrs : undefined;
}

/** The store write a statement is: INSERT refuses an existing item; UPDATE and DELETE need the item to exist
 *  and the whole WHERE to hold for it (its key equalities included). */
function planWrite(t: StoredTable, s: Exclude<Statement, { kind: 'select' }>, onFail: boolean): ItemWrite {
  if (s.kind === 'insert') {
    checkItem(s.item, 'item');
    const item = s.item;
    return {
      table: t.name,
      key: keyOf(t, item, 'put'),
      decide: (cur) => {
        if (cur) throw duplicateItem();
        return item;
      },
    };
  }
  const key = keyOf(t, keyOfWhere(t, s.where), 'get');
  const where = s.where;
  const check = (cur: Item | undefined): Item => {
    if (!cur || !evaluateCondition(where, cur)) throw conditionFailed(onFail ? cur : undefined);
    return cur;
  };
  if (s.kind === 'delete') return { table: t.name, key, decide: (cur) => (check(cur), null) };
  const update = s.update;
  const keys = keyAttributeNames(t.key);
  return {
    table: t.name,
    key,
    decide: (cur) => ({ ...applyUpdate(update, check(cur), keys), ...key }),
  };
}

function keyOfWhere(t: StoredTable, where: Condition): Item {
  const key = fullKey(where, t.key);
  if (!key) throw validation('Where clause does not contain a mandatory equality on all key attributes');
  return key;
}

// --- BatchExecuteStatement ---

async function batchExecute(
  d: ItemOpsDeps,
  allow: TableAccess,
  project: string,
  input: Input,
  principal: Principal,
): Promise<unknown> {
  const list = input['Statements'];
  if (!Array.isArray(list) || list.length === 0 || list.length > 25) {
    throw constraint(
      Array.isArray(list) ? '[...]' : list,
      'statements',
      'Member must have length less than or equal to 25, Member must have length greater than or equal to 1',
    );
  }
  // Each statement is parsed first: one that does not parse is its own error, but reads and writes are told
  // apart before anything runs, since a batch may hold only one kind.
  const parsed = (list as Input[]).map((e, i) => {
    try {
      const { text, parameters } = statementOf(e ?? {}, `statements.${i + 1}.member.`);
      return { s: parseStatement(text, parameters), entry: e };
    } catch (err) {
      return { err, entry: e };
    }
  });
  const kinds = new Set(parsed.flatMap((x) => (x.s ? [x.s.kind === 'select' ? 'read' : 'write'] : [])));
  if (kinds.size > 1) {
    throw validation(
      'The entire batch must consist of either read statements or write statements, you cannot mix both in one batch.',
    );
  }
  const responses: unknown[] = [];
  for (const { s, err, entry } of parsed) {
    try {
      if (!s) throw err;
      allow(principal, ACTIONS[s.kind], s.table);
      const t = await existingTable(d, project, s.table);
      if (s.kind === 'select') {
        const item = await singleRead(d, project, t, s);
        responses.push({ TableName: t.name, ...(item ? { Item: item } : {}) });
      } else {
        const onFail = onConditionFailure(entry, 'returnValuesOnConditionCheckFailure');
        const item = await runWrite(d, project, t, s, onFail);
        responses.push({ TableName: t.name, ...(item ? { Item: item } : {}) });
      }
    } catch (e) {
      responses.push({ ...(s ? { TableName: s.table } : {}), Error: statementError(e) });
    }
  }
  return { Responses: responses };
}

/** A SELECT of a batch or a transaction reads one item: its WHERE names the whole primary key. */
async function singleRead(
  d: ItemOpsDeps,
  project: string,
  t: StoredTable,
  s: Extract<Statement, { kind: 'select' }>,
): Promise<Item | undefined> {
  const key = s.where && !s.index ? fullKey(s.where, t.key) : undefined;
  if (!key) {
    throw validation(
      'Select statements within BatchExecuteStatement and ExecuteTransaction must specify an equality condition on all key attributes',
    );
  }
  const item = await d.store.tables.getItem(project, t.name, keyOf(t, key, 'get'));
  if (!item || !evaluateCondition(s.where!, item)) return undefined;
  return s.projection ? projectItem(item, s.projection) : item;
}

/** A statement's failure as BatchStatementError: DynamoDB's codes, without the Exception suffix. */
function statementError(e: unknown): { Code: string; Message: string; Item?: Item } {
  if (e instanceof DynamoValidationError) return { Code: 'ValidationError', Message: e.message };
  if (!(e instanceof ApiError)) throw e;
  const codes: Record<string, string> = {
    ConditionalCheckFailedException: 'ConditionalCheckFailed',
    DuplicateItemException: 'DuplicateItem',
    ResourceNotFoundException: 'ResourceNotFound',
    AccessDeniedException: 'AccessDenied',
    ValidationException: 'ValidationError',
  };
  const code = codes[e.code];
  if (!code) throw e;
  const item = (e.extra as { Item?: Item } | undefined)?.Item;
  return { Code: code, Message: e.message, ...(item ? { Item: item } : {}) };
}

// --- ExecuteTransaction ---

async function executeTransaction(
  d: ItemOpsDeps,
  allow: TableAccess,
  project: string,
  input: Input,
  principal: Principal,
): Promise<unknown> {
  const list = input['TransactStatements'];
  if (!Array.isArray(list) || list.length === 0 || list.length > 100) {
    throw constraint(
      Array.isArray(list) ? '[...]' : list,
      'transactStatements',
      'Member must have length less than or equal to 100, Member must have length greater than or equal to 1',
    );
  }
  const statements = (list as Input[]).map((e, i) => {
    const { text, parameters } = statementOf(e ?? {}, `transactStatements.${i + 1}.member.`);
    return { s: parseStatement(text, parameters), entry: e };
  });
  const kinds = new Set(statements.map(({ s }) => (s.kind === 'select' ? 'read' : 'write')));
  if (kinds.size > 1) {
    throw validation(
      'The entire transaction must consist of either read statements or write statements, you cannot mix both in one transaction.',
    );
  }
  const tables = new Map<string, StoredTable>();
  for (const { s } of statements) {
    allow(principal, ACTIONS[s.kind], s.table);
    if (!tables.has(s.table)) tables.set(s.table, await existingTable(d, project, s.table));
  }
  if (kinds.has('read')) {
    const out: unknown[] = [];
    for (const { s } of statements) {
      const item = await singleRead(
        d,
        project,
        tables.get(s.table)!,
        s as Extract<Statement, { kind: 'select' }>,
      );
      out.push(item ? { Item: item } : {});
    }
    return { Responses: out };
  }
  const writes = statements.map(({ s, entry }) =>
    planWrite(
      tables.get(s.table)!,
      s as Exclude<Statement, { kind: 'select' }>,
      onConditionFailure(entry, 'returnValuesOnConditionCheckFailure'),
    ),
  );
  const ids = new Set(writes.map((w) => `${w.table}\n${JSON.stringify(w.key)}`));
  if (ids.size !== writes.length) {
    throw validation('Transaction request cannot include multiple operations on one item');
  }
  try {
    await d.store.tables.transact(project, writes);
  } catch (err) {
    const at = (err as { writeIndex?: unknown }).writeIndex;
    if (err instanceof ApiError && typeof at === 'number') {
      const reason = statementError(err);
      throw cancelled(writes.length, at, reason);
    }
    throw err instanceof Error && err.name === 'TableInputError' ? validation(err.message) : err;
  }
  return { Responses: [] };
}

/** A transaction with a ClientRequestToken seen in the last 10 minutes answers as it did then, without
 *  running again; the same token with other statements is refused. */
async function idempotent(
  d: ItemOpsDeps,
  seen: Seen,
  project: string,
  input: Input,
  run: () => Promise<unknown>,
): Promise<unknown> {
  const token = input['ClientRequestToken'];
  if (token === undefined) return run();
  if (typeof token !== 'string' || token.length < 1 || token.length > 36) {
    throw constraint(token, 'clientRequestToken', 'Member must have length less than or equal to 36');
  }
  const now = d.clock?.now() ?? Date.now();
  for (const [k, v] of seen) if (now - v.at > TOKEN_WINDOW_MS) seen.delete(k);
  const hash = createHash('sha256').update(JSON.stringify(input['TransactStatements'])).digest('hex');
  const id = `${project}\n${token}`;
  const before = seen.get(id);
  if (before) {
    if (before.hash !== hash) {
      throw new ApiError(
        400,
        'IdempotentParameterMismatchException',
        'The request uses the same client token as a previous, but non-identical request.',
      );
    }
    return before.answer;
  }
  const answer = await run();
  seen.set(id, { hash, at: now, answer });
  return answer;
}

function cancelled(n: number, at: number, reason: { Code: string; Message: string; Item?: Item }): ApiError {
  const reasons = Array.from({ length: n }, (_, i) => (i === at ? reason : { Code: 'None' }));
  return new ApiError(
    400,
    'TransactionCanceledException',
    `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((r) => r.Code).join(', ')}]`,
    undefined,
    { CancellationReasons: reasons } as unknown as Record<string, string>,
  );
}

// --- request fields ---

/** A request's (or a batch member's) Statement and Parameters, checked as DynamoDB checks them. */
function statementOf(input: Input, field: string): { text: string; parameters: AttributeValue[] } {
  const text = input['Statement'];
  if (typeof text !== 'string') throw constraint(text, `${field}statement`, 'Member must not be null');
  if (text.length < 1 || text.length > MAX_STATEMENT) {
    throw constraint(
      text,
      `${field}statement`,
      `Member must have length less than or equal to ${MAX_STATEMENT}, Member must have length greater than or equal to 1`,
    );
  }
  const params = input['Parameters'];
  if (params === undefined) return { text, parameters: [] };
  if (!Array.isArray(params) || params.length === 0) {
    throw constraint(params, `${field}parameters`, 'Member must have length greater than or equal to 1');
  }
  for (const v of params) checkValue(v, (n) => void parseNumber(n));
  return { text, parameters: params as AttributeValue[] };
}

function onConditionFailure(input: Input, field: string): boolean {
  const v = input['ReturnValuesOnConditionCheckFailure'];
  if (v !== undefined && v !== 'ALL_OLD' && v !== 'NONE') {
    throw constraint(v, field, 'Member must satisfy enum value set: [ALL_OLD, NONE]');
  }
  return v === 'ALL_OLD';
}

function withCapacity(input: Input, t: StoredTable, body: Record<string, unknown>): Record<string, unknown> {
  const rc = input['ReturnConsumedCapacity'];
  if (rc === 'TOTAL' || rc === 'INDEXES') body['ConsumedCapacity'] = { TableName: t.name, CapacityUnits: 1 };
  return body;
}

const duplicateItem = (): ApiError =>
  new ApiError(400, 'DuplicateItemException', 'Duplicate primary key exists in table');

// --- NextToken ---

/** Where a SELECT stopped: the partition (of an IN list) and the key to continue after. */
interface Token {
  p: number;
  k?: Item;
}

/** Ties a NextToken to its statement and parameters: it continues that read and no other. */
function fingerprint(text: string, parameters: readonly AttributeValue[]): string {
  return createHash('sha256')
    .update(JSON.stringify([text, parameters]))
    .digest('base64url')
    .slice(0, 16);
}

function writeToken(t: Token, print: string): string {
  return Buffer.from(JSON.stringify({ s: print, ...t })).toString('base64');
}

function readToken(
  raw: unknown,
  print: string,
  t: StoredTable,
  index: Parameters<typeof startKey>[1],
): Token | undefined {
  if (raw === undefined) return undefined;
  const bad = () => validation('Invalid NextToken');
  if (typeof raw !== 'string') throw bad();
  let v: { s?: unknown; p?: unknown; k?: unknown };
  try {
    v = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as typeof v;
  } catch {
    throw bad();
  }
  if (v === null || typeof v !== 'object' || v.s !== print) throw bad();
  if (typeof v.p !== 'number' || !Number.isInteger(v.p) || v.p < 0) throw bad();
  if (v.k === undefined) return { p: v.p };
  const k = startKey(t, index, v.k);
  // A key of the wrong type cannot be a position in this table or index.
  for (const s of [t.key, ...(index ? [index.key] : [])]) {
    for (const a of [s.partition, s.sort]) if (a && k && !(a.type in k[a.name]!)) throw bad();
  }
  return k ? { p: v.p, k } : { p: v.p };
}

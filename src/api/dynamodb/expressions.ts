// Between the item operations and the expression engine (src/tables/expr): one compile per request, with the
// key schema of what it addresses, into the functions the operations apply. The engine's refusals are
// DynamoValidationErrors carrying DynamoDB's message; the service turns them into ValidationExceptions.
import {
  applyUpdate,
  compileRequestExpressions,
  evaluateCondition,
  keyAttributeNames,
  project,
  updatedPaths,
  type ExpressionOperation,
  type ExpressionRequest,
  type KeyCondition,
} from '../../tables/expr/index.js';
import type { AttributeValue, IndexDef, Item, TableDef } from '../../tables/types.js';
import { parseNumber } from '../../tables/values.js';
import type { SortCondition } from '../../store/types.js';
import { checkValue } from './values.js';
import { constraint } from './protocol.js';

export interface Compiled {
  condition?: (item: Item | undefined) => boolean;
  filter?: (item: Item) => boolean;
  key?: { partition: AttributeValue; sort?: SortCondition };
  projection?: (item: Item) => Item;
  update?: { apply: (item: Item | undefined) => Item; paths: string[] };
}

export function compileFor(
  op: ExpressionOperation,
  input: Record<string, unknown>,
  t: Pick<TableDef, 'key'>,
  index?: IndexDef,
): Compiled {
  const c = compileRequestExpressions(op, input as ExpressionRequest, {
    keySchema: index?.key ?? t.key,
    tableKeySchema: t.key,
  });
  const out: Compiled = {};
  if (c.condition) {
    const cond = c.condition;
    out.condition = (item) => evaluateCondition(cond, item);
  }
  if (c.filter) {
    const f = c.filter;
    out.filter = (item) => evaluateCondition(f, item);
  }
  if (c.keyCondition) out.key = keyOf(c.keyCondition);
  if (c.projection) {
    const paths = c.projection;
    out.projection = (item) => project(item, paths);
  }
  if (c.update) {
    const u = c.update;
    const keys = keyAttributeNames(t.key);
    out.update = {
      apply: (item) => applyUpdate(u, item, keys),
      paths: [...new Set(updatedPaths(u).map((p) => String(p[0])))],
    };
  }
  return out;
}

function keyOf(kc: KeyCondition): NonNullable<Compiled['key']> {
  const partition = kc.partition.value;
  const s = kc.sort;
  if (!s) return { partition };
  const [a, b] = s.values as AttributeValue[];
  const ops = { EQ: '=', LT: '<', LE: '<=', GT: '>', GE: '>=' } as const;
  if (s.op === 'BETWEEN') return { partition, sort: { op: 'between', low: a!, high: b! } };
  if (s.op === 'BEGINS_WITH') return { partition, sort: { op: 'begins_with', prefix: a! } };
  return { partition, sort: { op: ops[s.op], value: a! } };
}

/** An item (or a key) of a request: a map of valid attribute values. */
export function checkItem(raw: unknown, field: string): asserts raw is Item {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw constraint(raw, field, 'Member must not be null');
  }
  for (const v of Object.values(raw)) checkValue(v, (n) => void parseNumber(n));
}

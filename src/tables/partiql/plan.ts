// How a statement's WHERE clause addresses a table: which partitions (and which range of sort keys) a SELECT
// reads, so that one pinning the partition key is a Query (an index range scan in the store) and anything else
// a Scan; and the one primary key an UPDATE or DELETE names. The whole WHERE is still evaluated against each
// item, so the key conditions taken out here only narrow what is read.

import type { SortCondition } from '../../store/types.js';
import type { Condition, Operand } from '../expr/ast.js';
import type { AttributeValue, Item, KeyAttribute, KeySchema } from '../types.js';

/** The conditions joined by the top-level ANDs. */
export function conjuncts(c: Condition): Condition[] {
  return c.kind === 'and' ? [...conjuncts(c.left), ...conjuncts(c.right)] : [c];
}

/** The partitions to query (one per IN member) and the sort key range, or undefined when it is a Scan. */
export function queryPlan(
  where: Condition | undefined,
  schema: KeySchema,
): { partitions: AttributeValue[]; sort?: SortCondition } | undefined {
  if (!where) return undefined;
  const parts = conjuncts(where);
  let partitions: AttributeValue[] | undefined;
  for (const c of parts) {
    const eq = equality(c, schema.partition);
    if (eq) partitions = [eq];
    else if (c.kind === 'in' && isAttribute(c.operand, schema.partition)) {
      const values = c.list.map((o) => (o.kind === 'value' ? o.value : undefined));
      if (values.every((v) => v !== undefined && fits(v, schema.partition))) {
        // Each partition once: IN ('a', 'a') reads 'a' once, as the condition would keep it once.
        const seen = new Set<string>();
        partitions = (values as AttributeValue[]).filter((v) => {
          const id = JSON.stringify(v);
          return seen.has(id) ? false : (seen.add(id), true);
        });
      }
    }
    if (partitions) break;
  }
  if (!partitions) return undefined;
  const sortKey = schema.sort;
  const sort = sortKey ? parts.map((c) => sortCondition(c, sortKey)).find((s) => s !== undefined) : undefined;
  return sort ? { partitions, sort } : { partitions };
}

/** The primary key a WHERE pins with an equality on every key attribute, or undefined. */
export function fullKey(where: Condition, schema: KeySchema): Item | undefined {
  const parts = conjuncts(where);
  const key: Item = {};
  for (const a of [schema.partition, ...(schema.sort ? [schema.sort] : [])]) {
    const v = parts.map((c) => equality(c, a)).find((x) => x !== undefined);
    if (!v) return undefined;
    key[a.name] = v;
  }
  return key;
}

function isAttribute(o: Operand, a: KeyAttribute): boolean {
  return o.kind === 'path' && o.path.length === 1 && o.path[0] === a.name;
}

/** Only a value of the key's type can address it; any other compares false and is left to the filter. */
function fits(v: AttributeValue, a: KeyAttribute): boolean {
  return a.type in v;
}

/** The value of `a = v` (or `v = a`). */
function equality(c: Condition, a: KeyAttribute): AttributeValue | undefined {
  if (c.kind !== 'compare' || c.op !== '=') return undefined;
  const [attr, other] = isAttribute(c.left, a) ? [c.left, c.right] : [c.right, c.left];
  if (!isAttribute(attr, a) || other.kind !== 'value' || !fits(other.value, a)) return undefined;
  return other.value;
}

const FLIPPED = { '=': '=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' } as const;

function sortCondition(c: Condition, a: KeyAttribute): SortCondition | undefined {
  const value = (o: Operand) => (o.kind === 'value' && fits(o.value, a) ? o.value : undefined);
  if (c.kind === 'compare' && c.op !== '<>') {
    if (isAttribute(c.left, a)) {
      const v = value(c.right);
      return v ? { op: c.op, value: v } : undefined;
    }
    if (isAttribute(c.right, a)) {
      const v = value(c.left);
      return v ? { op: FLIPPED[c.op], value: v } : undefined;
    }
  }
  if (c.kind === 'between' && isAttribute(c.operand, a)) {
    const low = value(c.lower);
    const high = value(c.upper);
    return low && high ? { op: 'between', low, high } : undefined;
  }
  if (c.kind === 'begins_with' && isAttribute(c.operand, a) && a.type !== 'N') {
    const prefix = value(c.prefix);
    return prefix ? { op: 'begins_with', prefix } : undefined;
  }
  return undefined;
}

// Query key conditions: a KeyConditionExpression (parsed with the condition parser, as DynamoDB does, then
// restricted to "partition = value [AND one sort-key condition]") or legacy KeyConditions, checked against the
// key schema of the table or index queried, and returned as a structured KeyCondition.

import type { AttributeValue, Item, KeySchema } from '../types.js';
import { attributeType, compareValues, valuesEqual, decodeBinary } from '../values.js';
import type { Condition, KeyCondition, Operand, SortKeyOperator } from './ast.js';
import type { ExpressionContext } from './context.js';
import { DynamoValidationError } from './errors.js';
import { parseConditionExpression } from './parser.js';

/** One attribute's condition, in KeyConditions' terms. */
export interface KeyConditionEntry {
  readonly op: string;
  readonly values: readonly AttributeValue[];
}

const FLIPPED: Record<string, SortKeyOperator> = { '=': 'EQ', '<': 'GT', '<=': 'GE', '>': 'LT', '>=': 'LE' };
const DIRECT: Record<string, SortKeyOperator> = { '=': 'EQ', '<': 'LT', '<=': 'LE', '>': 'GT', '>=': 'GE' };
const INDEXABLE = new Set(['EQ', 'LT', 'LE', 'GT', 'GE', 'BETWEEN', 'BEGINS_WITH']);

function fail(message: string): never {
  throw new DynamoValidationError(message);
}

function collect(condition: Condition, out: Map<string, KeyConditionEntry>): void {
  let operands: readonly Operand[];
  let op: string;
  switch (condition.kind) {
    case 'and':
      collect(condition.left, out);
      collect(condition.right, out);
      return;
    case 'or':
      return fail('Invalid operator used in KeyConditionExpression: OR');
    case 'not':
      return fail('Invalid operator used in KeyConditionExpression: NOT');
    case 'in':
      return fail('Invalid operator used in KeyConditionExpression: IN');
    case 'attribute_exists':
    case 'attribute_not_exists':
    case 'attribute_type':
    case 'contains':
      return fail(`Invalid operator used in KeyConditionExpression: ${condition.kind}`);
    case 'compare':
      if (condition.op === '<>') fail('Invalid operator used in KeyConditionExpression: <>');
      operands = [condition.left, condition.right];
      op = condition.op;
      break;
    case 'between':
      operands = [condition.operand, condition.lower, condition.upper];
      op = 'BETWEEN';
      break;
    case 'begins_with':
      operands = [condition.operand, condition.prefix];
      op = 'BEGINS_WITH';
      break;
  }
  if (operands.some((o) => o.kind !== 'path' && o.kind !== 'value')) {
    fail('KeyConditionExpressions cannot contain nested operations');
  }
  if (op === 'BETWEEN' && operands[0]?.kind !== 'path') {
    fail(
      'Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand',
    );
  }
  if (op === 'BEGINS_WITH' && operands[0]?.kind !== 'path') {
    fail(
      'Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand',
    );
  }
  let name: string | undefined;
  let nameAt = 0;
  const values: AttributeValue[] = [];
  operands.forEach((o, i) => {
    if (o.kind === 'path') {
      if (name !== undefined)
        fail('Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition');
      if (o.path.length > 1) fail('KeyConditionExpressions cannot have conditions on nested attributes');
      name = o.path[0] as string;
      nameAt = i;
    } else if (o.kind === 'value') {
      values.push(o.value);
    }
  });
  if (name === undefined) fail('Invalid condition in KeyConditionExpression: No key attribute specified');
  if (out.has(name)) fail('KeyConditionExpressions must only contain one condition per key');
  if (op !== 'BETWEEN' && op !== 'BEGINS_WITH') op = (nameAt === 0 ? DIRECT : FLIPPED)[op] as SortKeyOperator;
  out.set(name, { op, values });
}

/** Checks key conditions against the key schema, with the messages DynamoDB gives, and structures them. */
export function checkKeyConditions(
  conditions: ReadonlyMap<string, KeyConditionEntry>,
  schema: KeySchema,
): KeyCondition {
  if (conditions.size !== 1 && conditions.size !== 2) fail('Conditions can be of length 1 or 2 only');
  const check = (name: string, type: string, isPartition: boolean): KeyConditionEntry | undefined => {
    if (isPartition && !schema.sort && conditions.size > 1) fail('Query key condition not supported');
    const entry = conditions.get(name);
    if (!entry) {
      if (isPartition || conditions.size > 1) fail(`Query condition missed key schema element: ${name}`);
      return undefined;
    }
    if (!INDEXABLE.has(entry.op)) fail('Attempted conditional constraint is not an indexable operation');
    if (entry.values.some((v) => attributeType(v) !== type)) {
      fail('One or more parameter values were invalid: Condition parameter type does not match schema type');
    }
    if (isPartition && entry.op !== 'EQ') fail('Query key condition not supported');
    return entry;
  };
  const partition = check(schema.partition.name, schema.partition.type, true) as KeyConditionEntry;
  const sort = schema.sort ? check(schema.sort.name, schema.sort.type, false) : undefined;
  return {
    partition: { name: schema.partition.name, value: partition.values[0] as AttributeValue },
    ...(sort && schema.sort
      ? { sort: { name: schema.sort.name, op: sort.op as SortKeyOperator, values: sort.values } }
      : {}),
  };
}

/** The attribute conditions a parsed KeyConditionExpression makes (before the schema is consulted). */
export function keyConditionEntries(condition: Condition): Map<string, KeyConditionEntry> {
  const out = new Map<string, KeyConditionEntry>();
  collect(condition, out);
  return out;
}

/** Parses a KeyConditionExpression and checks it against the key schema of the table or index queried. */
export function parseKeyConditionExpression(
  source: string,
  context: ExpressionContext,
  schema: KeySchema,
): KeyCondition {
  return checkKeyConditions(
    keyConditionEntries(parseConditionExpression(source, context, 'KeyConditionExpression')),
    schema,
  );
}

/** Whether a value satisfies a sort-key condition. */
export function matchesSortKey(
  sort: NonNullable<KeyCondition['sort']>,
  value: AttributeValue | undefined,
): boolean {
  if (!value) return false;
  const [first, second] = sort.values as [AttributeValue, AttributeValue | undefined];
  if (sort.op === 'BEGINS_WITH') {
    if ('S' in value && 'S' in first) return value.S.startsWith(first.S);
    if ('B' in value && 'B' in first) {
      const v = decodeBinary(value.B);
      const p = decodeBinary(first.B);
      return p.length <= v.length && v.subarray(0, p.length).equals(p);
    }
    return false;
  }
  const c = compareValues(value, first);
  if (c === undefined) return false;
  switch (sort.op) {
    case 'EQ':
      return c === 0;
    case 'LT':
      return c < 0;
    case 'LE':
      return c <= 0;
    case 'GT':
      return c > 0;
    case 'GE':
      return c >= 0;
    case 'BETWEEN': {
      const high = second ? compareValues(value, second) : undefined;
      return c >= 0 && high !== undefined && high <= 0;
    }
  }
}

/** Whether an item satisfies a key condition (its partition value and, if any, the sort-key condition). */
export function evaluateKeyCondition(keyCondition: KeyCondition, item: Item): boolean {
  const partition = item[keyCondition.partition.name];
  if (!partition || !valuesEqual(partition, keyCondition.partition.value)) return false;
  return !keyCondition.sort || matchesSortKey(keyCondition.sort, item[keyCondition.sort.name]);
}

/**
 * Checks a Key parameter (GetItem, UpdateItem, DeleteItem, BatchGetItem, …): exactly the schema's key
 * attributes, each of the schema's type, else DynamoDB's "The provided key element does not match the schema".
 */
export function validateKey(key: Item, schema: KeySchema): void {
  const attributes = schema.sort ? [schema.partition, schema.sort] : [schema.partition];
  const matches =
    Object.keys(key).length === attributes.length &&
    attributes.every((a) => {
      const value = Object.hasOwn(key, a.name) ? key[a.name] : undefined;
      return value !== undefined && a.type in value;
    });
  if (!matches) throw new DynamoValidationError('The provided key element does not match the schema');
}

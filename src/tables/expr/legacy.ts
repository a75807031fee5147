// The legacy (pre-expression) request parameters, validated with DynamoDB's messages and converted into the
// same ASTs the expressions parse into: Expected (Exists/Value or ComparisonOperator with AttributeValueList),
// QueryFilter and ScanFilter, ConditionalOperator, KeyConditions, AttributesToGet and AttributeUpdates.

import type { AttributeValue, KeySchema } from '../types.js';
import { attributeType, compareValues, validateAttributeValue } from '../values.js';
import type {
  AddAction,
  Condition,
  DeleteAction,
  DocumentPath,
  KeyCondition,
  SetAction,
  UpdateAst,
} from './ast.js';
import { DynamoValidationError } from './errors.js';
import { checkKeyConditions, type KeyConditionEntry } from './key-condition.js';

export type ComparisonOperator =
  | 'EQ'
  | 'NE'
  | 'LE'
  | 'LT'
  | 'GE'
  | 'GT'
  | 'NOT_NULL'
  | 'NULL'
  | 'CONTAINS'
  | 'NOT_CONTAINS'
  | 'BEGINS_WITH'
  | 'IN'
  | 'BETWEEN';

/** A QueryFilter, ScanFilter or KeyConditions entry. */
export interface LegacyCondition {
  ComparisonOperator?: string;
  AttributeValueList?: AttributeValue[];
}

/** An Expected entry: a LegacyCondition, or the older Exists/Value form. */
export interface ExpectedAttributeValue extends LegacyCondition {
  Value?: AttributeValue;
  Exists?: boolean;
}

export interface AttributeValueUpdate {
  Action?: string;
  Value?: AttributeValue;
}

const ENUM_ORDER = 'IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS';
const OPERAND_COUNTS: Record<ComparisonOperator, [number, number]> = {
  EQ: [1, 1],
  NE: [1, 1],
  LE: [1, 1],
  LT: [1, 1],
  GE: [1, 1],
  GT: [1, 1],
  NOT_NULL: [0, 0],
  NULL: [0, 0],
  CONTAINS: [1, 1],
  NOT_CONTAINS: [1, 1],
  BEGINS_WITH: [1, 1],
  IN: [1, Infinity],
  BETWEEN: [2, 2],
};
const SCALARS = ['S', 'N', 'B'];
/** The value types each operator accepts (EQ and NE accept every type, lists and maps included). */
const ALLOWED_TYPES: Partial<Record<ComparisonOperator, readonly string[]>> = {
  LE: SCALARS,
  LT: SCALARS,
  GE: SCALARS,
  GT: SCALARS,
  CONTAINS: SCALARS,
  NOT_CONTAINS: SCALARS,
  BEGINS_WITH: ['S', 'B'],
  IN: SCALARS,
  BETWEEN: SCALARS,
};

function fail(message: string): never {
  throw new DynamoValidationError(message);
}

function invalid(message: string): never {
  fail(`One or more parameter values were invalid: ${message}`);
}

function checkOperator(op: string | undefined, where: string): ComparisonOperator {
  if (op === undefined || !Object.hasOwn(OPERAND_COUNTS, op)) {
    const shown = op === undefined ? 'null' : `'${op}'`;
    const constraint =
      op === undefined ? 'Member must not be null' : `Member must satisfy enum value set: [${ENUM_ORDER}]`;
    fail(
      `1 validation error detected: Value ${shown} at '${where}.comparisonOperator' failed to satisfy constraint: ${constraint}`,
    );
  }
  return op as ComparisonOperator;
}

/** DynamoDB's checks of one operator's argument list (count, types, BETWEEN's order). */
function checkArguments(op: ComparisonOperator, values: readonly AttributeValue[]): void {
  for (const v of values) validateAttributeValue(v);
  const [min, max] = OPERAND_COUNTS[op];
  if (values.length < min || values.length > max) {
    invalid(`Invalid number of argument(s) for the ${op} ComparisonOperator`);
  }
  if (values.length) {
    const type = attributeType(values[0] as AttributeValue);
    if (values.some((v) => attributeType(v) !== type)) {
      invalid('AttributeValues inside AttributeValueList must be of same type');
    }
    const allowed = ALLOWED_TYPES[op];
    if (allowed && !allowed.includes(type)) {
      invalid(`ComparisonOperator ${op} is not valid for ${type} AttributeValue type`);
    }
  }
  if (
    op === 'BETWEEN' &&
    (compareValues(values[0] as AttributeValue, values[1] as AttributeValue) ?? 0) > 0
  ) {
    fail('The BETWEEN condition was provided a range where the lower bound is greater than the upper bound');
  }
}

/** One attribute's legacy condition as an AST condition. */
function toCondition(
  attribute: string,
  op: ComparisonOperator,
  values: readonly AttributeValue[],
): Condition {
  const path: DocumentPath = [attribute];
  const operand = { kind: 'path', path } as const;
  const value = (i: number) => ({ kind: 'value', value: values[i] as AttributeValue }) as const;
  switch (op) {
    case 'EQ':
      return { kind: 'compare', op: '=', left: operand, right: value(0) };
    case 'NE':
      return { kind: 'compare', op: '<>', left: operand, right: value(0) };
    case 'LE':
      return { kind: 'compare', op: '<=', left: operand, right: value(0) };
    case 'LT':
      return { kind: 'compare', op: '<', left: operand, right: value(0) };
    case 'GE':
      return { kind: 'compare', op: '>=', left: operand, right: value(0) };
    case 'GT':
      return { kind: 'compare', op: '>', left: operand, right: value(0) };
    case 'NOT_NULL':
      return { kind: 'attribute_exists', path };
    case 'NULL':
      return { kind: 'attribute_not_exists', path };
    case 'CONTAINS':
      return { kind: 'contains', operand, value: value(0) };
    case 'NOT_CONTAINS':
      // Unlike NOT contains(…), NOT_CONTAINS is false when the attribute is missing.
      return {
        kind: 'and',
        left: { kind: 'attribute_exists', path },
        right: { kind: 'not', condition: { kind: 'contains', operand, value: value(0) } },
      };
    case 'BEGINS_WITH':
      return { kind: 'begins_with', operand, prefix: value(0) };
    case 'IN':
      return { kind: 'in', operand, list: values.map((_, i) => value(i)) };
    case 'BETWEEN':
      return { kind: 'between', operand, lower: value(0), upper: value(1) };
  }
}

function combine(conditions: Condition[], conditionalOperator: string | undefined): Condition | undefined {
  if (conditionalOperator !== undefined && conditionalOperator !== 'AND' && conditionalOperator !== 'OR') {
    fail(
      `1 validation error detected: Value '${conditionalOperator}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]`,
    );
  }
  if (conditions.length === 0) return undefined;
  const kind = conditionalOperator === 'OR' ? 'or' : 'and';
  return conditions.reduce((left, right) => ({ kind, left, right }));
}

/**
 * Validates and converts a QueryFilter or ScanFilter (`parameter` names it in messages) into one condition,
 * its entries joined by ConditionalOperator (AND unless OR). Undefined when the filter is empty.
 */
export function filterToCondition(
  filter: Readonly<Record<string, LegacyCondition>>,
  conditionalOperator?: string,
  parameter: 'QueryFilter' | 'ScanFilter' = 'ScanFilter',
): Condition | undefined {
  const conditions: Condition[] = [];
  for (const [attribute, entry] of Object.entries(filter)) {
    const op = checkOperator(
      entry.ComparisonOperator,
      `${parameter.charAt(0).toLowerCase()}${parameter.slice(1)}.${attribute}.member`,
    );
    const values = entry.AttributeValueList ?? [];
    checkArguments(op, values);
    conditions.push(toCondition(attribute, op, values));
  }
  return combine(conditions, conditionalOperator);
}

/** Validates and converts Expected (with ConditionalOperator) into one condition; undefined when empty. */
export function expectedToCondition(
  expected: Readonly<Record<string, ExpectedAttributeValue>>,
  conditionalOperator?: string,
): Condition | undefined {
  const conditions: Condition[] = [];
  for (const [attribute, entry] of Object.entries(expected)) {
    const hasList = entry.AttributeValueList !== undefined;
    const hasValue = entry.Value !== undefined;
    if (hasList && hasValue) {
      invalid(`Value and AttributeValueList cannot be used together for Attribute: ${attribute}`);
    }
    if (entry.ComparisonOperator !== undefined) {
      if (entry.Exists !== undefined) {
        invalid(`Exists and ComparisonOperator cannot be used together for Attribute: ${attribute}`);
      }
      const op = checkOperator(entry.ComparisonOperator, `expected.${attribute}.member`);
      if (op !== 'NULL' && op !== 'NOT_NULL' && !hasList && !hasValue) {
        invalid(
          `Value or AttributeValueList must be used with ComparisonOperator: ${op} for Attribute: ${attribute}`,
        );
      }
      const values = entry.AttributeValueList ?? (entry.Value ? [entry.Value] : []);
      checkArguments(op, values);
      conditions.push(toCondition(attribute, op, values));
    } else if (hasList) {
      invalid(`AttributeValueList can only be used with a ComparisonOperator for Attribute: ${attribute}`);
    } else {
      const exists = entry.Exists ?? true;
      if (exists && !hasValue) {
        invalid(
          `Value must be provided when Exists is ${entry.Exists === undefined ? 'null' : 'true'} for Attribute: ${attribute}`,
        );
      }
      if (!exists && hasValue)
        invalid(`Value cannot be used when Exists is false for Attribute: ${attribute}`);
      if (hasValue) {
        validateAttributeValue(entry.Value as AttributeValue);
        conditions.push(toCondition(attribute, 'EQ', [entry.Value as AttributeValue]));
      } else {
        conditions.push({ kind: 'attribute_not_exists', path: [attribute] });
      }
    }
  }
  return combine(conditions, conditionalOperator);
}

/** Validates legacy KeyConditions and checks them against the key schema of the table or index queried. */
export function keyConditionsToKeyCondition(
  keyConditions: Readonly<Record<string, LegacyCondition>>,
  schema: KeySchema,
): KeyCondition {
  const entries = new Map<string, KeyConditionEntry>();
  for (const [attribute, entry] of Object.entries(keyConditions)) {
    const op = checkOperator(entry.ComparisonOperator, `keyConditions.${attribute}.member`);
    const values = entry.AttributeValueList ?? [];
    checkArguments(op, values);
    entries.set(attribute, { op, values });
  }
  return checkKeyConditions(entries, schema);
}

/** AttributesToGet as top-level paths (a name with a dot in it is one attribute, not a nested path). */
export function attributesToGetToPaths(names: readonly string[]): DocumentPath[] {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) invalid(`Duplicate value in attribute name: ${name}`);
    seen.add(name);
  }
  return names.map((name) => [name]);
}

/** Validates AttributeUpdates and converts it into an update (PUT → SET, DELETE without value → REMOVE). */
export function attributeUpdatesToUpdate(updates: Readonly<Record<string, AttributeValueUpdate>>): UpdateAst {
  const set: SetAction[] = [];
  const remove: DocumentPath[] = [];
  const add: AddAction[] = [];
  const del: DeleteAction[] = [];
  for (const [attribute, update] of Object.entries(updates)) {
    const action = update.Action ?? 'PUT';
    if (action !== 'PUT' && action !== 'ADD' && action !== 'DELETE') {
      fail(
        `1 validation error detected: Value '${action}' at 'attributeUpdates.${attribute}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]`,
      );
    }
    const value = update.Value;
    if (value !== undefined) validateAttributeValue(value);
    if (value === undefined && action !== 'DELETE') {
      invalid('Only DELETE action is allowed when no attribute value is specified');
    }
    const path: DocumentPath = [attribute];
    if (action === 'PUT') {
      set.push({ path, value: { kind: 'value', value: value as AttributeValue } });
    } else if (action === 'ADD') {
      const type = attributeType(value as AttributeValue);
      if (!['N', 'SS', 'NS', 'BS', 'L'].includes(type))
        invalid(`ADD action is not supported for the type ${type}`);
      add.push({ path, value: value as AttributeValue, legacy: true });
    } else if (value === undefined) {
      remove.push(path);
    } else {
      const type = attributeType(value);
      if (!['SS', 'NS', 'BS'].includes(type))
        invalid(`DELETE action with value is not supported for the type ${type}`);
      del.push({ path, value, legacy: true });
    }
  }
  return { set, remove, add, delete: del };
}

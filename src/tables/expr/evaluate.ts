// Evaluating conditions against an item with DynamoDB's semantics: a comparison involving a missing attribute
// or values of different types is false (never an error), except <>, which is then true; size() of a type that
// has no size is missing; contains() finds substrings in S and B, members in sets and elements in lists.

import type { AttributeValue, Item } from '../types.js';
import {
  addNumbers,
  attributeType,
  compareBinary,
  compareValues,
  decodeBinary,
  numbersEqual,
  subtractNumbers,
  valuesEqual,
} from '../values.js';
import type { Condition, Operand, SetValue } from './ast.js';
import { getPath } from './paths.js';

/** The number of elements, characters (UTF-16 units, as DynamoDB counts) or bytes; undefined if it has none. */
export function sizeOf(value: AttributeValue | undefined): number | undefined {
  if (!value) return undefined;
  if ('S' in value) return value.S.length;
  if ('B' in value) return decodeBinary(value.B).length;
  if ('SS' in value) return value.SS.length;
  if ('NS' in value) return value.NS.length;
  if ('BS' in value) return value.BS.length;
  if ('L' in value) return value.L.length;
  if ('M' in value) return Object.keys(value.M).length;
  return undefined;
}

/** An operand's value for an item; undefined when it refers to something the item does not have. */
export function operandValue(operand: Operand, item: Item | undefined): AttributeValue | undefined {
  switch (operand.kind) {
    case 'path':
      return getPath(item, operand.path);
    case 'value':
      return operand.value;
    case 'size': {
      const size = sizeOf(operandValue(operand.operand, item));
      return size === undefined ? undefined : { N: String(size) };
    }
    case 'if_not_exists':
      return getPath(item, operand.path) ?? operandValue(operand.fallback, item);
    case 'list_append': {
      const left = operandValue(operand.left, item);
      const right = operandValue(operand.right, item);
      return left && right && 'L' in left && 'L' in right ? { L: [...left.L, ...right.L] } : undefined;
    }
  }
}

/** A SET value for an item (update.ts adds DynamoDB's errors around this). */
export function setValueOf(value: SetValue, item: Item | undefined): AttributeValue | undefined {
  if (value.kind !== 'plus' && value.kind !== 'minus') return operandValue(value, item);
  const left = operandValue(value.left, item);
  const right = operandValue(value.right, item);
  if (!left || !right || !('N' in left) || !('N' in right)) return undefined;
  return { N: value.kind === 'plus' ? addNumbers(left.N, right.N) : subtractNumbers(left.N, right.N) };
}

function beginsWith(value: AttributeValue, prefix: AttributeValue): boolean {
  if ('S' in value && 'S' in prefix) return value.S.startsWith(prefix.S);
  if ('B' in value && 'B' in prefix) {
    const v = decodeBinary(value.B);
    const p = decodeBinary(prefix.B);
    return p.length <= v.length && v.subarray(0, p.length).equals(p);
  }
  return false;
}

function contains(container: AttributeValue, needle: AttributeValue): boolean {
  if ('S' in container) return 'S' in needle && container.S.includes(needle.S);
  if ('B' in container) return 'B' in needle && decodeBinary(container.B).includes(decodeBinary(needle.B));
  if ('SS' in container) return 'S' in needle && container.SS.includes(needle.S);
  if ('NS' in container) return 'N' in needle && container.NS.some((n) => numbersEqual(n, needle.N));
  if ('BS' in container) return 'B' in needle && container.BS.some((b) => compareBinary(b, needle.B) === 0);
  if ('L' in container) return container.L.some((element) => valuesEqual(element, needle));
  return false;
}

function ordered(op: '<' | '<=' | '>' | '>=', c: number): boolean {
  switch (op) {
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
  }
}

/** Whether an item (undefined: no item) satisfies a condition. */
export function evaluateCondition(condition: Condition, item: Item | undefined): boolean {
  switch (condition.kind) {
    case 'and':
      return evaluateCondition(condition.left, item) && evaluateCondition(condition.right, item);
    case 'or':
      return evaluateCondition(condition.left, item) || evaluateCondition(condition.right, item);
    case 'not':
      return !evaluateCondition(condition.condition, item);
    case 'compare': {
      const left = operandValue(condition.left, item);
      const right = operandValue(condition.right, item);
      if (condition.op === '=') return !!left && !!right && valuesEqual(left, right);
      if (condition.op === '<>') return !left || !right || !valuesEqual(left, right);
      if (!left || !right) return false;
      const c = compareValues(left, right);
      return c !== undefined && ordered(condition.op, c);
    }
    case 'between': {
      const value = operandValue(condition.operand, item);
      const lower = operandValue(condition.lower, item);
      const upper = operandValue(condition.upper, item);
      if (!value || !lower || !upper) return false;
      const low = compareValues(value, lower);
      const high = compareValues(value, upper);
      return low !== undefined && high !== undefined && low >= 0 && high <= 0;
    }
    case 'in': {
      const value = operandValue(condition.operand, item);
      if (!value) return false;
      return condition.list.some((o) => {
        const candidate = operandValue(o, item);
        return !!candidate && valuesEqual(value, candidate);
      });
    }
    case 'attribute_exists':
      return getPath(item, condition.path) !== undefined;
    case 'attribute_not_exists':
      return getPath(item, condition.path) === undefined;
    case 'attribute_type': {
      const value = operandValue(condition.operand, item);
      return !!value && attributeType(value) === condition.type;
    }
    case 'begins_with': {
      const value = operandValue(condition.operand, item);
      const prefix = operandValue(condition.prefix, item);
      return !!value && !!prefix && beginsWith(value, prefix);
    }
    case 'contains': {
      const container = operandValue(condition.operand, item);
      const needle = operandValue(condition.value, item);
      return !!container && !!needle && contains(container, needle);
    }
  }
}

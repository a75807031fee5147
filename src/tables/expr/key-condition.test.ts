import { describe, expect, it } from 'vitest';
import type { AttributeValue, Item, KeySchema } from '../types.js';
import { ExpressionContext } from './context.js';
import { DynamoValidationError } from './errors.js';
import {
  evaluateKeyCondition,
  matchesSortKey,
  parseKeyConditionExpression,
  validateKey,
} from './key-condition.js';

const composite: KeySchema = { partition: { name: 'p', type: 'S' }, sort: { name: 'c', type: 'N' } };
const hashOnly: KeySchema = { partition: { name: 'id', type: 'S' } };
const stringSort: KeySchema = { partition: { name: 'p', type: 'S' }, sort: { name: 'c', type: 'S' } };
const V: Record<string, AttributeValue> = {
  ':p': { S: 'k' },
  ':c': { N: '3' },
  ':c2': { N: '7' },
  ':s': { S: 'ab' },
  ':id': { S: 'i' },
};

function kc(source: string, schema: KeySchema = composite, values = V, names: Record<string, string> = {}) {
  return parseKeyConditionExpression(source, new ExpressionContext(names, values), schema);
}

function error(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DynamoValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a DynamoValidationError');
}

describe('KeyConditionExpression', () => {
  it('gives the partition value alone', () => {
    expect(kc('id = :id', hashOnly)).toEqual({ partition: { name: 'id', value: { S: 'i' } } });
    expect(kc('p = :p')).toEqual({ partition: { name: 'p', value: { S: 'k' } } });
  });

  it('gives one sort-key condition of each kind', () => {
    const cases: [string, string, AttributeValue[]][] = [
      ['c = :c', 'EQ', [V[':c']!]],
      ['c < :c', 'LT', [V[':c']!]],
      ['c <= :c', 'LE', [V[':c']!]],
      ['c > :c', 'GT', [V[':c']!]],
      ['c >= :c', 'GE', [V[':c']!]],
      ['c BETWEEN :c AND :c2', 'BETWEEN', [V[':c']!, V[':c2']!]],
    ];
    for (const [sortPart, op, values] of cases) {
      expect(kc(`p = :p AND ${sortPart}`)).toEqual({
        partition: { name: 'p', value: { S: 'k' } },
        sort: { name: 'c', op, values },
      });
    }
    expect(kc('p = :p AND begins_with(c, :s)', stringSort).sort).toEqual({
      name: 'c',
      op: 'BEGINS_WITH',
      values: [{ S: 'ab' }],
    });
  });

  it('accepts the key on the right (reversing the operator), either order, parentheses and #names', () => {
    expect(kc(':p = p AND :c < c').sort).toEqual({ name: 'c', op: 'GT', values: [V[':c']] });
    expect(kc(':c >= c AND p = :p').sort).toEqual({ name: 'c', op: 'LE', values: [V[':c']] });
    expect(kc('((c = :c) AND (p = :p))').sort?.op).toBe('EQ');
    expect(kc('#a = :p AND #b = :c', composite, V, { '#a': 'p', '#b': 'c' }).sort?.name).toBe('c');
  });

  it('refuses operators and functions a key condition cannot use', () => {
    expect(error(() => kc('p = :p AND c <> :c'))).toBe('Invalid operator used in KeyConditionExpression: <>');
    expect(error(() => kc('p = :p AND c IN (:c)'))).toBe(
      'Invalid operator used in KeyConditionExpression: IN',
    );
    expect(error(() => kc('c = :c OR p = :p'))).toBe('Invalid operator used in KeyConditionExpression: OR');
    expect(error(() => kc('NOT c = :c AND p = :p'))).toBe(
      'Invalid operator used in KeyConditionExpression: NOT',
    );
    expect(error(() => kc('p = :p AND attribute_exists(c)'))).toBe(
      'Invalid operator used in KeyConditionExpression: attribute_exists',
    );
    expect(error(() => kc('p = :p AND contains(c, :c)'))).toBe(
      'Invalid operator used in KeyConditionExpression: contains',
    );
    expect(error(() => kc('p = :p AND size(c) = :c'))).toBe(
      'KeyConditionExpressions cannot contain nested operations',
    );
    expect(error(() => kc('p = :p AND dog(c, :c)'))).toBe(
      'Invalid KeyConditionExpression: Invalid function name; function: dog',
    );
    expect(error(() => kc('p = :p AND BEGINS_WITH(c, :s)', stringSort))).toBe(
      'Invalid KeyConditionExpression: Invalid function name; function: BEGINS_WITH',
    );
  });

  it('refuses conditions that are not one key against values', () => {
    expect(error(() => kc('p = c'))).toBe(
      'Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition',
    );
    expect(error(() => kc(':p = :c'))).toBe(
      'Invalid condition in KeyConditionExpression: No key attribute specified',
    );
    expect(error(() => kc('p = :p AND a.b < :c'))).toBe(
      'KeyConditionExpressions cannot have conditions on nested attributes',
    );
    expect(error(() => kc('p = :p AND :c BETWEEN c AND :c2'))).toBe(
      'Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand',
    );
    expect(error(() => kc('p = :p AND begins_with(:s, c)', stringSort))).toBe(
      'Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand',
    );
    expect(error(() => kc('p = :p AND p = :p'))).toBe(
      'KeyConditionExpressions must only contain one condition per key',
    );
    expect(error(() => kc('p = :p AND c >= :c AND c <= :c2'))).toBe(
      'KeyConditionExpressions must only contain one condition per key',
    );
    expect(error(() => kc('p'))).toMatch(/Syntax error/);
    expect(error(() => kc('p = :p AND c != :c'))).toMatch(/^Invalid KeyConditionExpression: Syntax error/);
    expect(error(() => kc(''))).toBe('Invalid KeyConditionExpression: The expression can not be empty;');
  });

  it('checks the conditions against the key schema', () => {
    expect(error(() => kc('c = :c'))).toBe('Query condition missed key schema element: p');
    expect(error(() => kc('p = :p AND a < :c'))).toBe('Query condition missed key schema element: c');
    expect(error(() => kc('p = :p AND c < :c AND a < :c'))).toBe('Conditions can be of length 1 or 2 only');
    expect(error(() => kc('p < :p'))).toBe('Query key condition not supported');
    expect(error(() => kc('p BETWEEN :p AND :p'))).toBe('Query key condition not supported');
    expect(error(() => kc('id = :id AND c = :c', hashOnly))).toBe('Query key condition not supported');
    expect(error(() => kc('p = :c'))).toBe(
      'One or more parameter values were invalid: Condition parameter type does not match schema type',
    );
    expect(error(() => kc('p = :p AND c = :s'))).toBe(
      'One or more parameter values were invalid: Condition parameter type does not match schema type',
    );
    expect(error(() => kc('p = :p AND begins_with(c, :c)'))).toBe(
      'Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N',
    );
    expect(error(() => kc('p = :p AND c BETWEEN :c2 AND :c'))).toMatch(
      /^Invalid KeyConditionExpression: The BETWEEN operator requires upper bound/,
    );
  });
});

describe('evaluating key conditions', () => {
  it('matches partition and sort conditions', () => {
    const cond = kc('p = :p AND c BETWEEN :c AND :c2');
    expect(evaluateKeyCondition(cond, { p: { S: 'k' }, c: { N: '3' } })).toBe(true);
    expect(evaluateKeyCondition(cond, { p: { S: 'k' }, c: { N: '7.0' } })).toBe(true);
    expect(evaluateKeyCondition(cond, { p: { S: 'k' }, c: { N: '8' } })).toBe(false);
    expect(evaluateKeyCondition(cond, { p: { S: 'x' }, c: { N: '4' } })).toBe(false);
    const prefix = kc('p = :p AND begins_with(c, :s)', stringSort).sort!;
    expect(matchesSortKey(prefix, { S: 'abc' })).toBe(true);
    expect(matchesSortKey(prefix, { S: 'ba' })).toBe(false);
    expect(matchesSortKey(prefix, undefined)).toBe(false);
    for (const [op, value, expected] of [
      ['EQ', '3', true],
      ['LT', '2', true],
      ['LE', '3', true],
      ['GT', '4', true],
      ['GE', '2', false],
    ] as const) {
      expect(matchesSortKey({ name: 'c', op, values: [{ N: '3' }] }, { N: value })).toBe(expected);
    }
  });
});

describe('validateKey', () => {
  it('accepts exactly the key attributes with their types', () => {
    expect(() => validateKey({ p: { S: 'k' }, c: { N: '1' } }, composite)).not.toThrow();
    expect(() => validateKey({ id: { S: 'k' } }, hashOnly)).not.toThrow();
    const bad: Item[] = [
      { p: { S: 'k' } },
      { p: { S: 'k' }, c: { S: '1' } },
      { p: { S: 'k' }, c: { N: '1' }, x: { N: '1' } },
      {},
    ];
    for (const key of bad) {
      expect(error(() => validateKey(key, composite))).toBe(
        'The provided key element does not match the schema',
      );
    }
  });
});

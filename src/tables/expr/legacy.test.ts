import { describe, expect, it } from 'vitest';
import type { AttributeValue, Item, KeySchema } from '../types.js';
import { DynamoValidationError } from './errors.js';
import { evaluateCondition } from './evaluate.js';
import {
  attributesToGetToPaths,
  attributeUpdatesToUpdate,
  expectedToCondition,
  filterToCondition,
  keyConditionsToKeyCondition,
  type ExpectedAttributeValue,
  type LegacyCondition,
} from './legacy.js';
import { project } from './projection.js';
import { applyUpdate } from './update.js';

const n = (v: string | number) => ({ N: String(v) });
const s = (v: string) => ({ S: v });
const b64 = (v: string) => Buffer.from(v).toString('base64');

function error(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DynamoValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a DynamoValidationError');
}

const item: Item = {
  a: n(2),
  b: s('cat'),
  c: { B: b64('cat') },
  set: { NS: ['2', '4', '7'] },
  list: { L: [n(2), n(4)] },
  str: s('hello'),
};

function filter(conditions: Record<string, LegacyCondition>, op?: string): boolean {
  const condition = filterToCondition(conditions, op, 'ScanFilter');
  return condition ? evaluateCondition(condition, item) : true;
}

function expected(
  conditions: Record<string, ExpectedAttributeValue>,
  op?: string,
  on: Item | undefined = item,
) {
  const condition = expectedToCondition(conditions, op);
  return condition ? evaluateCondition(condition, on) : true;
}

describe('ComparisonOperator conditions', () => {
  const cases: [string, AttributeValue[], string, boolean][] = [
    ['a', [n(2)], 'EQ', true],
    ['a', [n('2.0')], 'EQ', true],
    ['a', [s('2')], 'EQ', false],
    ['set', [{ NS: ['7', '4', '2'] }], 'EQ', true],
    ['list', [{ L: [n(2), n(4)] }], 'EQ', true],
    ['a', [n(3)], 'NE', true],
    ['a', [s('2')], 'NE', true],
    ['q', [n(1)], 'NE', true],
    ['a', [n(2)], 'NE', false],
    ['a', [n(2)], 'LE', true],
    ['a', [n(1)], 'LE', false],
    ['a', [n(3)], 'LT', true],
    ['b', [s('dog')], 'LT', true],
    ['c', [{ B: b64('dog') }], 'LT', true],
    ['a', [s('3')], 'LT', false],
    ['a', [n(2)], 'GE', true],
    ['a', [n(1)], 'GT', true],
    ['q', [n(1)], 'GT', false],
    ['a', [], 'NOT_NULL', true],
    ['q', [], 'NOT_NULL', false],
    ['q', [], 'NULL', true],
    ['a', [], 'NULL', false],
    ['str', [s('ell')], 'CONTAINS', true],
    ['set', [n(4)], 'CONTAINS', true],
    ['list', [n(4)], 'CONTAINS', true],
    ['c', [{ B: b64('at') }], 'CONTAINS', true],
    ['str', [s('dog')], 'CONTAINS', false],
    ['str', [s('dog')], 'NOT_CONTAINS', true],
    ['set', [n(1)], 'NOT_CONTAINS', true],
    ['str', [s('ell')], 'NOT_CONTAINS', false],
    ['q', [n(1)], 'NOT_CONTAINS', false], // unlike NOT contains(): false when missing
    ['str', [s('hell')], 'BEGINS_WITH', true],
    ['c', [{ B: b64('ca') }], 'BEGINS_WITH', true],
    ['a', [s('2')], 'BEGINS_WITH', false],
    ['a', [n(1), n(2), n(3)], 'IN', true],
    ['a', [n(1), n(4)], 'IN', false],
    ['set', [n(2)], 'IN', false],
    ['a', [n(1), n(3)], 'BETWEEN', true],
    ['a', [n(2), n(2)], 'BETWEEN', true],
    ['b', [s('aardvark'), s('dog')], 'BETWEEN', true],
    ['a', [n(3), n(4)], 'BETWEEN', false],
    ['q', [n(0), n(100)], 'BETWEEN', false],
  ];
  it.each(cases)('%s %j %s is %s', (attribute, values, op, result) => {
    expect(filter({ [attribute]: { ComparisonOperator: op, AttributeValueList: values } })).toBe(result);
    expect(expected({ [attribute]: { ComparisonOperator: op, AttributeValueList: values } })).toBe(result);
  });

  it('joins several attributes with ConditionalOperator (AND by default)', () => {
    const t = { ComparisonOperator: 'EQ', AttributeValueList: [n(2)] };
    const f = { ComparisonOperator: 'EQ', AttributeValueList: [n(3)] };
    expect(filter({ a: t, b: { ComparisonOperator: 'NULL' } })).toBe(false);
    expect(filter({ a: t, b: { ComparisonOperator: 'NULL' } }, 'OR')).toBe(true);
    expect(filter({ a: t, set: { ComparisonOperator: 'NOT_NULL' } }, 'AND')).toBe(true);
    expect(filter({ a: f, str: f }, 'OR')).toBe(false);
    expect(filterToCondition({})).toBeUndefined();
    expect(error(() => filter({ a: t }, 'XOR'))).toBe(
      "1 validation error detected: Value 'XOR' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]",
    );
  });

  it('validates argument lists as DynamoDB does', () => {
    const v = (op: string, values: AttributeValue[]) => () =>
      filter({ a: { ComparisonOperator: op, AttributeValueList: values } });
    expect(error(v('EQ', [n(2), n(3)]))).toBe(
      'One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator',
    );
    expect(error(v('NULL', [n(2)]))).toMatch(
      /Invalid number of argument\(s\) for the NULL ComparisonOperator/,
    );
    expect(error(v('IN', []))).toMatch(/Invalid number of argument\(s\) for the IN ComparisonOperator/);
    expect(error(v('BETWEEN', [n(1)]))).toMatch(/for the BETWEEN ComparisonOperator/);
    expect(error(v('IN', [n(3), s('dog')]))).toBe(
      'One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type',
    );
    expect(error(v('LT', [{ SS: ['a'] }]))).toBe(
      'One or more parameter values were invalid: ComparisonOperator LT is not valid for SS AttributeValue type',
    );
    expect(error(v('CONTAINS', [{ L: [n(1)] }]))).toMatch(/ComparisonOperator CONTAINS is not valid for L/);
    expect(error(v('BEGINS_WITH', [n(3)]))).toMatch(/ComparisonOperator BEGINS_WITH is not valid for N/);
    expect(error(v('BETWEEN', [n(4), n(3)]))).toBe(
      'The BETWEEN condition was provided a range where the lower bound is greater than the upper bound',
    );
    expect(error(v('EQ', [n('x')]))).toBe('The parameter cannot be converted to a numeric value: x');
    expect(error(v('FOO', []))).toMatch(
      /^1 validation error detected: Value 'FOO' at 'scanFilter.a.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: \[IN, NULL, BETWEEN/,
    );
  });
});

describe('Expected', () => {
  it('Value alone means equal; Exists false means missing', () => {
    expect(expected({ a: { Value: n(2) } })).toBe(true);
    expect(expected({ a: { Value: n(3) } })).toBe(false);
    expect(expected({ q: { Value: n(3) } })).toBe(false);
    expect(expected({ a: { Value: n(2), Exists: true } })).toBe(true);
    expect(expected({ q: { Exists: false } })).toBe(true);
    expect(expected({ a: { Exists: false } })).toBe(false);
    expect(expected({ a: { Exists: false } }, undefined, {})).toBe(true);
    expect(expected({ a: { ComparisonOperator: 'GT', Value: n(1) } })).toBe(true);
    expect(expected({})).toBe(true);
  });

  it('refuses inconsistent entries with DynamoDB messages', () => {
    const m = (e: ExpectedAttributeValue) => error(() => expected({ a: e }));
    expect(m({ Exists: true })).toBe(
      'One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a',
    );
    expect(m({})).toBe(
      'One or more parameter values were invalid: Value must be provided when Exists is null for Attribute: a',
    );
    expect(m({ Exists: false, Value: n(1) })).toBe(
      'One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: a',
    );
    expect(m({ ComparisonOperator: 'EQ', Exists: true, AttributeValueList: [n(1)] })).toBe(
      'One or more parameter values were invalid: Exists and ComparisonOperator cannot be used together for Attribute: a',
    );
    expect(m({ ComparisonOperator: 'EQ', Value: n(1), AttributeValueList: [n(1)] })).toBe(
      'One or more parameter values were invalid: Value and AttributeValueList cannot be used together for Attribute: a',
    );
    expect(m({ AttributeValueList: [n(1)] })).toBe(
      'One or more parameter values were invalid: AttributeValueList can only be used with a ComparisonOperator for Attribute: a',
    );
    expect(m({ ComparisonOperator: 'EQ' })).toBe(
      'One or more parameter values were invalid: Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a',
    );
  });
});

describe('KeyConditions', () => {
  const schema: KeySchema = { partition: { name: 'p', type: 'S' }, sort: { name: 'c', type: 'N' } };
  it('converts to a key condition', () => {
    expect(
      keyConditionsToKeyCondition(
        {
          p: { ComparisonOperator: 'EQ', AttributeValueList: [s('k')] },
          c: { ComparisonOperator: 'BETWEEN', AttributeValueList: [n(1), n(5)] },
        },
        schema,
      ),
    ).toEqual({
      partition: { name: 'p', value: s('k') },
      sort: { name: 'c', op: 'BETWEEN', values: [n(1), n(5)] },
    });
  });

  it('refuses what a key condition cannot do', () => {
    const k = (conditions: Record<string, LegacyCondition>) => () =>
      keyConditionsToKeyCondition(conditions, schema);
    const p = { ComparisonOperator: 'EQ', AttributeValueList: [s('k')] };
    expect(error(k({ p, c: { ComparisonOperator: 'NE', AttributeValueList: [n(1)] } }))).toBe(
      'Attempted conditional constraint is not an indexable operation',
    );
    expect(error(k({ p: { ComparisonOperator: 'GT', AttributeValueList: [s('k')] } }))).toBe(
      'Query key condition not supported',
    );
    expect(error(k({ c: { ComparisonOperator: 'EQ', AttributeValueList: [n(1)] } }))).toBe(
      'Query condition missed key schema element: p',
    );
    expect(error(k({ p, c: { ComparisonOperator: 'EQ', AttributeValueList: [s('1')] } }))).toBe(
      'One or more parameter values were invalid: Condition parameter type does not match schema type',
    );
    expect(error(k({}))).toBe('Conditions can be of length 1 or 2 only');
  });
});

describe('AttributesToGet', () => {
  it('projects top-level attributes, a dot being part of the name', () => {
    expect(project({ 'a.b': n(1), a: { M: { b: n(2) } } }, attributesToGetToPaths(['a.b']))).toEqual({
      'a.b': n(1),
    });
    expect(error(() => attributesToGetToPaths(['a', 'a']))).toBe(
      'One or more parameter values were invalid: Duplicate value in attribute name: a',
    );
  });
});

describe('AttributeUpdates', () => {
  const apply = (updates: Parameters<typeof attributeUpdatesToUpdate>[0], on: Item | undefined) =>
    applyUpdate(attributeUpdatesToUpdate(updates), on, ['p']);

  it('PUTs, ADDs (numbers, sets and lists) and DELETEs', () => {
    expect(apply({ a: { Value: n(1) }, b: { Action: 'PUT', Value: s('x') } }, { p: s('k') })).toEqual({
      p: s('k'),
      a: n(1),
      b: s('x'),
    });
    expect(apply({ a: { Action: 'ADD', Value: n(3) } }, { a: n(2) })).toEqual({ a: n(5) });
    expect(apply({ a: { Action: 'ADD', Value: n(3) } }, undefined)).toEqual({ a: n(3) });
    expect(apply({ s: { Action: 'ADD', Value: { SS: ['b'] } } }, { s: { SS: ['a'] } })).toEqual({
      s: { SS: ['a', 'b'] },
    });
    expect(apply({ l: { Action: 'ADD', Value: { L: [n(2)] } } }, { l: { L: [n(1)] } })).toEqual({
      l: { L: [n(1), n(2)] },
    });
    expect(apply({ s: { Action: 'DELETE', Value: { SS: ['a'] } } }, { s: { SS: ['a', 'b'] } })).toEqual({
      s: { SS: ['b'] },
    });
    expect(apply({ s: { Action: 'DELETE', Value: { SS: ['a'] } } }, { s: { SS: ['a'] } })).toEqual({});
    expect(apply({ s: { Action: 'DELETE' } }, { s: n(1), t: n(2) })).toEqual({ t: n(2) });
    expect(apply({ 'a.b': { Value: n(1) } }, {})).toEqual({ 'a.b': n(1) });
  });

  it('refuses what DynamoDB refuses', () => {
    expect(error(() => apply({ a: { Action: 'PUT' } }, {}))).toBe(
      'One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified',
    );
    expect(error(() => apply({ a: { Action: 'DELETE', Value: s('x') } }, {}))).toBe(
      'One or more parameter values were invalid: DELETE action with value is not supported for the type S',
    );
    expect(error(() => apply({ a: { Action: 'ADD', Value: s('x') } }, {}))).toBe(
      'One or more parameter values were invalid: ADD action is not supported for the type S',
    );
    expect(error(() => apply({ a: { Action: 'ADD', Value: n(1) } }, { a: s('x') }))).toBe(
      'Type mismatch for attribute to update',
    );
    expect(error(() => apply({ a: { Action: 'DELETE', Value: { NS: ['1'] } } }, { a: { SS: ['1'] } }))).toBe(
      'Type mismatch for attribute to update',
    );
    expect(error(() => apply({ p: { Value: s('x') } }, {}))).toBe(
      'One or more parameter values were invalid: Cannot update attribute p. This attribute is part of the key',
    );
    expect(error(() => apply({ a: { Action: 'MERGE', Value: n(1) } }, {}))).toMatch(
      /Value 'MERGE' at 'attributeUpdates.a.member.action' failed to satisfy constraint/,
    );
  });
});

import { describe, expect, it } from 'vitest';
import type { AttributeValue, Item } from '../types.js';
import { ExpressionContext } from './context.js';
import { evaluateCondition, sizeOf } from './evaluate.js';
import { parseConditionExpression } from './parser.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

const item: Item = {
  s: { S: 'hello' },
  n: { N: '5' },
  n2: { N: '5.0' },
  b: { B: b64('hi there') },
  bool: { BOOL: true },
  nul: { NULL: true },
  ss: { SS: ['a', 'b'] },
  ns: { NS: ['1', '2.5'] },
  bs: { BS: [b64('x'), b64('y')] },
  l: { L: [{ N: '1' }, { S: 'two' }, { SS: ['p', 'q'] }, { L: [{ N: '3' }] }] },
  m: { M: { x: { N: '1' }, y: { M: { z: { S: 'deep' } } } } },
  emptyS: { S: '' },
  uni: { S: 'é𝄞' },
};

function check(
  source: string,
  values: Record<string, AttributeValue> = {},
  on: Item | undefined = item,
): boolean {
  return evaluateCondition(parseConditionExpression(source, new ExpressionContext({}, values)), on);
}

describe('comparisons', () => {
  const table: [string, Record<string, AttributeValue>, boolean][] = [
    ['n = :v', { ':v': { N: '5' } }, true],
    ['n = :v', { ':v': { N: '5.00' } }, true],
    ['n = :v', { ':v': { S: '5' } }, false],
    ['n <> :v', { ':v': { S: '5' } }, true],
    ['n <> :v', { ':v': { N: '5' } }, false],
    ['n = n2', {}, true],
    ['n < :v', { ':v': { N: '10' } }, true],
    ['n < :v', { ':v': { N: '5' } }, false],
    ['n <= :v', { ':v': { N: '5' } }, true],
    ['n > :v', { ':v': { N: '-5' } }, true],
    ['n >= :v', { ':v': { N: '5.000001' } }, false],
    ['s < :v', { ':v': { S: 'help' } }, true],
    ['s > :v', { ':v': { S: 'hell' } }, true],
    ['b < :v', { ':v': { B: b64('hi therf') } }, true],
    ['b >= :v', { ':v': { B: b64('hi') } }, true],
    // Type mismatches are false, not errors.
    ['n < :v', { ':v': { S: '10' } }, false],
    ['s > :v', { ':v': { N: '1' } }, false],
    ['l < :v', { ':v': { N: '1' } }, false],
    ['bool = :v', { ':v': { BOOL: true } }, true],
    ['bool = :v', { ':v': { BOOL: false } }, false],
    ['nul = :v', { ':v': { NULL: true } }, true],
    ['ss = :v', { ':v': { SS: ['b', 'a'] } }, true],
    ['ss = :v', { ':v': { SS: ['a'] } }, false],
    ['ns = :v', { ':v': { NS: ['2.50', '1.0'] } }, true],
    ['ss <> :v', { ':v': { SS: ['b', 'a'] } }, false],
    ['m.y = :v', { ':v': { M: { z: { S: 'deep' } } } }, true],
    ['l[1] = :v', { ':v': { S: 'two' } }, true],
    ['l[3][0] = :v', { ':v': { N: '3' } }, true],
    ['m.y.z = :v', { ':v': { S: 'deep' } }, true],
  ];
  it.each(table)('%s with %j is %s', (source, values, expected) => {
    expect(check(source, values)).toBe(expected);
  });

  it('treats a missing attribute as unequal to everything and unordered', () => {
    for (const op of ['=', '<', '<=', '>', '>='])
      expect(check(`q ${op} :v`, { ':v': { N: '1' } })).toBe(false);
    for (const op of ['=', '<', '<=', '>', '>='])
      expect(check(`:v ${op} q`, { ':v': { N: '1' } })).toBe(false);
    expect(check('q <> :v', { ':v': { N: '1' } })).toBe(true);
    expect(check('q <> z')).toBe(true);
    expect(check('q = z')).toBe(false);
    expect(check('m.nope = :v', { ':v': { N: '1' } })).toBe(false);
    expect(check('l[10] = :v', { ':v': { N: '1' } })).toBe(false);
    expect(check('s.x = :v', { ':v': { N: '1' } })).toBe(false); // a path through a string
    expect(check('m[0] = :v', { ':v': { N: '1' } })).toBe(false); // an index into a map
  });

  it('evaluates against a missing item as against an empty one', () => {
    expect(check('attribute_not_exists(a)', {}, undefined)).toBe(true);
    expect(check('a = :v', { ':v': { N: '1' } }, undefined)).toBe(false);
    expect(check('a <> :v', { ':v': { N: '1' } }, undefined)).toBe(true);
  });
});

describe('BETWEEN and IN', () => {
  it('BETWEEN is inclusive and false for missing or mismatched values', () => {
    expect(check('n BETWEEN :a AND :b', { ':a': { N: '5' }, ':b': { N: '5' } })).toBe(true);
    expect(check('n BETWEEN :a AND :b', { ':a': { N: '1' }, ':b': { N: '4.99' } })).toBe(false);
    expect(check('s BETWEEN :a AND :b', { ':a': { S: 'a' }, ':b': { S: 'z' } })).toBe(true);
    expect(check('n BETWEEN :a AND :b', { ':a': { S: '1' }, ':b': { S: '9' } })).toBe(false);
    expect(check('q BETWEEN :a AND :b', { ':a': { N: '1' }, ':b': { N: '9' } })).toBe(false);
    expect(check('n BETWEEN n2 AND :b', { ':b': { N: '9' } })).toBe(true);
    // Bounds read from the item may be in any order or type: then the condition is just false.
    expect(check('n BETWEEN :b AND n2', { ':b': { N: '9' } })).toBe(false);
    expect(check('n BETWEEN s AND :b', { ':b': { N: '9' } })).toBe(false);
  });

  it('IN compares with equality, any types mixed', () => {
    expect(check('n IN (:a, :b)', { ':a': { S: 'dog' }, ':b': { N: '5' } })).toBe(true);
    expect(check('n IN (:a, :b)', { ':a': { S: '5' }, ':b': { N: '6' } })).toBe(false);
    expect(check('ss IN (:a)', { ':a': { SS: ['a', 'b'] } })).toBe(true);
    expect(check('q IN (:a)', { ':a': { N: '1' } })).toBe(false);
    expect(check('m IN (m)')).toBe(true);
  });
});

describe('functions', () => {
  it('attribute_exists and attribute_not_exists', () => {
    expect(check('attribute_exists(s)')).toBe(true);
    expect(check('attribute_exists(nul)')).toBe(true);
    expect(check('attribute_exists(m.y.z)')).toBe(true);
    expect(check('attribute_exists(q)')).toBe(false);
    expect(check('attribute_exists(l[9])')).toBe(false);
    expect(check('attribute_not_exists(q)')).toBe(true);
    expect(check('attribute_not_exists(s)')).toBe(false);
  });

  it('attribute_type knows all ten types', () => {
    const types: [string, string][] = [
      ['s', 'S'],
      ['n', 'N'],
      ['b', 'B'],
      ['bool', 'BOOL'],
      ['nul', 'NULL'],
      ['ss', 'SS'],
      ['ns', 'NS'],
      ['bs', 'BS'],
      ['l', 'L'],
      ['m', 'M'],
    ];
    for (const [attr, type] of types) {
      expect(check(`attribute_type(${attr}, :t)`, { ':t': { S: type } })).toBe(true);
      expect(check(`attribute_type(${attr}, :t)`, { ':t': { S: type === 'S' ? 'N' : 'S' } })).toBe(false);
    }
    expect(check('attribute_type(q, :t)', { ':t': { S: 'S' } })).toBe(false);
    expect(check('attribute_type(:v, :t)', { ':v': { N: '0' }, ':t': { S: 'N' } })).toBe(true);
  });

  it('begins_with on strings and binaries only', () => {
    expect(check('begins_with(s, :p)', { ':p': { S: 'hell' } })).toBe(true);
    expect(check('begins_with(s, :p)', { ':p': { S: 'dog' } })).toBe(false);
    expect(check('begins_with(s, :p)', { ':p': { S: '' } })).toBe(true);
    expect(check('begins_with(b, :p)', { ':p': { B: b64('hi') } })).toBe(true);
    expect(check('begins_with(b, :p)', { ':p': { S: 'hi' } })).toBe(false);
    expect(check('begins_with(n, :p)', { ':p': { S: '5' } })).toBe(false);
    expect(check('begins_with(q, :p)', { ':p': { S: 'a' } })).toBe(false);
    expect(check('begins_with(:str, s)', { ':str': { S: 'hellohi' } })).toBe(true);
  });

  it('contains finds substrings, set members and list elements', () => {
    expect(check('contains(s, :v)', { ':v': { S: 'ell' } })).toBe(true);
    expect(check('contains(s, :v)', { ':v': { S: 'xyz' } })).toBe(false);
    expect(check('contains(b, :v)', { ':v': { B: b64('there') } })).toBe(true);
    expect(check('contains(b, :v)', { ':v': { B: b64('dog') } })).toBe(false);
    expect(check('contains(ss, :v)', { ':v': { S: 'a' } })).toBe(true);
    expect(check('contains(ss, :v)', { ':v': { S: 'c' } })).toBe(false);
    expect(check('contains(ns, :v)', { ':v': { N: '2.50' } })).toBe(true);
    expect(check('contains(ns, :v)', { ':v': { S: '1' } })).toBe(false);
    expect(check('contains(bs, :v)', { ':v': { B: b64('y') } })).toBe(true);
    expect(check('contains(l, :v)', { ':v': { S: 'two' } })).toBe(true);
    expect(check('contains(l, :v)', { ':v': { N: '1.0' } })).toBe(true);
    expect(check('contains(l, :v)', { ':v': { SS: ['q', 'p'] } })).toBe(true);
    expect(check('contains(l, :v)', { ':v': { L: [{ N: '3' }] } })).toBe(true);
    expect(check('contains(l, :v)', { ':v': { S: 'tw' } })).toBe(false);
    expect(check('contains(n, :v)', { ':v': { N: '5' } })).toBe(false);
    expect(check('contains(m, :v)', { ':v': { S: 'x' } })).toBe(false);
    expect(check('contains(q, :v)', { ':v': { S: 'x' } })).toBe(false);
    expect(check('contains(s, :v)', { ':v': { SS: ['hello'] } })).toBe(false);
  });

  it('size counts characters (UTF-16 units), bytes, members, elements and keys', () => {
    const size = (attr: string) => sizeOf(item[attr]);
    expect(size('s')).toBe(5);
    expect(size('uni')).toBe(3);
    expect(size('emptyS')).toBe(0);
    expect(size('b')).toBe(8);
    expect(size('ss')).toBe(2);
    expect(size('ns')).toBe(2);
    expect(size('bs')).toBe(2);
    expect(size('l')).toBe(4);
    expect(size('m')).toBe(2);
    expect(size('n')).toBeUndefined();
    expect(size('bool')).toBeUndefined();
    expect(size('nul')).toBeUndefined();
    expect(check('size(s) = :v', { ':v': { N: '5' } })).toBe(true);
    expect(check('size(m.y) = :v', { ':v': { N: '1' } })).toBe(true);
    expect(check('size(l) > :v', { ':v': { N: '3' } })).toBe(true);
    expect(check('size(n) = :v', { ':v': { N: '1' } })).toBe(false);
    expect(check('size(q) <> :v', { ':v': { N: '1' } })).toBe(true);
    expect(check('size(s) = :v', { ':v': { S: '5' } })).toBe(false);
    expect(check('size(s) = n')).toBe(true);
    expect(check('size(:v) = :n', { ':v': { S: 'abc' }, ':n': { N: '3' } })).toBe(true);
  });
});

describe('logical operators', () => {
  const t = 'attribute_exists(s)';
  const f = 'attribute_exists(q)';
  it.each([
    [`${t} AND ${t}`, true],
    [`${t} AND ${f}`, false],
    [`${f} AND ${t}`, false],
    [`${f} OR ${t}`, true],
    [`${f} OR ${f}`, false],
    [`NOT ${f}`, true],
    [`NOT ${t}`, false],
    [`NOT NOT NOT NOT ${t}`, true],
    [`${t} OR ${f} AND ${f}`, true], // AND binds tighter: t OR (f AND f)
    [`(${t} OR ${f}) AND ${f}`, false],
    [`NOT ${t} AND ${f}`, false], // (NOT t) AND f
    [`NOT ${f} OR ${t}`, true],
    [`NOT (${f} OR ${t})`, false],
  ])('%s is %s', (source, expected) => {
    expect(check(source)).toBe(expected);
  });
});

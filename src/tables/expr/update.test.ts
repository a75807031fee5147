import { describe, expect, it } from 'vitest';
import type { AttributeValue, Item } from '../types.js';
import { ExpressionContext } from './context.js';
import { DynamoValidationError } from './errors.js';
import { parseUpdateExpression } from './parser.js';
import { applyUpdate, assertKeyNotUpdated } from './update.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const n = (v: string | number) => ({ N: String(v) });
const s = (v: string) => ({ S: v });

function update(
  source: string,
  on: Item | undefined,
  values: Record<string, AttributeValue> = {},
  names: Record<string, string> = {},
  keys: string[] = ['p'],
): Item {
  return applyUpdate(parseUpdateExpression(source, new ExpressionContext(names, values)), on, keys);
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

const INVALID_PATH = 'The document path provided in the update expression is invalid for update';
const WRONG_TYPE = 'An operand in the update expression has an incorrect data type';
const MISSING = 'The provided expression refers to an attribute that does not exist in the item';

describe('SET', () => {
  it('sets top-level attributes, creating the item if needed, and merges with the old item', () => {
    expect(update('SET a = :v', undefined, { ':v': n(4) })).toEqual({ a: n(4) });
    expect(update('SET b = :v, c = :v', { p: s('k'), a: s('hi') }, { ':v': s('x') })).toEqual({
      p: s('k'),
      a: s('hi'),
      b: s('x'),
      c: s('x'),
    });
  });

  it('does not modify the item it is given', () => {
    const old: Item = { a: { M: { b: n(1) } }, l: { L: [n(1), n(2)] } };
    const copy = structuredClone(old);
    update('SET a.b = :v REMOVE l[0]', old, { ':v': n(2) });
    expect(old).toEqual(copy);
  });

  it('copies attributes, reading every value before writing any', () => {
    expect(update('SET b = a', { a: s('hello') })).toEqual({ a: s('hello'), b: s('hello') });
    expect(update('REMOVE a SET b = a', { a: s('hello') })).toEqual({ b: s('hello') });
    expect(update('SET a = b, b = a', { a: n(1), b: n(2) })).toEqual({ a: n(2), b: n(1) });
    expect(error(() => update('SET c = z', { a: n(1) }))).toBe(MISSING);
    expect(error(() => update('SET c = z', undefined))).toBe(MISSING);
    expect(error(() => update('SET x = :v, y = x', { a: n(1) }, { ':v': n(4) }))).toBe(MISSING);
    expect(update('SET z = a.c.x', { a: { M: { c: { M: { x: n(7) } } } } })).toMatchObject({ z: n(7) });
  });

  it('sets nested map keys and list elements, but never creates intermediate maps', () => {
    const old: Item = {
      a: { M: { b: n(3), c: { L: [s('hi'), { M: { x: { M: { y: { L: [n(3), n(5)] } } } } }] } } },
    };
    expect(update('SET a.c[1].#n.y[1] = :v', old, { ':v': n(9) }, { '#n': 'x' })).toEqual({
      a: { M: { b: n(3), c: { L: [s('hi'), { M: { x: { M: { y: { L: [n(3), n(9)] } } } } }] } } },
    });
    expect(update('SET a.d = :v', old, { ':v': n(1) }).a).toMatchObject({ M: { d: n(1) } });
    for (const source of [
      'SET q.c = :v',
      'SET a.b.c = :v',
      'SET a.c.x = :v',
      'SET a[0] = :v',
      'SET q[0] = :v',
      'SET a.q.r = :v',
    ]) {
      expect(error(() => update(source, old, { ':v': n(1) }))).toBe(INVALID_PATH);
    }
    expect(error(() => update('SET a.b = :v', undefined, { ':v': n(1) }))).toBe(INVALID_PATH);
  });

  it('replaces a nested value by one of another type', () => {
    expect(
      update('SET a.c = :v', { a: { M: { b: n(3), c: { M: { one: n(1) } } } } }, { ':v': n(7) }),
    ).toEqual({
      a: { M: { b: n(3), c: n(7) } },
    });
  });

  it('appends when the index is past the end of the list, in index order', () => {
    const old: Item = { a: { L: [s('one'), s('two'), s('three')] } };
    expect(update('SET a[7] = :v', old, { ':v': s('hello') })).toEqual({
      a: { L: [s('one'), s('two'), s('three'), s('hello')] },
    });
    expect(
      update('SET a[84] = :a, a[37] = :b, a[17] = :c, a[50] = :d', old, {
        ':a': s('a1'),
        ':b': s('a2'),
        ':c': s('a3'),
        ':d': s('a4'),
      }),
    ).toEqual({ a: { L: [s('one'), s('two'), s('three'), s('a3'), s('a2'), s('a4'), s('a1')] } });
  });

  it('adds and subtracts numbers exactly', () => {
    expect(update('SET a = a + :v', { a: n(2) }, { ':v': n(3) })).toEqual({ a: n(5) });
    expect(update('SET a = :v - a', { a: n(2) }, { ':v': n(7) })).toEqual({ a: n(5) });
    expect(update('SET b = :x + :y', undefined, { ':x': n(1), ':y': n('10000000000000000000000') })).toEqual({
      b: n('10000000000000000000001'),
    });
    expect(
      update('SET b = :x + :y', undefined, {
        ':x': n('12345678901234567890123456789012345678'),
        ':y': n('-12345678901234567890123456789012345677'),
      }),
    ).toEqual({ b: n(1) });
    expect(update('SET b = :x - :y', undefined, { ':x': n('0.1'), ':y': n('0.3') })).toEqual({
      b: n('-0.2'),
    });
    expect(error(() => update('SET b = :x + :y', undefined, { ':x': n('1e50'), ':y': n(1) }))).toBe(
      'Number overflow. Attempting to store a number with magnitude larger than supported range',
    );
    expect(error(() => update('SET b = :x + :y', undefined, { ':x': n('9e125'), ':y': n('9e125') }))).toMatch(
      /^Number overflow/,
    );
  });

  it('does arithmetic only on numbers', () => {
    expect(error(() => update('SET a = a + :v', { a: s('x') }, { ':v': n(1) }))).toBe(WRONG_TYPE);
    expect(error(() => update('SET a = :v - b', { b: { SS: ['x'] } }, { ':v': n(1) }))).toBe(WRONG_TYPE);
    expect(error(() => update('SET a = a + :v', {}, { ':v': n(1) }))).toBe(MISSING);
  });

  it('if_not_exists keeps an existing value or uses the fallback', () => {
    expect(update('SET a = if_not_exists(a, :v)', {}, { ':v': n(2) })).toEqual({ a: n(2) });
    expect(update('SET a = if_not_exists(a, :v)', { a: n(1) }, { ':v': n(2) })).toEqual({ a: n(1) });
    expect(update('SET b = if_not_exists(a, :v)', { a: n(1) }, { ':v': n(2) })).toEqual({ a: n(1), b: n(1) });
    expect(update('SET c = if_not_exists(c, :v) + :w', {}, { ':v': n(2), ':w': n(3) })).toEqual({ c: n(5) });
    expect(update('SET a = if_not_exists(b, if_not_exists(c, :v))', {}, { ':v': n(3) })).toEqual({ a: n(3) });
  });

  it('list_append concatenates lists, in either order', () => {
    const old: Item = { a: { L: [s('hi'), n(2)] } };
    expect(update('SET a = list_append(a, :v)', old, { ':v': { L: [n(4)] } })).toEqual({
      a: { L: [s('hi'), n(2), n(4)] },
    });
    expect(update('SET a = list_append(:v, a)', old, { ':v': { L: [s('dog')] } })).toEqual({
      a: { L: [s('dog'), s('hi'), n(2)] },
    });
    expect(
      update('SET b = list_append(if_not_exists(b, :e), :v)', {}, { ':e': { L: [] }, ':v': { L: [n(1)] } }),
    ).toEqual({
      b: { L: [n(1)] },
    });
    expect(error(() => update('SET a = list_append(b, :v)', { b: n(7) }, { ':v': { L: [] } }))).toBe(
      WRONG_TYPE,
    );
    expect(error(() => update('SET a = list_append(:v, b)', { b: { SS: ['x'] } }, { ':v': { L: [] } }))).toBe(
      WRONG_TYPE,
    );
    expect(error(() => update('SET a = list_append(b, :v)', {}, { ':v': { L: [] } }))).toBe(MISSING);
  });
});

describe('attribute names that are JavaScript property names', () => {
  it('stores "__proto__" and "constructor" as ordinary attributes', () => {
    const out = update(
      'SET #p = :v, #c.#p = :v',
      { constructor: { M: {} } },
      { ':v': n(1) },
      { '#p': '__proto__', '#c': 'constructor' },
    );
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out).sort()).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual(n(1));
    expect(update('SET a = #p', out, {}, { '#p': '__proto__' }).a).toEqual(n(1));
  });
});

describe('REMOVE', () => {
  it('removes attributes, nested keys and list elements (which shift)', () => {
    expect(update('REMOVE a', { a: s('x'), b: s('y') })).toEqual({ b: s('y') });
    const old: Item = {
      a: {
        M: { b: n(3), c: { L: [s('hi'), { M: { x: { M: { y: { L: [n(3), n(5), n(7)] } } }, q: n(2) } }] } },
      },
    };
    expect(update('REMOVE a.c[1].x.y[1], a.c[1].q', old)).toEqual({
      a: { M: { b: n(3), c: { L: [s('hi'), { M: { x: { M: { y: { L: [n(3), n(7)] } } } } }] } } },
    });
    expect(update('REMOVE a[0], a[2]', { a: { L: [n(0), n(1), n(2), n(3)] } })).toEqual({
      a: { L: [n(1), n(3)] },
    });
    expect(update('REMOVE a.b', { a: { M: { b: n(1) } } })).toEqual({ a: { M: {} } });
    expect(update('REMOVE a[0]', { a: { L: [n(1)] } })).toEqual({ a: { L: [] } });
  });

  it('uses the list positions from before the update', () => {
    const old: Item = { a: { L: [2, 3, 4, 5, 6, 7].map(n) } };
    expect(update('REMOVE a[1] SET a[3] = :v', old, { ':v': n(17) })).toEqual({
      a: { L: [2, 4, 17, 6, 7].map(n) },
    });
    expect(update('SET a[3] = :v REMOVE a[1]', old, { ':v': n(17) })).toEqual({
      a: { L: [2, 4, 17, 6, 7].map(n) },
    });
  });

  it('ignores missing leaves, but not missing or mistyped parents', () => {
    const old: Item = { a: { M: { x: n(3) } }, b: { L: [s('hi')] }, s: s('str') };
    expect(update('REMOVE a.y, b[7], c', old)).toEqual(old);
    for (const source of ['REMOVE s.c', 'REMOVE b.c', 'REMOVE c.c', 'REMOVE s[0]', 'REMOVE q[0]']) {
      expect(error(() => update(source, old))).toBe(INVALID_PATH);
    }
    // DynamoDB ignores them when there is no item at all.
    expect(update('REMOVE x.y', undefined)).toEqual({});
    expect(update('REMOVE x[0]', undefined)).toEqual({});
  });
});

describe('ADD', () => {
  it('adds to numbers, creating them from zero', () => {
    expect(update('ADD a :v', { a: n(3) }, { ':v': n(4) })).toEqual({ a: n(7) });
    expect(update('ADD b :v', {}, { ':v': n(7) })).toEqual({ b: n(7) });
    expect(update('ADD b :v', undefined, { ':v': n('-1.50') })).toEqual({ b: n('-1.5') });
    expect(update('ADD m.c :v', { m: { M: { c: n(1) } } }, { ':v': n(1) })).toEqual({
      m: { M: { c: n(2) } },
    });
    expect(update('ADD m.d :v', { m: { M: {} } }, { ':v': n(1) })).toEqual({ m: { M: { d: n(1) } } });
    expect(error(() => update('ADD m.d :v', {}, { ':v': n(1) }))).toBe(INVALID_PATH);
  });

  it('unions sets of the same type, creating them when missing', () => {
    expect(update('ADD a :v', { a: { SS: ['dog', 'cat'] } }, { ':v': { SS: ['pig', 'cat'] } })).toEqual({
      a: { SS: ['dog', 'cat', 'pig'] },
    });
    expect(update('ADD a :v', { a: { NS: ['1', '2'] } }, { ':v': { NS: ['1.0', '2.00', '3'] } })).toEqual({
      a: { NS: ['1', '2', '3'] },
    });
    expect(update('ADD a :v', { a: { BS: [b64('x')] } }, { ':v': { BS: [b64('x'), b64('y')] } })).toEqual({
      a: { BS: [b64('x'), b64('y')] },
    });
    expect(update('ADD b :v', {}, { ':v': { SS: ['dog'] } })).toEqual({ b: { SS: ['dog'] } });
  });

  it('refuses to add to an attribute of another type', () => {
    expect(error(() => update('ADD b :v', { b: s('hi') }, { ':v': n(1) }))).toBe(WRONG_TYPE);
    expect(error(() => update('ADD a :v', { a: { SS: ['x'] } }, { ':v': { NS: ['1'] } }))).toBe(WRONG_TYPE);
    expect(error(() => update('ADD a :v', { a: { L: [n(1)] } }, { ':v': { NS: ['1'] } }))).toBe(WRONG_TYPE);
    expect(error(() => update('ADD a :v', { a: n(1) }, { ':v': { NS: ['1'] } }))).toBe(WRONG_TYPE);
  });
});

describe('DELETE', () => {
  it('removes set members, and the attribute with the last one', () => {
    const old: Item = { a: { SS: ['dog', 'cat', 'mouse'] }, b: s('hi') };
    expect(update('DELETE a :v', old, { ':v': { SS: ['cat', 'mouse'] } })).toEqual({
      a: { SS: ['dog'] },
      b: s('hi'),
    });
    expect(update('DELETE a :v', old, { ':v': { SS: ['pig'] } })).toEqual(old);
    expect(update('DELETE a :v', old, { ':v': { SS: ['cat', 'mouse', 'dog'] } })).toEqual({ b: s('hi') });
    expect(update('DELETE q :v', old, { ':v': { SS: ['dog'] } })).toEqual(old);
    expect(
      update('DELETE a :v', { a: { NS: ['10.0', '20', '30'] } }, { ':v': { NS: ['10', '2e1'] } }),
    ).toEqual({
      a: { NS: ['30'] },
    });
    expect(update('DELETE m.s :v', { m: { M: { s: { NS: ['1'] } } } }, { ':v': { NS: ['1'] } })).toEqual({
      m: { M: {} },
    });
  });

  it('refuses a set of another type', () => {
    expect(error(() => update('DELETE a :v', { a: { SS: ['1'] } }, { ':v': { NS: ['1'] } }))).toBe(
      WRONG_TYPE,
    );
    expect(error(() => update('DELETE a :v', { a: s('x') }, { ':v': { SS: ['x'] } }))).toBe(WRONG_TYPE);
  });
});

describe('key attributes', () => {
  it('cannot be written by any clause, even nested', () => {
    const keys = ['p', 'c'];
    const cases: [string, Record<string, AttributeValue>, string][] = [
      ['SET p = :v', { ':v': n(1) }, 'p'],
      ['SET c = :v', { ':v': n(1) }, 'c'],
      ['REMOVE p', {}, 'p'],
      ['ADD c :v', { ':v': n(1) }, 'c'],
      ['DELETE p :v', { ':v': { SS: ['x'] } }, 'p'],
      ['SET p.x = :v', { ':v': n(1) }, 'p'],
      ['SET a = :v, c = :v, p = :v', { ':v': n(1) }, 'p'],
    ];
    for (const [source, values, key] of cases) {
      expect(error(() => update(source, { p: s('k'), c: s('r') }, values, {}, keys))).toBe(
        `One or more parameter values were invalid: Cannot update attribute ${key}. This attribute is part of the key`,
      );
    }
    const ast = parseUpdateExpression('SET a = p', new ExpressionContext());
    expect(() => assertKeyNotUpdated(ast, keys)).not.toThrow();
  });
});

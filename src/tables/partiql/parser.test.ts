import { describe, expect, it } from 'vitest';
import { DynamoValidationError } from '../expr/errors.js';
import { evaluateCondition } from '../expr/evaluate.js';
import type { KeySchema } from '../types.js';
import { fullKey, parseStatement, queryPlan, type Statement } from './index.js';

const where = (s: Statement) => (s.kind === 'insert' ? undefined : s.where);

describe('PartiQL parser', () => {
  it('parses SELECT with a projection, an index, a WHERE and ORDER BY', () => {
    const s = parseStatement(
      `select a, "b c".d[0], m['k'] FROM "orders"."byStatus" WHERE status = ? AND ts >= 10 ORDER BY ts DESC`,
      [{ S: 'open' }],
    );
    expect(s).toEqual({
      kind: 'select',
      table: 'orders',
      index: 'byStatus',
      projection: [['a'], ['b c', 'd', 0], ['m', 'k']],
      where: {
        kind: 'and',
        left: {
          kind: 'compare',
          op: '=',
          left: { kind: 'path', path: ['status'] },
          right: { kind: 'value', value: { S: 'open' } },
        },
        right: {
          kind: 'compare',
          op: '>=',
          left: { kind: 'path', path: ['ts'] },
          right: { kind: 'value', value: { N: '10' } },
        },
      },
      orderBy: { path: ['ts'], descending: true },
    });
  });

  it('reads every literal: strings, numbers, booleans, NULL, sets, lists and maps', () => {
    const s = parseStatement(
      `INSERT INTO t VALUE {'s': 'it''s', 'n': -1.5e3, 'b': TRUE, 'z': null, 'ss': <<'x', 'y'>>, 'ns': <<1, 2>>, 'l': [1, 'a', [ ]], 'm': {'p': ?}}`,
      [{ BOOL: false }],
    );
    expect(s).toEqual({
      kind: 'insert',
      table: 't',
      item: {
        s: { S: "it's" },
        n: { N: '-1.5e3' },
        b: { BOOL: true },
        z: { NULL: true },
        ss: { SS: ['x', 'y'] },
        ns: { NS: ['1', '2'] },
        l: { L: [{ N: '1' }, { S: 'a' }, { L: [] }] },
        m: { M: { p: { BOOL: false } } },
      },
    });
  });

  it('parses UPDATE with SET, REMOVE, arithmetic, list_append, set_add and RETURNING', () => {
    const s = parseStatement(
      `UPDATE "t" SET a = a + 1, l = list_append(l, [?]) SET tags = set_add(tags, <<'n'>>) REMOVE old, x.y[2] WHERE pk = 'k' RETURNING MODIFIED NEW *`,
      [{ S: 'v' }],
    );
    expect(s).toMatchObject({
      kind: 'update',
      table: 't',
      update: {
        set: [
          {
            path: ['a'],
            value: {
              kind: 'plus',
              left: { kind: 'path', path: ['a'] },
              right: { kind: 'value', value: { N: '1' } },
            },
          },
          { path: ['l'], value: { kind: 'list_append' } },
        ],
        remove: [['old'], ['x', 'y', 2]],
        add: [{ path: ['tags'], value: { SS: ['n'] } }],
        delete: [],
      },
      returning: 'MODIFIED_NEW',
    });
  });

  it('parses DELETE with RETURNING ALL OLD *', () => {
    expect(parseStatement(`delete from t where pk = 1 returning all old *`)).toMatchObject({
      kind: 'delete',
      returning: 'ALL_OLD',
    });
  });

  it('reads quoted names with doubled quotes, comments, keywords after a dot, set_delete and if_not_exists', () => {
    const s = parseStatement(
      `UPDATE "my ""t""" -- a comment\n SET s = set_delete(s, <<1>>), c = if_not_exists(c, 0) WHERE "value" = 'it''s' AND meta.by = 1`,
    );
    expect(s).toMatchObject({
      kind: 'update',
      table: 'my "t"',
      update: {
        set: [{ path: ['c'], value: { kind: 'if_not_exists', path: ['c'] } }],
        delete: [{ path: ['s'], value: { NS: ['1'] } }],
      },
      where: {
        left: { right: { value: { S: "it's" } }, left: { path: ['value'] } },
        right: { left: { path: ['meta', 'by'] } },
      },
    });
  });

  it('evaluates IN, BETWEEN, IS MISSING, begins_with, contains, size and NOT as DynamoDB does', () => {
    const item = {
      pk: { S: 'a' },
      n: { N: '5' },
      s: { S: 'hello' },
      l: { L: [{ S: 'x' }] },
      z: { NULL: true as const },
    };
    const holds = (cond: string, params: { S: string }[] = []) =>
      evaluateCondition(where(parseStatement(`SELECT * FROM t WHERE ${cond}`, params))!, item);
    expect(holds(`pk IN ['b', ?]`, [{ S: 'a' }])).toBe(true);
    expect(holds(`n BETWEEN 1 AND 5 AND NOT n < 5`)).toBe(true);
    expect(holds(`n NOT BETWEEN 1 AND 4`)).toBe(true);
    expect(holds(`nope IS MISSING AND s IS NOT MISSING`)).toBe(true);
    expect(holds(`z IS NULL AND s IS NOT NULL`)).toBe(true);
    expect(holds(`begins_with(s, 'he') AND contains(l, 'x') AND size(s) = 5`)).toBe(true);
    expect(holds(`attribute_exists(n) AND attribute_type(s, 'S')`)).toBe(true);
    expect(holds(`(pk = 'b' OR n <> 5) OR s != 'hello'`)).toBe(false);
  });

  it('refuses statements that are not well formed, with the position', () => {
    const bad = [
      [
        'SELEC * FROM t',
        /Unexpected token "SELEC", expected SELECT, INSERT, UPDATE or DELETE at line 1, column 1/,
      ],
      ['SELECT * FROM', /Unexpected end of statement, expected a name/],
      ['SELECT * FROM t WHERE', /Unexpected end of statement/],
      ['SELECT * FROM t WHERE a =', /Unexpected end of statement, expected a value/],
      ["SELECT * FROM t WHERE a = 'x", /Unterminated string literal at line 1, column 27/],
      ['SELECT * FROM t WHERE a', /expected a comparison/],
      ['SELECT * FROM t extra', /Unexpected token "extra" at line 1, column 17/],
      ['INSERT INTO t VALUE [1]', /expected a map of the item/],
      ['UPDATE t WHERE a = 1', /expected SET or REMOVE/],
      ['DELETE FROM t', /expected WHERE/],
      ['SELECT * FROM t WHERE a = 1 ; DROP', /Unexpected character ";"/],
      ['SELECT * FROM t WHERE value = 1', /Unexpected token "value", expected a value at line 1, column 23/],
      ['DELETE FROM t WHERE a = 1 RETURNING ALL NEW *', /Unexpected token "NEW", expected OLD/],
      ['UPDATE t SET a = 1 WHERE k = 1 RETURNING SOME', /expected ALL or MODIFIED/],
      ["UPDATE t SET a = set_add(b, <<'x'>>) WHERE k = 1", /expected set_add of the attribute it assigns/],
      ['SELECT * FROM t WHERE x IN 1', /expected "\["/],
      ['SELECT * FROM t WHERE a = <<>>', /set {2}may not be empty/],
      ["SELECT * FROM t WHERE a = <<'x', 1>>", /expected set members of one type/],
      // Crafted nesting is refused by the parser, not by the stack (a 500 before this bound).
      [`SELECT * FROM t WHERE ${'('.repeat(4000)}a = 1${')'.repeat(4000)}`, /Nesting deeper than 64/],
      [`SELECT * FROM t WHERE ${'NOT '.repeat(2000)}a = 1`, /Nesting deeper than 64/],
      [`SELECT * FROM t WHERE a = ${'['.repeat(3000)}1${']'.repeat(3000)}`, /Nesting deeper than 64/],
      [`INSERT INTO t VALUE ${"{'a': ".repeat(1000)}1${'}'.repeat(1000)}`, /Nesting deeper than 64/],
    ] as const;
    for (const [statement, message] of bad) {
      let err: unknown;
      try {
        parseStatement(statement);
      } catch (e) {
        err = e;
      }
      expect(err, statement).toBeInstanceOf(DynamoValidationError);
      expect((err as Error).message, statement).toMatch(message);
      if (!/set {2}may not|duplicates/.test((err as Error).message)) {
        expect((err as Error).message).toMatch(/^Statement wasn't well formed, can't be processed: /);
      }
    }
  });

  it('refuses a parameter count that does not match, bad numbers and overlapping paths', () => {
    expect(() => parseStatement('SELECT * FROM t WHERE a = ?')).toThrow(
      "Number of parameters in request and statement don't match.",
    );
    expect(() => parseStatement('SELECT * FROM t WHERE a = 1e200')).toThrow(/Number overflow/);
    expect(() => parseStatement('UPDATE t SET a.b = 1 REMOVE a WHERE pk = 1')).toThrow(
      /Two document paths overlap with each other/,
    );
  });
});

describe('PartiQL key plans', () => {
  const schema: KeySchema = { partition: { name: 'pk', type: 'S' }, sort: { name: 'sk', type: 'N' } };
  const plan = (cond: string) => queryPlan(where(parseStatement(`SELECT * FROM t WHERE ${cond}`)), schema);

  it('queries when the partition key is pinned by = or IN, with the sort key range', () => {
    expect(plan(`pk = 'a' AND sk > 3`)).toEqual({
      partitions: [{ S: 'a' }],
      sort: { op: '>', value: { N: '3' } },
    });
    expect(plan(`3 > sk AND 'a' = pk`)).toEqual({
      partitions: [{ S: 'a' }],
      sort: { op: '<', value: { N: '3' } },
    });
    expect(plan(`pk IN ['a', 'b', 'a'] AND sk BETWEEN 1 AND 2`)).toEqual({
      partitions: [{ S: 'a' }, { S: 'b' }],
      sort: { op: 'between', low: { N: '1' }, high: { N: '2' } },
    });
  });

  it('scans otherwise: no key, OR, a value of another type', () => {
    expect(plan(`sk = 1`)).toBeUndefined();
    expect(plan(`pk = 'a' OR sk = 1`)).toBeUndefined();
    expect(plan(`pk = 1`)).toBeUndefined();
    expect(queryPlan(undefined, schema)).toBeUndefined();
  });

  it('finds the full key of an UPDATE or DELETE, or none', () => {
    const key = (cond: string) => fullKey(where(parseStatement(`DELETE FROM t WHERE ${cond}`))!, schema);
    expect(key(`pk = 'a' AND sk = 1 AND x > 2`)).toEqual({ pk: { S: 'a' }, sk: { N: '1' } });
    expect(key(`pk = 'a'`)).toBeUndefined();
    expect(key(`pk = 'a' OR sk = 1`)).toBeUndefined();
  });
});

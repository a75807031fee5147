import { describe, expect, it } from 'vitest';
import type { AttributeValue } from '../types.js';
import { ExpressionContext } from './context.js';
import { DynamoValidationError } from './errors.js';
import { parseConditionExpression, parseProjectionExpression, parseUpdateExpression } from './parser.js';
import { isReservedWord, RESERVED_WORD_COUNT } from './reserved-words.js';
import { tokenize } from './tokenizer.js';

type Values = Record<string, AttributeValue>;
const V: Values = {
  ':v': { S: 'x' },
  ':w': { S: 'y' },
  ':n': { N: '1' },
  ':m': { N: '2' },
  ':l': { L: [] },
  ':ss': { SS: ['a'] },
  ':t': { S: 'N' },
};

function cond(source: string, values: Values = V, names: Record<string, string> = {}) {
  return parseConditionExpression(source, new ExpressionContext(names, values));
}

function upd(source: string, values: Values = V, names: Record<string, string> = {}) {
  return parseUpdateExpression(source, new ExpressionContext(names, values));
}

function proj(source: string, names: Record<string, string> = {}) {
  return parseProjectionExpression(source, new ExpressionContext(names, {}));
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

const path = (...p: (string | number)[]) => ({ kind: 'path', path: p });
const val = (ref: string, values: Values = V) => ({ kind: 'value', value: values[ref], ref });
const eq = (name: string, ref: string) => ({ kind: 'compare', op: '=', left: path(name), right: val(ref) });

describe('tokenize', () => {
  it('splits into identifiers, placeholders, numbers, punctuation and unknown characters', () => {
    const tokens = tokenize('a.b[10] <= :v_1 AND #n<>x _ $');
    expect(tokens.map((t) => [t.type, t.text])).toEqual([
      ['identifier', 'a'],
      ['punct', '.'],
      ['identifier', 'b'],
      ['punct', '['],
      ['number', '10'],
      ['punct', ']'],
      ['punct', '<='],
      ['value', ':v_1'],
      ['identifier', 'AND'],
      ['name', '#n'],
      ['punct', '<>'],
      ['identifier', 'x'],
      ['unknown', '_'],
      ['unknown', '$'],
      ['eof', '<EOF>'],
    ]);
  });

  it('treats a lone # or : as an unknown character', () => {
    expect(tokenize('# :').map((t) => t.type)).toEqual(['unknown', 'unknown', 'eof']);
  });
});

describe('condition expressions', () => {
  it('parses comparisons with every comparator', () => {
    for (const op of ['=', '<>', '<', '<=', '>', '>=']) {
      expect(cond(`a ${op} :n`)).toEqual({ kind: 'compare', op, left: path('a'), right: val(':n') });
    }
    expect(cond(':n<b')).toEqual({ kind: 'compare', op: '<', left: val(':n'), right: path('b') });
  });

  it('gives NOT precedence over AND, and AND over OR', () => {
    expect(cond('a = :v OR b = :v AND c = :v')).toEqual({
      kind: 'or',
      left: eq('a', ':v'),
      right: { kind: 'and', left: eq('b', ':v'), right: eq('c', ':v') },
    });
    expect(cond('a = :v AND b = :v OR c = :v')).toEqual({
      kind: 'or',
      left: { kind: 'and', left: eq('a', ':v'), right: eq('b', ':v') },
      right: eq('c', ':v'),
    });
    expect(cond('NOT a = :v AND b = :v')).toEqual({
      kind: 'and',
      left: { kind: 'not', condition: eq('a', ':v') },
      right: eq('b', ':v'),
    });
    expect(cond('NOT NOT a = :v')).toEqual({
      kind: 'not',
      condition: { kind: 'not', condition: eq('a', ':v') },
    });
    // AND and OR associate to the left.
    expect(cond('a = :v OR b = :v OR c = :v')).toEqual({
      kind: 'or',
      left: { kind: 'or', left: eq('a', ':v'), right: eq('b', ':v') },
      right: eq('c', ':v'),
    });
  });

  it('binds BETWEEN and IN tighter than AND, whose AND keyword BETWEEN borrows', () => {
    expect(cond('a BETWEEN :n AND :m AND b IN (:v, :w)')).toEqual({
      kind: 'and',
      left: { kind: 'between', operand: path('a'), lower: val(':n'), upper: val(':m') },
      right: { kind: 'in', operand: path('b'), list: [val(':v'), val(':w')] },
    });
  });

  it('uses parentheses to group', () => {
    expect(cond('(a = :v OR b = :v) AND c = :v')).toEqual({
      kind: 'and',
      left: { kind: 'or', left: eq('a', ':v'), right: eq('b', ':v') },
      right: eq('c', ':v'),
    });
    expect(cond('NOT (a = :v OR b = :v)')).toEqual({
      kind: 'not',
      condition: { kind: 'or', left: eq('a', ':v'), right: eq('b', ':v') },
    });
    // Parenthesized operands and whole conditions.
    expect(cond('(a) = (:v)')).toEqual(eq('a', ':v'));
    expect(cond('((a = :v) AND (b = :v))')).toEqual({
      kind: 'and',
      left: eq('a', ':v'),
      right: eq('b', ':v'),
    });
    expect(cond('(attribute_exists(a))')).toEqual({ kind: 'attribute_exists', path: ['a'] });
    expect(cond('(size(a)) > :n')).toEqual({
      kind: 'compare',
      op: '>',
      left: { kind: 'size', operand: path('a') },
      right: val(':n'),
    });
  });

  it('is case-insensitive in keywords and ignores whitespace', () => {
    expect(cond('  a=:v\tand\nb=:v  ')).toEqual(cond('a = :v AND b = :v'));
    expect(cond('a between :n aNd :m')).toEqual(cond('a BETWEEN :n AND :m'));
    expect(cond('nOt a = :v')).toEqual(cond('NOT a = :v'));
  });

  it('parses every function', () => {
    expect(cond('attribute_exists(a.b)')).toEqual({ kind: 'attribute_exists', path: ['a', 'b'] });
    expect(cond('attribute_not_exists (a)')).toEqual({ kind: 'attribute_not_exists', path: ['a'] });
    expect(cond('attribute_type(a, :t)')).toEqual({ kind: 'attribute_type', operand: path('a'), type: 'N' });
    expect(cond('begins_with(a, :v)')).toEqual({
      kind: 'begins_with',
      operand: path('a'),
      prefix: val(':v'),
    });
    expect(cond('contains(a, :n)')).toEqual({ kind: 'contains', operand: path('a'), value: val(':n') });
    expect(cond('size(a) = :n')).toEqual({
      kind: 'compare',
      op: '=',
      left: { kind: 'size', operand: path('a') },
      right: val(':n'),
    });
    expect(cond('size(a) < size(b)')).toMatchObject({ left: { kind: 'size' }, right: { kind: 'size' } });
  });

  it('parses nested paths, list indexes and #names', () => {
    expect(cond('a.b[1][2].#n.c = :v', V, { '#n': 'x.y' })).toEqual({
      kind: 'compare',
      op: '=',
      left: path('a', 'b', 1, 2, 'x.y', 'c'),
      right: val(':v'),
    });
    expect(cond('#and = :v', V, { '#and': 'and' })).toEqual(eq('and', ':v'));
  });

  it('reports syntax errors with the token and its neighbours', () => {
    expect(error(() => cond('foo'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "foo"',
    );
    expect(error(() => cond('a = :v AND'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: "AND"',
    );
    expect(error(() => cond('a IN ()'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: ")", near: "()"',
    );
    expect(error(() => cond('a != :v'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "!", near: "a !="',
    );
    expect(error(() => cond('a = :v)'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: ")", near: ":v)"',
    );
    expect(error(() => cond('(a = :v'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ":v"',
    );
    expect(error(() => cond('a = :v b = :v'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "b", near: ":v b ="',
    );
    expect(error(() => cond(':v'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "<EOF>", near: ":v"',
    );
    expect(error(() => cond('a AND b'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "AND", near: "a AND b"',
    );
    expect(error(() => cond('and = :v'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "and", near: "and ="',
    );
    expect(error(() => cond('a[#x] = :v'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "#x", near: "[#x]"',
    );
    expect(error(() => cond('size() = :n'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: ")", near: "() ="',
    );
    expect(error(() => cond('_a = :v'))).toBe(
      'Invalid ConditionExpression: Syntax error; token: "_", near: "_a"',
    );
  });

  it('refuses an empty expression', () => {
    expect(error(() => cond(''))).toBe('Invalid ConditionExpression: The expression can not be empty;');
    expect(error(() => cond('   '))).toBe('Invalid ConditionExpression: The expression can not be empty;');
    expect(error(() => parseConditionExpression('', new ExpressionContext(), 'FilterExpression'))).toBe(
      'Invalid FilterExpression: The expression can not be empty;',
    );
  });

  it('refuses reserved words used bare', () => {
    expect(error(() => cond('status = :v'))).toBe(
      'Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status',
    );
    expect(error(() => cond('a.Name = :v'))).toBe(
      'Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Name',
    );
    expect(cond('#s = :v', V, { '#s': 'status' })).toEqual(eq('status', ':v'));
  });

  it('refuses undefined placeholders', () => {
    expect(error(() => cond('#n = :v'))).toBe(
      'Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #n',
    );
    expect(error(() => cond('a = :nope'))).toBe(
      'Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :nope',
    );
  });

  it('refuses unknown and misplaced functions', () => {
    expect(error(() => cond('dog(a) = :v'))).toBe(
      'Invalid ConditionExpression: Invalid function name; function: dog',
    );
    expect(error(() => cond('ATTRIBUTE_EXISTS(a)'))).toBe(
      'Invalid ConditionExpression: Invalid function name; function: ATTRIBUTE_EXISTS',
    );
    expect(error(() => cond('if_not_exists(a, :v) = :v'))).toBe(
      'Invalid ConditionExpression: The function is not allowed in a condition expression; function: if_not_exists',
    );
    expect(error(() => cond('size(a)'))).toBe(
      'Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size',
    );
    expect(error(() => cond('attribute_exists(a) = :v'))).toBe(
      'Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: attribute_exists',
    );
    expect(error(() => cond('begins_with(contains(a, :v), :v)'))).toBe(
      'Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: contains',
    );
  });

  it('checks function operands', () => {
    expect(error(() => cond('begins_with(a)'))).toBe(
      'Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1',
    );
    expect(error(() => cond('size(a, a) = :n'))).toBe(
      'Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: size, number of operands: 2',
    );
    expect(error(() => cond('attribute_exists(:v)'))).toBe(
      'Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists',
    );
    expect(error(() => cond('begins_with(a, :n)'))).toBe(
      'Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N',
    );
    expect(error(() => cond('size(:n) = :n'))).toBe(
      'Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: N',
    );
    expect(error(() => cond('attribute_type(a, :n)'))).toBe(
      'Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N',
    );
    expect(error(() => cond('attribute_type(a, b)'))).toBe(
      'Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: {NS,SS,L,BS,N,M,B,BOOL,NULL,S}',
    );
    expect(error(() => cond('attribute_type(a, :t)', { ':t': { S: 'DOG' } }))).toBe(
      'Invalid ConditionExpression: Invalid attribute type name found; type: DOG, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}',
    );
    // attribute_type's first operand may be a value.
    expect(cond('attribute_type(:n, :t)')).toEqual({ kind: 'attribute_type', operand: val(':n'), type: 'N' });
  });

  it('requires distinct operands for comparisons and two-operand functions', () => {
    expect(error(() => cond('a = a'))).toBe(
      'Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]',
    );
    expect(error(() => cond('contains(a.b[0], a.b[0])'))).toBe(
      'Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [a, b, [0]]',
    );
    expect(cond('contains(a, a1)')).toMatchObject({ kind: 'contains' });
  });

  it('checks the types of constant operands of ordering comparisons and BETWEEN', () => {
    expect(error(() => cond('a < :l'))).toBe(
      'Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: L',
    );
    expect(error(() => cond(':ss >= a'))).toBe(
      'Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: >=, operand type: SS',
    );
    expect(cond('a = :l')).toMatchObject({ kind: 'compare' });
    expect(error(() => cond('a BETWEEN :l AND :l'))).toBe(
      'Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: BETWEEN, operand type: L',
    );
    expect(error(() => cond('a BETWEEN :m AND :n'))).toBe(
      'Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:2}, upper bound operand: AttributeValue: {N:1}',
    );
    expect(error(() => cond('a BETWEEN :n AND :v'))).toBe(
      'Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:x}',
    );
    // Bounds from the item are only checked when evaluating.
    expect(cond('a BETWEEN b AND :n')).toMatchObject({ kind: 'between' });
  });

  it('accepts IN with up to 100 operands, the left one included', () => {
    const values: Values = {};
    for (let i = 0; i < 100; i++) values[`:v${i}`] = { N: String(i) };
    const list = Object.keys(values);
    expect(cond(`a IN (${list.slice(0, 99).join(', ')})`, values)).toMatchObject({ kind: 'in' });
    expect(error(() => cond(`a IN (${list.join(', ')})`, values))).toBe(
      'Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101',
    );
  });

  it('refuses redundant parentheses', () => {
    for (const source of ['((a = :v))', '((a)) = :v', 'a = ((:v))', '((c = :v) AND ((d = :v)))']) {
      expect(error(() => cond(source))).toBe(
        'Invalid ConditionExpression: The expression has redundant parentheses;',
      );
    }
  });

  it('refuses more than 300 operators', () => {
    const clauses = Array.from({ length: 151 }, () => 'a = :v');
    expect(error(() => cond(clauses.join(' AND ')))).toBe(
      'Invalid ConditionExpression: The expression contains too many operators; operator count: 301',
    );
    expect(cond(clauses.slice(0, 150).join(' AND '))).toMatchObject({ kind: 'and' });
  });

  it('refuses expressions over 4 KB', () => {
    const source = `a = :v OR ${'b'.repeat(4100)} = :v`;
    expect(error(() => cond(source))).toMatch(
      /^Invalid ConditionExpression: Expression size has exceeded the maximum allowed size/,
    );
  });

  it('reports a syntax error before any other error', () => {
    expect(error(() => cond('status = :nope AND'))).toMatch(/Syntax error; token: "<EOF>"/);
  });

  it('reports errors in DynamoDB order: reserved words before undefined placeholders', () => {
    expect(error(() => cond('a = :nope AND status = :v'))).toBe(
      'Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status',
    );
    expect(error(() => cond('dog(a) = :v AND status = :v'))).toBe(
      'Invalid ConditionExpression: Invalid function name; function: dog',
    );
  });

  it('marks the placeholders it uses', () => {
    const context = new ExpressionContext({ '#a': 'a', '#b': 'b' }, { ':v': { S: 'x' }, ':w': { S: 'y' } });
    parseConditionExpression('#a = :v', context);
    expect(context.unusedNames()).toEqual(['#b']);
    expect(context.unusedValues()).toEqual([':w']);
  });
});

describe('update expressions', () => {
  it('parses each clause, in any order, with several actions each', () => {
    expect(upd('SET a = :v, b.c[0] = :n REMOVE d, e[1] ADD f :n DELETE g :ss')).toEqual({
      set: [
        { path: ['a'], value: val(':v') },
        { path: ['b', 'c', 0], value: val(':n') },
      ],
      remove: [['d'], ['e', 1]],
      add: [{ path: ['f'], value: V[':n'] }],
      delete: [{ path: ['g'], value: V[':ss'] }],
    });
    expect(upd('remove a set b = :v')).toEqual({
      set: [{ path: ['b'], value: val(':v') }],
      remove: [['a']],
      add: [],
      delete: [],
    });
  });

  it('parses arithmetic, if_not_exists and list_append', () => {
    expect(upd('SET a = a + :n').set[0]?.value).toEqual({ kind: 'plus', left: path('a'), right: val(':n') });
    expect(upd('SET a = :n - a').set[0]?.value).toEqual({ kind: 'minus', left: val(':n'), right: path('a') });
    expect(upd('SET a = if_not_exists(a, :n) + :m').set[0]?.value).toEqual({
      kind: 'plus',
      left: { kind: 'if_not_exists', path: ['a'], fallback: val(':n') },
      right: val(':m'),
    });
    expect(upd('SET a = list_append(a, :l)').set[0]?.value).toEqual({
      kind: 'list_append',
      left: path('a'),
      right: val(':l'),
    });
    expect(upd('SET a = (:n + :m)').set[0]?.value).toEqual({
      kind: 'plus',
      left: val(':n'),
      right: val(':m'),
    });
    expect(upd('SET a = (:n) + :m').set[0]?.value).toEqual({
      kind: 'plus',
      left: val(':n'),
      right: val(':m'),
    });
    expect(upd('SET a = list_append(if_not_exists(a, :l), :l)').set[0]?.value).toMatchObject({
      kind: 'list_append',
    });
  });

  it('reports syntax errors as DynamoDB does', () => {
    expect(error(() => upd('SET _123 = :v'))).toBe(
      'Invalid UpdateExpression: Syntax error; token: "_", near: "SET _123"',
    );
    expect(error(() => upd('ADD hits : incr'))).toBe(
      'Invalid UpdateExpression: Syntax error; token: ":", near: "hits : incr"',
    );
    expect(error(() => upd('INVALID SYNTAX HERE'))).toBe(
      'Invalid UpdateExpression: Syntax error; token: "INVALID", near: "INVALID SYNTAX"',
    );
    expect(error(() => upd('SET a = :n + :m + :n'))).toBe(
      'Invalid UpdateExpression: Syntax error; token: "+", near: ":m + :n"',
    );
    expect(error(() => upd('SET c = if_not_exists(c, :n+:m)'))).toBe(
      'Invalid UpdateExpression: Syntax error; token: "+", near: ":n+:m"',
    );
    expect(error(() => upd('SET a[:n] = :v'))).toMatch(/Syntax error; token: ":n"/);
    expect(error(() => upd('SET :v = :w'))).toMatch(/Syntax error; token: ":v"/);
    expect(error(() => upd('ADD a b'))).toMatch(/Syntax error; token: "b"/);
    expect(error(() => upd('SET a = :v,'))).toMatch(/Syntax error; token: "<EOF>"/);
    expect(error(() => upd('SET a = :v, REMOVE b'))).toMatch(/Syntax error; token: "REMOVE"/);
    expect(error(() => upd('SET'))).toMatch(/Syntax error; token: "<EOF>", near: "SET"/);
    expect(error(() => upd('SET a = _f(b)'))).toMatch(/Syntax error; token: "_"/);
    expect(error(() => upd(''))).toBe('Invalid UpdateExpression: The expression can not be empty;');
  });

  it('allows each clause only once', () => {
    expect(error(() => upd('SET a = :v SET b = :v'))).toBe(
      'Invalid UpdateExpression: The "SET" section can only be used once in an update expression;',
    );
    expect(error(() => upd('REMOVE a SET b = :v REMOVE c'))).toBe(
      'Invalid UpdateExpression: The "REMOVE" section can only be used once in an update expression;',
    );
  });

  it('refuses overlapping and conflicting paths', () => {
    expect(error(() => upd('SET a = :v, a.b = :v'))).toBe(
      'Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]',
    );
    expect(error(() => upd('SET a = :v REMOVE a'))).toBe(
      'Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]',
    );
    expect(error(() => upd('SET #a1 = :v, #a2 = :w', V, { '#a1': 'a', '#a2': 'a' }))).toMatch(/overlap/);
    expect(error(() => upd('SET a[1][1] = :v, a[1] = :w'))).toBe(
      'Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a, [1], [1]], path two: [a, [1]]',
    );
    expect(error(() => upd('SET a.b = :v, a[1] = :w'))).toBe(
      'Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]',
    );
    expect(upd('SET a.b = :v, a.c = :w REMOVE a.d, b').set).toHaveLength(2);
  });

  it('checks operand types and functions', () => {
    expect(error(() => upd('ADD a :v'))).toBe(
      'Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING',
    );
    expect(error(() => upd('ADD a :l'))).toBe(
      'Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: LIST',
    );
    expect(error(() => upd('DELETE a :n'))).toBe(
      'Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER',
    );
    expect(error(() => upd('SET a = :v + :n'))).toBe(
      'Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S',
    );
    expect(error(() => upd('SET a = list_append(:l, :v)'))).toBe(
      'Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S',
    );
    expect(error(() => upd('SET a = list_append(:l)'))).toBe(
      'Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1',
    );
    expect(error(() => upd('SET a = if_not_exists(:v, :v)'))).toBe(
      'Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists',
    );
    expect(error(() => upd('SET a = list_append(list_append(:l, :l), :l)'))).toBe(
      'Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: list_append',
    );
    expect(error(() => upd('SET a = f(b)'))).toBe(
      'Invalid UpdateExpression: Invalid function name; function: f',
    );
    expect(error(() => upd('SET a = LIST_APPEND(b, :l)'))).toBe(
      'Invalid UpdateExpression: Invalid function name; function: LIST_APPEND',
    );
    expect(error(() => upd('SET a = size(b)'))).toBe(
      'Invalid UpdateExpression: The function is not allowed in an update expression; function: size',
    );
  });

  it('refuses reserved words and undefined placeholders', () => {
    expect(error(() => upd('SET total = :n'))).toBe(
      'Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: total',
    );
    expect(error(() => upd('SET a = :x'))).toBe(
      'Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :x',
    );
    expect(error(() => upd('SET #x = :v'))).toBe(
      'Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #x',
    );
    // In an update expression, an undefined name is reported before an undefined value.
    expect(error(() => upd('SET a = :x, #x = :v'))).toMatch(/attribute name: #x$/);
  });
});

describe('projection expressions', () => {
  it('parses comma-separated paths', () => {
    expect(proj('a, b.c, d[0][1], #n.e', { '#n': 'x' })).toEqual([
      ['a'],
      ['b', 'c'],
      ['d', 0, 1],
      ['x', 'e'],
    ]);
  });

  it('refuses reserved words, undefined names, overlaps and syntax errors', () => {
    expect(error(() => proj('a, name'))).toBe(
      'Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: name',
    );
    expect(error(() => proj('#n'))).toBe(
      'Invalid ProjectionExpression: An expression attribute name used in the document path is not defined; attribute name: #n',
    );
    expect(error(() => proj('a, a.b'))).toBe(
      'Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]',
    );
    expect(error(() => proj('a.b, a[0]'))).toMatch(/Two document paths conflict/);
    expect(error(() => proj('a b'))).toBe(
      'Invalid ProjectionExpression: Syntax error; token: "b", near: "a b"',
    );
    expect(error(() => proj('a, :v'))).toMatch(/Syntax error; token: ":v"/);
  });
});

describe('reserved words', () => {
  it('has the whole published list, matched in any case', () => {
    expect(RESERVED_WORD_COUNT).toBe(573);
    for (const word of ['ABORT', 'status', 'Name', 'zone', 'size', 'COUNT', 'data', 'TTL']) {
      expect(isReservedWord(word)).toBe(true);
    }
    for (const word of ['id', 'price', 'foo', 'attribute_exists', 'list_append']) {
      expect(isReservedWord(word)).toBe(false);
    }
  });
});

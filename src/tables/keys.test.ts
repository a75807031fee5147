import { describe, expect, it } from 'vitest';
import { TableInputError } from '../store/errors.js';
import { canonicalNumber, encodeKey, itemSize, parseNumber, prefixEnd, sameItem } from './keys.js';

/** Compares two decimal strings by value, exactly (no floating point): the reference the encoding must match. */
function compareDecimal(a: string, b: string): number {
  const x = parseNumber(a);
  const y = parseNumber(b);
  if (x.sign !== y.sign) return x.sign - y.sign;
  if (x.sign === 0) return 0;
  const mag =
    x.exponent !== y.exponent
      ? x.exponent - y.exponent
      : x.digits.padEnd(40, '0') < y.digits.padEnd(40, '0')
        ? -1
        : x.digits.padEnd(40, '0') > y.digits.padEnd(40, '0')
          ? 1
          : 0;
  return x.sign * Math.sign(mag);
}

const n = (v: string) => encodeKey({ N: v }, 'N');

function randomNumber(rand: () => number): string {
  const digits = Array.from({ length: 1 + Math.floor(rand() * 38) }, () => Math.floor(rand() * 10)).join('');
  const point = Math.floor(rand() * (digits.length + 1));
  const body = `${digits.slice(0, point) || '0'}.${digits.slice(point) || '0'}`;
  const exp = Math.floor(rand() * 160) - 80;
  return `${rand() < 0.5 ? '-' : ''}${body}E${exp}`;
}

describe('number keys', () => {
  it('order by value, as a decimal comparison does, over many random numbers', () => {
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const values = Array.from({ length: 2000 }, () => randomNumber(rand));
    values.push('0', '-0', '1', '-1', '1E-130', '-1E-130', '9.9999999999999999999999999999999999999E+125');
    const byEncoding = [...values].sort((a, b) => Buffer.compare(n(a), n(b)));
    const byValue = [...values].sort(compareDecimal);
    expect(byEncoding.map(canonicalNumber)).toEqual(byValue.map(canonicalNumber));
    for (let i = 1; i < byValue.length; i++) {
      const c = Buffer.compare(n(byValue[i - 1]!), n(byValue[i]!));
      expect(c).toBe(Math.sign(compareDecimal(byValue[i - 1]!, byValue[i]!)) || 0);
    }
  });

  it('encode equal values alike and normalize them as DynamoDB answers', () => {
    expect(n('1.50')).toEqual(n('1.5'));
    expect(n('15E-1')).toEqual(n('1.5'));
    expect(n('+1.5')).toEqual(n('1.5'));
    expect(n('-0')).toEqual(n('0'));
    expect(n('0.000e9')).toEqual(n('0'));
    expect(canonicalNumber('15E-1')).toBe('1.5');
    expect(canonicalNumber('001200')).toBe('1200');
    expect(canonicalNumber('-0.00120')).toBe('-0.0012');
    expect(canonicalNumber('1.2e3')).toBe('1200');
    expect(canonicalNumber('-0')).toBe('0');
  });

  it("refuse what DynamoDB refuses, with DynamoDB's messages", () => {
    expect(() => n('1'.repeat(39))).toThrow(/more than 38 significant digits/);
    expect(n('1'.repeat(38) + '000')).toBeInstanceOf(Buffer);
    expect(() => n('1E126')).toThrow(/Number overflow/);
    expect(() => n('1E-131')).toThrow(/Number underflow/);
    for (const bad of ['', 'abc', '1e', '.', '--1', '1.2.3', ' 1', 'Infinity', 'NaN', '0x10']) {
      expect(() => n(bad)).toThrow(TableInputError);
    }
  });
});

describe('string and binary keys', () => {
  it('order strings by their UTF-8 bytes, not by UTF-16 code units', () => {
    const s = (v: string) => encodeKey({ S: v }, 'S');
    // U+FF66 is after U+1F600 in UTF-16 (0xFF66 > 0xD83D) but before it in UTF-8 (EF.. < F0..).
    expect(Buffer.compare(s('\uff66'), s('😀'))).toBe(-1);
    expect('\uff66' < '😀').toBe(false);
    expect(Buffer.compare(s('Z'), s('a'))).toBe(-1);
    expect(Buffer.compare(s('a'), s('ab'))).toBe(-1);
  });

  it('order binaries by unsigned bytes', () => {
    const b = (v: number[]) => encodeKey({ B: Buffer.from(v).toString('base64') }, 'B');
    expect(Buffer.compare(b([0x7f]), b([0x80]))).toBe(-1);
    expect(Buffer.compare(b([0xff]), b([0xff, 0]))).toBe(-1);
  });

  it('refuse a value of another type than the key', () => {
    expect(() => encodeKey({ N: '1' }, 'S')).toThrow(TableInputError);
    expect(() => encodeKey({ S: '1' }, 'B')).toThrow(TableInputError);
  });

  it('bound a prefix range by the next byte string', () => {
    expect(prefixEnd(Buffer.from('ab'))).toEqual(Buffer.from('ac'));
    expect(prefixEnd(Buffer.from([1, 0xff, 0xff]))).toEqual(Buffer.from([2]));
    expect(prefixEnd(Buffer.from([0xff]))).toBeUndefined();
  });
});

describe('itemSize', () => {
  it("counts names and values by DynamoDB's rules", () => {
    expect(itemSize({ a: { S: 'héllo' } })).toBe(1 + 6);
    expect(itemSize({ n: { N: '123.45' } })).toBe(1 + 4);
    expect(itemSize({ n: { N: '0' } })).toBe(1 + 1);
    expect(itemSize({ b: { B: Buffer.from([1, 2, 3]).toString('base64') } })).toBe(1 + 3);
    expect(itemSize({ t: { BOOL: true }, z: { NULL: true } })).toBe(2 + 2);
    expect(itemSize({ ss: { SS: ['ab', 'c'] } })).toBe(2 + 3);
    expect(itemSize({ m: { M: { k: { S: 'v' } } } })).toBe(1 + 3 + (1 + 1 + 1));
    expect(itemSize({ l: { L: [{ S: 'ab' }, { N: '1' }] } })).toBe(1 + 3 + (2 + 1) + (2 + 1));
  });
});

describe('sameItem', () => {
  it('compares map keys in any order, numbers by value and sets as sets', () => {
    expect(sameItem({ a: { N: '1.50' }, b: { S: 'x' } }, { b: { S: 'x' }, a: { N: '1.5' } })).toBe(true);
    expect(sameItem({ s: { SS: ['a', 'b'] } }, { s: { SS: ['b', 'a'] } })).toBe(true);
    expect(
      sameItem({ m: { M: { x: { N: '1' }, y: { L: [] } } } }, { m: { M: { y: { L: [] }, x: { N: '1' } } } }),
    ).toBe(true);
    expect(sameItem({ a: { N: '1' } }, { a: { S: '1' } })).toBe(false);
    expect(sameItem({ a: { L: [{ N: '1' }, { N: '2' }] } }, { a: { L: [{ N: '2' }, { N: '1' }] } })).toBe(
      false,
    );
    expect(sameItem({ a: { S: 'x' } }, { a: { S: 'x' }, b: { NULL: true } })).toBe(false);
  });
});

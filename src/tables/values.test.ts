import { describe, expect, it } from 'vitest';
import { DynamoValidationError } from './expr/errors.js';
import {
  addNumbers,
  compareNumbers,
  compareStrings,
  compareValues,
  isValidNumber,
  normalizeNumber,
  normalizeValue,
  numbersEqual,
  parseNumber,
  subtractNumbers,
  validateAttributeValue,
  valuesEqual,
} from './values.js';
import type { AttributeValue } from './types.js';

const OVERFLOW = 'Number overflow. Attempting to store a number with magnitude larger than supported range';
const UNDERFLOW =
  'Number underflow. Attempting to store a number with magnitude smaller than supported range';
const b64 = (s: string | number[]) =>
  Buffer.from(typeof s === 'string' ? Buffer.from(s) : s).toString('base64');

function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DynamoValidationError);
    return (err as Error).message;
  }
  throw new Error('expected a DynamoValidationError');
}

describe('normalizeNumber', () => {
  it.each([
    ['1', '1'],
    ['007', '7'],
    ['001.23', '1.23'],
    ['00', '0'],
    ['+3', '3'],
    ['+0', '0'],
    ['1.50', '1.5'],
    ['15E-1', '1.5'],
    ['1.0', '1'],
    ['100.000', '100'],
    ['0.10', '0.1'],
    ['1e3', '1000'],
    ['1E+3', '1000'],
    ['-3e2', '-300'],
    ['123e-2', '1.23'],
    ['1.0e-1', '0.1'],
    ['-0', '0'],
    ['-0.0', '0'],
    ['0e5', '0'],
    ['0e1000', '0'],
    ['0.0e-5', '0'],
    ['.5', '0.5'],
    ['-.5', '-0.5'],
    ['5.', '5'],
    ['1e20', '100000000000000000000'],
    ['1e125', '1' + '0'.repeat(125)],
    ['1e-20', '0.00000000000000000001'],
    ['1e-130', `0.${'0'.repeat(129)}1`],
    ['-273.15', '-273.15'],
    ['31415926535897932384626433832795028841e30', '31415926535897932384626433832795028841' + '0'.repeat(30)],
  ])('%s → %s', (input, expected) => {
    expect(normalizeNumber(input)).toBe(expected);
  });

  it('refuses what is not a number, with the text in the message', () => {
    for (const s of [
      'NaN',
      'Infinity',
      '-Infinity',
      'dog',
      ' 1',
      '1 ',
      '1e',
      'e5',
      '.',
      '+',
      '1.2.3',
      '1+2',
      '0x10',
      '--1',
    ]) {
      expect(thrown(() => parseNumber(s))).toBe(`The parameter cannot be converted to a numeric value: ${s}`);
    }
    expect(thrown(() => parseNumber(''))).toBe('The parameter cannot be converted to a numeric value');
  });

  it('refuses magnitudes outside 1E-130 .. 9.99…E+125', () => {
    expect(thrown(() => parseNumber('1e126'))).toBe(OVERFLOW);
    expect(thrown(() => parseNumber('-11e125'))).toBe(OVERFLOW);
    expect(thrown(() => parseNumber('1e100000000000000'))).toBe(OVERFLOW);
    expect(thrown(() => parseNumber('1e-131'))).toBe(UNDERFLOW);
    expect(thrown(() => parseNumber('0.9e-130'))).toBe(UNDERFLOW);
    expect(isValidNumber('9.9999999999999999999999999999999999999e125')).toBe(true);
    expect(isValidNumber('-1e-130')).toBe(true);
  });

  it('keeps 38 significant digits and refuses 39', () => {
    expect(normalizeNumber('3.1415926535897932384626433832795028841')).toBe(
      '3.1415926535897932384626433832795028841',
    );
    expect(thrown(() => parseNumber('3.14159265358979323846264338327950288419'))).toBe(
      'Attempting to store more than 38 significant digits in a Number',
    );
    // Trailing zeros are not significant.
    expect(normalizeNumber('12345678951716800000000000000000000000000000')).toBe(
      '12345678951716800000000000000000000000000000',
    );
    expect(normalizeNumber('1.00000000000000000000000000000000000000000000')).toBe('1');
  });
});

describe('compareNumbers', () => {
  it('orders exactly, without floats', () => {
    expect(compareNumbers('1', '2')).toBeLessThan(0);
    expect(compareNumbers('10', '9')).toBeGreaterThan(0);
    expect(compareNumbers('-10', '-9')).toBeLessThan(0);
    expect(compareNumbers('0', '-0')).toBe(0);
    expect(compareNumbers('1.5', '15E-1')).toBe(0);
    expect(compareNumbers('-1', '0')).toBeLessThan(0);
    expect(compareNumbers('0.001', '0')).toBeGreaterThan(0);
    // These differ in the 38th digit; as doubles they would be equal.
    expect(compareNumbers('1.0000000000000000000000000000000000001', '1')).toBeGreaterThan(0);
    expect(
      compareNumbers('99999999999999999999999999999999999999', '99999999999999999999999999999999999998'),
    ).toBe(1);
    expect(compareNumbers('1e125', '9.9e124')).toBeGreaterThan(0);
    expect(compareNumbers('-1e-130', '-2e-130')).toBeGreaterThan(0);
    expect(numbersEqual('100', '1e2')).toBe(true);
  });
});

describe('addNumbers and subtractNumbers', () => {
  it('are exact at 38 digits', () => {
    expect(addNumbers('1', '10000000000000000000000')).toBe('10000000000000000000001');
    expect(subtractNumbers('10000000000000000000000', '1')).toBe('9999999999999999999999');
    expect(addNumbers('0.1', '0.2')).toBe('0.3');
    expect(addNumbers('99999999999999999999999999999999999998', '1')).toBe(
      '99999999999999999999999999999999999999',
    );
    expect(addNumbers('1.5', '-1.5')).toBe('0');
    expect(subtractNumbers('-0', '0')).toBe('0');
    expect(addNumbers('1e125', '-1e125')).toBe('0');
    expect(addNumbers('12345678901234567890123456789012345678', '0')).toBe(
      '12345678901234567890123456789012345678',
    );
  });

  it('refuse a result that needs more than 38 digits, as DynamoDB does ("Number overflow")', () => {
    expect(thrown(() => addNumbers('1e50', '1'))).toBe(OVERFLOW);
    expect(thrown(() => subtractNumbers('1e50', '1'))).toBe(OVERFLOW);
    expect(thrown(() => addNumbers('99999999999999999999999999999999999999', '1.5'))).toBe(OVERFLOW);
  });

  it('refuse results out of range', () => {
    expect(thrown(() => addNumbers('9e125', '9e125'))).toBe(OVERFLOW);
    expect(thrown(() => subtractNumbers('9e125', '-9e125'))).toBe(OVERFLOW);
    expect(thrown(() => subtractNumbers('2e-130', '1.9e-130'))).toBe(UNDERFLOW);
  });

  it('refuse operands that are not numbers', () => {
    expect(thrown(() => addNumbers('x', '1'))).toBe(
      'The parameter cannot be converted to a numeric value: x',
    );
  });
});

describe('value comparison', () => {
  it('orders strings by UTF-8 bytes (code points), not UTF-16 units', () => {
    expect(compareStrings('a', 'b')).toBeLessThan(0);
    expect(compareStrings('ab', 'a')).toBeGreaterThan(0);
    expect(compareStrings('', '')).toBe(0);
    // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (F0 …); in UTF-16 the surrogate D83D is smaller.
    expect(compareStrings('\uff5e', '\u{1f600}')).toBeLessThan(0);
    expect('\uff5e' < '\u{1f600}').toBe(false);
    expect(Buffer.compare(Buffer.from('\uff5e'), Buffer.from('\u{1f600}'))).toBeLessThan(0);
  });

  it('defines order only between values of the same scalar type', () => {
    expect(compareValues({ N: '10' }, { N: '9' })).toBeGreaterThan(0);
    expect(compareValues({ S: 'a' }, { S: 'b' })).toBeLessThan(0);
    expect(compareValues({ B: b64([127]) }, { B: b64([128]) })).toBeLessThan(0); // unsigned bytes
    expect(compareValues({ B: b64('ab') }, { B: b64('a') })).toBeGreaterThan(0);
    expect(compareValues({ N: '1' }, { S: '1' })).toBeUndefined();
    expect(compareValues({ BOOL: true }, { BOOL: true })).toBeUndefined();
    expect(compareValues({ SS: ['a'] }, { SS: ['a'] })).toBeUndefined();
  });

  const equal: [AttributeValue, AttributeValue, boolean][] = [
    [{ S: 'a' }, { S: 'a' }, true],
    [{ S: 'a' }, { S: 'b' }, false],
    [{ N: '1.0' }, { N: '1' }, true],
    [{ N: '1' }, { S: '1' }, false],
    [{ N: '6' }, { NS: ['6'] }, false],
    [{ B: b64('x') }, { B: b64('x') }, true],
    [{ B: b64('x') }, { B: b64('y') }, false],
    [{ BOOL: false }, { BOOL: false }, true],
    [{ BOOL: true }, { BOOL: false }, false],
    [{ NULL: true }, { NULL: true }, true],
    [{ SS: ['a', 'b'] }, { SS: ['b', 'a'] }, true],
    [{ SS: ['a'] }, { SS: ['a', 'b'] }, false],
    [{ NS: ['1', '2.50'] }, { NS: ['2.5', '1.0'] }, true],
    [{ BS: [b64('a'), b64('b')] }, { BS: [b64('b'), b64('a')] }, true],
    [{ L: [{ S: 'a' }, { S: 'b' }] }, { L: [{ S: 'b' }, { S: 'a' }] }, false],
    [{ L: [{ N: '1' }] }, { L: [{ N: '1.0' }] }, true],
    [{ M: { a: { N: '1' } } }, { M: { a: { N: '1' } } }, true],
    [{ M: { a: { N: '1' } } }, { M: { a: { N: '2' } } }, false],
    [{ M: { a: { N: '1' } } }, { M: { a: { N: '1' }, b: { N: '2' } } }, false],
    [{ M: { a: { SS: ['x', 'y'] } } }, { M: { a: { SS: ['y', 'x'] } } }, true],
  ];
  it.each(equal)('%j = %j is %s', (a, b, expected) => {
    expect(valuesEqual(a, b)).toBe(expected);
    expect(valuesEqual(b, a)).toBe(expected);
  });

  it('normalizes numbers deep inside values', () => {
    expect(normalizeValue({ M: { a: { N: '1.50' }, b: { L: [{ NS: ['1e2', '-0'] }] } } })).toEqual({
      M: { a: { N: '1.5' }, b: { L: [{ NS: ['100', '0'] }] } },
    });
  });
});

describe('validateAttributeValue', () => {
  it('accepts well-formed values, including empty strings, lists and maps', () => {
    for (const v of [
      { S: '' },
      { L: [] },
      { M: {} },
      { N: '1' },
      { BOOL: false },
      { NULL: true },
      { SS: ['a'] },
    ]) {
      expect(() => validateAttributeValue(v as AttributeValue)).not.toThrow();
    }
  });

  it('refuses malformed values with DynamoDB messages', () => {
    expect(thrown(() => validateAttributeValue({} as AttributeValue))).toBe(
      'Supplied AttributeValue is empty, must contain exactly one of the supported datatypes',
    );
    expect(thrown(() => validateAttributeValue({ S: 'a', N: '1' } as unknown as AttributeValue))).toBe(
      'Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes',
    );
    expect(thrown(() => validateAttributeValue({ SS: [] }))).toBe(
      'One or more parameter values were invalid: An string set  may not be empty',
    );
    expect(thrown(() => validateAttributeValue({ NS: ['1', '1.0'] }))).toBe(
      'Input collection contains duplicates',
    );
    expect(thrown(() => validateAttributeValue({ M: { a: { N: 'x' } } }))).toBe(
      'The parameter cannot be converted to a numeric value: x',
    );
    expect(thrown(() => validateAttributeValue({ NULL: false } as unknown as AttributeValue))).toBe(
      'One or more parameter values were invalid: Null attribute value types must have the value of true',
    );
  });
});

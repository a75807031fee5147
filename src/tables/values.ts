// DynamoDB's values as the engine computes with them: numbers with 38 significant decimal digits (parsed,
// validated, normalized, compared and added exactly, never through a float), and equality and ordering of
// attribute values with DynamoDB's rules (only same-type comparisons are defined; S orders by UTF-8 bytes, B by
// bytes; sets are equal as sets).

import { DynamoValidationError } from './expr/errors.js';
import type { AttributeValue } from './types.js';

// ---------------------------------------------------------------------------------------------------------
// Numbers

/** DynamoDB keeps at most this many significant digits in a number. */
export const MAX_SIGNIFICANT_DIGITS = 38;
/** The largest decimal exponent of a number's leading digit (9.99…E+125 is the largest magnitude). */
export const MAX_EXPONENT = 125;
/** The smallest decimal exponent of a number's leading digit (1E-130 is the smallest non-zero magnitude). */
export const MIN_EXPONENT = -130;

export const NUMBER_OVERFLOW =
  'Number overflow. Attempting to store a number with magnitude larger than supported range';
export const NUMBER_UNDERFLOW =
  'Number underflow. Attempting to store a number with magnitude smaller than supported range';
export const NUMBER_TOO_PRECISE = 'Attempting to store more than 38 significant digits in a Number';

/**
 * An exact decimal: (negative ? -1 : 1) × digits × 10^exponent. `digits` has no leading or trailing zeros; zero
 * is `digits: ''` (never negative, exponent 0).
 */
export interface Decimal {
  readonly negative: boolean;
  readonly digits: string;
  readonly exponent: number;
}

const ZERO: Decimal = { negative: false, digits: '', exponent: 0 };

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/**
 * Reads a number the way DynamoDB does (Java BigDecimal's grammar: an optional sign, digits with an optional
 * decimal point, an optional exponent; no spaces, no NaN or Infinity) without checking its range.
 * Returns undefined for text that is not a number.
 */
function scanDecimal(text: string): Decimal | undefined {
  let i = 0;
  let negative = false;
  if (text[i] === '+' || text[i] === '-') {
    negative = text[i] === '-';
    i++;
  }
  const intStart = i;
  while (isDigit(text[i])) i++;
  const intDigits = text.slice(intStart, i);
  let fracDigits = '';
  if (text[i] === '.') {
    i++;
    const fracStart = i;
    while (isDigit(text[i])) i++;
    fracDigits = text.slice(fracStart, i);
  }
  if (intDigits === '' && fracDigits === '') return undefined;
  let exponent = 0;
  if (text[i] === 'e' || text[i] === 'E') {
    i++;
    let expNegative = false;
    if (text[i] === '+' || text[i] === '-') {
      expNegative = text[i] === '-';
      i++;
    }
    const expStart = i;
    while (isDigit(text[i])) i++;
    const expDigits = text.slice(expStart, i).replace(/^0+/, '');
    if (i === expStart) return undefined;
    // An exponent this long can only overflow or underflow (or scale a zero); keep it finite.
    const magnitude = expDigits.length > 12 ? 1e12 : Number(expDigits || '0');
    exponent = expNegative ? -magnitude : magnitude;
  }
  if (i !== text.length) return undefined;
  let all = intDigits + fracDigits;
  exponent -= fracDigits.length;
  let lead = 0;
  while (lead < all.length && all[lead] === '0') lead++;
  all = all.slice(lead);
  if (all === '') return ZERO;
  let trail = all.length;
  while (all[trail - 1] === '0') trail--;
  exponent += all.length - trail;
  return { negative, digits: all.slice(0, trail), exponent };
}

/** The decimal exponent of a non-zero number's leading digit (1234 → 3, 0.05 → -2). */
function leadingExponent(d: Decimal): number {
  return d.exponent + d.digits.length - 1;
}

/**
 * Parses and validates a DynamoDB number string, with DynamoDB's messages for text that is not a number and
 * for numbers out of range or with more than 38 significant digits.
 */
export function parseNumber(text: string): Decimal {
  if (text === '') throw new DynamoValidationError('The parameter cannot be converted to a numeric value');
  const d = scanDecimal(text);
  if (!d) throw new DynamoValidationError(`The parameter cannot be converted to a numeric value: ${text}`);
  if (d.digits === '') return d;
  const lead = leadingExponent(d);
  if (lead > MAX_EXPONENT) throw new DynamoValidationError(NUMBER_OVERFLOW);
  if (lead < MIN_EXPONENT) throw new DynamoValidationError(NUMBER_UNDERFLOW);
  if (d.digits.length > MAX_SIGNIFICANT_DIGITS) throw new DynamoValidationError(NUMBER_TOO_PRECISE);
  return d;
}

/** True when `text` is a number DynamoDB would store. */
export function isValidNumber(text: string): boolean {
  try {
    parseNumber(text);
    return true;
  } catch {
    return false;
  }
}

/** Writes a decimal in DynamoDB's canonical form: plain notation, no exponent, no superfluous zeros, no "-0". */
export function formatDecimal(d: Decimal): string {
  if (d.digits === '') return '0';
  let body: string;
  if (d.exponent >= 0) {
    body = d.digits + '0'.repeat(d.exponent);
  } else {
    const point = d.digits.length + d.exponent;
    body =
      point > 0
        ? `${d.digits.slice(0, point)}.${d.digits.slice(point)}`
        : `0.${'0'.repeat(-point)}${d.digits}`;
  }
  return d.negative ? `-${body}` : body;
}

/** Validates a number string and returns it as DynamoDB returns it ("1.50" → "1.5", "15E-1" → "1.5", "-0" → "0"). */
export function normalizeNumber(text: string): string {
  return formatDecimal(parseNumber(text));
}

function decimalOrThrow(text: string): Decimal {
  return parseNumber(text);
}

/** Orders two decimals exactly: negative, zero or positive like a comparator. */
export function compareDecimals(a: Decimal, b: Decimal): number {
  const signA = a.digits === '' ? 0 : a.negative ? -1 : 1;
  const signB = b.digits === '' ? 0 : b.negative ? -1 : 1;
  if (signA !== signB) return signA < signB ? -1 : 1;
  if (signA === 0) return 0;
  const leadA = leadingExponent(a);
  const leadB = leadingExponent(b);
  let magnitude: number;
  if (leadA !== leadB) {
    magnitude = leadA < leadB ? -1 : 1;
  } else {
    const width = Math.max(a.digits.length, b.digits.length);
    const da = a.digits.padEnd(width, '0');
    const db = b.digits.padEnd(width, '0');
    magnitude = da === db ? 0 : da < db ? -1 : 1;
  }
  return magnitude * signA;
}

/** Orders two number strings exactly (they must be valid DynamoDB numbers). */
export function compareNumbers(a: string, b: string): number {
  return compareDecimals(decimalOrThrow(a), decimalOrThrow(b));
}

/** True when two number strings denote the same number ("1" and "1.0", "0" and "-0"). */
export function numbersEqual(a: string, b: string): boolean {
  return compareNumbers(a, b) === 0;
}

function toScaledBigInt(d: Decimal, exponent: number): bigint {
  if (d.digits === '') return 0n;
  const magnitude = BigInt(d.digits) * 10n ** BigInt(d.exponent - exponent);
  return d.negative ? -magnitude : magnitude;
}

function fromScaledBigInt(value: bigint, exponent: number): Decimal {
  if (value === 0n) return ZERO;
  const negative = value < 0n;
  let digits = (negative ? -value : value).toString();
  let trail = digits.length;
  while (digits[trail - 1] === '0') trail--;
  exponent += digits.length - trail;
  digits = digits.slice(0, trail);
  return { negative, digits, exponent };
}

/**
 * The exact sum of two decimals, refused as DynamoDB refuses it when the result cannot be stored: out of range,
 * or needing more than 38 significant digits (which DynamoDB also reports as "Number overflow").
 */
export function addDecimals(a: Decimal, b: Decimal): Decimal {
  if (a.digits === '') return b;
  if (b.digits === '') return a;
  const exponent = Math.min(a.exponent, b.exponent);
  const sum = fromScaledBigInt(toScaledBigInt(a, exponent) + toScaledBigInt(b, exponent), exponent);
  if (sum.digits === '') return sum;
  const lead = leadingExponent(sum);
  if (lead > MAX_EXPONENT || sum.digits.length > MAX_SIGNIFICANT_DIGITS) {
    throw new DynamoValidationError(NUMBER_OVERFLOW);
  }
  if (lead < MIN_EXPONENT) throw new DynamoValidationError(NUMBER_UNDERFLOW);
  return sum;
}

export function negateDecimal(d: Decimal): Decimal {
  return d.digits === '' ? d : { ...d, negative: !d.negative };
}

/** a + b on number strings, exactly; the result is in canonical form. */
export function addNumbers(a: string, b: string): string {
  return formatDecimal(addDecimals(decimalOrThrow(a), decimalOrThrow(b)));
}

/** a − b on number strings, exactly; the result is in canonical form. */
export function subtractNumbers(a: string, b: string): string {
  return formatDecimal(addDecimals(decimalOrThrow(a), negateDecimal(decimalOrThrow(b))));
}

// ---------------------------------------------------------------------------------------------------------
// Attribute values

export type AttributeTypeName = 'S' | 'N' | 'B' | 'SS' | 'NS' | 'BS' | 'M' | 'L' | 'BOOL' | 'NULL';

export const ATTRIBUTE_TYPE_NAMES: readonly AttributeTypeName[] = [
  'S',
  'N',
  'B',
  'SS',
  'NS',
  'BS',
  'M',
  'L',
  'BOOL',
  'NULL',
];

/** The type of an attribute value ("S", "N", "M", …). */
export function attributeType(value: AttributeValue): AttributeTypeName {
  for (const key in value) {
    if ((ATTRIBUTE_TYPE_NAMES as readonly string[]).includes(key)) return key as AttributeTypeName;
  }
  throw new DynamoValidationError(
    'Supplied AttributeValue is empty, must contain exactly one of the supported datatypes',
  );
}

/** Orders strings by their UTF-8 bytes, which is the order of their code points (not of UTF-16 units). */
export function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // Only a surrogate (a code point above U+FFFF) sorts differently by code point than by UTF-16 unit.
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? 1 : -1;
    return ca < cb ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Decodes a base64 binary value (DynamoDB's JSON carries B and BS members as base64). */
export function decodeBinary(base64: string): Buffer {
  return Buffer.from(base64, 'base64');
}

/** Orders binary values (base64) by their bytes, unsigned. */
export function compareBinary(a: string, b: string): number {
  return Buffer.compare(decodeBinary(a), decodeBinary(b));
}

/** The canonical base64 of a binary value's bytes, so equal bytes compare equal whatever the padding bits. */
function binaryKey(base64: string): string {
  return decodeBinary(base64).toString('base64');
}

/**
 * Orders two values when DynamoDB defines an order between them: both N (numerically), both S (by UTF-8
 * bytes) or both B (by bytes). Any other pair has no order and gives undefined (a comparison on it is false).
 */
export function compareValues(a: AttributeValue, b: AttributeValue): number | undefined {
  if ('N' in a && 'N' in b) return compareNumbers(a.N, b.N);
  if ('S' in a && 'S' in b) return compareStrings(a.S, b.S);
  if ('B' in a && 'B' in b) return compareBinary(a.B, b.B);
  return undefined;
}

function setKey(type: 'SS' | 'NS' | 'BS', member: string): string {
  if (type === 'NS') return normalizeNumber(member);
  if (type === 'BS') return binaryKey(member);
  return member;
}

/** The members of a set, keyed so that equal members (1 and 1.0, the same bytes) have one key. */
export function setMemberKeys(type: 'SS' | 'NS' | 'BS', members: readonly string[]): Set<string> {
  return new Set(members.map((m) => setKey(type, m)));
}

function setsEqual(type: 'SS' | 'NS' | 'BS', a: readonly string[], b: readonly string[]): boolean {
  const ka = setMemberKeys(type, a);
  const kb = setMemberKeys(type, b);
  if (ka.size !== kb.size) return false;
  for (const k of ka) if (!kb.has(k)) return false;
  return true;
}

/**
 * DynamoDB's equality: the same type and the same value. Numbers compare numerically, binaries by bytes, sets as
 * sets (order and representation do not matter), lists element by element, maps key by key.
 */
export function valuesEqual(a: AttributeValue, b: AttributeValue): boolean {
  if ('S' in a) return 'S' in b && a.S === b.S;
  if ('N' in a) return 'N' in b && numbersEqual(a.N, b.N);
  if ('B' in a) return 'B' in b && compareBinary(a.B, b.B) === 0;
  if ('BOOL' in a) return 'BOOL' in b && a.BOOL === b.BOOL;
  if ('NULL' in a) return 'NULL' in b;
  if ('SS' in a) return 'SS' in b && setsEqual('SS', a.SS, b.SS);
  if ('NS' in a) return 'NS' in b && setsEqual('NS', a.NS, b.NS);
  if ('BS' in a) return 'BS' in b && setsEqual('BS', a.BS, b.BS);
  if ('L' in a) {
    if (!('L' in b) || a.L.length !== b.L.length) return false;
    return a.L.every((v, i) => valuesEqual(v, b.L[i] as AttributeValue));
  }
  if ('M' in a) {
    if (!('M' in b)) return false;
    const ka = Object.keys(a.M);
    if (ka.length !== Object.keys(b.M).length) return false;
    return ka.every(
      (k) => Object.hasOwn(b.M, k) && valuesEqual(a.M[k] as AttributeValue, b.M[k] as AttributeValue),
    );
  }
  return false;
}

/** A deep copy of a value with every number (N and NS members) in DynamoDB's canonical form. */
export function normalizeValue(value: AttributeValue): AttributeValue {
  if ('N' in value) return { N: normalizeNumber(value.N) };
  if ('NS' in value) return { NS: value.NS.map(normalizeNumber) };
  if ('SS' in value) return { SS: [...value.SS] };
  if ('BS' in value) return { BS: [...value.BS] };
  if ('L' in value) return { L: value.L.map(normalizeValue) };
  if ('M' in value) {
    const m: Record<string, AttributeValue> = {};
    for (const [k, v] of Object.entries(value.M)) setOwn(m, k, normalizeValue(v));
    return { M: m };
  }
  return { ...value } as AttributeValue;
}

/**
 * Sets an own property, even one named "__proto__" (a legal attribute name), without touching prototypes.
 */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

function listForMessage(members: readonly string[]): string {
  return `[${members.join(', ')}]`;
}

/**
 * Checks an attribute value the way DynamoDB checks one in a request (ExpressionAttributeValues, legacy
 * AttributeValueLists, …) and throws a ValidationException with DynamoDB's message when it is malformed.
 */
export function validateAttributeValue(value: AttributeValue): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new DynamoValidationError(
      'Supplied AttributeValue is empty, must contain exactly one of the supported datatypes',
    );
  }
  const types = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined);
  if (types.length === 0) {
    throw new DynamoValidationError(
      'Supplied AttributeValue is empty, must contain exactly one of the supported datatypes',
    );
  }
  if (types.length > 1) {
    throw new DynamoValidationError(
      'Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes',
    );
  }
  if ('N' in value) {
    parseNumber(value.N);
  } else if ('NULL' in value) {
    if (value.NULL !== true) {
      throw new DynamoValidationError(
        'One or more parameter values were invalid: Null attribute value types must have the value of true',
      );
    }
  } else if ('SS' in value) {
    if (value.SS.length === 0) {
      throw new DynamoValidationError(
        'One or more parameter values were invalid: An string set  may not be empty',
      );
    }
    if (new Set(value.SS).size !== value.SS.length) {
      throw new DynamoValidationError(
        `One or more parameter values were invalid: Input collection ${listForMessage(value.SS)} contains duplicates.`,
      );
    }
  } else if ('NS' in value) {
    if (value.NS.length === 0) {
      throw new DynamoValidationError(
        'One or more parameter values were invalid: An number set  may not be empty',
      );
    }
    const normalized = value.NS.map(normalizeNumber);
    if (new Set(normalized).size !== normalized.length) {
      throw new DynamoValidationError('Input collection contains duplicates');
    }
  } else if ('BS' in value) {
    if (value.BS.length === 0) {
      throw new DynamoValidationError(
        'One or more parameter values were invalid: Binary sets should not be empty',
      );
    }
    if (setMemberKeys('BS', value.BS).size !== value.BS.length) {
      throw new DynamoValidationError(
        `One or more parameter values were invalid: Input collection ${listForMessage(value.BS)}of type BS contains duplicates.`,
      );
    }
  } else if ('L' in value) {
    for (const v of value.L) validateAttributeValue(v);
  } else if ('M' in value) {
    for (const v of Object.values(value.M)) validateAttributeValue(v);
  } else if (!('S' in value) && !('B' in value) && !('BOOL' in value)) {
    throw new DynamoValidationError(
      'Supplied AttributeValue is empty, must contain exactly one of the supported datatypes',
    );
  }
}

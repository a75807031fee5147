// Key attribute values as bytes whose byte order (memcmp: SQLite's BLOB, PostgreSQL's bytea) is DynamoDB's
// order, so the store keeps items in a primary key index and a Query is a range scan of it. Also DynamoDB's
// rules for numbers (38 significant digits, magnitudes 1E-130 to under 1E126) and for item sizes.
//
// Encodings, one type per key attribute (a table fixes it), so no type tag is needed:
//   S  its UTF-8 bytes (DynamoDB compares strings as UTF-8 bytes), B  its bytes;
//   N  a class byte (0x01 negative, 0x02 zero, 0x03 positive), then for a value 0.d1d2...dn x 10^E one
//      exponent byte E+129 (E is -129..126, exactly a byte) and the digits two to a byte (d1*10+d2, the last
//      one padded with 0). Normalized digits end in a non-zero digit, so a shorter digit string that is a
//      prefix of a longer one is the smaller number, as memcmp has it. Negatives store 255-(E+129) and 99
//      minus each digit byte, ended by 0xFF so that the shorter string (the larger negative) sorts last.
import { TableInputError } from '../store/errors.js';
import type { AttributeValue, Item, KeySchema, KeyType } from './types.js';
import { normalizeNumber, parseNumber as parseDecimal, type Decimal } from './values.js';

/** DynamoDB's item size limit (bytes, as itemSize counts them). */
export const MAX_ITEM_SIZE = 400 * 1024;
/** DynamoDB's limits on the size of a partition key value and of a sort key value (bytes). */
export const MAX_PARTITION_KEY_SIZE = 2048;
export const MAX_SORT_KEY_SIZE = 1024;

/** A number as DynamoDB keeps it: sign, significant digits (no leading or trailing zeros), and E such that
 *  the value is 0.digits x 10^E. Zero is sign 0 with no digits. */
export interface DecimalNumber {
  sign: -1 | 0 | 1;
  digits: string;
  exponent: number;
}

const MIN_EXPONENT = -129;

/** Parses a DynamoDB number (values.ts has the one reading of them); throws TableInputError, in DynamoDB's
 *  words, for one it would refuse. */
export function parseNumber(text: string): DecimalNumber {
  let d: Decimal;
  try {
    d = parseDecimal(text);
  } catch (err) {
    throw new TableInputError((err as Error).message);
  }
  if (d.digits === '') return { sign: 0, digits: '', exponent: 0 };
  // values.ts writes digits x 10^exponent; here the value is 0.digits x 10^E.
  return { sign: d.negative ? -1 : 1, digits: d.digits, exponent: d.exponent + d.digits.length };
}

/** The plain decimal form DynamoDB answers with: "1.50", "15E-1" and "+1.5" are all "1.5". */
export function canonicalNumber(text: string): string {
  try {
    return normalizeNumber(text);
  } catch (err) {
    throw new TableInputError((err as Error).message);
  }
}

function encodeNumber(text: string): Buffer {
  const { sign, digits, exponent } = parseNumber(text);
  if (sign === 0) return Buffer.from([0x02]);
  const pairs = Math.ceil(digits.length / 2);
  const out = Buffer.alloc(2 + pairs + (sign < 0 ? 1 : 0));
  out[0] = sign < 0 ? 0x01 : 0x03;
  const e = exponent - MIN_EXPONENT;
  out[1] = sign < 0 ? 255 - e : e;
  for (let i = 0; i < pairs; i++) {
    const pair = Number(digits[2 * i]) * 10 + Number(digits[2 * i + 1] ?? '0');
    out[2 + i] = sign < 0 ? 99 - pair : pair;
  }
  if (sign < 0) out[out.length - 1] = 0xff;
  return out;
}

/** The order-preserving encoding of a key value of this type; TableInputError when the value is not one. */
export function encodeKey(value: AttributeValue | undefined, type: KeyType): Buffer {
  if (type === 'S' && value && 'S' in value && typeof value.S === 'string')
    return Buffer.from(value.S, 'utf8');
  if (type === 'N' && value && 'N' in value && typeof value.N === 'string') return encodeNumber(value.N);
  if (type === 'B' && value && 'B' in value && typeof value.B === 'string')
    return Buffer.from(value.B, 'base64');
  throw new TableInputError(
    `One or more parameter values were invalid: Condition parameter type does not match schema type`,
  );
}

/** The type of an attribute value (its one property). */
export function typeOf(value: AttributeValue): string {
  return Object.keys(value)[0] ?? '';
}

/** An item's encoded position in a key schema: sk is empty when the schema has no sort key. */
export interface EncodedKey {
  pk: Buffer;
  sk: Buffer;
}

/**
 * The (partition, sort) encodings of an item (or a key) under a schema, checking what DynamoDB checks of a
 * written item: both attributes present, of the schema's types, not empty and within the size limits.
 * `what` names the schema in the messages (a table's key or an index's).
 */
export function itemKey(schema: KeySchema, item: Item, what: { index?: string } = {}): EncodedKey {
  const pk = keyPart(schema.partition.name, schema.partition.type, item, what.index, MAX_PARTITION_KEY_SIZE);
  const sk = schema.sort
    ? keyPart(schema.sort.name, schema.sort.type, item, what.index, MAX_SORT_KEY_SIZE)
    : Buffer.alloc(0);
  return { pk, sk };
}

function keyPart(name: string, type: KeyType, item: Item, index: string | undefined, max: number): Buffer {
  const value = item[name];
  if (value === undefined) {
    throw new TableInputError(
      `One or more parameter values were invalid: Missing the key ${name} in the item`,
    );
  }
  const actual = typeOf(value);
  if (actual !== type) {
    throw new TableInputError(
      index === undefined
        ? `One or more parameter values were invalid: Type mismatch for key ${name} expected: ${type} actual: ${actual}`
        : `One or more parameter values were invalid: Type mismatch for Index Key ${name} Expected: ${type} Actual: ${actual} IndexName: ${index}`,
    );
  }
  const bytes = encodeKey(value, type);
  if (type !== 'N' && bytes.length === 0) {
    throw new TableInputError(
      index === undefined
        ? `One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty ${type === 'S' ? 'string' : 'binary'} value. Key: ${name}`
        : `One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty ${type === 'S' ? 'string' : 'binary'} value. IndexName: ${index}, IndexKey: ${name}`,
    );
  }
  if (bytes.length > max) {
    throw new TableInputError(
      max === MAX_PARTITION_KEY_SIZE
        ? `One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of ${max} bytes`
        : `One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of ${max} bytes`,
    );
  }
  return bytes;
}

/** The schema's key attributes of an item. */
export function keyAttributes(schema: KeySchema, item: Item): Item {
  const out: Item = {};
  for (const a of [schema.partition, schema.sort]) {
    if (a && item[a.name] !== undefined) out[a.name] = item[a.name]!;
  }
  return out;
}

/** The smallest byte string greater than every string starting with prefix, or undefined when there is
 *  none (a prefix of only 0xFF bytes): the upper bound of a begins_with range. */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return undefined;
  const out = Buffer.from(prefix.subarray(0, end));
  out[end - 1]! += 1;
  return out;
}

/**
 * An item's size as DynamoDB counts it against its 400 KB limit: every attribute name's UTF-8 length plus
 * its value's size (S: UTF-8 bytes, N: one byte per two significant digits plus one, B: bytes, BOOL and
 * NULL: 1, sets: the sum of their elements, M and L: 3 plus their contents plus 1 per element).
 */
export function itemSize(item: Item): number {
  let n = 0;
  for (const [name, value] of Object.entries(item)) n += Buffer.byteLength(name, 'utf8') + valueSize(value);
  return n;
}

function valueSize(v: AttributeValue): number {
  if ('S' in v) return Buffer.byteLength(v.S, 'utf8');
  if ('N' in v) return numberSize(v.N);
  if ('B' in v) return Buffer.byteLength(v.B, 'base64');
  if ('SS' in v) return v.SS.reduce((n, s) => n + Buffer.byteLength(s, 'utf8'), 0);
  if ('NS' in v) return v.NS.reduce((n, s) => n + numberSize(s), 0);
  if ('BS' in v) return v.BS.reduce((n, b) => n + Buffer.byteLength(b, 'base64'), 0);
  if ('M' in v) {
    const entries = Object.entries(v.M);
    return 3 + entries.reduce((n, [k, x]) => n + Buffer.byteLength(k, 'utf8') + valueSize(x) + 1, 0);
  }
  if ('L' in v) return 3 + v.L.reduce((n, x) => n + valueSize(x) + 1, 0);
  return 1;
}

function numberSize(text: string): number {
  let digits: number;
  try {
    digits = parseNumber(text).digits.length;
  } catch {
    // Sizes are counted for what the API already accepted; a number it did not check still gets one.
    digits = text
      .replace(/[eE].*$/, '')
      .replace(/\D/g, '')
      .replace(/^0+|0+$/g, '').length;
  }
  return Math.ceil(digits / 2) + 1;
}

/** Whether two items hold the same data as DynamoDB sees it: map keys in any order, numbers by value, and
 *  sets as sets. A write that changes nothing records no stream record. */
export function sameItem(a: Item, b: Item): boolean {
  return sameMap(a, b);
}

function sameMap(a: Record<string, AttributeValue>, b: Record<string, AttributeValue>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => b[k] !== undefined && sameValue(a[k]!, b[k]!));
}

function sameValue(a: AttributeValue, b: AttributeValue): boolean {
  if ('S' in a) return 'S' in b && a.S === b.S;
  if ('N' in a) return 'N' in b && sameNumber(a.N, b.N);
  if ('B' in a) return 'B' in b && sameBytes(a.B, b.B);
  if ('BOOL' in a) return 'BOOL' in b && a.BOOL === b.BOOL;
  if ('NULL' in a) return 'NULL' in b;
  if ('SS' in a) return 'SS' in b && sameSet(a.SS, b.SS, (s) => s);
  if ('NS' in a) return 'NS' in b && sameSet(a.NS, b.NS, numberText);
  if ('BS' in a) return 'BS' in b && sameSet(a.BS, b.BS, (s) => Buffer.from(s, 'base64').toString('hex'));
  if ('M' in a) return 'M' in b && sameMap(a.M, b.M);
  if ('L' in a) return 'L' in b && a.L.length === b.L.length && a.L.every((x, i) => sameValue(x, b.L[i]!));
  return false;
}

function numberText(s: string): string {
  try {
    return canonicalNumber(s);
  } catch {
    return s;
  }
}

function sameNumber(a: string, b: string): boolean {
  return a === b || numberText(a) === numberText(b);
}

function sameBytes(a: string, b: string): boolean {
  return a === b || Buffer.from(a, 'base64').equals(Buffer.from(b, 'base64'));
}

function sameSet(a: string[], b: string[], norm: (s: string) => string): boolean {
  if (a.length !== b.length) return false;
  const seen = new Set(a.map(norm));
  return b.every((x) => seen.has(norm(x)));
}

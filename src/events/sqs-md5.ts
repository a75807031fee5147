// The MD5 digests Amazon SQS returns with messages (MD5OfBody / MD5OfMessageBody and MD5OfMessageAttributes),
// computed exactly as SQS and the AWS SDKs' checksum validation compute them, so that a Nimbus queue's answers
// pass an SDK client's check. The attribute digest follows the SQS developer guide's algorithm, byte for byte
// the same as the AWS SDK for Java v2's MessageMD5ChecksumInterceptor.calculateMessageAttributesMd5: sort the
// attributes by name; for each, the name and the data type as a 4-byte big-endian length plus UTF-8 bytes, one
// transport-type byte (1 for String and Number, 2 for Binary), then the value as a 4-byte length plus its bytes
// (UTF-8 for strings, the raw decoded bytes for binary); the MD5 of the whole concatenation, in lower-case hex.
import { createHash } from 'node:crypto';

/** One message attribute as the SQS API carries it; a binary value is base64, as in the JSON protocol. */
export interface SqsMessageAttributeValue {
  /** "String", "Number" or "Binary", optionally with a custom label: "Number.int", "Binary.png". */
  DataType: string;
  StringValue?: string;
  /** Base64 of the bytes. */
  BinaryValue?: string;
}

const STRING_TRANSPORT = 1;
const BINARY_TRANSPORT = 2;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The MD5 of a message body (its UTF-8 bytes), as MD5OfBody / MD5OfMessageBody carry it. */
export function md5OfBody(body: string): string {
  return createHash('md5').update(body, 'utf8').digest('hex');
}

/**
 * The MD5 of a message's attributes, as MD5OfMessageAttributes carries it; null when there are none (SQS then
 * leaves the field out). Throws a TypeError for an attribute SQS itself would refuse: a data type that is not
 * String, Number or Binary (with an optional ".label"), a missing value for its type, or a binary value that is
 * not base64. Names sort by their UTF-8 bytes; SQS allows only ASCII names, for which that is the same order the
 * SDKs use.
 */
export function md5OfMessageAttributes(attrs: Record<string, SqsMessageAttributeValue>): string | null {
  const entries = Object.keys(attrs).map((name) => ({ name, bytes: Buffer.from(name, 'utf8') }));
  if (entries.length === 0) return null;
  entries.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  const hash = createHash('md5');
  for (const { name, bytes } of entries) {
    const attr = attrs[name]!;
    const { transport, value } = encodedValue(name, attr);
    hash.update(lengthPrefixed(bytes));
    hash.update(lengthPrefixed(Buffer.from(attr.DataType, 'utf8')));
    hash.update(Buffer.of(transport));
    hash.update(lengthPrefixed(value));
  }
  return hash.digest('hex');
}

function encodedValue(name: string, attr: SqsMessageAttributeValue): { transport: number; value: Buffer } {
  const type = attr.DataType;
  if (typeof type !== 'string') {
    throw new TypeError(`message attribute "${name}": DataType must be a string such as "String"`);
  }
  if (isType(type, 'String') || isType(type, 'Number')) {
    if (typeof attr.StringValue !== 'string') {
      throw new TypeError(`message attribute "${name}" of type ${type} needs a StringValue`);
    }
    return { transport: STRING_TRANSPORT, value: Buffer.from(attr.StringValue, 'utf8') };
  }
  if (isType(type, 'Binary')) {
    if (typeof attr.BinaryValue !== 'string') {
      throw new TypeError(`message attribute "${name}" of type ${type} needs a BinaryValue (base64)`);
    }
    if (!BASE64.test(attr.BinaryValue)) {
      throw new TypeError(`message attribute "${name}": BinaryValue is not valid base64`);
    }
    return { transport: BINARY_TRANSPORT, value: Buffer.from(attr.BinaryValue, 'base64') };
  }
  throw new TypeError(
    `message attribute "${name}": DataType "${type}" is not String, Number or Binary (optionally followed by ".label")`,
  );
}

/** "Number" or "Number.<label>"; the label itself is part of the digest, as SQS requires. */
function isType(dataType: string, base: string): boolean {
  return dataType === base || dataType.startsWith(base + '.');
}

function lengthPrefixed(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + bytes.length);
  out.writeUInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}

// Ids Nimbus makes for requests, events and messages.
import { randomBytes } from 'node:crypto';

const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolAt = 0;

/**
 * A UUID version 7 (RFC 9562): the first 48 bits are the time in ms, the rest random. Request, event and
 * message ids are keys of unique indexes that grow by millions; ids that increase with time land on the
 * index's last pages instead of a random page each, which is most of the cost of writing a record.
 */
export function timeOrderedId(now: number = Date.now()): string {
  // The pool's bytes are used once, so they can be written in place.
  const b = take(16);
  b.writeUIntBE(Math.max(0, Math.floor(now)) % 2 ** 48, 0, 6);
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** n random bytes as hex, from a pooled buffer: one system call per 4 KB rather than one per id. */
export function randomHex(n: number): string {
  return take(n).toString('hex');
}

function take(n: number): Buffer {
  if (poolAt + n > pool.length) {
    pool = randomBytes(Math.max(POOL_BYTES, n));
    poolAt = 0;
  }
  const b = pool.subarray(poolAt, poolAt + n);
  poolAt += n;
  return b;
}

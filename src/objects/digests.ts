// The digests of a stream computed as it passes: MD5 for the ETag, and the checksums S3 clients ask for.
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc32c } from '@aws-crypto/crc32c';
import type { ChecksumAlgorithm } from './bytes.js';

export class Digests {
  size = 0;
  private readonly md5 = createHash('md5');
  private crc32: number | undefined;
  private readonly crc32c: Crc32c | undefined;
  private readonly hashes: [ChecksumAlgorithm, Hash][] = [];

  constructor(algorithms: readonly ChecksumAlgorithm[] = []) {
    if (algorithms.includes('crc32')) this.crc32 = 0;
    if (algorithms.includes('crc32c')) this.crc32c = new Crc32c();
    if (algorithms.includes('sha1')) this.hashes.push(['sha1', createHash('sha1')]);
    if (algorithms.includes('sha256')) this.hashes.push(['sha256', createHash('sha256')]);
  }

  update(chunk: Buffer): void {
    this.size += chunk.length;
    this.md5.update(chunk);
    if (this.crc32 !== undefined) this.crc32 = crc32(chunk, this.crc32);
    this.crc32c?.update(chunk);
    for (const [, h] of this.hashes) h.update(chunk);
  }

  /** MD5 as hex; the checksums as base64 (big-endian for the CRCs, as S3 encodes them). */
  finish(): { md5: string; checksums: Partial<Record<ChecksumAlgorithm, string>> } {
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    if (this.crc32 !== undefined) checksums.crc32 = uint32Base64(this.crc32);
    if (this.crc32c) checksums.crc32c = uint32Base64(this.crc32c.digest());
    for (const [name, h] of this.hashes) checksums[name] = h.digest('base64');
    return { md5: this.md5.digest('hex'), checksums };
  }
}

function uint32Base64(n: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString('base64');
}

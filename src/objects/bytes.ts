// Where object bytes live, apart from their metadata (the store's ObjectStore). A ByteStore takes a stream and
// gives back an opaque ref with the digests it computed on the way; the caller commits the ref with the
// metadata, and deletes the bytes of a ref only once no committed row holds it. The file implementation keeps
// them under the data dir; a cluster can put another behind this interface (shared storage, an external S3)
// without the S3 API or the store noticing, since refs are opaque and never derived from a user's key.
import type { Readable } from 'node:stream';

export type ChecksumAlgorithm = 'crc32' | 'crc32c' | 'sha1' | 'sha256';
export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['crc32', 'crc32c', 'sha1', 'sha256'];

export interface StoredBytes {
  ref: string;
  size: number;
  /** Hex: the ETag of a single-part object. */
  md5: string;
  /** Base64 of each algorithm asked for, as S3 writes them in x-amz-checksum-*. */
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
}

/** Inclusive byte offsets, as in an HTTP Range. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface PutOptions {
  /** Checksums to compute besides MD5. */
  checksums?: readonly ChecksumAlgorithm[];
  /** More bytes than this fail the put with BytesTooLargeError. */
  maxBytes?: number;
}

export interface ByteStore {
  /**
   * Streams body to durable storage (constant memory, whatever its size) and resolves once the bytes would
   * survive a power cut. If body errors (a client gone, a signature or checksum that failed at its end),
   * rejects with that error and keeps nothing.
   */
  put(body: Readable, opts?: PutOptions): Promise<StoredBytes>;
  /** The bytes of a ref (or of a range of them); rejects when the ref has no bytes. */
  get(ref: string, range?: ByteRange): Promise<Readable>;
  /** A new ref with the same bytes (CopyObject), independent of the first: either may be deleted. */
  copy(ref: string): Promise<string>;
  /**
   * A new ref holding the bytes of `refs` one after another (CompleteMultipartUpload), as durable as put;
   * the parts' refs are left as they were, for the caller to delete once the new one is committed.
   */
  compose(refs: readonly string[]): Promise<StoredBytes>;
  /** Idempotent: deleting a missing ref is fine. */
  delete(ref: string): Promise<void>;
  /** Every ref written before `before` (epoch ms), for the orphan sweep. */
  refsBefore(before: number): AsyncIterable<string>;
}

export class BytesTooLargeError extends Error {
  override name = 'BytesTooLargeError';
  constructor(readonly maxBytes: number) {
    super(`the body is larger than ${maxBytes} bytes`);
  }
}

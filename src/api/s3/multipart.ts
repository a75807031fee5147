// Multipart uploads: CreateMultipartUpload, UploadPart (each part streamed into the ByteStore as its own ref),
// UploadPartCopy, ListParts, ListMultipartUploads, CompleteMultipartUpload and AbortMultipartUpload. The
// upload and its parts are store state; completion composes the listed parts' bytes into one new ref (tmp
// file, fsync, rename, as a put), then commits the object and drops the upload in one store transaction, and
// only then deletes the parts' bytes. A crash anywhere leaves either the upload or the object, and at worst
// unreferenced bytes for the orphan sweep.
import { createHash } from 'node:crypto';
import { BytesTooLargeError, type ByteStore, type StoredBytes } from '../../objects/bytes.js';
import type { Readable } from 'node:stream';
import type { NewObject, ObjectStore, StoredUpload } from '../../store/types.js';
import { timeOrderedId } from '../../ids.js';
import type { AwsResponse } from '../aws.js';
import { ApiError } from '../errors.js';
import { OWNER } from './buckets.js';
import { invalidArgument } from './errors.js';
import {
  checkConditions,
  header,
  isoDate,
  rangeOf,
  requestedChecksums,
  standardHeaders,
  tagsOf,
  userMetadata,
} from './headers.js';
import { checkKey } from './names.js';
import {
  checkDigests,
  contentMd5,
  found,
  MAX_PUT_BYTES,
  noSuchBucketError,
  readSmall,
  xml,
  type Ctx,
} from './objects.js';
import { malformedXml, parseXml } from './xml.js';

/** Every part but the last must be at least this big (S3's 5 MiB). */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_PART_NUMBER = 10_000;
const MAX_LIST = 1000;

export interface MultipartDeps {
  objects: ObjectStore;
  bytes: ByteStore;
}

export function noSuchUpload(uploadId: string): ApiError {
  return new ApiError(
    404,
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
    undefined,
    { UploadId: uploadId },
  );
}

export async function createMultipartUpload(d: MultipartDeps, c: Ctx): Promise<AwsResponse> {
  checkKey(c.key);
  const u = {
    bucket: c.bucket,
    key: c.key,
    uploadId: timeOrderedId(),
    headers: standardHeaders(c.req.headers),
    userMetadata: userMetadata(c.req.headers),
    tags: tagsOf(c.req.headers),
  };
  try {
    await d.objects.createUpload(c.project, u);
  } catch (err) {
    if ((err as Error).name === 'BucketNotFoundError') throw noSuchBucketError(c.bucket);
    throw err;
  }
  return xml(200, 'InitiateMultipartUploadResult', { Bucket: c.bucket, Key: c.key, UploadId: u.uploadId });
}

/** The upload named by ?uploadId, which must be for this key. */
async function uploadOf(d: MultipartDeps, c: Ctx, uploadId: string): Promise<StoredUpload> {
  const u = await d.objects.getUpload(c.project, c.bucket, uploadId);
  if (!u || u.key !== c.key) {
    if (!(await d.objects.getBucket(c.project, c.bucket))) throw noSuchBucketError(c.bucket);
    throw noSuchUpload(uploadId);
  }
  return u;
}

function partNumberOf(v: string | null): number {
  const n = v !== null && /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  if (!(n >= 1 && n <= MAX_PART_NUMBER)) {
    throw invalidArgument(
      `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`,
      'partNumber',
      v ?? '',
    );
  }
  return n;
}

/** Streams a part's bytes into the ByteStore; EntityTooLarge past S3's 5 GiB. */
async function putBytes(d: MultipartDeps, body: Readable, c: Ctx): Promise<StoredBytes> {
  try {
    return await d.bytes.put(body, { checksums: requestedChecksums(c.req.headers), maxBytes: MAX_PUT_BYTES });
  } catch (err) {
    if (err instanceof BytesTooLargeError) {
      throw new ApiError(
        400,
        'EntityTooLarge',
        'Your proposed upload exceeds the maximum allowed object size.',
      );
    }
    throw err;
  }
}

/** Records a part whose bytes are stored; on failure they are deleted, and a replaced part's bytes after. */
async function recordPart(d: MultipartDeps, c: Ctx, uploadId: string, n: number, stored: StoredBytes) {
  let replaced: string | null;
  try {
    ({ replaced } = await d.objects.putPart(c.project, c.bucket, uploadId, {
      partNumber: n,
      ref: stored.ref,
      size: stored.size,
      etag: stored.md5,
    }));
  } catch (err) {
    await d.bytes.delete(stored.ref).catch(() => undefined);
    // Aborted or completed while the part streamed in.
    if ((err as Error).name === 'UploadNotFoundError') throw noSuchUpload(uploadId);
    throw err;
  }
  if (replaced) await d.bytes.delete(replaced).catch(() => undefined);
}

export async function uploadPart(d: MultipartDeps, c: Ctx): Promise<AwsResponse> {
  const q = c.req.url.searchParams;
  const n = partNumberOf(q.get('partNumber'));
  const uploadId = q.get('uploadId')!;
  const md5 = contentMd5(header(c.req.headers, 'content-md5'));
  const algorithms = requestedChecksums(c.req.headers);
  await uploadOf(d, c, uploadId);
  const stored = await putBytes(d, c.req.body, c);
  try {
    checkDigests(c.req, stored, md5, algorithms);
  } catch (err) {
    await d.bytes.delete(stored.ref).catch(() => undefined);
    throw err;
  }
  await recordPart(d, c, uploadId, n, stored);
  const out: Record<string, string> = { etag: `"${stored.md5}"` };
  for (const alg of algorithms) out[`x-amz-checksum-${alg}`] = stored.checksums[alg]!;
  return { status: 200, headers: out, body: '' };
}

export async function uploadPartCopy(
  d: MultipartDeps,
  c: Ctx,
  source: { bucket: string; key: string },
): Promise<AwsResponse> {
  const q = c.req.url.searchParams;
  const n = partNumberOf(q.get('partNumber'));
  const uploadId = q.get('uploadId')!;
  await uploadOf(d, c, uploadId);
  const src = await found(d, { ...c, bucket: source.bucket, key: source.key });
  checkConditions(c.req.headers, src, 'x-amz-copy-source-');
  const rangeHeader = header(c.req.headers, 'x-amz-copy-source-range');
  const range = rangeHeader === undefined ? undefined : copyRange(rangeHeader, src.size);
  // Streamed through put rather than linked: a part's ETag is the MD5 of its own bytes.
  const body = await d.bytes.get(src.ref, range);
  const stored = await putBytes(d, body, c);
  await recordPart(d, c, uploadId, n, stored);
  return xml(200, 'CopyPartResult', { ETag: `"${stored.md5}"`, LastModified: isoDate(Date.now()) });
}

/** x-amz-copy-source-range: "bytes=first-last", both given and within the source (S3 takes no suffix). */
function copyRange(v: string, size: number): { start: number; end: number } {
  const m = /^bytes=(\d+)-(\d+)$/.exec(v.trim());
  const r = m ? rangeOf(v, size) : undefined;
  if (!m || !r || Number(m[2]) >= size || Number(m[1]) > Number(m[2])) {
    throw new ApiError(
      400,
      'InvalidArgument',
      'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
      undefined,
      { ArgumentName: 'x-amz-copy-source-range', ArgumentValue: v },
    );
  }
  return r;
}

function intParam(q: URLSearchParams, name: string, fallback: number): number {
  const v = q.get(name);
  if (v === null) return fallback;
  if (!/^\d+$/.test(v))
    throw invalidArgument(`Provided ${name} not an integer or within integer range`, name, v);
  return Math.min(Number(v), MAX_LIST);
}

/** The upload's parts; NoSuchUpload if it was completed or aborted since it was looked up. */
async function partsOf(d: MultipartDeps, c: Ctx, uploadId: string) {
  try {
    return await d.objects.listParts(c.project, c.bucket, uploadId);
  } catch (err) {
    if ((err as Error).name === 'UploadNotFoundError') throw noSuchUpload(uploadId);
    throw err;
  }
}

export async function listParts(d: MultipartDeps, c: Ctx): Promise<AwsResponse> {
  const q = c.req.url.searchParams;
  const uploadId = q.get('uploadId')!;
  const max = intParam(q, 'max-parts', MAX_LIST);
  const marker = intParam(q, 'part-number-marker', 0);
  await uploadOf(d, c, uploadId);
  const parts = await partsOf(d, c, uploadId);
  const after = parts.filter((p) => p.partNumber > marker);
  const page = after.slice(0, max);
  const truncated = after.length > page.length;
  return xml(200, 'ListPartsResult', {
    Bucket: c.bucket,
    Key: c.key,
    UploadId: uploadId,
    PartNumberMarker: marker,
    ...(truncated && page.length > 0 ? { NextPartNumberMarker: page.at(-1)!.partNumber } : {}),
    MaxParts: max,
    IsTruncated: truncated,
    Part: page.map((p) => ({
      PartNumber: p.partNumber,
      LastModified: isoDate(p.lastModified),
      ETag: `"${p.etag}"`,
      Size: p.size,
    })),
    Initiator: OWNER,
    Owner: OWNER,
    StorageClass: 'STANDARD',
  });
}

export async function listMultipartUploads(
  d: MultipartDeps,
  project: string,
  bucket: string,
  q: URLSearchParams,
): Promise<AwsResponse> {
  const max = intParam(q, 'max-uploads', MAX_LIST);
  const prefix = q.get('prefix') ?? undefined;
  const keyMarker = q.get('key-marker') || undefined;
  const idMarker = (keyMarker && q.get('upload-id-marker')) || undefined;
  let uploads;
  try {
    uploads = await d.objects.listUploads(project, bucket, {
      prefix,
      afterKey: keyMarker,
      afterUploadId: idMarker,
      limit: max + 1,
    });
  } catch (err) {
    if ((err as Error).name === 'BucketNotFoundError') throw noSuchBucketError(bucket);
    throw err;
  }
  const page = uploads.slice(0, max);
  const truncated = uploads.length > max;
  const last = page.at(-1);
  return xml(200, 'ListMultipartUploadsResult', {
    Bucket: bucket,
    KeyMarker: keyMarker ?? '',
    UploadIdMarker: idMarker ?? '',
    ...(truncated && last ? { NextKeyMarker: last.key, NextUploadIdMarker: last.uploadId } : {}),
    ...(prefix !== undefined ? { Prefix: prefix } : {}),
    MaxUploads: max,
    IsTruncated: truncated,
    Upload: page.map((u) => ({
      Key: u.key,
      UploadId: u.uploadId,
      Initiator: OWNER,
      Owner: OWNER,
      StorageClass: 'STANDARD',
      Initiated: isoDate(u.initiated),
    })),
  });
}

/** The <CompleteMultipartUpload> body: part numbers with their ETags (quotes optional), as sent. */
function requestedParts(body: Buffer): { partNumber: number; etag: string }[] {
  const doc = parseXml(body)['CompleteMultipartUpload'];
  if (typeof doc !== 'object' || doc === null) throw malformedXml();
  const parts = (doc as { Part?: unknown[] }).Part ?? [];
  if (parts.length === 0) throw malformedXml();
  return parts.map((p) => {
    const { PartNumber, ETag } = (p ?? {}) as { PartNumber?: unknown; ETag?: unknown };
    if (typeof PartNumber !== 'string' || !/^\d+$/.test(PartNumber.trim()) || typeof ETag !== 'string')
      throw malformedXml();
    return { partNumber: Number(PartNumber.trim()), etag: ETag.trim().replace(/^"|"$/g, '') };
  });
}

export async function completeMultipartUpload(d: MultipartDeps, c: Ctx): Promise<AwsResponse> {
  const uploadId = c.req.url.searchParams.get('uploadId')!;
  const wanted = requestedParts(await readSmall(c.req));
  const u = await uploadOf(d, c, uploadId);
  const stored = new Map((await partsOf(d, c, uploadId)).map((p) => [p.partNumber, p]));
  const chosen = wanted.map((w, i) => {
    if (i > 0 && w.partNumber <= wanted[i - 1]!.partNumber) {
      throw new ApiError(
        400,
        'InvalidPartOrder',
        'The list of parts was not in ascending order. The parts list must be specified in order by part number.',
        undefined,
        { UploadId: uploadId },
      );
    }
    const p = stored.get(w.partNumber);
    if (!p || p.etag !== w.etag) {
      throw new ApiError(
        400,
        'InvalidPart',
        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
        undefined,
        { UploadId: uploadId, PartNumber: String(w.partNumber), ETag: w.etag },
      );
    }
    return p;
  });
  chosen.slice(0, -1).forEach((p) => {
    if (p.size < MIN_PART_BYTES) {
      throw new ApiError(
        400,
        'EntityTooSmall',
        'Your proposed upload is smaller than the minimum allowed object size.',
        undefined,
        {
          ProposedSize: String(p.size),
          MinSizeAllowed: String(MIN_PART_BYTES),
          PartNumber: String(p.partNumber),
          ETag: p.etag,
        },
      );
    }
  });
  const md5s = Buffer.concat(chosen.map((p) => Buffer.from(p.etag, 'hex')));
  const etag = `${createHash('md5').update(md5s).digest('hex')}-${chosen.length}`;
  const bytes = await d.bytes.compose(chosen.map((p) => p.ref));
  const o: NewObject = {
    bucket: c.bucket,
    key: c.key,
    ref: bytes.ref,
    size: bytes.size,
    etag,
    headers: u.headers,
    userMetadata: u.userMetadata,
    // A multipart object's checksums would be checksums of part checksums: not kept yet.
    checksums: {},
    tags: u.tags,
  };
  let done;
  try {
    // The object is committed here (the ObjectCreated:CompleteMultipartUpload moment).
    done = await d.objects.completeUpload(c.project, uploadId, o, c.change);
  } catch (err) {
    await d.bytes.delete(bytes.ref).catch(() => undefined);
    if ((err as Error).name === 'UploadNotFoundError') throw noSuchUpload(uploadId);
    if ((err as Error).name === 'BucketNotFoundError') throw noSuchBucketError(c.bucket);
    throw err;
  }
  for (const ref of [...done.parts, ...(done.replaced ? [done.replaced] : [])])
    await d.bytes.delete(ref).catch(() => undefined);
  return xml(200, 'CompleteMultipartUploadResult', {
    Location: `/${c.bucket}/${encodeURI(c.key)}`,
    Bucket: c.bucket,
    Key: c.key,
    ETag: `"${etag}"`,
  });
}

export async function abortMultipartUpload(d: MultipartDeps, c: Ctx): Promise<AwsResponse> {
  const uploadId = c.req.url.searchParams.get('uploadId')!;
  await uploadOf(d, c, uploadId);
  const refs = await d.objects.abortUpload(c.project, c.bucket, uploadId);
  if (!refs) throw noSuchUpload(uploadId);
  for (const ref of refs) await d.bytes.delete(ref).catch(() => undefined);
  return { status: 204, headers: {}, body: '' };
}

// The object operations: PutObject (streamed into the ByteStore, checked, then committed), GetObject and
// HeadObject (conditions, ranges), DeleteObject(s) and CopyObject. Bytes are deleted only after the metadata
// that stopped holding them is committed; bytes written for a request that then fails are deleted at once.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  BytesTooLargeError,
  type ByteStore,
  type ChecksumAlgorithm,
  type StoredBytes,
} from '../../objects/bytes.js';
import type { ChangeContext, NewObject, ObjectStore, StoredObject } from '../../store/types.js';
import type { AwsResponse, AwsStreamRequest } from '../aws.js';
import { ApiError } from '../errors.js';
import { invalidRequest, noSuchKey } from './errors.js';
import {
  checkConditions,
  header,
  isoDate,
  objectHeaders,
  rangeOf,
  requestedChecksums,
  responseOverrides,
  standardHeaders,
  tagsOf,
  userMetadata,
} from './headers.js';
import { checkKey } from './names.js';
import { malformedXml, parseXml, xmlDocument } from './xml.js';

/** S3's cap on one PutObject; larger objects need a multipart upload. */
export const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** S3 takes at most 1000 keys per DeleteObjects. */
const MAX_DELETE_KEYS = 1000;
/** A DeleteObjects body of 1000 keys of 1 KB each fits easily. */
const MAX_XML_BODY = 2 * 1024 * 1024;

export interface ObjectOpsDeps {
  objects: ObjectStore;
  bytes: ByteStore;
}

export type Ctx = {
  project: string;
  bucket: string;
  key: string;
  req: AwsStreamRequest;
  /** What the change log records of this request. */
  change?: ChangeContext;
};

export async function putObject(d: ObjectOpsDeps, c: Ctx): Promise<AwsResponse> {
  const { req } = c;
  checkKey(c.key);
  // Read everything the headers say before the body, so a bad header writes nothing.
  const headers = standardHeaders(req.headers);
  const meta = userMetadata(req.headers);
  const tags = tagsOf(req.headers);
  const algorithms = requestedChecksums(req.headers);
  const md5 = contentMd5(header(req.headers, 'content-md5'));
  if (!(await d.objects.getBucket(c.project, c.bucket))) throw noSuchBucketError(c.bucket);
  let stored;
  try {
    stored = await d.bytes.put(req.body, { checksums: algorithms, maxBytes: MAX_PUT_BYTES });
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
  try {
    checkDigests(req, stored, md5, algorithms);
    const o: NewObject = {
      bucket: c.bucket,
      key: c.key,
      ref: stored.ref,
      size: stored.size,
      etag: stored.md5,
      headers,
      userMetadata: meta,
      checksums: stored.checksums,
      tags,
    };
    const { replaced } = await commit(d, c.project, o, { ...c.change, event: 'ObjectCreated:Put' });
    if (replaced) await d.bytes.delete(replaced).catch(() => undefined);
  } catch (err) {
    await d.bytes.delete(stored.ref).catch(() => undefined);
    throw err;
  }
  const out: Record<string, string> = { etag: `"${stored.md5}"` };
  for (const alg of algorithms) out[`x-amz-checksum-${alg}`] = stored.checksums[alg]!;
  return { status: 200, headers: out, body: '' };
}

/** The body's digests against what the client said they were (Content-MD5, x-amz-checksum-* or trailers). */
export function checkDigests(
  req: AwsStreamRequest,
  stored: StoredBytes,
  md5: string | undefined,
  algorithms: readonly ChecksumAlgorithm[],
): void {
  if (md5 !== undefined && md5 !== stored.md5) {
    throw new ApiError(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
  for (const alg of algorithms) {
    const given = header(req.headers, `x-amz-checksum-${alg}`) ?? req.trailers[`x-amz-checksum-${alg}`];
    if (given !== undefined && given !== stored.checksums[alg]) {
      throw new ApiError(
        400,
        'BadDigest',
        `The ${alg.toUpperCase()} you specified did not match the calculated checksum.`,
      );
    }
  }
}

async function commit(d: ObjectOpsDeps, project: string, o: NewObject, change: ChangeContext) {
  try {
    return await d.objects.putObject(project, o, change);
  } catch (err) {
    if ((err as Error).name === 'BucketNotFoundError') throw noSuchBucketError(o.bucket);
    throw err;
  }
}

export function noSuchBucketError(bucket: string): ApiError {
  return new ApiError(404, 'NoSuchBucket', 'The specified bucket does not exist', undefined, {
    BucketName: bucket,
  });
}

/** Content-MD5 as hex, or InvalidDigest when it is not the base64 of 16 bytes. */
export function contentMd5(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const b = Buffer.from(v, 'base64');
  if (b.length !== 16 || b.toString('base64') !== v.trim()) {
    throw new ApiError(400, 'InvalidDigest', 'The Content-MD5 you specified was invalid.');
  }
  return b.toString('hex');
}

export async function found(d: Pick<ObjectOpsDeps, 'objects'>, c: Ctx): Promise<StoredObject> {
  const o = await d.objects.getObject(c.project, c.bucket, c.key);
  if (o) return o;
  if (!(await d.objects.getBucket(c.project, c.bucket))) throw noSuchBucketError(c.bucket);
  throw noSuchKey(c.key);
}

export async function getObject(d: ObjectOpsDeps, c: Ctx, head: boolean): Promise<AwsResponse> {
  const { req } = c;
  if (req.url.searchParams.has('partNumber')) throw invalidRequest('partNumber is not supported yet.');
  const o = await found(d, c);
  const base = objectHeaders(o, false);
  if (checkConditions(req.headers, o) === 'not-modified') {
    return { status: 304, headers: { etag: base.etag!, 'last-modified': base['last-modified']! }, body: '' };
  }
  const range = rangeOf(header(req.headers, 'range'), o.size);
  const checksums = !range && header(req.headers, 'x-amz-checksum-mode')?.toUpperCase() === 'ENABLED';
  const headers = {
    ...objectHeaders(o, checksums),
    ...(head ? {} : responseOverrides(req.url.searchParams)),
  };
  const length = range ? range.end - range.start + 1 : o.size;
  headers['content-length'] = String(length);
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${o.size}`;
  const status = range ? 206 : 200;
  if (head || length === 0) return { status, headers, body: Readable.from([]) };
  const body = await d.bytes.get(o.ref, range);
  return { status, headers, body };
}

export async function deleteObject(d: ObjectOpsDeps, c: Ctx): Promise<AwsResponse> {
  await deleteKeys(d, c.project, c.bucket, [c.key], c.change);
  return { status: 204, headers: {}, body: '' };
}

async function deleteKeys(
  d: ObjectOpsDeps,
  project: string,
  bucket: string,
  keys: string[],
  change: ChangeContext | undefined,
): Promise<StoredObject[]> {
  let gone: StoredObject[];
  try {
    gone = await d.objects.deleteObjects(project, bucket, keys, change);
  } catch (err) {
    if ((err as Error).name === 'BucketNotFoundError') throw noSuchBucketError(bucket);
    throw err;
  }
  for (const o of gone) await d.bytes.delete(o.ref).catch(() => undefined);
  return gone;
}

export async function deleteObjects(
  d: ObjectOpsDeps,
  project: string,
  bucket: string,
  req: AwsStreamRequest,
  change?: ChangeContext,
): Promise<AwsResponse> {
  const body = await readSmall(req);
  const md5 = contentMd5(header(req.headers, 'content-md5'));
  if (md5 !== undefined && md5 !== createHash('md5').update(body).digest('hex')) {
    throw new ApiError(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
  }
  const doc = parseXml(body)['Delete'];
  if (typeof doc !== 'object' || doc === null) throw malformedXml();
  const del = doc as { Object?: unknown[]; Quiet?: unknown };
  const objects = del.Object ?? [];
  if (objects.length === 0 || objects.length > MAX_DELETE_KEYS) throw malformedXml();
  const keys = objects.map((o) => {
    const key = (o as { Key?: unknown } | null)?.Key;
    if (typeof key !== 'string' || key === '') throw malformedXml();
    return key;
  });
  const quiet = String(del.Quiet ?? 'false').trim() === 'true';
  const errors: { Key: string; Code: string; Message: string }[] = [];
  const valid = keys.filter((k) => {
    if (Buffer.byteLength(k) <= 1024) return true;
    errors.push({ Key: k, Code: 'KeyTooLongError', Message: 'Your key is too long' });
    return false;
  });
  await deleteKeys(d, project, bucket, valid, change);
  const result: Record<string, unknown> = {};
  // S3 reports a key that did not exist as deleted too: the end state is what was asked for.
  if (!quiet) result['Deleted'] = valid.map((Key) => ({ Key }));
  if (errors.length > 0) result['Error'] = errors;
  return xml(200, 'DeleteResult', result);
}

export async function copyObject(
  d: ObjectOpsDeps,
  c: Ctx,
  source: { bucket: string; key: string },
): Promise<AwsResponse> {
  const { req } = c;
  checkKey(c.key);
  const directive = (header(req.headers, 'x-amz-metadata-directive') ?? 'COPY').toUpperCase();
  const tagging = (header(req.headers, 'x-amz-tagging-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw new ApiError(400, 'InvalidArgument', 'Unknown metadata directive.', undefined, {
      ArgumentName: 'x-amz-metadata-directive',
      ArgumentValue: directive,
    });
  }
  if (tagging !== 'COPY' && tagging !== 'REPLACE') {
    throw new ApiError(400, 'InvalidArgument', 'Unknown tagging directive.');
  }
  const src = await found(d, { ...c, bucket: source.bucket, key: source.key });
  checkConditions(req.headers, src, 'x-amz-copy-source-');
  if (source.bucket === c.bucket && source.key === c.key && directive === 'COPY' && tagging === 'COPY') {
    throw invalidRequest(
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  if (!(await d.objects.getBucket(c.project, c.bucket))) throw noSuchBucketError(c.bucket);
  const replace = directive === 'REPLACE';
  const ref = await d.bytes.copy(src.ref);
  const o: NewObject = {
    bucket: c.bucket,
    key: c.key,
    ref,
    size: src.size,
    etag: src.etag,
    headers: replace ? standardHeaders(req.headers) : src.headers,
    userMetadata: replace ? userMetadata(req.headers) : src.userMetadata,
    checksums: src.checksums,
    tags: tagging === 'REPLACE' ? tagsOf(req.headers) : src.tags,
  };
  let written: StoredObject;
  try {
    const r = await commit(d, c.project, o, { ...c.change, event: 'ObjectCreated:Copy' });
    written = r.object;
    if (r.replaced) await d.bytes.delete(r.replaced).catch(() => undefined);
  } catch (err) {
    await d.bytes.delete(ref).catch(() => undefined);
    throw err;
  }
  return xml(200, 'CopyObjectResult', {
    ETag: `"${written.etag}"`,
    LastModified: isoDate(written.lastModified),
  });
}

/** x-amz-copy-source: "bucket/key" or "/bucket/key", URL-encoded; a versionId other than null is unknown. */
export function copySource(v: string): { bucket: string; key: string } {
  const [path = '', query] = v.split('?');
  if (query !== undefined && !/^versionId=null$/.test(query))
    throw invalidRequest('Object versions are not supported yet.');
  let decoded: string;
  try {
    decoded = decodeURIComponent(path.replace(/^\//, ''));
  } catch {
    throw new ApiError(400, 'InvalidArgument', 'Invalid copy source encoding.');
  }
  const slash = decoded.indexOf('/');
  if (slash <= 0 || slash === decoded.length - 1) {
    throw new ApiError(
      400,
      'InvalidArgument',
      'Copy Source must mention the source bucket and key: sourcebucket/sourcekey.',
    );
  }
  return { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
}

export function xml(status: number, root: string, body: Record<string, unknown>): AwsResponse {
  return { status, headers: { 'content-type': 'application/xml' }, body: xmlDocument(root, body) };
}

/** A small request body (XML), read whole within a limit. */
export async function readSmall(req: AwsStreamRequest): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_XML_BODY) {
      throw new ApiError(400, 'MaxMessageLengthExceeded', 'Your request was too big.');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

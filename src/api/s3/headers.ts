// What an object's headers say: the stored ones (Content-Type and the rest, x-amz-meta-*, tags) read from a
// PUT, written back on GET and HEAD; conditional requests (If-Match and friends); and Range.
import type { IncomingHttpHeaders } from 'node:http';
import type { ChecksumAlgorithm } from '../../objects/bytes.js';
import { CHECKSUM_ALGORITHMS } from '../../objects/bytes.js';
import type { ObjectHeaders, StoredObject } from '../../store/types.js';
import { ApiError } from '../errors.js';
import { invalidArgument, preconditionFailed } from './errors.js';

/** S3 caps the user metadata of an object (names and values) at 2 KB. */
const MAX_USER_METADATA = 2048;

const STANDARD: [keyof ObjectHeaders, string][] = [
  ['contentType', 'content-type'],
  ['cacheControl', 'cache-control'],
  ['contentDisposition', 'content-disposition'],
  ['contentEncoding', 'content-encoding'],
  ['contentLanguage', 'content-language'],
  ['expires', 'expires'],
];

export function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function standardHeaders(h: IncomingHttpHeaders): ObjectHeaders {
  const out: ObjectHeaders = {};
  for (const [field, name] of STANDARD) {
    let v = header(h, name);
    // aws-chunked is how the body travelled, not how the object is encoded.
    if (name === 'content-encoding' && v !== undefined) {
      v = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '' && s !== 'aws-chunked')
        .join(', ');
      if (v === '') v = undefined;
    }
    if (v !== undefined) out[field] = v;
  }
  out.contentType ??= 'binary/octet-stream';
  return out;
}

export function userMetadata(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  let size = 0;
  for (const [name, value] of Object.entries(h)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const v = Array.isArray(value) ? value.join(',') : value;
    const key = name.slice('x-amz-meta-'.length);
    out[key] = v;
    size += key.length + Buffer.byteLength(v);
  }
  if (size > MAX_USER_METADATA) {
    throw new ApiError(
      400,
      'MetadataTooLarge',
      'Your metadata headers exceed the maximum allowed metadata size.',
    );
  }
  return out;
}

export const MAX_TAGS = 10;
const MAX_TAG_KEY = 128;
const MAX_TAG_VALUE = 256;

const invalidTag = (message: string): ApiError => new ApiError(400, 'InvalidTag', message);

/** Checks a tag set against S3's limits and returns it as an object. */
export function checkedTags(pairs: Iterable<[string, string]>): Record<string, string> {
  const tags: Record<string, string> = {};
  let n = 0;
  for (const [k, v] of pairs) {
    if ([...k].length < 1 || [...k].length > MAX_TAG_KEY)
      throw invalidTag('The TagKey you have provided is invalid');
    if ([...v].length > MAX_TAG_VALUE) throw invalidTag('The TagValue you have provided is invalid');
    if (Object.hasOwn(tags, k)) throw invalidTag('Cannot provide multiple Tags with the same key');
    tags[k] = v;
    if (++n > MAX_TAGS) throw invalidTag(`Object tags cannot be greater than ${MAX_TAGS}`);
  }
  return tags;
}

/** x-amz-tagging: a URL query string of tags, within S3's tag limits. */
export function tagsOf(h: IncomingHttpHeaders): Record<string, string> {
  const raw = header(h, 'x-amz-tagging');
  if (raw === undefined || raw === '') return {};
  return checkedTags(new URLSearchParams(raw));
}

/** The checksums a PUT asks for: the ones it sends (headers or trailer) and the one it names. */
export function requestedChecksums(h: IncomingHttpHeaders): ChecksumAlgorithm[] {
  const out = new Set<ChecksumAlgorithm>();
  const named = header(h, 'x-amz-sdk-checksum-algorithm') ?? header(h, 'x-amz-checksum-algorithm');
  if (named !== undefined) {
    const alg = named.toLowerCase() as ChecksumAlgorithm;
    if (!CHECKSUM_ALGORITHMS.includes(alg)) {
      throw invalidRequest(
        `Checksum algorithm ${named} is not supported; use CRC32, CRC32C, SHA1 or SHA256.`,
      );
    }
    out.add(alg);
  }
  const trailer = header(h, 'x-amz-trailer') ?? '';
  for (const alg of CHECKSUM_ALGORITHMS) {
    if (header(h, `x-amz-checksum-${alg}`) !== undefined || trailer.includes(`x-amz-checksum-${alg}`))
      out.add(alg);
  }
  return [...out];
}

function invalidRequest(message: string): ApiError {
  return new ApiError(400, 'InvalidRequest', message);
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

export function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** The headers GET and HEAD answer with. */
export function objectHeaders(o: StoredObject, withChecksums: boolean): Record<string, string> {
  const out: Record<string, string> = {
    etag: `"${o.etag}"`,
    'last-modified': httpDate(o.lastModified),
    'accept-ranges': 'bytes',
  };
  for (const [field, name] of STANDARD) {
    const v = o.headers[field];
    if (v !== undefined) out[name] = v;
  }
  for (const [k, v] of Object.entries(o.userMetadata)) out[`x-amz-meta-${k}`] = v;
  const tags = Object.keys(o.tags).length;
  if (tags > 0) out['x-amz-tagging-count'] = String(tags);
  if (withChecksums) {
    for (const [alg, v] of Object.entries(o.checksums)) out[`x-amz-checksum-${alg}`] = v;
    if (Object.keys(o.checksums).length > 0) out['x-amz-checksum-type'] = 'FULL_OBJECT';
  }
  return out;
}

/** GetObject's response-* query parameters, which override the stored headers of this one answer. */
export function responseOverrides(q: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [
    'content-type',
    'content-language',
    'expires',
    'cache-control',
    'content-disposition',
    'content-encoding',
  ]) {
    const v = q.get(`response-${name}`);
    if (v !== null) out[name] = v;
  }
  return out;
}

/**
 * RFC 9110's evaluation order, as S3 applies it: If-Match (else If-Unmodified-Since) may fail with 412;
 * then If-None-Match (else If-Modified-Since) may answer 304. `prefix` reads CopyObject's
 * x-amz-copy-source-if-* instead, which fail with 412 only.
 */
export function checkConditions(h: IncomingHttpHeaders, o: StoredObject, prefix = ''): 'ok' | 'not-modified' {
  const get = (name: string) => header(h, `${prefix}${name}`);
  const etag = o.etag;
  const seconds = Math.floor(o.lastModified / 1000) * 1000;
  const ifMatch = get('if-match');
  if (ifMatch !== undefined) {
    if (!etagMatches(ifMatch, etag))
      throw preconditionFailed(prefix ? 'x-amz-copy-source-If-Match' : 'If-Match');
  } else {
    const since = dateOf(get('if-unmodified-since'));
    if (since !== undefined && seconds > since) {
      throw preconditionFailed(prefix ? 'x-amz-copy-source-If-Unmodified-Since' : 'If-Unmodified-Since');
    }
  }
  const ifNoneMatch = get('if-none-match');
  const modifiedSince = dateOf(get('if-modified-since'));
  const notModified =
    ifNoneMatch !== undefined
      ? etagMatches(ifNoneMatch, etag)
      : modifiedSince !== undefined && seconds <= modifiedSince;
  if (!notModified) return 'ok';
  if (prefix)
    throw preconditionFailed(
      ifNoneMatch !== undefined ? 'x-amz-copy-source-If-None-Match' : 'x-amz-copy-source-If-Modified-Since',
    );
  return 'not-modified';
}

function etagMatches(list: string, etag: string): boolean {
  return list.split(',').some((t) => {
    const v = t.trim().replace(/^W\//, '');
    return v === '*' || v.replace(/^"|"$/g, '') === etag;
  });
}

function dateOf(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

/** A single `bytes=` range, inclusive, within size; undefined to send the whole object (no or an unusable
 *  Range header, which HTTP says to ignore); InvalidRange when it starts past the end. */
export function rangeOf(v: string | undefined, size: number): { start: number; end: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(v.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) throw invalidRange(size, v);
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
  }
  if (start >= size) throw invalidRange(size, v);
  return { start, end };
}

function invalidRange(size: number, requested: string): ApiError {
  return new ApiError(
    416,
    'InvalidRange',
    'The requested range is not satisfiable',
    undefined,
    { RangeRequested: requested, ActualObjectSize: String(size) },
    { 'content-range': `bytes */${size}` },
  );
}

export { invalidArgument };

// Bucket operations and the two listings of a bucket's objects (ListObjects and ListObjectsV2).
import type { ObjectStore, StoredBucket } from '../../store/types.js';
import type { AwsResponse, AwsStreamRequest } from '../aws.js';
import { ApiError } from '../errors.js';
import { invalidArgument } from './errors.js';
import { isoDate } from './headers.js';
import { checkBucketName } from './names.js';
import { readSmall, xml } from './objects.js';
import { parseXml } from './xml.js';

export interface BucketOpsDeps {
  objects: ObjectStore;
  region: string;
}

export const OWNER = { ID: 'nimbus', DisplayName: 'nimbus' };

export async function createBucket(
  d: BucketOpsDeps,
  project: string,
  bucket: string,
  req: AwsStreamRequest,
): Promise<AwsResponse> {
  checkBucketName(bucket);
  const body = await readSmall(req);
  if (body.length > 0) {
    const conf = parseXml(body)['CreateBucketConfiguration'] as { LocationConstraint?: unknown } | undefined;
    const wanted = conf && typeof conf === 'object' ? conf.LocationConstraint : undefined;
    if (typeof wanted === 'string' && wanted !== '' && wanted !== d.region) {
      throw new ApiError(
        400,
        'IllegalLocationConstraintException',
        `The ${wanted} location constraint is incompatible for the region specific endpoint this request was sent to.`,
      );
    }
  }
  if (!(await d.objects.createBucket(project, bucket, null))) {
    throw new ApiError(
      409,
      'BucketAlreadyOwnedByYou',
      'Your previous request to create the named bucket succeeded and you already own it.',
      undefined,
      { BucketName: bucket },
    );
  }
  return { status: 200, headers: { location: `/${bucket}` }, body: '' };
}

export async function deleteBucket(d: BucketOpsDeps, project: string, bucket: string): Promise<AwsResponse> {
  try {
    if (!(await d.objects.deleteBucket(project, bucket))) throw noSuchBucket(bucket);
  } catch (err) {
    if ((err as Error).name === 'BucketNotEmptyError') {
      throw new ApiError(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', undefined, {
        BucketName: bucket,
      });
    }
    throw err;
  }
  return { status: 204, headers: {}, body: '' };
}

export async function headBucket(d: BucketOpsDeps, project: string, bucket: string): Promise<AwsResponse> {
  await existing(d, project, bucket);
  return { status: 200, headers: { 'x-amz-bucket-region': d.region }, body: '' };
}

export async function getBucketLocation(
  d: BucketOpsDeps,
  project: string,
  bucket: string,
): Promise<AwsResponse> {
  await existing(d, project, bucket);
  // us-east-1 answers an empty LocationConstraint, as S3 does.
  const region = d.region === 'us-east-1' ? '' : d.region;
  return xml(200, 'LocationConstraint', { '#text': region });
}

export function listBuckets(buckets: StoredBucket[]): AwsResponse {
  return xml(200, 'ListAllMyBucketsResult', {
    Owner: OWNER,
    Buckets: { Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: isoDate(b.createdAt) })) },
  });
}

async function existing(d: BucketOpsDeps, project: string, bucket: string): Promise<StoredBucket> {
  const b = await d.objects.getBucket(project, bucket);
  if (!b) throw noSuchBucket(bucket);
  return b;
}

function noSuchBucket(bucket: string): ApiError {
  return new ApiError(404, 'NoSuchBucket', 'The specified bucket does not exist', undefined, {
    BucketName: bucket,
  });
}

/** ListObjects (v1, marker) and ListObjectsV2 (continuation tokens, start-after). */
export async function listObjects(
  d: BucketOpsDeps,
  project: string,
  bucket: string,
  q: URLSearchParams,
  v2: boolean,
): Promise<AwsResponse> {
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') ?? '';
  const encoding = q.get('encoding-type');
  if (encoding !== null && encoding !== 'url') {
    throw invalidArgument('Invalid Encoding Method specified in Request', 'encoding-type', encoding);
  }
  const maxKeys = maxKeysOf(q.get('max-keys'));
  const token = q.get('continuation-token');
  const startAfter = q.get('start-after') ?? '';
  const marker = q.get('marker') ?? '';
  const after = v2 ? (token !== null ? decodeToken(token) : startAfter) : marker;
  let page;
  try {
    page = await d.objects.listObjects(project, bucket, {
      prefix,
      delimiter: delimiter || undefined,
      after: after || undefined,
      limit: maxKeys,
    });
  } catch (err) {
    if ((err as Error).name === 'BucketNotFoundError') throw noSuchBucket(bucket);
    throw err;
  }
  const enc = (s: string) => (encoding === 'url' ? urlEncode(s) : s);
  const contents = page.objects.map((o) => ({
    Key: enc(o.key),
    LastModified: isoDate(o.lastModified),
    ETag: `"${o.etag}"`,
    ...(Object.keys(o.checksums).length > 0
      ? {
          ChecksumAlgorithm: Object.keys(o.checksums).map((a) => a.toUpperCase()),
          ChecksumType: 'FULL_OBJECT',
        }
      : {}),
    Size: o.size,
    ...(!v2 || q.get('fetch-owner') === 'true' ? { Owner: OWNER } : {}),
    StorageClass: 'STANDARD',
  }));
  const common = page.commonPrefixes.map((p) => ({ Prefix: enc(p) }));
  const body: Record<string, unknown> = {
    Name: bucket,
    Prefix: enc(prefix),
    ...(v2 ? {} : { Marker: enc(marker) }),
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
    MaxKeys: maxKeys,
    ...(encoding ? { EncodingType: encoding } : {}),
    IsTruncated: page.truncated,
  };
  if (v2) {
    body['KeyCount'] = contents.length + common.length;
    if (token !== null) body['ContinuationToken'] = token;
    if (startAfter) body['StartAfter'] = enc(startAfter);
    if (page.truncated && page.last !== undefined) body['NextContinuationToken'] = encodeToken(page.last);
  } else if (page.truncated && page.last !== undefined) {
    body['NextMarker'] = enc(page.last);
  }
  body['Contents'] = contents;
  body['CommonPrefixes'] = common;
  return xml(200, 'ListBucketResult', body);
}

function maxKeysOf(v: string | null): number {
  if (v === null) return 1000;
  if (!/^\d+$/.test(v))
    throw invalidArgument('Provided max-keys not an integer or within integer range', 'max-keys', v);
  // S3 never returns more than 1000 keys, whatever is asked.
  return Math.min(Number(v), 1000);
}

/** The position a page ended at, opaque to clients. */
function encodeToken(last: string): string {
  return Buffer.from(`1:${last}`, 'utf8').toString('base64url');
}

function decodeToken(token: string): string {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  if (!text.startsWith('1:') || Buffer.from(text, 'utf8').toString('base64url') !== token) {
    throw invalidArgument('The continuation token provided is incorrect', 'continuation-token', token);
  }
  return text.slice(2);
}

/** encoding-type=url: what S3 sends, form-encoded with the slashes left as they are. */
function urlEncode(s: string): string {
  return encodeURIComponent(s).replace(/%2F/g, '/').replace(/%20/g, '+');
}

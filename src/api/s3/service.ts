// The S3 REST API as an AwsService (scope name "s3"), taking every request as a stream (handleStream): an
// upload is never buffered, and its signature is checked as it arrives. An operation is picked from the
// method, whether a bucket and a key are named (path or virtual-hosted style) and the subresource in the
// query; a subresource Nimbus does not implement yet (?acl, ?versioning...) answers NotImplemented rather
// than being mistaken for a plain object operation. Every operation acts in the caller's project. An
// unsigned OPTIONS (a browser's CORS preflight) is answered from the bucket's CORS rules in the default
// project, since it names no key; a signed answer gets the CORS headers its Origin is granted.
import type { UsageCounter } from '../../metering/usage-meter.js';
import { Readable } from 'node:stream';
import { StorageQuotaExceededError } from '../../store/errors.js';
import type { ByteStore } from '../../objects/bytes.js';
import type { ChangeContext, ObjectStore } from '../../store/types.js';
import { canUseBucket, readOnly, type Principal } from '../auth.js';
import type { AwsRequest, AwsResponse, AwsService, AwsStreamRequest } from '../aws.js';
import { ApiError } from '../errors.js';
import type { BodyLimit } from '../limits.js';
import {
  createBucket,
  deleteBucket,
  getBucketLocation,
  headBucket,
  listBuckets,
  listObjects,
} from './buckets.js';
import { corsHeaders, deleteBucketCors, getBucketCors, preflight, putBucketCors } from './cors.js';
import { accessDenied, notImplemented, s3Error } from './errors.js';
import { header } from './headers.js';
import {
  copyObject,
  copySource,
  deleteObject,
  deleteObjects,
  getObject,
  MAX_PUT_BYTES,
  putObject,
} from './objects.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listMultipartUploads,
  listParts,
  uploadPart,
  uploadPartCopy,
} from './multipart.js';
import { deleteObjectTagging, getObjectTagging, putObjectTagging } from './tagging.js';
import { targetOf } from './target.js';

export interface S3Deps {
  objects: ObjectStore;
  bytes: ByteStore;
  region: string;
  /** Told after a write or a removal committed, so the storage triggers read the change log at once. */
  onChange?: () => void;
  /** Told of each request (metering; in memory). */
  usage?: UsageCounter;
}

/** Only handle() (never reached by a SigV4 request) would read a body whole. */
const S3_BODY: BodyLimit = { maxBytes: MAX_PUT_BYTES, statedBytes: MAX_PUT_BYTES };

/** Query parameters that are not subresources: the operations below read them. */
const PLAIN_QUERY = new Set([
  'x-id',
  'list-type',
  'prefix',
  'delimiter',
  'marker',
  'max-keys',
  'encoding-type',
  'continuation-token',
  'start-after',
  'fetch-owner',
  'response-content-type',
  'response-content-language',
  'response-expires',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'partNumber',
  'max-parts',
  'part-number-marker',
  'key-marker',
  'upload-id-marker',
  'max-uploads',
  // A presigned URL's signature (checked by the listener before the request gets here).
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
  'X-Amz-Content-Sha256',
]);

const WRITES = new Set(['PUT', 'POST', 'DELETE']);
/** The project an unsigned preflight's bucket is looked up in: it carries no credential to name one. */
const PREFLIGHT_PROJECT = 'default';

export function createS3Service(d: S3Deps): AwsService {
  const service: AwsService = {
    service: 's3',
    title: 'S3',
    body: S3_BODY,
    handle: (req: AwsRequest, principal: Principal) =>
      service.handleStream!(
        { ...req, rawPath: req.url.pathname, body: Readable.from([req.body]), trailers: {} },
        principal,
      ),
    async handleStream(received: AwsStreamRequest, principal: Principal): Promise<AwsResponse> {
      const req = withHoistedHeaders(received);
      const { bucket, key } = targetOf(req.headers, req.rawPath);
      const tier = requestTier(req.method, key);
      if (tier !== null) d.usage?.count(principal.project, 's3', bucket ?? '', tier);
      const granted = () => corsHeaders(d, principal.project, bucket, req.method, req.headers);
      let res: AwsResponse;
      try {
        res = await dispatch(d, req, principal).catch((err: unknown) => {
          // S3 has no code for it; 403 QuotaExceeded, as storage services that have quotas answer.
          if (err instanceof StorageQuotaExceededError) throw new ApiError(403, 'QuotaExceeded', err.message);
          throw err;
        });
        // A write may have logged changes: the storage trigger source looks at once rather than at its poll.
        if (res.status < 300 && WRITES.has(req.method.toUpperCase())) d.onChange?.();
      } catch (err) {
        // A browser reads an error (a refused upload) only with the CORS headers on it too.
        if (!(err instanceof ApiError) || header(req.headers, 'origin') === undefined) throw err;
        const { status, code, message, hint, extra, headers } = err;
        throw new ApiError(status, code, message, hint, extra, { ...headers, ...(await granted()) });
      }
      const cors = await granted();
      return {
        ...res,
        headers: { ...res.headers, ...cors, 'x-amz-request-id': req.requestId, 'x-amz-id-2': req.requestId },
      };
    },
    async preflight(req): Promise<AwsResponse> {
      const { bucket } = targetOf(req.headers, req.rawPath);
      const res = await preflight(d, PREFLIGHT_PROJECT, bucket, req.headers);
      return {
        ...res,
        headers: { ...res.headers, 'x-amz-request-id': req.requestId, 'x-amz-id-2': req.requestId },
      };
    },
    error: (err, requestId) => s3Error(err, requestId),
  };
  return service;
}

/**
 * S3's request tiers: PUT, COPY, POST and LIST are tier 1, GET, HEAD and the rest tier 2; DELETE is free,
 * as on AWS. A listing is a GET without a key (of a bucket, or of the buckets).
 */
function requestTier(method: string, key: string | undefined): 'tier1' | 'tier2' | null {
  const m = method.toUpperCase();
  if (m === 'DELETE') return null;
  if (m === 'PUT' || m === 'POST' || (m === 'GET' && key === undefined)) return 'tier1';
  return 'tier2';
}

async function dispatch(d: S3Deps, req: AwsStreamRequest, principal: Principal): Promise<AwsResponse> {
  const { bucket, key } = targetOf(req.headers, req.rawPath);
  const q = req.url.searchParams;
  const sub = [...q.keys()].filter((k) => !PLAIN_QUERY.has(k) && !isHoisted(req, k));
  const method = req.method.toUpperCase();
  const project = principal.project;

  if (bucket === undefined) {
    if (method !== 'GET' || sub.length > 0) throw methodNotAllowed(method);
    const all = await d.objects.listBuckets(project);
    return listBuckets(all.filter((b) => canUseBucket(principal, b.name)));
  }
  if (!canUseBucket(principal, bucket)) throw accessDenied();
  // A read key reads objects and listings and changes nothing.
  if (readOnly(principal) && method !== 'GET' && method !== 'HEAD') throw accessDenied();

  if (key === undefined) {
    if (sub.length === 1 && sub[0] === 'location' && method === 'GET')
      return getBucketLocation(d, project, bucket);
    if (sub.length === 1 && sub[0] === 'delete' && method === 'POST')
      return deleteObjects(d, project, bucket, req, changeOf(req, principal));
    if (sub.length === 1 && sub[0] === 'uploads' && method === 'GET')
      return listMultipartUploads(d, project, bucket, q);
    if (sub.length === 1 && sub[0] === 'cors') {
      // A bucket's CORS rules are its configuration: keys limited to buckets may read them, not change them.
      if (method === 'GET') return getBucketCors(d, project, bucket);
      if (principal.permissions !== null) throw accessDenied();
      if (method === 'PUT') return putBucketCors(d, project, bucket, req);
      if (method === 'DELETE') return deleteBucketCors(d, project, bucket);
      throw methodNotAllowed(method);
    }
    if (sub.length > 0) throw notImplemented(`?${sub[0]}`);
    switch (method) {
      case 'PUT':
        // Creating and deleting buckets changes the project's set of them: keys limited to buckets may not.
        if (principal.permissions !== null) throw accessDenied();
        return createBucket(d, project, bucket, req);
      case 'DELETE':
        if (principal.permissions !== null) throw accessDenied();
        return deleteBucket(d, project, bucket);
      case 'HEAD':
        return headBucket(d, project, bucket);
      case 'GET':
        return listObjects(d, project, bucket, q, q.get('list-type') === '2');
      default:
        throw methodNotAllowed(method);
    }
  }

  const c = { project, bucket, key, req, change: changeOf(req, principal) };
  if (sub.length === 1 && sub[0] === 'uploads' && method === 'POST') return createMultipartUpload(d, c);
  if (sub.length === 1 && sub[0] === 'uploadId') return uploadOperation(d, c, method, principal);
  if (sub.length === 1 && sub[0] === 'tagging') {
    if (method === 'PUT') return putObjectTagging(d, c);
    if (method === 'GET') return getObjectTagging(d, c);
    if (method === 'DELETE') return deleteObjectTagging(d, c);
    throw methodNotAllowed(method);
  }
  if (sub.length > 0) throw notImplemented(`?${sub[0]}`);
  switch (method) {
    case 'PUT': {
      const source = header(req.headers, 'x-amz-copy-source');
      if (source === undefined) return putObject(d, c);
      const from = copySource(source);
      if (!canUseBucket(principal, from.bucket)) throw accessDenied();
      return copyObject(d, c, from);
    }
    case 'GET':
      return getObject(d, c, false);
    case 'HEAD':
      return getObject(d, c, true);
    case 'DELETE':
      return deleteObject(d, c);
    default:
      throw methodNotAllowed(method);
  }
}

/** Who is asking, as the change log keeps it for the event records; the trace is what a function's SDK
 *  passes on (X-Amzn-Trace-Id from its _X_AMZN_TRACE_ID), so a function writing to its own trigger's bucket
 *  is seen as a loop. */
function changeOf(req: AwsStreamRequest, principal: Principal): ChangeContext {
  const trace = header(req.headers, 'x-amzn-trace-id');
  return {
    requestId: req.requestId,
    principalId: principal.keyId,
    ...(req.sourceIp !== undefined ? { sourceIp: req.sourceIp } : {}),
    ...(trace !== undefined ? { trace } : {}),
  };
}

/**
 * A presigned URL carries the x-amz-* headers it was signed with in its query (the SDK hoists them: a
 * checksum, the checksum algorithm); S3 reads them as the headers they stand for, and so do we.
 */
function isHoisted(req: AwsStreamRequest, name: string): boolean {
  return name.startsWith('x-amz-') && req.url.searchParams.has('X-Amz-Signature');
}

function withHoistedHeaders(req: AwsStreamRequest): AwsStreamRequest {
  const hoisted = [...req.url.searchParams].filter(
    ([k]) => isHoisted(req, k) && req.headers[k] === undefined,
  );
  if (hoisted.length === 0) return req;
  return { ...req, headers: { ...req.headers, ...Object.fromEntries(hoisted) } };
}

/** The operations on one multipart upload (?uploadId=...). */
function uploadOperation(
  d: S3Deps,
  c: { project: string; bucket: string; key: string; req: AwsStreamRequest; change?: ChangeContext },
  method: string,
  principal: Principal,
): Promise<AwsResponse> {
  switch (method) {
    case 'PUT': {
      const source = header(c.req.headers, 'x-amz-copy-source');
      if (source === undefined) return uploadPart(d, c);
      const from = copySource(source);
      if (!canUseBucket(principal, from.bucket)) throw accessDenied();
      return uploadPartCopy(d, c, from);
    }
    case 'GET':
      return listParts(d, c);
    case 'POST':
      return completeMultipartUpload(d, c);
    case 'DELETE':
      return abortMultipartUpload(d, c);
    default:
      throw methodNotAllowed(method);
  }
}

function methodNotAllowed(method: string): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    `The specified method ${method} is not allowed against this resource.`,
  );
}

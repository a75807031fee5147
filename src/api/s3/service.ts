// The S3 REST API as an AwsService (scope name "s3"), taking every request as a stream (handleStream): an
// upload is never buffered, and its signature is checked as it arrives. An operation is picked from the
// method, whether a bucket and a key are named (path or virtual-hosted style) and the subresource in the
// query; a subresource Nimbus does not implement yet (?uploads, ?tagging, ?acl...) answers NotImplemented
// rather than being mistaken for a plain object operation. Every operation acts in the caller's project.
import { Readable } from 'node:stream';
import type { ByteStore } from '../../objects/bytes.js';
import type { ChangeContext, ObjectStore } from '../../store/types.js';
import { canUseBucket, type Principal } from '../auth.js';
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
import { targetOf } from './target.js';

export interface S3Deps {
  objects: ObjectStore;
  bytes: ByteStore;
  region: string;
  /** Told after a write or a removal committed, so the storage triggers read the change log at once. */
  onChange?: () => void;
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
]);

const WRITES = new Set(['PUT', 'POST', 'DELETE']);

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
    async handleStream(req: AwsStreamRequest, principal: Principal): Promise<AwsResponse> {
      const res = await dispatch(d, req, principal);
      if (res.status < 300 && WRITES.has(req.method.toUpperCase())) d.onChange?.();
      return {
        ...res,
        headers: { ...res.headers, 'x-amz-request-id': req.requestId, 'x-amz-id-2': req.requestId },
      };
    },
    error: (err, requestId) => s3Error(err, requestId),
  };
  return service;
}

async function dispatch(d: S3Deps, req: AwsStreamRequest, principal: Principal): Promise<AwsResponse> {
  const { bucket, key } = targetOf(req.headers, req.rawPath);
  const q = req.url.searchParams;
  const sub = [...q.keys()].filter((k) => !PLAIN_QUERY.has(k));
  const method = req.method.toUpperCase();
  const project = principal.project;

  if (bucket === undefined) {
    if (method !== 'GET' || sub.length > 0) throw methodNotAllowed(method);
    const all = await d.objects.listBuckets(project);
    return listBuckets(all.filter((b) => canUseBucket(principal, b.name)));
  }
  if (!canUseBucket(principal, bucket)) throw accessDenied();

  if (key === undefined) {
    if (sub.length === 1 && sub[0] === 'location' && method === 'GET')
      return getBucketLocation(d, project, bucket);
    if (sub.length === 1 && sub[0] === 'delete' && method === 'POST')
      return deleteObjects(d, project, bucket, req, changeOf(req, principal));
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

  if (sub.length > 0) throw notImplemented(`?${sub[0]}`);
  const c = { project, bucket, key, req, change: changeOf(req, principal) };
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

function methodNotAllowed(method: string): ApiError {
  return new ApiError(
    405,
    'MethodNotAllowed',
    `The specified method ${method} is not allowed against this resource.`,
  );
}

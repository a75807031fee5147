// Errors that know their HTTP face. Control endpoints answer {error:{code,message,hint}}; each AWS service
// renders the same ApiError in its own wire format (Lambda: x-amzn-errortype header, {Type, message} body).
import { functionArn } from '../config/limits.js';
import type { BodyLimit } from './limits.js';
import type { RouteMatch } from './routes.js';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
    /** Extra fields for AWS-shaped bodies (e.g. Reason for throttles). */
    readonly extra?: Record<string, string>,
    /** Response headers the error needs (Allow on a 405). */
    readonly headers?: Record<string, string>,
    /** Structured detail for a control API error body (`error.details`), e.g. each failed function. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const notFound = (what: string, hint?: string): ApiError =>
  new ApiError(404, 'NotFound', `${what} not found`, hint);
export const badRequest = (message: string, hint?: string): ApiError =>
  new ApiError(400, 'BadRequest', message, hint);

export const noRoute = (method: string, path: string, code = 'NotFound'): ApiError =>
  new ApiError(404, code, `no API route ${method} ${path}`, 'see docs/api.md for the routes');

export const methodNotAllowed = (
  method: string,
  path: string,
  allow: string[],
  code = 'MethodNotAllowed',
): ApiError =>
  new ApiError(405, code, `${method} is not allowed on ${path}`, `use ${allow.join(' or ')}`, undefined, {
    allow: allow.join(', '),
  });

export const badPathEncoding = (segment: string, code = 'BadRequest'): ApiError =>
  new ApiError(400, code, `path segment "${segment}" is not valid percent-encoding`, 'encode it with %XX');

/** The error for a request the route table had no handler for; each face may name the codes its own way. */
export function routeError(
  m: Exclude<RouteMatch<unknown>, { kind: 'found' }>,
  method: string,
  path: string,
  codes: { notFound?: string; methodNotAllowed?: string; badEncoding?: string } = {},
): ApiError {
  if (m.kind === 'method_not_allowed') return methodNotAllowed(method, path, m.allow, codes.methodNotAllowed);
  if (m.kind === 'bad_encoding') return badPathEncoding(m.segment, codes.badEncoding);
  return noRoute(method, path, codes.notFound);
}

export const tooLarge = (limit: BodyLimit): ApiError =>
  new ApiError(413, 'RequestTooLargeException', `Request must be smaller than ${limit.statedBytes} bytes`);

export const functionNotFound = (region: string, accountId: string, name: string): ApiError =>
  new ApiError(
    404,
    'ResourceNotFoundException',
    `Function not found: ${functionArn(region, accountId, name)}`,
    'deploy it with `nimbus deploy` or check `nimbus ls`',
  );

/** What an unexpected error looks like to the client: nothing of its message or stack. */
export const internalError = (): ApiError =>
  new ApiError(500, 'InternalError', 'Nimbus hit an internal error; the request changed nothing');

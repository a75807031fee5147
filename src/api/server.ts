// The control-plane listener. Every request is authenticated first: with the API key as a bearer token, or
// with an AWS SigV4 signature, which also picks the AWS service (by its credential scope) that answers it.
// The control API (/v1/...) takes the bearer token only; without a valid credential: 401, nothing changes.
import { answerClientErrors } from '../http/client-error.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { systemClock, type Clock } from '../clock/clock.js';
import type { FunctionRegistry } from '../invoker/registry.js';
import type { InvokeTarget, Invoker } from '../invoker/types.js';
import type { FunctionScaleStats } from '../scaler/scaler.js';
import type { AsyncConfig } from '../config/manifest.js';
import type { FunctionRef, Store } from '../store/types.js';
import {
  apiKeyCredentials,
  authenticateBearer,
  authenticateSigV4,
  authenticateSigV4Headers,
  issuedKeyLookup,
  isOperator,
  unrecognizedClient,
  type Credentials,
  type Principal,
} from './auth.js';
import { awsJsonError, AwsServices, type AwsResponse, type AwsService } from './aws.js';
import { ABORTED, readBody, TOO_LARGE } from '../http/body.js';
import { controlRoutes, type ControlDeps, type ControlHandler } from './control.js';
import type { CostDeps } from './cost.js';
import type { GatewayKeyDeps } from './gateway-keys.js';
import type { CredentialDeps } from './credentials.js';
import type { KeyDeps } from './keys.js';
import { StorageQuotaExceededError } from '../store/errors.js';
import type { SecretDeps } from './secrets.js';
import { ApiError, badRequest, internalError, routeError, tooLarge } from './errors.js';
import { createLambdaService } from './lambda.js';
import type { BodyLimit } from './limits.js';
import { RouteTable } from './routes.js';
import { credentialScope, isSigV4 } from './sigv4.js';
import { verifiedBody } from './sigv4-payload.js';
import { timeOrderedId } from '../ids.js';
import type { ApiKeys } from '../security/api-keys.js';
import { isHealthPath, type Health } from '../observability/health.js';
import type { ApiTracer } from '../observability/tracing.js';
import { ConsoleSessions, CSRF_HEADER, type SessionAuth, type SessionLimits } from './console-sessions.js';
import { CONSOLE_PREFIX, ConsoleFiles } from './console-static.js';

/** The Prometheus exposition: unsigned GET with a bearer key of the operator (see docs/observability.md). */
export const METRICS_PATH = '/metrics';

export interface ApiOptions {
  apiKey: string;
  store: Store;
  registry: FunctionRegistry;
  invoker: Invoker & {
    /** one row per function version holding instances; name is the plain function name */
    stats(): (FunctionScaleStats & { project: string; version: number })[];
    policyName(ref: FunctionRef): string;
  };
  events: {
    enqueue(ref: InvokeTarget, payload: string, requestId: string, trace?: string): Promise<string>;
    replay(id: string, project: string): Promise<'replayed' | 'not_found' | 'not_dead'>;
    setAsyncOverride(ref: FunctionRef, config: AsyncConfig | null): void;
  };
  deployer: ControlDeps['deployer'];
  /** Resolves once the triggers and function keys have taken in the latest change. */
  synced?: () => Promise<void>;
  /** Wakes a queue's consumers after a message was sent through the API. */
  notifyQueue?: (project: string, queue: string) => void;
  status: () => Record<string, unknown>;
  stemCells: () => unknown;
  region: string;
  accountId: string;
  logger?: { error(obj: object, msg: string): void };
  /** The price table and retention that cost reports state (defaults: AWS's prices, 30 days). */
  metering?: CostDeps['metering'];
  usageMeter?: CostDeps['usageMeter'];
  /** extra AWS services to dispatch to by SigV4 scope (lambda is built in) */
  services?: AwsService[];
  /** What "now" is for signature expiry. */
  clock?: Clock;
  /** The issued access keys (`nimbus credentials`, function keys); without them only the API key signs. */
  accessKeys?: CredentialDeps['accessKeys'];
  /** Projects' bearer API keys; without them only the data dir's key is one. */
  apiKeys?: ApiKeys;
  /** The project's secrets (`nimbus secret`); without them the secrets routes answer 501. */
  secrets?: SecretDeps['secrets'];
  /** Retires functions' idle instances after a secret they reference changed. */
  recycle?: SecretDeps['recycle'];
  /** This node's scaler, for project quotas (set at once, and what each project runs here). */
  nodeQuotas?: KeyDeps['nodeQuotas'];
  /** The metrics' exposition; without it (NIMBUS_METRICS=off) /metrics answers 404. */
  metrics?: { expose(): Promise<{ contentType: string; body: string }> };
  /** /healthz and /readyz, answered without a key. */
  health?: Health;
  /** Spans for the AWS calls functions make under their trace; absent when tracing is off. */
  tracer?: ApiTracer;
  /** Flushes the local span store before GET /v1/traces reads it. */
  traces?: ControlDeps['traces'];
  /** Where the gateway serves a project's routes (shown by deploy and the functions listing). */
  gatewayUrl?: (project: string) => string;
  /** The gateway's API keys (`nimbus apikey`); without them /v1/api-keys answers 501. */
  gatewayKeys?: GatewayKeyDeps['gatewayKeys'];
  gatewayKeyUsage?: GatewayKeyDeps['gatewayKeyUsage'];
  quotas?: GatewayKeyDeps['quotas'];
  /** The web console at /console/ with its sessions (the public listener only; docs/console.md). */
  console?: { files?: ConsoleFiles; limits?: Partial<SessionLimits> };
}

/** A request as the listener sees it once its target is parsed. */
interface Incoming {
  req: IncomingMessage;
  requestId: string;
  method: string;
  url: URL;
  /** Path and query exactly as received (still encoded): what a SigV4 signature covers. */
  rawPath: string;
  rawQuery: string;
  /** Aborted when the connection closes before the answer was sent. */
  gone: AbortSignal;
}

/** What the listener answers with: AWS services' responses, and the control API's JSON in the same shape. */
type Reply = AwsResponse;

/** Renders an ApiError in the wire format of whoever answers the request. */
type Face = (err: ApiError, requestId: string) => Reply;

/**
 * Who answers a request, decided from its path and headers alone so that even its authentication failure
 * takes the right format; run() then authenticates, reads the body and answers.
 */
interface Plan {
  face: Face;
  run(): Promise<Reply>;
}

interface Listener {
  clock: Clock;
  credentials: Credentials;
  services: AwsServices;
  control: RouteTable<ControlHandler>;
  logger: ApiOptions['logger'];
  projects: Pick<Store['projects'], 'get'>;
  metrics: ApiOptions['metrics'];
  health: Health | undefined;
  tracer: ApiTracer | undefined;
  console: { files: ConsoleFiles; sessions: ConsoleSessions } | undefined;
}

/** The request went away before its body arrived: there is nobody to answer. */
class RequestAborted extends Error {}

export function createApiServer(o: ApiOptions, tls?: { cert: Buffer; key: Buffer }): Server {
  const clock = o.clock ?? systemClock;
  const credentials = apiKeyCredentials(o.apiKey, o.accessKeys && issuedKeyLookup(o.accessKeys), o.apiKeys);
  const l: Listener = {
    clock,
    credentials,
    projects: o.store.projects,
    services: new AwsServices([createLambdaService(o), ...(o.services ?? [])]),
    control: new RouteTable<ControlHandler>(controlRoutes(o)),
    logger: o.logger,
    metrics: o.metrics,
    health: o.health,
    tracer: o.tracer,
    console: o.console && {
      files: o.console.files ?? new ConsoleFiles(),
      sessions: new ConsoleSessions({
        store: o.store.sessions,
        credentials,
        apiKey: o.apiKey,
        apiKeys: o.apiKeys,
        clock,
        secure: tls !== undefined,
        ...(o.console.limits ? { limits: o.console.limits } : {}),
      }),
    },
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void =>
    void respond(l, req, res, timeOrderedId());
  const server = tls ? (createHttpsServer(tls, handler) as unknown as Server) : createServer(handler);
  return answerClientErrors(server, (status, message) => ({
    error: { code: status === 431 ? 'RequestHeaderFieldsTooLarge' : 'BadRequest', message },
  }));
}

async function respond(
  l: Listener,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  let face: Face = controlError;
  try {
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const inc = parseTarget(req, requestId, gone.signal);
    const p = plan(l, inc);
    face = p.face;
    write(res, await p.run());
  } catch (err) {
    if (err instanceof RequestAborted) return void res.destroy();
    if (!(err instanceof ApiError) && !(err instanceof StorageQuotaExceededError))
      l.logger?.error({ err, requestId }, 'api request failed');
    // Refused before its body was read (no key): discard the rest so the client can read this answer.
    req.resume();
    write(res, face(err instanceof ApiError ? err : (quotaError(err) ?? internalError()), requestId));
  }
}

/** A write past its project's storage quota, where no service said it in its own words (the control API). */
function quotaError(err: unknown): ApiError | undefined {
  if (!(err instanceof StorageQuotaExceededError)) return undefined;
  return new ApiError(403, 'StorageQuotaExceeded', err.message);
}

function plan(l: Listener, inc: Incoming): Plan {
  const signed = isSigV4(inc.req.headers, inc.rawQuery);
  // Unsigned only: a signed request to these paths is an S3 path-style request to a bucket of that name.
  if (!signed && (inc.method === 'GET' || inc.method === 'HEAD')) {
    const path = inc.url.pathname;
    const health = l.health;
    if (health && isHealthPath(path)) return { face: controlError, run: () => healthReply(health, inc) };
    if (path === METRICS_PATH) return { face: controlError, run: () => metricsReply(l, inc) };
  }
  const site = l.console;
  if (!signed && site && isConsolePath(inc.url.pathname)) {
    return { face: controlError, run: () => consoleRequest(site, inc) };
  }
  if (signed && !isControlPath(inc.url.pathname)) return planSigned(l, inc);
  // A browser's CORS preflight carries no credential by design; the service that answers them decides.
  const cors = inc.method === 'OPTIONS' && !signed && !isControlPath(inc.url.pathname);
  const pre = cors ? l.services.forPreflight() : undefined;
  if (pre) {
    const { method, url, rawPath, requestId } = inc;
    return {
      face: faceOf(pre, inc),
      run: () => {
        inc.req.resume();
        return pre.preflight!({ method, url, rawPath, headers: inc.req.headers, requestId });
      },
    };
  }
  const svc = l.services.forBearerPath(inc.url.pathname);
  if (!svc) return { face: controlError, run: () => controlRequest(l, inc) };
  return {
    face: faceOf(svc, inc),
    run: async () => {
      const principal = await actingIn(
        l,
        await authenticateBearer(
          l.credentials,
          inc.req.headers.authorization,
          'MissingAuthenticationTokenException',
        ),
        inc,
      );
      return handleAws(l, svc, inc, await bodyOf(inc.req, svc.body), principal);
    },
  };
}

/** Routed by the service in the credential scope; the signature is checked in that service's format. */
function planSigned(l: Listener, inc: Incoming): Plan {
  const scope = credentialScope({ headers: inc.req.headers, rawQuery: inc.rawQuery });
  if (!scope.ok) {
    // No readable scope names a service: the one owning the path answers, if any.
    const owner = l.services.forBearerPath(inc.url.pathname);
    const err = new ApiError(403, scope.code, scope.message);
    return { face: owner ? faceOf(owner, inc) : awsJsonError, run: () => Promise.reject(err) };
  }
  const svc = l.services.get(scope.scope.service);
  if (!svc) {
    const err = unknownService(scope.scope.service, l.services.names());
    return { face: awsJsonError, run: () => Promise.reject(err) };
  }
  return {
    face: faceOf(svc, inc),
    run: async () => {
      // An unknown key is refused before the body is read: a stranger cannot make Nimbus buffer megabytes.
      if (!(await l.credentials.accessKey(scope.scope.accessKeyId))) throw unrecognizedClient();
      if (svc.handleStream) return handleStreaming(l, svc, inc);
      const body = await bodyOf(inc.req, svc.body);
      const principal = await authenticateSigV4(
        l.credentials,
        { method: inc.method, path: inc.rawPath, rawQuery: inc.rawQuery, headers: inc.req.headers, body },
        l.clock.now(),
        scope,
      );
      return handleAws(l, svc, inc, body, principal);
    },
  };
}

/** The headers' signature first, then the body checked against it while the service streams it. */
async function handleStreaming(l: Listener, svc: AwsService, inc: Incoming): Promise<Reply> {
  const { principal, seed } = await authenticateSigV4Headers(
    l.credentials,
    {
      method: inc.method,
      path: inc.rawPath,
      rawQuery: inc.rawQuery,
      headers: inc.req.headers,
      body: 'streaming',
    },
    l.clock.now(),
  );
  const decoded = Number(inc.req.headers['x-amz-decoded-content-length']);
  const { body, trailers } = verifiedBody(inc.req, seed, Number.isSafeInteger(decoded) ? decoded : undefined);
  const { method, url, requestId, rawPath } = inc;
  return traced(l, svc, inc, principal, () =>
    svc.handleStream!(
      {
        method,
        url,
        rawPath,
        headers: inc.req.headers,
        body,
        trailers,
        requestId,
        ...(inc.req.socket.remoteAddress ? { sourceIp: inc.req.socket.remoteAddress } : {}),
      },
      principal,
    ),
  );
}

async function healthReply(health: Health, inc: Incoming): Promise<Reply> {
  inc.req.resume();
  const h = (await health.answer(inc.url.pathname))!;
  return {
    status: h.status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: inc.method === 'HEAD' ? '' : h.body,
  };
}

/**
 * The exposition holds every project's series and the node's own figures, so only the operator (an admin
 * key of `default`) reads it; `x-nimbus-project` does not narrow it.
 */
async function metricsReply(l: Listener, inc: Incoming): Promise<Reply> {
  inc.req.resume();
  const principal = await authenticateBearer(l.credentials, inc.req.headers.authorization);
  if (!isOperator(principal)) {
    throw new ApiError(
      403,
      'AccessDenied',
      `key ${principal.keyId} of project ${principal.project} cannot read /metrics: it shows every project's functions`,
      'scrape with the key in <data dir>/api-key, or an admin key of project "default"',
    );
  }
  if (!l.metrics) {
    throw new ApiError(
      404,
      'MetricsOff',
      'metrics are turned off on this node',
      'unset NIMBUS_METRICS (or set it to on)',
    );
  }
  const m = await l.metrics.expose();
  return {
    status: 200,
    headers: { 'content-type': m.contentType, 'x-nimbus-request-id': inc.requestId },
    body: inc.method === 'HEAD' ? '' : m.body,
  };
}

async function controlRequest(l: Listener, inc: Incoming): Promise<Reply> {
  if (isSigV4(inc.req.headers, inc.rawQuery)) {
    throw new ApiError(
      401,
      'Unauthorized',
      `SigV4 is accepted on ${l.services.describe()} only`,
      'send "Authorization: Bearer <key>"',
    );
  }
  const principal = await actingIn(l, await controlPrincipal(l, inc), inc);
  const m = l.control.match(inc.method, inc.url.pathname);
  if (m.kind !== 'found') throw routeError(m, inc.method, inc.url.pathname);
  const body = await bodyOf(inc.req, m.body);
  const result = await m.handler({ principal, params: m.params, url: inc.url, body });
  return controlJson(200, result, inc.requestId);
}

/**
 * Who a control request is: its bearer key, or else the console session its cookie names. A change made with
 * a session must carry the session's CSRF token in x-nimbus-csrf, which another site's page cannot set.
 */
async function controlPrincipal(l: Listener, inc: Incoming): Promise<Principal> {
  const { authorization, cookie } = inc.req.headers;
  if (authorization === undefined && l.console && cookie !== undefined) {
    const auth = await l.console.sessions.authenticate(cookie);
    if (auth) {
      if (!SAFE_METHODS.has(inc.method)) requireCsrf(l.console.sessions, auth, inc);
      return auth.principal;
    }
  }
  return authenticateBearer(l.credentials, authorization);
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

function requireCsrf(sessions: ConsoleSessions, auth: SessionAuth, inc: Incoming): void {
  if (sessions.csrfMatches(auth, inc.req.headers[CSRF_HEADER])) return;
  const missing = inc.req.headers[CSRF_HEADER] === undefined;
  throw new ApiError(
    403,
    missing ? 'CsrfTokenMissing' : 'CsrfTokenInvalid',
    missing
      ? `a change made with a console session must carry the ${CSRF_HEADER} header`
      : `the ${CSRF_HEADER} header does not match this session`,
    'the console sends it; scripts should use "Authorization: Bearer <key>" instead of the cookie',
  );
}

function isConsolePath(pathname: string): boolean {
  return pathname === CONSOLE_PREFIX || pathname.startsWith(`${CONSOLE_PREFIX}/`);
}

const SESSION_PATH = `${CONSOLE_PREFIX}/session`;
/** A sign-in body holds one key: anything longer is not one. */
const SIGN_IN_BODY: BodyLimit = { maxBytes: 4096, statedBytes: 4096 };

/** The console's files, and its session: POST signs in with a key, GET tells who, DELETE signs out. */
async function consoleRequest(c: NonNullable<Listener['console']>, inc: Incoming): Promise<Reply> {
  const path = inc.url.pathname;
  if (path !== SESSION_PATH) {
    if (inc.method !== 'GET' && inc.method !== 'HEAD') {
      throw new ApiError(
        405,
        'MethodNotAllowed',
        `${inc.method} is not allowed on ${path}`,
        'use GET',
        undefined,
        {
          allow: 'GET, HEAD',
        },
      );
    }
    inc.req.resume();
    return c.files.serve(path, inc.method === 'HEAD');
  }
  const noStore = { 'cache-control': 'no-store' };
  if (inc.method === 'POST') {
    // JSON only: a cross-site form cannot send it without a preflight, which this listener never grants.
    if (!/^application\/json\b/i.test(inc.req.headers['content-type'] ?? '')) {
      throw new ApiError(415, 'UnsupportedMediaType', 'sign in with a JSON body {"key": "..."}');
    }
    const body = await bodyOf(inc.req, SIGN_IN_BODY);
    let key: unknown;
    try {
      key = (JSON.parse(body.toString('utf8')) as { key?: unknown } | null)?.key;
    } catch {
      throw badRequest('the sign-in body is not JSON', 'send {"key": "<API key>"}');
    }
    const s = await c.sessions.signIn(key, inc.req.socket.remoteAddress ?? 'unknown');
    return controlJson(200, sessionView(s.principal, s.csrfToken, s.expiresAt), inc.requestId, {
      ...noStore,
      'set-cookie': s.cookie,
    });
  }
  if (inc.method !== 'GET' && inc.method !== 'DELETE') {
    throw new ApiError(
      405,
      'MethodNotAllowed',
      `${inc.method} is not allowed on ${path}`,
      'use POST, GET or DELETE',
      undefined,
      {
        allow: 'POST, GET, DELETE',
      },
    );
  }
  inc.req.resume();
  const auth = await c.sessions.authenticate(inc.req.headers.cookie);
  if (!auth) {
    throw new ApiError(
      401,
      'NotSignedIn',
      'no console session: signed out, expired, or its key was revoked',
      'sign in again',
      undefined,
      {
        ...noStore,
        'set-cookie': c.sessions.clearCookie(),
      },
    );
  }
  if (inc.method === 'GET') {
    return controlJson(
      200,
      sessionView(auth.principal, auth.csrfToken, auth.expiresAt),
      inc.requestId,
      noStore,
    );
  }
  requireCsrf(c.sessions, auth, inc);
  await c.sessions.signOut(auth);
  return controlJson(200, { signedOut: true }, inc.requestId, {
    ...noStore,
    'set-cookie': c.sessions.clearCookie(),
  });
}

function sessionView(p: Principal, csrfToken: string, expiresAt: number): Record<string, unknown> {
  return { project: p.project, keyId: p.keyId, role: p.role, csrfToken, expiresAt };
}

/**
 * The project a bearer request acts in: its key's, or the one named by `x-nimbus-project` (the CLI's
 * --project), which only an admin key of `default` may name. Another key naming any project but its own is
 * refused rather than ignored, so a script never acts in a project it did not mean.
 */
async function actingIn(l: Listener, principal: Principal, inc: Incoming): Promise<Principal> {
  const named = inc.req.headers['x-nimbus-project'];
  if (named === undefined || named === '' || named === principal.project) return principal;
  if (typeof named !== 'string') throw badRequest('x-nimbus-project must be given once');
  if (!isOperator(principal)) {
    throw new ApiError(
      403,
      'AccessDenied',
      `key ${principal.keyId} belongs to project ${principal.project} and cannot act in project ${named}`,
      'leave out --project: every command acts in its key\'s project; only an admin key of "default" names another',
    );
  }
  if (!(await l.projects.get(named))) {
    throw new ApiError(404, 'ProjectNotFound', `project ${named} does not exist`, 'see `nimbus project ls`');
  }
  return { ...principal, project: named };
}

function handleAws(
  l: Listener,
  svc: AwsService,
  inc: Incoming,
  body: Buffer,
  principal: Principal,
): Promise<Reply> {
  const { method, url, requestId } = inc;
  return traced(l, svc, inc, principal, () =>
    svc.handle({ method, url, headers: inc.req.headers, body, requestId, signal: inc.gone }, principal),
  );
}

/** A call that carries a trace context (a function's SDK sends its _X_AMZN_TRACE_ID) gets a span in it. */
async function traced(
  l: Listener,
  svc: AwsService,
  inc: Incoming,
  principal: Principal,
  run: () => Promise<Reply>,
): Promise<Reply> {
  const t = l.tracer?.awsCall(inc.req.headers, svc.title, operationOf(inc), principal.project, inc.requestId);
  if (!t) return run();
  try {
    const r = await run();
    t.end(r.status);
    return r;
  } catch (err) {
    t.end(err instanceof ApiError ? err.status : 500);
    throw err;
  }
}

/** The operation a call names: X-Amz-Target's (DynamoDB, SQS's JSON protocol), else its method. */
function operationOf(inc: Incoming): string {
  const target = inc.req.headers['x-amz-target'];
  if (typeof target === 'string') {
    const dot = target.lastIndexOf('.');
    return target.slice(dot + 1);
  }
  const action = inc.url.searchParams.get('Action');
  return action ?? inc.method;
}

function faceOf(svc: AwsService, inc: Incoming): Face {
  return (err, requestId) => svc.error(err, requestId, inc.req.headers);
}

/** The control API's namespace; SigV4 is never accepted in it, whatever service a signature names. */
function isControlPath(pathname: string): boolean {
  return pathname === '/v1' || pathname.startsWith('/v1/');
}

function parseTarget(req: IncomingMessage, requestId: string, gone: AbortSignal): Incoming {
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  let url: URL;
  try {
    url = new URL(target, 'http://api');
  } catch {
    throw badRequest(`the request target "${target}" is not a valid URL path`);
  }
  return {
    req,
    requestId,
    method: req.method ?? 'GET',
    url,
    rawPath: q === -1 ? target : target.slice(0, q),
    rawQuery: q === -1 ? '' : target.slice(q + 1),
    gone,
  };
}

async function bodyOf(req: IncomingMessage, limit: BodyLimit): Promise<Buffer> {
  const body = await readBody(req, limit.maxBytes);
  if (body === TOO_LARGE) throw tooLarge(limit);
  if (body === ABORTED) throw new RequestAborted();
  return body;
}

function unknownService(service: string, supported: string[]): ApiError {
  return new ApiError(
    400,
    'UnknownServiceException',
    `Nimbus does not serve the AWS service "${service}" named in the request's credential scope; it serves: ${supported.join(', ')}`,
  );
}

function controlError(e: ApiError, requestId: string): Reply {
  const error = {
    code: e.code,
    message: e.message,
    ...(e.hint ? { hint: e.hint } : {}),
    ...(e.details ? { details: e.details } : {}),
  };
  return controlJson(e.status, { error, requestId }, requestId, e.headers);
}

function controlJson(
  status: number,
  body: unknown,
  requestId: string,
  extra?: Record<string, string>,
): Reply {
  return {
    status,
    headers: { ...extra, 'content-type': 'application/json', 'x-nimbus-request-id': requestId },
    body: JSON.stringify(body),
  };
}

function write(res: ServerResponse, r: Reply): void {
  // A failure after the answer started cannot be told to the client any more; cut the connection.
  if (res.headersSent) return void res.destroy();
  if (r.body instanceof Readable) {
    res.writeHead(r.status, r.headers);
    // A read that fails part way (a disk error) can only cut the connection: the client sees a short body.
    pipeline(r.body, res).catch(() => res.destroy());
    return;
  }
  res.writeHead(r.status, { ...r.headers, 'content-length': Buffer.byteLength(r.body) });
  res.end(r.body);
}

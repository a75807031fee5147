// The control-plane listener. Every request needs the API key: as a bearer token, or as the secret of an AWS
// SigV4 signature (access key id "nimbus") so AWS SDK clients work unchanged. Without it: 401, nothing changes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { ManifestError } from '../config/manifest.js';
import { PackageError } from '../build/package.js';
import type { AsyncEvents } from '../events/async.js';
import type { DefaultInvoker } from '../invoker/invoker.js';
import type { FunctionRegistry } from '../invoker/registry.js';
import type { InvokeOutcome } from '../invoker/types.js';
import type { FunctionVersion, StoredInvocation, Store } from '../store/types.js';
import type { Deployer } from './deploy.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { verifySigV4 } from './sigv4.js';

export interface ApiOptions {
  apiKey: string;
  store: Store;
  registry: FunctionRegistry;
  invoker: DefaultInvoker;
  events: AsyncEvents;
  deployer: Deployer;
  status: () => Record<string, unknown>;
  stemCells: () => unknown;
  region: string;
  accountId: string;
  logger?: { error(obj: object, msg: string): void };
}

const MAX_DEPLOY_BYTES = 250 * 1024 * 1024;
const MAX_SYNC_PAYLOAD = 6 * 1024 * 1024;
const MAX_ASYNC_PAYLOAD = 1024 * 1024;
const TAIL_BYTES = 4096;
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?$/;
const FUNCTION_PATH = /^\/v1\/functions\/([^/]+)(\/logs)?\/?$/;
const INVOCATION_PATH = /^\/v1\/invocations\/([^/]+)\/?$/;

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  url: URL;
  /** Lambda-compatible route: errors take AWS's shape. */
  aws: boolean;
}

export function createApiServer(o: ApiOptions): Server {
  const key = Buffer.from(o.apiKey);
  const server = createServer((req, res) => {
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://api');
    const ctx: Ctx = { req, res, requestId, url, aws: INVOKE_PATH.test(url.pathname) };
    handle(ctx).catch((err: unknown) => sendError(ctx, err));
  });

  async function handle(ctx: Ctx): Promise<void> {
    const { req, url } = ctx;
    const method = req.method ?? 'GET';
    // A bearer key is checked before the body is read, so nobody without the key can make Nimbus buffer a
    // 250 MB upload. SigV4 signs the body, so it needs the body first; it is accepted only on the
    // AWS-compatible routes, whose bodies are limited to the 6 MB invoke payload.
    const signed = isSigV4(req);
    if (!signed || !ctx.aws) authenticate(ctx, Buffer.alloc(0));
    const limit =
      method === 'POST' && url.pathname === '/v1/deploy' ? MAX_DEPLOY_BYTES : MAX_SYNC_PAYLOAD + 1024;
    const body = await readBody(req, limit);
    if (signed && ctx.aws) authenticate(ctx, body);

    const invoke = INVOKE_PATH.exec(url.pathname);
    if (invoke && method === 'POST') return lambdaInvoke(ctx, decodeURIComponent(invoke[1]!), body);
    if (url.pathname === '/v1/health' && method === 'GET')
      return send(ctx, 200, { status: 'ok', ...o.status() });
    if (url.pathname === '/v1/deploy' && method === 'POST') return deploy(ctx, body);
    if (url.pathname === '/v1/functions' && method === 'GET') {
      return send(ctx, 200, {
        functions: o.registry.all().map((f) => ({ ...summary(f), scaling: scaling(f.name) })),
        stemCells: o.stemCells(),
      });
    }
    const fn = FUNCTION_PATH.exec(url.pathname);
    if (fn) {
      const name = decodeURIComponent(fn[1]!);
      if (fn[2] && method === 'GET') return logs(ctx, name);
      if (!fn[2] && method === 'GET') {
        const f = o.registry.get(name);
        if (!f) throw functionNotFound(name);
        return send(ctx, 200, { ...summary(f), scaling: scaling(f.name) });
      }
      if (!fn[2] && method === 'DELETE') {
        if (!(await o.store.removeFunction(name))) throw functionNotFound(name);
        await o.registry.load();
        return send(ctx, 200, { removed: name });
      }
    }
    if (url.pathname === '/v1/invocations' && method === 'GET') {
      await o.store.flush();
      const records = await o.store.queryInvocations({
        ...optional('functionName', url.searchParams.get('function') ?? undefined),
        ...optional('since', numberParam(url, 'since')),
        ...optional('after', numberParam(url, 'after')),
        ...optional('limit', numberParam(url, 'limit')),
      });
      return send(ctx, 200, { invocations: records });
    }
    const inv = INVOCATION_PATH.exec(url.pathname);
    if (inv && method === 'GET') {
      await o.store.flush();
      const rec = await o.store.getInvocation(decodeURIComponent(inv[1]!));
      if (!rec) throw notFound(`invocation ${inv[1]}`);
      return send(ctx, 200, rec);
    }
    throw new ApiError(
      404,
      'NotFound',
      `no API route ${method} ${url.pathname}`,
      'see docs/api.md for the routes',
    );
  }

  function authenticate(ctx: Ctx, body: Buffer): void {
    const auth = ctx.req.headers.authorization;
    if (auth?.startsWith('Bearer ')) {
      const given = Buffer.from(auth.slice(7).trim());
      if (given.length === key.length && timingSafeEqual(given, key)) return;
      throw new ApiError(401, 'Unauthorized', 'the API key is wrong', 'use the key in <data dir>/api-key');
    }
    if (isSigV4(ctx.req)) {
      if (!ctx.aws) {
        throw new ApiError(
          401,
          'Unauthorized',
          'SigV4 is accepted on the Lambda API only',
          'send "Authorization: Bearer <key>"',
        );
      }
      const v = verifySigV4(
        {
          method: ctx.req.method ?? 'GET',
          path: (ctx.req.url ?? '/').split('?')[0]!,
          rawQuery: (ctx.req.url ?? '').split('?')[1] ?? '',
          headers: ctx.req.headers,
          body,
        },
        { accessKeyId: 'nimbus', secretAccessKey: o.apiKey },
      );
      if (v.ok) return;
      // AWS answers 403 for every signature problem but a missing one.
      const status = v.code === 'MissingAuthenticationToken' ? 401 : 403;
      throw new ApiError(
        status,
        v.code,
        v.message,
        'sign with access key id "nimbus" and the API key as the secret',
      );
    }
    throw new ApiError(
      401,
      ctx.aws ? 'MissingAuthenticationTokenException' : 'Unauthorized',
      'this request has no API key',
      'send "Authorization: Bearer <key>" with the key from <data dir>/api-key, or sign it with SigV4',
    );
  }

  async function deploy(ctx: Ctx, body: Buffer): Promise<void> {
    if (body.length === 0)
      throw badRequest('the deploy body is empty', 'send a tar.gz of the service folder');
    try {
      send(ctx, 200, await o.deployer.deploy(body));
    } catch (err) {
      if (err instanceof ManifestError) {
        throw new ApiError(400, 'InvalidManifest', err.message, 'fix the field named and deploy again');
      }
      if (err instanceof Error && (err as { code?: string }).code === 'FunctionOwnedByOtherService') {
        throw new ApiError(
          409,
          'FunctionOwnedByOtherService',
          err.message,
          'rename the function or remove it first',
        );
      }
      if (err instanceof PackageError)
        throw badRequest(`the uploaded archive was refused: ${err.message}`, err.hint);
      if (
        err instanceof Error &&
        /TAR_|zlib|incorrect header|unexpected end/i.test(`${(err as { code?: string }).code} ${err.message}`)
      ) {
        throw badRequest(
          `the deploy body is not a valid tar.gz archive (${err.message})`,
          'deploy with `npx nimbus deploy`',
        );
      }
      throw err;
    }
  }

  async function logs(ctx: Ctx, name: string): Promise<void> {
    if (!o.registry.get(name)) throw functionNotFound(name);
    await o.store.flush();
    const after = numberParam(ctx.url, 'after');
    const records = await o.store.queryInvocations({
      functionName: name,
      ascending: true,
      ...optional('since', numberParam(ctx.url, 'since')),
      ...optional('after', after),
      limit: numberParam(ctx.url, 'limit') ?? 1000,
    });
    const cursor = records.length > 0 ? records[records.length - 1]!.seq : (after ?? 0);
    send(ctx, 200, { records: records.map(logRecord), cursor });
  }

  async function lambdaInvoke(ctx: Ctx, rawName: string, body: Buffer): Promise<void> {
    const name = functionNameFrom(rawName);
    const qualifier = ctx.url.searchParams.get('Qualifier') ?? qualifierFrom(rawName);
    const fv = o.registry.get(name);
    if (!fv || (qualifier && qualifier !== '$LATEST' && qualifier !== String(fv.version))) {
      throw functionNotFound(qualifier ? `${name}:${qualifier}` : name);
    }
    const type = String(ctx.req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (type !== 'RequestResponse' && type !== 'Event' && type !== 'DryRun') {
      throw new ApiError(
        400,
        'InvalidParameterValueException',
        `X-Amz-Invocation-Type "${type}" is not valid`,
      );
    }
    const limit = type === 'Event' ? MAX_ASYNC_PAYLOAD : MAX_SYNC_PAYLOAD;
    if (body.length > limit) {
      throw new ApiError(
        413,
        'RequestTooLargeException',
        `Request must be smaller than ${limit} bytes for the ${type} invocation type`,
      );
    }
    const text = body.length === 0 ? '{}' : body.toString('utf8');
    let event: unknown;
    try {
      event = JSON.parse(text);
    } catch (e) {
      throw new ApiError(
        400,
        'InvalidRequestContentException',
        `Could not parse request body into json: ${(e as Error).message}`,
      );
    }
    const headers: Record<string, string> = { 'x-amzn-requestid': ctx.requestId };
    if (type === 'DryRun') return sendRaw(ctx, 204, headers, '');
    if (type === 'Event') {
      await o.events.enqueue(fv.name, text, ctx.requestId);
      return sendRaw(ctx, 202, headers, '');
    }
    const clientContext = ctx.req.headers['x-amz-client-context'];
    const outcome = await o.invoker.invoke({
      functionName: fv.name,
      event,
      trigger: 'invoke',
      requestId: ctx.requestId,
      ...(typeof clientContext === 'string' ? { clientContext: decodeClientContext(clientContext) } : {}),
    });
    if (outcome.status === 'not_found') throw functionNotFound(name);
    if (outcome.status === 'throttled') {
      throw new ApiError(429, 'TooManyRequestsException', 'Rate Exceeded.', undefined, {
        Reason: /Reserved/.test(outcome.error?.errorMessage ?? '')
          ? 'ReservedFunctionConcurrentInvocationLimitExceeded'
          : 'ConcurrentInvocationLimitExceeded',
      });
    }
    headers['x-amz-executed-version'] = outcome.version;
    if (String(ctx.req.headers['x-amz-log-type'] ?? '') === 'Tail') {
      headers['x-amz-log-result'] = tail(outcome, fv);
    }
    if (outcome.status === 'ok') {
      headers['content-type'] = 'application/json';
      return sendRaw(ctx, 200, headers, outcome.payload ?? 'null');
    }
    headers['x-amz-function-error'] = 'Unhandled';
    headers['content-type'] = 'application/json';
    sendRaw(ctx, 200, headers, JSON.stringify(outcome.error));
  }

  /** Instance counts and counters of a function, summed over its versions still holding instances. */
  function scaling(name: string): Record<string, number | string> {
    const rows = o.invoker.stats().filter((s) => s.name === name);
    const sum = (
      k: 'busy' | 'idle' | 'starting' | 'provisioned' | 'cold' | 'warm' | 'throttled' | 'evicted' | 'queued',
    ) => rows.reduce((n, r) => n + r[k], 0);
    return {
      busy: sum('busy'),
      idle: sum('idle'),
      starting: sum('starting'),
      provisioned: sum('provisioned'),
      cold: sum('cold'),
      warm: sum('warm'),
      queued: sum('queued'),
      throttled: sum('throttled'),
      evicted: sum('evicted'),
      keepAlive: rows[0]?.policy ?? o.invoker.policyName(name),
    };
  }

  function functionNotFound(name: string): ApiError {
    return new ApiError(
      404,
      'ResourceNotFoundException',
      `Function not found: arn:aws:lambda:${o.region}:${o.accountId}:function:${name}`,
      'deploy it with `npx nimbus deploy` or check `npx nimbus ls`',
    );
  }

  function sendError(ctx: Ctx, err: unknown): void {
    const e =
      err instanceof ApiError
        ? err
        : new ApiError(500, 'InternalError', 'Nimbus hit an internal error; the request changed nothing');
    if (!(err instanceof ApiError)) o.logger?.error({ err, requestId: ctx.requestId }, 'api request failed');
    if (ctx.res.headersSent) return void ctx.res.destroy();
    // Refused before its body was read (no key): discard the rest so the client can read this answer.
    ctx.req.resume();
    if (ctx.aws) {
      const body = { Type: e.status >= 500 ? 'Service' : 'User', message: e.message, ...e.extra };
      sendRaw(
        ctx,
        e.status,
        { 'x-amzn-errortype': e.code, 'x-amzn-requestid': ctx.requestId, 'content-type': 'application/json' },
        JSON.stringify(body),
      );
      return;
    }
    send(ctx, e.status, {
      error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) },
      requestId: ctx.requestId,
    });
  }

  return server;
}

/** An AWS Signature V4 request: in the Authorization header, or presigned in the query string. */
function isSigV4(req: IncomingMessage): boolean {
  return (
    (req.headers.authorization?.startsWith('AWS4-HMAC-SHA256') ?? false) ||
    /[?&]X-Amz-Signature=/.test(req.url ?? '')
  );
}

function summary(f: FunctionVersion): Record<string, unknown> {
  return {
    name: f.name,
    service: f.service,
    version: f.version,
    handler: f.config.handler,
    runtime: f.config.runtime,
    memory: f.config.memory,
    timeout: f.config.timeout,
    reservedConcurrency: f.config.reservedConcurrency ?? null,
    routes: f.config.routes.map((r) => `${r.method} ${r.path}`),
    codeSize: f.codeSize,
    codeSha256: f.codeSha256,
    deployedAt: f.deployedAt,
  };
}

function logRecord(r: StoredInvocation): Record<string, unknown> {
  return {
    seq: r.seq,
    requestId: r.requestId,
    version: r.version,
    trigger: r.trigger,
    start: r.start,
    durationMs: r.durationMs,
    billedMs: r.billedMs,
    status: r.status,
    cold: r.cold,
    errorType: r.errorType,
    errorMessage: r.errorMessage,
    logs: r.logs,
  };
}

/** START/logs/END/REPORT like CloudWatch, last 4 KB, base64: what X-Amz-Log-Result carries. */
function tail(o: InvokeOutcome, f: FunctionVersion): string {
  const report =
    `REPORT RequestId: ${o.requestId}\tDuration: ${o.durationMs.toFixed(2)} ms\t` +
    `Billed Duration: ${Math.max(1, Math.ceil(o.durationMs))} ms\tMemory Size: ${f.config.memory} MB\n`;
  const text = `START RequestId: ${o.requestId} Version: ${o.version}\n${o.logs}END RequestId: ${o.requestId}\n${report}`;
  const buf = Buffer.from(text);
  return buf.subarray(Math.max(0, buf.length - TAIL_BYTES)).toString('base64');
}

/** Accepts a name, "name:qualifier", a full ARN or a partial ARN, as Lambda does. */
function functionNameFrom(raw: string): string {
  const arn = /^(?:arn:[^:]+:lambda:[^:]*:[^:]*:function:|\d{12}:function:)?([^:]+)(?::[^:]+)?$/.exec(raw);
  return arn ? arn[1]! : raw;
}

function qualifierFrom(raw: string): string | null {
  const m = /^(?:arn:[^:]+:lambda:[^:]*:[^:]*:function:|\d{12}:function:)?[^:]+:([^:]+)$/.exec(raw);
  return m ? m[1]! : null;
}

function decodeClientContext(b64: string): unknown {
  try {
    return JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}

function numberParam(url: URL, name: string): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw badRequest(`query parameter ${name} must be a number`, `got "${v}"`);
  return n;
}

function optional<K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [k]: v }) as { [P in K]?: V };
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      return reject(tooLarge(limit));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function tooLarge(limit: number): ApiError {
  return new ApiError(
    413,
    'RequestTooLargeException',
    `Request must be smaller than ${limit > MAX_SYNC_PAYLOAD + 1024 ? limit : MAX_SYNC_PAYLOAD} bytes`,
  );
}

function send(ctx: Ctx, status: number, body: unknown): void {
  sendRaw(
    ctx,
    status,
    { 'content-type': 'application/json', 'x-nimbus-request-id': ctx.requestId },
    JSON.stringify(body),
  );
}

function sendRaw(ctx: Ctx, status: number, headers: Record<string, string>, body: string): void {
  ctx.res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) });
  ctx.res.end(body);
}

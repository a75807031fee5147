// The gateway's HTTP listener: request → project (by host) → route → event → invoker → response. Every request
// ends in exactly one response carrying x-nimbus-request-id; nothing a client or a function does can throw out
// of here.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { answerClientErrors } from '../http/client-error.js';
import { MAX_SYNC_PAYLOAD_BYTES } from '../config/limits.js';
import { ABORTED, readBody, TOO_LARGE } from '../http/body.js';
import type { InvokeOutcome, Invoker } from '../invoker/types.js';
import {
  buildEventV1,
  buildEventV2,
  domainFromHost,
  errorResponse,
  mapResultV1,
  mapResultV2,
  type GatewayRequest,
  type GatewayResponse,
  type HttpApiEventV1,
  type HttpApiEventV2,
} from './events.js';
import type { RouteMatch, Router } from './router.js';
import { timeOrderedId } from '../ids.js';
import { systemClock, type Clock } from '../clock/clock.js';
import type { CorsConfig, RouteProtection, UsagePlan } from '../config/manifest.js';
import { applyCors, preflightHeaders } from './cors.js';
import { Throttles } from './throttle.js';
import { JwtVerifier } from './jwt.js';
import { identityValue, LambdaAuthorizers } from './lambda-authorizer.js';
import type { GatewayObserver } from '../observability/metrics.js';
import type { GatewayTracer, RequestTrace } from '../observability/tracing.js';
import { isHealthPath, type Health } from '../observability/health.js';
import { projectOfHost } from './hosts.js';
import { periodEnd, type Quota } from './quotas.js';
import type { StoredGatewayKey } from '../store/types.js';

export interface GatewayOptions {
  invoker: Invoker;
  /**
   * A project's current route table, or undefined when it has none (or does not exist); called per request,
   * so swapping the Router it returns is atomic.
   */
  router: (project: string) => Router | undefined;
  /** The project served on hosts that name none (see hosts.ts). Default "default". */
  project?: string;
  /** Hosts <project>.<domain> serve that project's routes. Default "localhost". */
  domain?: string;
  /** Largest request body accepted (bytes); default 6 MB like Lambda's synchronous payload limit. */
  maxBodyBytes?: number;
  apiId?: string;
  accountId?: string;
  /** For the routeArn a Lambda authorizer sees. Default us-east-1. */
  region?: string;
  /** Drives throttling buckets and authorizer caches. */
  clock?: Clock;
  /** Least time between JWKS refetches caused by unknown kids; default 30 s. */
  jwksCooldownMs?: number;
  logger?: { warn(obj: object, msg: string): void };
  /** Told every answered request's route and status (metrics); none when metrics are off. */
  metrics?: GatewayObserver;
  /** A span per request (not health probes), the invocation's parent; none when tracing is off. */
  tracer?: GatewayTracer;
  /** Told every answered request (not health probes); absent when request lines are off. */
  accessLog?: (e: AccessEntry) => void;
  /** Answers GET /healthz and /readyz when no route of the project matches them: user routes win. */
  health?: Health;
  /** Checks x-api-key on routes with apiKeyRequired; without it such routes answer 403. */
  apiKeys?: { verify(text: string | undefined): Promise<StoredGatewayKey | undefined> };
  /** Counts usage plan quotas; without it quotas are not enforced. */
  quotas?: { take(project: string, keyId: string, quota: Quota): Promise<boolean> };
}

export const DEFAULT_MAX_BODY_BYTES = MAX_SYNC_PAYLOAD_BYTES;
/** One answered gateway request, for the server's request line. */
export interface AccessEntry {
  method: string;
  path: string;
  status: number;
  ms: number;
  functionName: string | undefined;
  requestId: string;
  /** Undefined when no function ran (404, 429, an authorizer's refusal). */
  cold: boolean | undefined;
}

export const REQUEST_ID_HEADER = 'x-nimbus-request-id';

/**
 * After a 413, what the client still sends is read and thrown away up to this much, so it gets to read the
 * 413 instead of a TCP reset (closing a socket with unread input resets it); past it the connection is cut.
 */
const DRAIN_BYTES = 1024 * 1024;

export function createGateway(opts: GatewayOptions, tls?: { cert: Buffer; key: Buffer }): http.Server {
  const gateway = new Gateway(opts);
  // With a certificate the same handler serves HTTPS (an https.Server is an http.Server underneath).
  const server = tls
    ? (https.createServer({ keepAlive: true, ...tls }, gateway.onRequest) as unknown as http.Server)
    : http.createServer({ keepAlive: true }, gateway.onRequest);
  // Above the usual 60 s idle timeout of load balancers in front, so they never reuse a socket we closed.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // API Gateway's shape for a refused request.
  return answerClientErrors(server, (_status, message) => ({ message }));
}

class Gateway {
  private readonly invoker: Invoker;
  private readonly router: (project: string) => Router | undefined;
  private readonly project: string;
  private readonly domain: string;
  private readonly maxBodyBytes: number;
  private readonly apiId: string;
  private readonly accountId: string;
  private readonly logger: { warn(obj: object, msg: string): void } | undefined;
  private readonly region: string;
  private readonly throttles: Throttles;
  private readonly jwt: JwtVerifier;
  private readonly lambdaAuthorizers: LambdaAuthorizers;
  private readonly metrics: GatewayObserver | undefined;
  private readonly tracer: GatewayTracer | undefined;
  private readonly accessLog: ((e: AccessEntry) => void) | undefined;
  private readonly health: Health | undefined;
  private readonly apiKeys: GatewayOptions['apiKeys'];
  private readonly quotas: GatewayOptions['quotas'];
  private readonly clock: Clock;

  constructor(o: GatewayOptions) {
    const clock = o.clock ?? systemClock;
    this.region = o.region ?? 'us-east-1';
    this.throttles = new Throttles(clock);
    this.jwt = new JwtVerifier(o.jwksCooldownMs !== undefined ? { cooldownMs: o.jwksCooldownMs } : {});
    this.lambdaAuthorizers = new LambdaAuthorizers(o.invoker, clock);
    this.invoker = o.invoker;
    this.router = o.router;
    this.project = o.project ?? 'default';
    this.domain = o.domain ?? 'localhost';
    this.maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.apiId = o.apiId ?? 'nimbus';
    this.accountId = o.accountId ?? '000000000000';
    this.logger = o.logger;
    this.metrics = o.metrics;
    this.tracer = o.tracer;
    this.accessLog = o.accessLog;
    this.health = o.health;
    this.apiKeys = o.apiKeys;
    this.quotas = o.quotas;
    this.clock = clock;
  }

  // Bound once: node:http calls it per request, and handle() never rejects (see its catch).
  readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void this.handle(req, res);
  };

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = timeOrderedId();
    const timeEpoch = Date.now();
    const t0 = this.accessLog ? performance.now() : 0;
    let cold: boolean | undefined;
    let match: RouteMatch | undefined;
    // Health probes (a load balancer's, every few seconds) are not counted among the gateway's requests.
    let probe = false;
    let trace: RequestTrace | undefined;
    let project = this.project;
    /** For the metrics: a project with routes, never a name taken from an arbitrary Host header. */
    let knownProject: string | undefined;
    try {
      const method = req.method ?? 'GET';
      let url = req.url ?? '/';
      if (url.charCodeAt(0) !== 47 /* / */) url = originForm(url);
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      const rawQueryString = q === -1 ? '' : url.slice(q + 1);

      const declared = req.headers['content-length'];
      const declaredBytes = declared === undefined ? -1 : Number(declared);
      if (declaredBytes > this.maxBodyBytes) {
        this.rejectTooLarge(req, res, requestId, declaredBytes);
        return;
      }

      project = projectOfHost(req.headers.host, this.domain, this.project);
      // An unknown project and one without routes look alike (404): a host tells nobody which projects exist.
      const router = this.router(project);
      if (router) knownProject = project;
      match = router?.match(method, path);
      if (this.tracer && (match || !isHealthPath(path)))
        trace = this.tracer.request(req.headers, method, path, clientIp(req));
      const origin = req.headers.origin;
      if (method === 'OPTIONS' && origin !== undefined) {
        const asked = req.headers['access-control-request-method'];
        const target = asked === undefined ? undefined : (router?.match(asked.toUpperCase(), path) ?? match);
        const cors = target?.route.protection?.cors;
        if (cors) {
          // A preflight is the gateway's to answer when CORS is configured: no function runs for it.
          res.writeHead(204, {
            ...preflightHeaders(cors, origin, req.headers['access-control-request-headers']),
            [REQUEST_ID_HEADER]: requestId,
          });
          res.end();
          return;
        }
      }
      if (!match) {
        probe = this.health !== undefined && (method === 'GET' || method === 'HEAD') && isHealthPath(path);
        if (probe) await this.sendHealth(res, path, method, requestId);
        else this.sendError(res, 404, 'Not Found', requestId);
        return;
      }
      const protection = match.route.protection;
      const cors = protection?.cors;
      let apiKey: { text: string; row: StoredGatewayKey; plan: UsagePlan } | undefined;
      if (protection?.apiKeyRequired) {
        apiKey = await this.checkApiKey(project, protection, req.headers['x-api-key']);
        if (!apiKey) {
          this.sendError(res, 403, 'Forbidden', requestId, cors, origin);
          return;
        }
      }
      const keyThrottle = apiKey?.plan.throttle;
      if (protection && (protection.throttle || protection.serviceThrottle || keyThrottle)) {
        const limits = [];
        if (keyThrottle) limits.push({ key: `${project} key ${apiKey!.row.id}`, config: keyThrottle });
        if (protection.throttle)
          limits.push({
            key: `${project} ${protection.service} ${match.routeKey}`,
            config: protection.throttle,
          });
        if (protection.serviceThrottle)
          limits.push({ key: `${project} ${protection.service}`, config: protection.serviceThrottle });
        const retryAfter = this.throttles.admit(limits);
        if (retryAfter !== undefined) {
          this.metrics?.throttled(match, project);
          this.sendError(res, 429, 'Too Many Requests', requestId, cors, origin, {
            'retry-after': String(retryAfter),
          });
          return;
        }
      }

      const quota = apiKey?.plan.quota;
      if (apiKey && quota && this.quotas && !(await this.quotas.take(project, apiKey.row.id, quota))) {
        // API Gateway's words; Retry-After says when the next period starts.
        const wait = Math.max(
          1,
          Math.ceil((periodEnd(quota.period, this.clock.now()) - this.clock.now()) / 1000),
        );
        this.metrics?.throttled(match, project);
        this.sendError(res, 429, 'Limit Exceeded', requestId, cors, origin, { 'retry-after': String(wait) });
        return;
      }

      let body: Buffer;
      if (declaredBytes === 0 || (declaredBytes === -1 && req.headers['transfer-encoding'] === undefined)) {
        body = EMPTY;
      } else {
        const read = await readBody(req, this.maxBodyBytes);
        if (read === ABORTED) return;
        if (read === TOO_LARGE) {
          this.rejectTooLarge(req, res, requestId, -1);
          return;
        }
        body = read;
      }

      const gwReq: GatewayRequest = {
        method,
        path,
        rawQueryString,
        rawHeaders: req.rawHeaders,
        body,
        sourceIp: clientIp(req),
        protocol: `HTTP/${req.httpVersion}`,
        requestId,
        timeEpoch,
        domainName: domainFromHost(req.headers.host),
        apiId: this.apiId,
        accountId: this.accountId,
        stage: '$default',
      };
      const v1 = match.route.payload === '1.0';
      const event = v1 ? buildEventV1(gwReq, match) : buildEventV2(gwReq, match);
      if (apiKey && event.version === '1.0') {
        // As API Gateway's REST APIs give it: the key as sent, and its id.
        event.requestContext.identity.apiKey = apiKey.text;
        event.requestContext.identity.apiKeyId = apiKey.row.id;
      }
      if (protection?.authorizer) {
        const denied = await this.authorize(project, gwReq, match, event);
        if (denied) {
          this.sendError(res, denied[0], denied[1], requestId, cors, origin);
          return;
        }
      }
      // The response is mapped as the invocation ends, so a malformed one is recorded as the function's error.
      let response: GatewayResponse | undefined;
      const outcome = await this.invoker.invoke({
        fn: { project, name: match.functionName },
        event,
        trigger: 'http',
        requestId,
        parent: trace?.parent,
        // The function's own OpenTelemetry SDK continues the trace from the event's traceparent.
        propagate: trace && ((tp) => setTraceparent(event, tp)),
        checkPayload: (payload) => {
          response = v1 ? mapResultV1(payload, requestId) : mapResultV2(payload, requestId);
          return response.problem;
        },
      });
      cold = outcome.cold;

      // A malformed answer is an error outcome whose response (a 502) is already mapped.
      if (outcome.status !== 'ok' && response?.problem === undefined) {
        const [status, message] = failureStatus(outcome);
        this.sendError(res, status, message, requestId, cors, origin);
        return;
      }
      // An invoker that did not call checkPayload (a test double) still gets its answer mapped.
      response ??= v1
        ? mapResultV1(outcome.payload ?? 'null', requestId)
        : mapResultV2(outcome.payload ?? 'null', requestId);
      if (response.problem !== undefined) {
        this.logger?.warn(
          { requestId, functionName: match.functionName, problem: response.problem },
          'function returned a response the gateway cannot use',
        );
      }
      if (cors) applyCors(cors, origin, response.headers);
      this.send(res, response, requestId, match.functionName);
    } catch (err) {
      try {
        this.logger?.warn({ requestId, err }, 'gateway failed to handle a request');
        if (!res.headersSent) this.sendError(res, 500, 'Internal Server Error', requestId);
        else res.destroy();
      } catch {
        res.destroy();
      }
    } finally {
      trace?.end(project, match, res.statusCode);
      // A request whose client went away before an answer started is not counted.
      if (this.metrics && res.headersSent && !probe)
        this.metrics.request(match, res.statusCode, knownProject);
      if (this.accessLog && res.headersSent && !probe) {
        this.accessLog({
          method: req.method ?? '',
          path: (req.url ?? '').split('?')[0]!,
          status: res.statusCode,
          ms: performance.now() - t0,
          functionName: match?.functionName,
          requestId,
          cold,
        });
      }
    }
  }

  private async sendHealth(
    res: ServerResponse,
    path: string,
    method: string,
    requestId: string,
  ): Promise<void> {
    const h = (await this.health!.answer(path))!;
    res.writeHead(h.status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(h.body)),
      'cache-control': 'no-store',
      [REQUEST_ID_HEADER]: requestId,
    });
    res.end(method === 'HEAD' ? undefined : h.body);
  }

  /**
   * The live key of this project, of one of the route's service's usage plans, that the request carries; or
   * undefined (missing, malformed, unknown, removed, another project's, or of a plan the service lacks).
   */
  private async checkApiKey(
    project: string,
    p: RouteProtection,
    header: string | string[] | undefined,
  ): Promise<{ text: string; row: StoredGatewayKey; plan: UsagePlan } | undefined> {
    const text = typeof header === 'string' ? header : undefined;
    if (!this.apiKeys || text === undefined) return undefined;
    const row = await this.apiKeys.verify(text);
    if (!row || row.project !== project) return undefined;
    const plan = p.usagePlans && Object.hasOwn(p.usagePlans, row.plan) ? p.usagePlans[row.plan] : undefined;
    return plan ? { text, row, plan } : undefined;
  }

  /**
   * Runs the route's authorizer and puts what it found into the event's requestContext.authorizer; returns
   * the status and message of a refusal, in API Gateway's words, or undefined to go on.
   */
  private async authorize(
    project: string,
    req: GatewayRequest,
    match: RouteMatch,
    event: HttpApiEventV1 | HttpApiEventV2,
  ): Promise<[number, string] | undefined> {
    const p = match.route.protection!;
    const a = p.authorizer!;
    const fail = (status: number, why: string): [number, string] => {
      this.logger?.warn(
        { requestId: req.requestId, routeKey: match.routeKey, authorizer: a.name, status, why },
        'authorizer refused a request',
      );
      return [
        status,
        status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Internal Server Error',
      ];
    };
    // Identity sources are read from a format 2.0 view of the request, whatever the route's format.
    const v2 = event.version === '2.0' ? event : buildEventV2(req, match);
    if (a.type === 'jwt') {
      const r = await this.jwt.verify(a, identityValue(v2, a.identitySource), p.authorizationScopes);
      if (!r.ok) return fail(r.status, r.why);
      if (event.version === '2.0')
        event.requestContext.authorizer = { jwt: { claims: r.claims, scopes: r.scopes } };
      else event.requestContext.authorizer = { claims: r.claims, scopes: r.scopes };
      return undefined;
    }
    const r = await this.lambdaAuthorizers.authorize({
      project,
      service: p.service,
      authorizerName: a.name,
      authorizer: a,
      event: v2,
      routeArn: `arn:aws:execute-api:${this.region}:${this.accountId}:${this.apiId}/${req.stage}/${req.method}${req.path}`,
    });
    if (!r.ok) return fail(r.status, r.why);
    event.requestContext.authorizer = { lambda: r.context };
    return undefined;
  }

  private send(res: ServerResponse, r: GatewayResponse, requestId: string, functionName: string): void {
    const headers = r.headers;
    headers[REQUEST_ID_HEADER] = requestId;
    const s = r.statusCode;
    if (s !== 204 && s !== 304) headers['content-length'] = String(r.body.length);
    try {
      res.writeHead(s, headers);
    } catch (err) {
      // Node rejects header names/values a function may return (control characters, non-tokens).
      this.logger?.warn(
        { requestId, functionName, problem: (err as Error).message },
        'function returned a response the gateway cannot use',
      );
      this.sendError(res, 502, 'Internal Server Error', requestId);
      return;
    }
    res.end(r.body);
  }

  /** An unread request body is then discarded by node:http itself (never buffered), keeping the connection. */
  private sendError(
    res: ServerResponse,
    status: number,
    message: string,
    requestId: string,
    cors?: CorsConfig,
    origin?: string,
    extra?: Record<string, string>,
  ): void {
    const r = errorResponse(status, message, requestId);
    const headers = r.headers;
    if (extra) Object.assign(headers, extra);
    // A browser shows a refusal to the page only when the refusal carries the CORS headers.
    if (cors) applyCors(cors, origin, headers);
    headers[REQUEST_ID_HEADER] = requestId;
    headers['content-length'] = String(r.body.length);
    res.writeHead(status, headers);
    res.end(r.body);
  }

  private rejectTooLarge(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    declaredBytes: number,
  ): void {
    const r = errorResponse(413, 'Request Entity Too Large', requestId);
    const headers = r.headers;
    headers[REQUEST_ID_HEADER] = requestId;
    headers['content-length'] = String(r.body.length);
    if (!req.complete) {
      if (declaredBytes > this.maxBodyBytes + DRAIN_BYTES) {
        headers['connection'] = 'close';
      } else {
        let left = DRAIN_BYTES;
        req.on('data', (chunk: Buffer) => {
          left -= chunk.length;
          if (left < 0) req.socket.destroy();
        });
        req.resume();
      }
    }
    res.writeHead(413, headers);
    res.end(r.body);
  }
}

const EMPTY = Buffer.alloc(0);

/** The invocation span's traceparent in the event, replacing the client's (whose trace it continues). */
function setTraceparent(event: HttpApiEventV1 | HttpApiEventV2, traceparent: string): void {
  event.headers['traceparent'] = traceparent;
  if (event.version === '1.0') event.multiValueHeaders['traceparent'] = [traceparent];
}

function failureStatus(o: InvokeOutcome): [number, string] {
  switch (o.status) {
    case 'timeout':
      return [504, 'Endpoint request timed out'];
    case 'throttled':
      // API Gateway's words, and for a project quota which one was hit.
      return o.throttleReason === 'ProjectConcurrencyQuotaExceeded' ||
        o.throttleReason === 'ProjectMemoryQuotaExceeded'
        ? [429, `Too Many Requests: ${o.error?.errorMessage ?? 'project quota'}`]
        : [429, 'Too Many Requests'];
    case 'not_found':
      // The function was removed between routing and invoking.
      return [404, 'Not Found'];
    default:
      return [502, 'Internal Server Error'];
  }
}

/** The socket's peer, IPv4-mapped IPv6 addresses shown as IPv4 like API Gateway shows them. */
function clientIp(req: IncomingMessage): string {
  const ip = req.socket.remoteAddress ?? '';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

/** Absolute-form targets ("http://host/path?q", sent to proxies) become "/path?q"; others ("*") match nothing. */
function originForm(target: string): string {
  try {
    const u = new URL(target);
    return u.pathname + u.search;
  } catch {
    return '';
  }
}

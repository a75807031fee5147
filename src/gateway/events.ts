// Translation between HTTP and Lambda, as API Gateway HTTP APIs do it: requests become payload format 1.0
// or 2.0 events, function results become HTTP responses. Pure functions, run on every request.
//
// Request bodies: text or base64. A body is passed as text (isBase64Encoded false) only when its media type
// is text-like AND its bytes are valid UTF-8, so no byte is ever lost in a JSON string. Text-like means
// text/*, application/json, application/*+json (any */*+json), application/xml, */*+xml,
// application/javascript, application/ecmascript, application/x-www-form-urlencoded, application/graphql,
// application/yaml, application/x-yaml, application/x-ndjson. Anything else, a missing Content-Type
// included, is base64.
//
// Absent means absent: optional event fields are not set at all (not set to undefined).
import { isUtf8 } from 'node:buffer';
import type { RouteMatch } from './router.js';

export interface GatewayRequest {
  method: string;
  /** As received: not decoded, without the query string. */
  path: string;
  /** Without the leading '?'; '' when none. */
  rawQueryString: string;
  /** Node's req.rawHeaders: name, value, name, value... in arrival order and case. */
  rawHeaders: string[];
  body: Buffer;
  sourceIp: string;
  /** "HTTP/1.1" */
  protocol: string;
  requestId: string;
  /** Epoch ms at which the request arrived. */
  timeEpoch: number;
  /** The Host header without its port, as in API Gateway's requestContext.domainName. */
  domainName: string;
  apiId: string;
  accountId: string;
  stage: '$default';
}

export interface GatewayResponse {
  statusCode: number;
  /** Lower-case names; an array is sent as repeated header lines (set-cookie). */
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** Set when the function's result could not be used (the response is then a 502): why, for the logs. */
  problem?: string;
}

export interface HttpApiEventV2 {
  version: '2.0';
  routeKey: string;
  rawPath: string;
  rawQueryString: string;
  cookies?: string[];
  headers: Record<string, string>;
  queryStringParameters?: Record<string, string>;
  requestContext: {
    accountId: string;
    apiId: string;
    domainName: string;
    domainPrefix: string;
    http: { method: string; path: string; protocol: string; sourceIp: string; userAgent: string };
    requestId: string;
    routeKey: string;
    stage: string;
    time: string;
    timeEpoch: number;
    /** What the route's authorizer found: { jwt: { claims, scopes } } or { lambda: context }. */
    authorizer?: EventAuthorizer;
  };
  body?: string;
  pathParameters?: Record<string, string>;
  isBase64Encoded: boolean;
}

export type EventAuthorizer =
  { jwt: { claims: Record<string, string>; scopes: string[] | null } } | { lambda: Record<string, unknown> };

export interface HttpApiEventV1 {
  version: '1.0';
  resource: string;
  path: string;
  httpMethod: string;
  headers: Record<string, string>;
  multiValueHeaders: Record<string, string[]>;
  queryStringParameters: Record<string, string> | null;
  multiValueQueryStringParameters: Record<string, string[]> | null;
  requestContext: {
    accountId: string;
    apiId: string;
    domainName: string;
    domainPrefix: string;
    extendedRequestId: string;
    httpMethod: string;
    identity: {
      accessKey: null;
      accountId: null;
      caller: null;
      cognitoAuthenticationProvider: null;
      cognitoAuthenticationType: null;
      cognitoIdentityId: null;
      cognitoIdentityPoolId: null;
      principalOrgId: null;
      sourceIp: string;
      user: null;
      userAgent: string;
      userArn: null;
      /** Routes with apiKeyRequired: the key as the caller sent it, and its id. */
      apiKey?: string;
      apiKeyId?: string;
    };
    path: string;
    protocol: string;
    requestId: string;
    requestTime: string;
    requestTimeEpoch: number;
    resourceId: null;
    resourcePath: string;
    stage: string;
    /** Format 1.0 spells a JWT authorizer's result { claims, scopes }; a Lambda authorizer's { lambda }. */
    authorizer?: Record<string, unknown>;
  };
  pathParameters: Record<string, string> | null;
  stageVariables: null;
  body: string | null;
  isBase64Encoded: boolean;
}

// ---------------------------------------------------------------------------------------------- requests

export function buildEventV2(req: GatewayRequest, match: RouteMatch): HttpApiEventV2 {
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    // Format 2.0 moves Cookie into its own field and leaves it out of headers.
    if (name === 'cookie') {
      for (const c of value.split(';')) {
        const t = c.trim();
        if (t !== '') (cookies ??= []).push(t);
      }
    } else if (Object.hasOwn(headers, name)) {
      headers[name] += ',' + value;
    } else {
      setOwn(headers, name, value);
    }
  }

  const ev = { version: '2.0', routeKey: match.routeKey, rawPath: req.path } as HttpApiEventV2;
  ev.rawQueryString = req.rawQueryString;
  if (cookies) ev.cookies = cookies;
  ev.headers = headers;
  if (req.rawQueryString !== '') {
    const q = parseQueryV2(req.rawQueryString);
    if (q) ev.queryStringParameters = q;
  }
  ev.requestContext = {
    accountId: req.accountId,
    apiId: req.apiId,
    domainName: req.domainName,
    domainPrefix: domainPrefix(req.domainName),
    http: {
      method: req.method,
      path: req.path,
      protocol: req.protocol,
      sourceIp: req.sourceIp,
      userAgent: headers['user-agent'] ?? '',
    },
    requestId: req.requestId,
    routeKey: match.routeKey,
    stage: req.stage,
    time: requestTime(req.timeEpoch),
    timeEpoch: req.timeEpoch,
  };
  let b64 = false;
  if (req.body.length > 0) {
    b64 = !isTextBody(headers['content-type'], req.body);
    ev.body = req.body.toString(b64 ? 'base64' : 'utf8');
  }
  if (match.pathParameters) ev.pathParameters = match.pathParameters;
  ev.isBase64Encoded = b64;
  return ev;
}

export function buildEventV1(req: GatewayRequest, match: RouteMatch): HttpApiEventV1 {
  const headers: Record<string, string> = {};
  const multiValueHeaders: Record<string, string[]> = {};
  let contentType: string | undefined;
  let userAgent = '';
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    setOwn(headers, name, value);
    if (Object.hasOwn(multiValueHeaders, name)) multiValueHeaders[name]!.push(value);
    else setOwn(multiValueHeaders, name, [value]);
    // Names keep their case here, so the two headers the event needs are found case-insensitively.
    if (name.length === 12 && contentType === undefined && name.toLowerCase() === 'content-type')
      contentType = value;
    else if (name.length === 10 && name.toLowerCase() === 'user-agent') userAgent = value;
  }

  let queryStringParameters: Record<string, string> | null = null;
  let multiValueQueryStringParameters: Record<string, string[]> | null = null;
  if (req.rawQueryString !== '') {
    forEachQueryPair(req.rawQueryString, (k, v) => {
      setOwn((queryStringParameters ??= {}), k, v);
      const mv = (multiValueQueryStringParameters ??= {});
      if (Object.hasOwn(mv, k)) mv[k]!.push(v);
      else setOwn(mv, k, [v]);
    });
  }

  let body: string | null = null;
  let b64 = false;
  if (req.body.length > 0) {
    b64 = !isTextBody(contentType, req.body);
    body = req.body.toString(b64 ? 'base64' : 'utf8');
  }
  const resource = match.route.path;
  return {
    version: '1.0',
    resource,
    path: req.path,
    httpMethod: req.method,
    headers,
    multiValueHeaders,
    queryStringParameters,
    multiValueQueryStringParameters,
    requestContext: {
      accountId: req.accountId,
      apiId: req.apiId,
      domainName: req.domainName,
      domainPrefix: domainPrefix(req.domainName),
      extendedRequestId: req.requestId,
      httpMethod: req.method,
      identity: {
        accessKey: null,
        accountId: null,
        caller: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: req.sourceIp,
        user: null,
        userAgent,
        userArn: null,
      },
      path: req.path,
      protocol: req.protocol,
      requestId: req.requestId,
      requestTime: requestTime(req.timeEpoch),
      requestTimeEpoch: req.timeEpoch,
      resourceId: null,
      resourcePath: resource,
      stage: req.stage,
    },
    pathParameters: match.pathParameters ?? null,
    stageVariables: null,
    body,
    isBase64Encoded: b64,
  };
}

/** "api.example.com:8080" → "api.example.com"; "[::1]:3000" → "[::1]". */
export function domainFromHost(host: string | undefined): string {
  if (!host) return 'localhost';
  if (host.charCodeAt(0) === 91 /* [ */) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

function domainPrefix(domainName: string): string {
  const dot = domainName.indexOf('.');
  return dot === -1 ? domainName : domainName.slice(0, dot);
}

function parseQueryV2(raw: string): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  forEachQueryPair(raw, (k, v) => {
    out ??= {};
    if (Object.hasOwn(out, k)) out[k] += ',' + v;
    else setOwn(out, k, v);
  });
  return out;
}

/** application/x-www-form-urlencoded rules ('+' is a space), as API Gateway decodes query strings. */
function forEachQueryPair(raw: string, fn: (key: string, value: string) => void): void {
  let start = 0;
  while (start <= raw.length) {
    let end = raw.indexOf('&', start);
    if (end === -1) end = raw.length;
    if (end > start) {
      const eq = raw.indexOf('=', start);
      if (eq === -1 || eq > end) fn(decodeQuery(raw.slice(start, end)), '');
      else fn(decodeQuery(raw.slice(start, eq)), decodeQuery(raw.slice(eq + 1, end)));
    }
    start = end + 1;
  }
}

function decodeQuery(s: string): string {
  if (!s.includes('%') && !s.includes('+')) return s;
  const spaced = s.replaceAll('+', ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

const TEXT_TYPES = new Set([
  'application/json',
  'application/xml',
  'application/javascript',
  'application/ecmascript',
  'application/x-www-form-urlencoded',
  'application/graphql',
  'application/yaml',
  'application/x-yaml',
  'application/x-ndjson',
]);

/** The rule in the header comment: a text-like media type and valid UTF-8. */
export function isTextBody(contentType: string | undefined, body: Buffer): boolean {
  if (!contentType) return false;
  let type = contentType;
  const semi = type.indexOf(';');
  if (semi !== -1) type = type.slice(0, semi);
  type = type.trim().toLowerCase();
  const textLike =
    type.startsWith('text/') || TEXT_TYPES.has(type) || type.endsWith('+json') || type.endsWith('+xml');
  return textLike && isUtf8(body);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let cachedSecond = -1;
let cachedTime = '';

/** "12/Mar/2020:19:03:58 +0000"; formatted once per second, since every request in it shares the text. */
export function requestTime(epochMs: number): string {
  const second = Math.floor(epochMs / 1000);
  if (second !== cachedSecond) {
    const d = new Date(second * 1000);
    cachedTime =
      `${pad2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:` +
      `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`;
    cachedSecond = second;
  }
  return cachedTime;
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);

/** Plain objects keep hasOwnProperty and friends for handlers; only the key __proto__ needs care. */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__')
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

// --------------------------------------------------------------------------------------------- responses

const JSON_TYPE = 'application/json';

/**
 * Payload format 2.0: an object with statusCode is a response description; any other valid JSON is the
 * body of a 200 application/json response (a JSON string is sent as its text, null as an empty body).
 */
export function mapResultV2(payloadText: string, requestId?: string): GatewayResponse {
  let result: unknown;
  try {
    result = JSON.parse(payloadText);
  } catch {
    return malformed('the function returned invalid JSON', requestId);
  }
  if (typeof result === 'object' && result !== null && !Array.isArray(result) && 'statusCode' in result) {
    return describedResponse(result as Record<string, unknown>, true, requestId);
  }
  const body =
    typeof result === 'string'
      ? Buffer.from(result, 'utf8')
      : result === null
        ? EMPTY
        : Buffer.from(payloadText, 'utf8');
  return { statusCode: 200, headers: { 'content-type': JSON_TYPE }, body };
}

/** Payload format 1.0: the result must be an object with a valid statusCode (REST API's proxy shape). */
export function mapResultV1(payloadText: string, requestId?: string): GatewayResponse {
  let result: unknown;
  try {
    result = JSON.parse(payloadText);
  } catch {
    return malformed('the function returned invalid JSON', requestId);
  }
  if (typeof result !== 'object' || result === null || Array.isArray(result)) {
    return malformed('payload format 1.0 needs an object with statusCode', requestId);
  }
  return describedResponse(result as Record<string, unknown>, false, requestId);
}

/** JSON error body in API Gateway's shape, plus our request id. */
export function errorResponse(statusCode: number, message: string, requestId?: string): GatewayResponse {
  const body =
    requestId === undefined
      ? `{"message":${JSON.stringify(message)}}`
      : `{"message":${JSON.stringify(message)},"requestId":${JSON.stringify(requestId)}}`;
  return { statusCode, headers: { 'content-type': JSON_TYPE }, body: Buffer.from(body, 'utf8') };
}

const EMPTY = Buffer.alloc(0);

// Framing is the gateway's job: a function cannot set these (content-length is recomputed from the body).
const DROPPED_HEADERS = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
]);

/**
 * Both formats share these rules; fields present with the wrong type make the result unusable (502), since
 * guessing would hide the function's bug. Header names are lower-cased; multiValueHeaders and headers merge,
 * a value given in both appearing once.
 */
function describedResponse(r: Record<string, unknown>, v2: boolean, requestId?: string): GatewayResponse {
  const statusCode = toStatus(r['statusCode']);
  if (statusCode === undefined) return malformed('statusCode must be an integer from 200 to 599', requestId);

  const headers: Record<string, string | string[]> = {};
  const mv = r['multiValueHeaders'];
  if (mv != null) {
    if (typeof mv !== 'object' || Array.isArray(mv))
      return malformed('multiValueHeaders must be an object', requestId);
    for (const [name, values] of Object.entries(mv)) {
      if (values == null) continue;
      if (!Array.isArray(values)) return malformed(`multiValueHeaders.${name} must be an array`, requestId);
      for (const v of values) {
        const s = scalar(v);
        if (s === undefined) return malformed(`multiValueHeaders.${name} must hold strings`, requestId);
        addHeader(headers, name.toLowerCase(), s, false);
      }
    }
  }
  const h = r['headers'];
  if (h != null) {
    if (typeof h !== 'object' || Array.isArray(h)) return malformed('headers must be an object', requestId);
    for (const [name, v] of Object.entries(h)) {
      if (v == null) continue;
      const s = scalar(v);
      if (s === undefined) return malformed(`headers.${name} must be a string`, requestId);
      addHeader(headers, name.toLowerCase(), s, true);
    }
  }
  if (v2) {
    const cookies = r['cookies'];
    if (cookies != null) {
      if (!Array.isArray(cookies)) return malformed('cookies must be an array of strings', requestId);
      for (const c of cookies) {
        if (typeof c !== 'string') return malformed('cookies must be an array of strings', requestId);
        addHeader(headers, 'set-cookie', c, false);
      }
    }
  }
  if (!Object.hasOwn(headers, 'content-type')) headers['content-type'] = JSON_TYPE;

  const b64 = r['isBase64Encoded'];
  const isBase64 = b64 === true || b64 === 'true';
  if (b64 != null && !isBase64 && b64 !== false && b64 !== 'false') {
    return malformed('isBase64Encoded must be a boolean', requestId);
  }
  const body = r['body'];
  if (body != null && typeof body !== 'string') return malformed('body must be a string', requestId);
  return {
    statusCode,
    headers,
    body: body == null || body === '' ? EMPTY : Buffer.from(body, isBase64 ? 'base64' : 'utf8'),
  };
}

function toStatus(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{3}$/.test(v) ? Number(v) : NaN;
  // 1xx cannot end an exchange, so it is no valid final answer from a function.
  return Number.isInteger(n) && n >= 200 && n <= 599 ? n : undefined;
}

function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function addHeader(
  out: Record<string, string | string[]>,
  name: string,
  value: string,
  dedupe: boolean,
): void {
  if (DROPPED_HEADERS.has(name)) return;
  if (!Object.hasOwn(out, name)) {
    setOwn(out, name, value);
    return;
  }
  const prev = out[name]!;
  if (typeof prev === 'string') {
    if (!(dedupe && prev === value)) out[name] = [prev, value];
  } else if (!(dedupe && prev.includes(value))) {
    prev.push(value);
  }
}

function malformed(problem: string, requestId: string | undefined): GatewayResponse {
  const r = errorResponse(502, 'Internal Server Error', requestId);
  r.problem = problem;
  return r;
}

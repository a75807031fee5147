// Legacy AWS SDK v2 (npm aws-sdk@2) ignores AWS_ENDPOINT_URL and always calls AWS's own hosts over HTTPS
// (dynamodb.<region>.amazonaws.com, <bucket>.s3.amazonaws.com, ...). Like LocalStack's transparent endpoint
// injection, the runtime sends those requests to Nimbus instead, so a function bundling v2 works unmodified.
// v2 goes through https.request (its NodeHttpClient), so that is where requests are turned around: the
// target becomes AWS_ENDPOINT_URL, over its own protocol and without the caller's https Agent, and the Host
// header stays the AWS name the SDK signed, so the SigV4 signature still verifies and the API can tell the
// service and bucket apart by it. Only AWS's hostnames are redirected, only to the endpoint the platform
// gave the function, which it could reach anyway; every other request passes through untouched. fetch()
// (undici) is not covered: v3 and other fetch-based clients honour AWS_ENDPOINT_URL themselves.
import http from 'node:http';
import https from 'node:https';
import { syncBuiltinESMExports } from 'node:module';
import { urlToHttpOptions } from 'node:url';

type Callback = (res: http.IncomingMessage) => void;
type RequestFn = (...args: unknown[]) => http.ClientRequest;

const AWS_HOST = /(^|\.)amazonaws\.com(\.cn)?\.?$/i;

/** Options that would choose another destination or transport than the endpoint's. */
const DESTINATION_OPTIONS = ['host', 'hostname', 'port', 'socketPath', 'lookup', 'createConnection', 'agent'];

/** Where AWS's hostnames go: the endpoint the platform gave the function, once its init has run. */
let endpoint: { protocol: string; hostname: string; port: number } | null = null;
let via: RequestFn | null = null;
let installed = false;
const original = { http: http.request as RequestFn, https: https.request as RequestFn };

/**
 * Wraps http(s).request and get, once, while the stem cell boots (no user code has run): until
 * redirectAwsHosts names an endpoint every request passes through untouched. Installing it here rather than at
 * init takes the patch and the ES module exports' refresh (about 0.3 ms) off every cold start.
 */
export function installAwsRedirect(): void {
  if (installed) return;
  installed = true;
  const wrap = (own: RequestFn, defaultPort: number): RequestFn =>
    function request(...args: unknown[]): http.ClientRequest {
      if (endpoint === null || via === null) return own(...args);
      const parsed = parseArgs(args);
      const host = parsed && destinationHost(parsed.options);
      if (!parsed || !host || !AWS_HOST.test(host)) return own(...args);
      const options: Record<string, unknown> = { ...parsed.options };
      for (const k of DESTINATION_OPTIONS) delete options[k];
      const headers = { ...(parsed.options.headers as Record<string, unknown> | undefined) };
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'host')) {
        const port = parsed.options.port === undefined ? defaultPort : Number(parsed.options.port);
        headers['Host'] = port === defaultPort ? host : `${host}:${port}`;
      }
      Object.assign(options, endpoint, { headers });
      return parsed.cb ? via(options, parsed.cb) : via(options);
    };
  const wrapGet =
    (request: RequestFn): RequestFn =>
    (...args: unknown[]) => {
      const req = request(...args);
      req.end();
      return req;
    };

  const httpsRequest = wrap(original.https, 443);
  const httpRequest = wrap(original.http, 80);
  Object.assign(https, { request: httpsRequest, get: wrapGet(httpsRequest) });
  Object.assign(http, { request: httpRequest, get: wrapGet(httpRequest) });
  // `import { request } from 'node:https'` in an ES module reads a copy of the export, refreshed by this.
  syncBuiltinESMExports();
}

/**
 * Sends AWS's hostnames to the endpoint the platform gave the function (at init, once; a no-op without one).
 * Installs the wrappers if the boot did not.
 */
export function redirectAwsHosts(endpointUrl: string | undefined): void {
  if (endpoint !== null || !endpointUrl) return;
  let target: URL;
  try {
    target = new URL(endpointUrl);
  } catch {
    return;
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') return;
  installAwsRedirect();
  via = target.protocol === 'http:' ? original.http : original.https;
  endpoint = {
    protocol: target.protocol,
    // URL keeps the brackets of an IPv6 literal; a socket address has none.
    hostname: target.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(target.port || (target.protocol === 'http:' ? 80 : 443)),
  };
}

/** request(url[, options][, cb]) or request(options[, cb]) as one options object; null if unrecognised. */
function parseArgs(args: unknown[]): { options: Record<string, unknown>; cb: Callback | undefined } | null {
  const [first] = args;
  let [, second, third] = args;
  if (typeof first === 'string' || first instanceof URL) {
    let options: Record<string, unknown>;
    try {
      options = urlToHttpOptions(typeof first === 'string' ? new URL(first) : first) as Record<
        string,
        unknown
      >;
    } catch {
      return null;
    }
    if (typeof second === 'function') [second, third] = [undefined, second];
    if (second !== null && typeof second === 'object') options = { ...options, ...second };
    return { options, cb: typeof third === 'function' ? (third as Callback) : undefined };
  }
  if (first === null || typeof first !== 'object') return null;
  return { options: { ...first }, cb: typeof second === 'function' ? (second as Callback) : undefined };
}

function destinationHost(options: Record<string, unknown>): string | undefined {
  if (options['socketPath'] !== undefined) return undefined;
  const h = options['hostname'] ?? options['host'];
  return typeof h === 'string' ? h.replace(/^\[(.*)\]$/, '$1') : undefined;
}

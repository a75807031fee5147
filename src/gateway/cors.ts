// CORS as API Gateway HTTP APIs do it: with cors configured the gateway answers preflights itself (no
// function runs), sets the CORS headers of real responses for allowed origins and drops any a function set.
import type { CorsConfig } from '../config/manifest.js';

/** The Access-Control-Allow-Origin value for this Origin, or undefined when the origin is not allowed. */
export function allowedOrigin(cors: CorsConfig, origin: string | undefined): string | undefined {
  if (origin === undefined || origin === '') return undefined;
  const o = origin.toLowerCase();
  for (const allowed of cors.allowOrigins) {
    if (allowed === '*') return '*';
    const a = allowed.toLowerCase();
    if (a === o) return origin;
    // "https://*.example.com" admits any subdomain of example.com over https, not example.com itself.
    const star = a.indexOf('://*.');
    if (star !== -1) {
      const scheme = a.slice(0, star + 3);
      const suffix = a.slice(star + 4);
      if (o.startsWith(scheme) && o.endsWith(suffix) && o.length > scheme.length + suffix.length) {
        const host = o.slice(scheme.length, o.length - suffix.length);
        if (!host.includes('/')) return origin;
      }
    }
  }
  return undefined;
}

/** Headers of the gateway's own answer to a preflight; a refused origin gets none of them. */
export function preflightHeaders(
  cors: CorsConfig,
  origin: string | undefined,
  requestHeaders: string | undefined,
): Record<string, string> {
  const allow = allowedOrigin(cors, origin);
  if (allow === undefined) return {};
  const h: Record<string, string> = { 'access-control-allow-origin': allow };
  if (allow !== '*') h['vary'] = 'Origin';
  h['access-control-allow-methods'] = cors.allowMethods.join(',');
  if (cors.allowHeaders.includes('*')) {
    // "*" is not honoured by browsers for credentialed requests, so echo what was asked for.
    if (requestHeaders) h['access-control-allow-headers'] = requestHeaders;
    else h['access-control-allow-headers'] = '*';
  } else if (cors.allowHeaders.length > 0) {
    h['access-control-allow-headers'] = cors.allowHeaders.join(',');
  }
  if (cors.maxAge !== undefined) h['access-control-max-age'] = String(cors.maxAge);
  if (cors.allowCredentials) h['access-control-allow-credentials'] = 'true';
  return h;
}

/** Replaces whatever CORS headers the function returned with the configured ones. */
export function applyCors(
  cors: CorsConfig,
  origin: string | undefined,
  headers: Record<string, string | string[]>,
): void {
  for (const name of Object.keys(headers)) {
    if (name.toLowerCase().startsWith('access-control-')) delete headers[name];
  }
  const allow = allowedOrigin(cors, origin);
  if (allow === undefined) return;
  headers['access-control-allow-origin'] = allow;
  if (allow !== '*') {
    const vary = headers['vary'];
    headers['vary'] = vary === undefined ? 'Origin' : `${String(vary)}, Origin`;
  }
  if (cors.exposeHeaders.length > 0) headers['access-control-expose-headers'] = cors.exposeHeaders.join(',');
  if (cors.allowCredentials) headers['access-control-allow-credentials'] = 'true';
}

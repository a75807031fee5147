// The JWT authorizer of API Gateway HTTP APIs, on jose: the token's signature against the issuer's key set
// (fetched once and cached; an unknown kid refetches it, at most once per cooldown), then iss, aud, exp, nbf
// and the route's scopes.
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { AuthorizerConfig } from '../config/manifest.js';

type JwtAuthorizer = Extract<AuthorizerConfig, { type: 'jwt' }>;

export type JwtOutcome =
  | { ok: true; claims: Record<string, string>; scopes: string[] | null }
  /** 401 for a missing or invalid token, 403 for a valid one without the route's scopes. */
  | { ok: false; status: 401 | 403; why: string };

export interface JwtOptions {
  /** Least time between two fetches of one key set caused by unknown kids (jose's default 30 s). */
  cooldownMs?: number;
}

export class JwtVerifier {
  /** One remote key set per URL: routes and authorizers naming the same URL share its cache. */
  private readonly sets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  constructor(private readonly opts: JwtOptions = {}) {}

  async verify(
    a: JwtAuthorizer,
    token: string | undefined,
    scopes: readonly string[] | undefined,
  ): Promise<JwtOutcome> {
    if (token === undefined) return { ok: false, status: 401, why: 'no token' };
    // API Gateway accepts the token with or without the "Bearer " prefix.
    const jwt = /^bearer\s+/i.test(token) ? token.replace(/^bearer\s+/i, '') : token;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(jwt, this.keySet(a.jwksUrl), {
        issuer: a.issuer,
        audience: a.audience,
      }));
    } catch (err) {
      return { ok: false, status: 401, why: describe(err) };
    }
    const granted = tokenScopes(payload);
    if (scopes && !scopes.some((s) => granted.includes(s))) {
      return { ok: false, status: 403, why: `token lacks every scope of ${scopes.join(', ')}` };
    }
    return { ok: true, claims: flattenClaims(payload), scopes: granted.length > 0 ? granted : null };
  }

  private keySet(url: string): ReturnType<typeof createRemoteJWKSet> {
    let set = this.sets.get(url);
    if (!set) {
      set = createRemoteJWKSet(new URL(url), {
        timeoutDuration: 5000,
        ...(this.opts.cooldownMs !== undefined ? { cooldownDuration: this.opts.cooldownMs } : {}),
      });
      this.sets.set(url, set);
    }
    return set;
  }
}

/** OAuth's "scope" (space-separated) or the "scp" claim some issuers use (a list or a string). */
function tokenScopes(p: JWTPayload): string[] {
  const raw = p['scope'] ?? p['scp'];
  if (typeof raw === 'string') return raw.split(' ').filter((s) => s !== '');
  if (Array.isArray(raw)) return raw.filter((s): s is string => typeof s === 'string');
  return [];
}

/** Claims as API Gateway passes them: every value a string, a list as "[a b]". */
function flattenClaims(p: JWTPayload): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p)) {
    const s = Array.isArray(v)
      ? `[${v.map(String).join(' ')}]`
      : typeof v === 'object' && v !== null
        ? JSON.stringify(v)
        : String(v);
    if (k === '__proto__') Object.defineProperty(out, k, { value: s, enumerable: true, writable: true });
    else out[k] = s;
  }
  return out;
}

function describe(err: unknown): string {
  if (err instanceof errors.JOSEError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

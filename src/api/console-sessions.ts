// The web console's sign-in (docs/console.md): an API key is exchanged once for a session cookie, and the
// key is then forgotten by the browser. A session is a random 256-bit id the browser holds in an HttpOnly,
// SameSite=Strict cookie; the store keeps only its SHA-256, the key it was opened with and a fingerprint of
// that key's secret, so revoking or rotating the key ends the session at its next request. Every change made
// with a session must also carry its CSRF token, derived from the session id, in a header only the
// console's own scripts can set.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../clock/clock.js';
import type { ApiKeys } from '../security/api-keys.js';
import type { SessionStore, StoredSession } from '../store/types.js';
import { API_KEY_ID, type Credentials, type Principal } from './auth.js';
import { ApiError } from './errors.js';

export const SESSION_COOKIE = 'nimbus_session';
export const CSRF_HEADER = 'x-nimbus-csrf';

export interface SessionLimits {
  /** A session nobody used for this long ends. Default 30 minutes. */
  idleMs: number;
  /** A session ends this long after sign-in, however busy. Default 12 hours. */
  absoluteMs: number;
  /** Failed sign-ins one remote address may make per window before it must wait. Default 10 per minute. */
  failedSignIns: number;
  windowMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  idleMs: 30 * 60_000,
  absoluteMs: 12 * 3_600_000,
  failedSignIns: 10,
  windowMs: 60_000,
};

/** Marking a session seen is a write: once a minute is enough for a 30-minute idle limit. */
const TOUCH_EVERY_MS = 60_000;
/** The remote addresses the limiter remembers at most (a flood of addresses forgets the oldest). */
const MAX_TRACKED = 10_000;

export interface SignedIn {
  principal: Principal;
  csrfToken: string;
  /** The Set-Cookie value that gives the browser its session. */
  cookie: string;
  expiresAt: number;
}

export interface SessionAuth {
  principal: Principal;
  csrfToken: string;
  expiresAt: number;
  idHash: string;
}

export interface ConsoleSessionsOptions {
  store: SessionStore;
  credentials: Credentials;
  /** The data dir's key, whose fingerprint is its own hash (it cannot be rotated while running). */
  apiKey: string;
  /** Projects' keys: a session of one is live while the key is, with the secret it was opened with. */
  apiKeys?: Pick<ApiKeys, 'get'> | undefined;
  clock: Clock;
  /** Secure cookies: set when the listener serves TLS. */
  secure: boolean;
  limits?: Partial<SessionLimits>;
}

export class ConsoleSessions {
  readonly limits: SessionLimits;
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(private readonly o: ConsoleSessionsOptions) {
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...o.limits };
  }

  /** Exchanges an API key for a session; refuses a wrong key (401) and a flood of them (429). */
  async signIn(key: unknown, remote: string): Promise<SignedIn> {
    this.checkRate(remote);
    const principal =
      typeof key === 'string' && key !== '' ? await this.o.credentials.bearer(key) : undefined;
    if (!principal) {
      this.fail(remote);
      throw new ApiError(
        401,
        'SignInFailed',
        'that API key is wrong, revoked or rotated',
        'use the key in <data dir>/api-key, or a project key from `nimbus key create`',
      );
    }
    const fingerprint = await this.fingerprintOf(principal.keyId);
    if (!fingerprint) throw new ApiError(401, 'SignInFailed', 'that API key was revoked a moment ago');
    const now = this.o.clock.now();
    // Stale sessions are swept here: sign-ins are rare and rate-limited, so this costs nothing noticeable.
    await this.o.store.prune(now - this.limits.idleMs);
    const id = randomBytes(32).toString('base64url');
    const expiresAt = now + this.limits.absoluteMs;
    await this.o.store.create({
      idHash: hashId(id),
      project: principal.project,
      keyId: principal.keyId,
      keyFingerprint: fingerprint,
      expiresAt,
    });
    this.failures.delete(remote);
    return { principal, csrfToken: csrfOf(id), cookie: this.cookie(id, this.limits.absoluteMs), expiresAt };
  }

  /** The session a request's Cookie header names, or undefined: none, expired, ended, or its key gone. */
  async authenticate(cookieHeader: string | undefined): Promise<SessionAuth | undefined> {
    const id = sessionIdOf(cookieHeader);
    if (!id) return undefined;
    const idHash = hashId(id);
    const now = this.o.clock.now();
    const s = await this.o.store.get(idHash, now - this.limits.idleMs);
    if (!s) return undefined;
    const principal = await this.principalOf(s);
    if (!principal) {
      await this.o.store.remove(idHash);
      return undefined;
    }
    if (now - s.lastSeenAt >= TOUCH_EVERY_MS) await this.o.store.touch(idHash);
    return { principal, csrfToken: csrfOf(id), expiresAt: s.expiresAt, idHash };
  }

  /** Whether a change carries the session's CSRF token (compared in constant time). */
  csrfMatches(auth: SessionAuth, header: string | string[] | undefined): boolean {
    if (typeof header !== 'string') return false;
    const given = Buffer.from(header);
    const want = Buffer.from(auth.csrfToken);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  async signOut(auth: SessionAuth): Promise<void> {
    await this.o.store.remove(auth.idHash);
  }

  /** The Set-Cookie value that makes the browser forget its session. */
  clearCookie(): string {
    return this.cookie('', 0);
  }

  /** Ends the sessions of a key that was revoked or rotated (they would end at their next use anyway). */
  endSessionsOf(keyId: string): Promise<number> {
    return this.o.store.removeForKey(keyId);
  }

  private cookie(value: string, maxAgeMs: number): string {
    const parts = [
      `${SESSION_COOKIE}=${value}`,
      'Path=/',
      'HttpOnly',
      'SameSite=Strict',
      `Max-Age=${Math.floor(maxAgeMs / 1000)}`,
    ];
    if (this.o.secure) parts.push('Secure');
    return parts.join('; ');
  }

  /** The principal a session acts as, while its key is live with the secret it signed in with. */
  private async principalOf(s: StoredSession): Promise<Principal | undefined> {
    if ((await this.fingerprintOf(s.keyId)) !== s.keyFingerprint) return undefined;
    if (s.keyId === API_KEY_ID) {
      return { project: s.project, keyId: API_KEY_ID, role: 'admin', permissions: null };
    }
    const row = await this.o.apiKeys?.get(s.keyId);
    return row && { project: row.project, keyId: row.id, role: row.role, permissions: null };
  }

  private async fingerprintOf(keyId: string): Promise<string | undefined> {
    if (keyId === API_KEY_ID) return digest(`data-dir-key:${this.o.apiKey}`);
    const row = await this.o.apiKeys?.get(keyId);
    return row && digest(`api-key:${row.id}:${row.keyHash}`);
  }

  private checkRate(remote: string): void {
    const f = this.failures.get(remote);
    if (!f) return;
    const now = this.o.clock.now();
    if (now - f.since >= this.limits.windowMs) {
      this.failures.delete(remote);
      return;
    }
    if (f.count >= this.limits.failedSignIns) {
      const wait = Math.ceil((f.since + this.limits.windowMs - now) / 1000);
      throw new ApiError(
        429,
        'TooManySignIns',
        `too many failed sign-ins from ${remote}; try again in ${wait} s`,
        'check the key: `cat <data dir>/api-key`',
        undefined,
        { 'retry-after': String(wait) },
      );
    }
  }

  private fail(remote: string): void {
    const now = this.o.clock.now();
    const f = this.failures.get(remote);
    if (f && now - f.since < this.limits.windowMs) {
      f.count++;
      return;
    }
    if (this.failures.size >= MAX_TRACKED) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    this.failures.set(remote, { count: 1, since: now });
  }
}

function sessionIdOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    const v = part.slice(eq + 1).trim();
    return /^[A-Za-z0-9_-]{43}$/.test(v) ? v : undefined;
  }
  return undefined;
}

function hashId(id: string): string {
  return digest(`session:${id}`);
}

function csrfOf(id: string): string {
  return createHmac('sha256', id).update('nimbus console csrf v1').digest('base64url');
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

// The console's one way to the control API: same-origin fetches carrying the session cookie (set HttpOnly
// by the server, so no script here ever sees it) and, on every change, the session's CSRF token, which lives
// in this module's memory only: never in localStorage, sessionStorage, IndexedDB or a readable cookie.

export interface Session {
  project: string;
  keyId: string;
  role: string;
  csrfToken: string;
  expiresAt: number;
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;
let onSignedOut: () => void = () => undefined;

/** Called when the server answers 401: the session ended (signed out elsewhere, expired, key revoked). */
export function whenSignedOut(fn: () => void): void {
  onSignedOut = fn;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-nimbus-csrf'] = csrfToken;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  const json = text === '' ? {} : (JSON.parse(text) as unknown);
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string; hint?: string } }).error ?? {};
    if (res.status === 401 && path !== '/console/session') onSignedOut();
    throw new ApiFailure(res.status, e.code ?? 'Error', e.message ?? `HTTP ${res.status}`, e.hint);
  }
  return json as T;
}

export const get = <T>(path: string): Promise<T> => call<T>('GET', path);
export const post = <T>(path: string, body?: unknown): Promise<T> => call<T>('POST', path, body ?? {});

export async function signIn(key: string): Promise<Session> {
  const s = await call<Session>('POST', '/console/session', { key });
  csrfToken = s.csrfToken;
  return s;
}

/** The session the cookie already holds (after a reload), or undefined. */
export async function currentSession(): Promise<Session | undefined> {
  try {
    const s = await call<Session>('GET', '/console/session');
    csrfToken = s.csrfToken;
    return s;
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 401) return undefined;
    throw err;
  }
}

export async function signOut(): Promise<void> {
  try {
    await call('DELETE', '/console/session');
  } finally {
    csrfToken = undefined;
  }
}

export const enc = encodeURIComponent;

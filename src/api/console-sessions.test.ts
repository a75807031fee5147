// Console sessions over a real (in-memory) SQLite store and the ManualClock: expiry, key rotation and
// revocation, CSRF tokens and the sign-in rate limit, with time moved by hand instead of waited for.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import { ApiKeys } from '../security/api-keys.js';
import { SecretBox } from '../security/secrets.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/index.js';
import { apiKeyCredentials } from './auth.js';
import { ConsoleSessions, SESSION_COOKIE } from './console-sessions.js';
import { ApiError } from './errors.js';

const DATA_DIR_KEY = 'k'.repeat(43);
const MIN = 60_000;

describe('ConsoleSessions', () => {
  let store: SqliteStore;
  let clock: ManualClock;
  let keys: ApiKeys;
  let sessions: ConsoleSessions;
  const cookieOf = (setCookie: string) => setCookie.split(';')[0]!;

  beforeEach(() => {
    clock = new ManualClock();
    store = openSqliteStore({ path: ':memory:', clock });
    keys = new ApiKeys(store.apiKeys, new SecretBox(randomBytes(32)));
    sessions = new ConsoleSessions({
      store: store.sessions,
      credentials: apiKeyCredentials(DATA_DIR_KEY, undefined, keys),
      apiKey: DATA_DIR_KEY,
      apiKeys: keys,
      clock,
      secure: false,
    });
  });
  afterEach(() => store.close());

  it('gives an HttpOnly SameSite=Strict cookie whose session acts as the key, stored only hashed', async () => {
    const s = await sessions.signIn(DATA_DIR_KEY, '10.0.0.1');
    expect(s.cookie).toMatch(
      new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200$`),
    );
    const id = cookieOf(s.cookie).split('=')[1]!;
    const auth = await sessions.authenticate(`other=1; ${cookieOf(s.cookie)}`);
    expect(auth?.principal).toEqual({
      project: 'default',
      keyId: 'nimbus',
      role: 'admin',
      permissions: null,
    });
    expect(auth?.csrfToken).toBe(s.csrfToken);
    // Neither the id nor the key is in the store; only the id's hash.
    expect(await store.sessions.get(id, 0)).toBeUndefined();
    expect(auth?.idHash).not.toContain(id);
    expect(await sessions.authenticate(`${SESSION_COOKIE}=${'x'.repeat(43)}`)).toBeUndefined();
    expect(await sessions.authenticate(undefined)).toBeUndefined();
  });

  it('marks the cookie Secure on a TLS listener', async () => {
    const tls = new ConsoleSessions({
      store: store.sessions,
      credentials: apiKeyCredentials(DATA_DIR_KEY),
      apiKey: DATA_DIR_KEY,
      clock,
      secure: true,
    });
    expect((await tls.signIn(DATA_DIR_KEY, '10.0.0.1')).cookie).toMatch(/; Secure$/);
  });

  it('ends a session after 30 idle minutes, and 12 hours after sign-in however busy', async () => {
    const idle = cookieOf((await sessions.signIn(DATA_DIR_KEY, 'a')).cookie);
    const busy = cookieOf((await sessions.signIn(DATA_DIR_KEY, 'a')).cookie);
    // Used every 20 minutes up to 11 h 40 min: alive all along, while the unused one ended at 30 minutes.
    for (let t = 20; t < 12 * 60; t += 20) {
      clock.advance(20 * MIN);
      expect(await sessions.authenticate(busy)).toBeDefined();
    }
    expect(await sessions.authenticate(idle)).toBeUndefined();
    // 12 hours in: the absolute limit, though it was used 20 minutes ago.
    clock.advance(20 * MIN);
    expect(await sessions.authenticate(busy)).toBeUndefined();
  });

  it("ends a project key's sessions when the key is rotated or revoked", async () => {
    const k = await keys.create('default', 'console', 'read');
    const first = cookieOf((await sessions.signIn(k.key, 'a')).cookie);
    expect((await sessions.authenticate(first))?.principal).toMatchObject({
      keyId: k.stored.id,
      role: 'read',
    });
    const rotated = await keys.rotate('default', k.stored.id);
    // The store's rows are still there: the fingerprint alone refuses the old secret's session.
    expect(await sessions.authenticate(first)).toBeUndefined();
    await expect(sessions.signIn(k.key, 'a')).rejects.toMatchObject({ status: 401 });
    const second = cookieOf((await sessions.signIn(rotated!.key, 'a')).cookie);
    expect(await sessions.authenticate(second)).toBeDefined();
    await keys.remove('default', k.stored.id);
    expect(await sessions.authenticate(second)).toBeUndefined();
  });

  it('checks the CSRF token against the session, and signs out', async () => {
    const a = await sessions.signIn(DATA_DIR_KEY, 'a');
    const b = await sessions.signIn(DATA_DIR_KEY, 'a');
    expect(a.csrfToken).not.toBe(b.csrfToken);
    const auth = (await sessions.authenticate(cookieOf(a.cookie)))!;
    expect(sessions.csrfMatches(auth, a.csrfToken)).toBe(true);
    expect(sessions.csrfMatches(auth, b.csrfToken)).toBe(false);
    expect(sessions.csrfMatches(auth, undefined)).toBe(false);
    expect(sessions.csrfMatches(auth, [a.csrfToken, a.csrfToken])).toBe(false);
    await sessions.signOut(auth);
    expect(await sessions.authenticate(cookieOf(a.cookie))).toBeUndefined();
    expect(await sessions.authenticate(cookieOf(b.cookie))).toBeDefined();
    expect(sessions.clearCookie()).toMatch(
      /^nimbus_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/,
    );
  });

  it('refuses an address after 10 failed sign-ins for the rest of the minute, and no other address', async () => {
    for (let i = 0; i < 10; i++) {
      await expect(sessions.signIn('wrong', '10.0.0.9')).rejects.toMatchObject({ status: 401 });
    }
    const refused = await sessions.signIn(DATA_DIR_KEY, '10.0.0.9').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 429, code: 'TooManySignIns', headers: { 'retry-after': '60' } });
    await expect(sessions.signIn(DATA_DIR_KEY, '10.0.0.10')).resolves.toBeDefined();
    clock.advance(MIN);
    await expect(sessions.signIn(DATA_DIR_KEY, '10.0.0.9')).resolves.toBeDefined();
    // A success starts the count afresh.
    for (let i = 0; i < 9; i++) await sessions.signIn('wrong', '10.0.0.9').catch(() => undefined);
    await expect(sessions.signIn(DATA_DIR_KEY, '10.0.0.9')).resolves.toBeDefined();
    await expect(sessions.signIn(undefined, '10.0.0.9')).rejects.toMatchObject({ status: 401 });
  });
});

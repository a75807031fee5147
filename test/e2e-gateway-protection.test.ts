// Gateway protection through the public gateway: JWT and Lambda authorizers, CORS and throttling, with a
// real key server on 127.0.0.1 and the authorizer function run by the invoker like any other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import { BACKENDS, FIXTURES, startTestNimbus, type TestNimbus } from './helpers.js';

describe.each(BACKENDS)('on %s', (backend) => {
  let n: TestNimbus;
  let keyServer: http.Server;
  let jwksHits = 0;
  let issuer = '';
  let dir = '';
  let signing: KeyLike;
  let stranger: KeyLike;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    signing = pair.privateKey;
    const publicKey = pair.publicKey;
    ({ privateKey: stranger } = await generateKeyPair('RS256'));
    const jwk = { ...(await exportJWK(publicKey)), kid: 'a', alg: 'RS256', use: 'sig' };
    keyServer = http.createServer((req, res) => {
      jwksHits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => keyServer.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}`;

    dir = mkdtempSync(join(tmpdir(), 'nimbus-guarded-'));
    cpSync(join(FIXTURES, 'guarded'), dir, { recursive: true });
    const yaml = readFileSync(join(dir, 'nimbus.yaml'), 'utf8')
      .replace("'ISSUER'", `'${issuer}'`)
      .replace("'JWKS_URL'", `'${issuer}/.well-known/jwks.json'`);
    writeFileSync(join(dir, 'nimbus.yaml'), yaml);
    n = await startTestNimbus({ backend });
    await n.deploy(dir);
  });
  afterAll(async () => {
    await n?.cleanup();
    keyServer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const token = (
    o: { key?: KeyLike; kid?: string; aud?: string; exp?: string | number; scope?: string } = {},
  ): Promise<string> => {
    const jwt = new SignJWT({ sub: 'user-1', ...(o.scope ? { scope: o.scope } : {}) })
      .setProtectedHeader({ alg: 'RS256', kid: o.kid ?? 'a' })
      .setIssuer(issuer)
      .setAudience(o.aud ?? 'api')
      .setIssuedAt()
      .setExpirationTime(o.exp ?? '5m');
    return jwt.sign(o.key ?? signing);
  };

  async function get(path: string, headers: Record<string, string> = {}, method = 'GET') {
    const res = await fetch(n.gatewayUrl + path, { method, headers });
    const text = await res.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body, headers: res.headers };
  }

  const records = async (fn: string): Promise<any[]> => {
    const res = await fetch(`${n.apiUrl}/v1/invocations?function=${fn}&limit=1000`, {
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    return ((await res.json()) as any).invocations;
  };

  describe('JWT authorizer', () => {
    it('passes a valid token, its claims in requestContext.authorizer.jwt', async () => {
      const r = await get('/me', { authorization: `Bearer ${await token({ scope: 'read write' })}` });
      expect(r.status).toBe(200);
      expect(r.body.authorizer.jwt.claims).toMatchObject({ sub: 'user-1', iss: issuer, aud: 'api' });
      expect(typeof r.body.authorizer.jwt.claims.exp).toBe('string');
      expect(r.body.authorizer.jwt.scopes).toEqual(['read', 'write']);
    });

    it('gives a format 1.0 route the claims in requestContext.authorizer', async () => {
      const r = await get('/me-v1', { authorization: await token() });
      expect(r.status).toBe(200);
      expect(r.body.authorizer.claims.sub).toBe('user-1');
    });

    it.each([
      ['missing', async () => undefined],
      ['expired', async () => token({ exp: Math.floor(Date.now() / 1000) - 60 })],
      ['for another audience', async () => token({ aud: 'other' })],
      ['signed by another key', async () => token({ key: stranger })],
      ['signed with an unknown kid', async () => token({ key: stranger, kid: 'zzz' })],
      ['not a JWT', async () => 'not-a-jwt'],
    ])('answers 401 Unauthorized for a token %s', async (_, make) => {
      const t = await make();
      const r = await get('/me', t === undefined ? {} : { authorization: `Bearer ${t}` });
      expect(r.status).toBe(401);
      expect(r.body.message).toBe('Unauthorized');
    });

    it('fetches the key set once, not once per unknown kid', async () => {
      for (let i = 0; i < 5; i++) {
        const r = await get('/me', {
          authorization: `Bearer ${await token({ key: stranger, kid: `k${i}` })}`,
        });
        expect(r.status).toBe(401);
      }
      // The first fetch, plus at most one refetch inside the cooldown.
      expect(jwksHits).toBeGreaterThanOrEqual(1);
      expect(jwksHits).toBeLessThanOrEqual(2);
    });

    it('answers 403 Forbidden for a valid token without the route scopes', async () => {
      expect((await get('/admin', { authorization: await token({ scope: 'read' }) })).status).toBe(403);
      const ok = await get('/admin', { authorization: await token({ scope: 'read admin' }) });
      expect(ok.status).toBe(200);
    });
  });

  describe('Lambda authorizer', () => {
    it('allows, with its context in requestContext.authorizer.lambda', async () => {
      const r = await get('/custom', { authorization: 'allow-ctx' });
      expect(r.status).toBe(200);
      expect(r.body.authorizer).toEqual({ lambda: { user: 'allow-ctx', n: 7 } });
    });

    it('accepts the IAM policy form', async () => {
      const r = await get('/custom', { authorization: 'policy-1' });
      expect(r.status).toBe(200);
      expect(r.body.authorizer.lambda).toEqual({ via: 'policy', principalId: 'p-1' });
    });

    it('denies with 403 Forbidden', async () => {
      const r = await get('/custom', { authorization: 'nobody' });
      expect(r.status).toBe(403);
      expect(r.body.message).toBe('Forbidden');
    });

    it('answers 401 without invoking anything when the identity source is missing', async () => {
      const before = (await records('authorize')).length;
      const r = await get('/custom');
      expect(r.status).toBe(401);
      expect(r.body.message).toBe('Unauthorized');
      expect((await records('authorize')).length).toBe(before);
    });

    it('caches the answer by identity source: two requests, one authorizer invocation', async () => {
      const t = `allow-cache-${backend}`;
      const first = await get('/custom', { authorization: t });
      expect(first.status).toBe(200);
      expect((await get('/custom', { authorization: t })).status).toBe(200);
      // The route's own invocation keeps the request's id; the authorizer's has another.
      const id = first.headers.get('x-nimbus-request-id');
      expect((await records('me')).filter((r) => r.requestId === id)).toHaveLength(1);
      const calls = (await records('authorize')).filter((r) => String(r.logs).includes(`AUTHORIZE ${t} `));
      expect(calls).toHaveLength(1);
      expect(calls[0].trigger).toBe('authorizer');
      expect(calls[0].requestId).not.toBe(id);
      expect(String(calls[0].logs)).toMatch(
        /REQUEST arn:aws:execute-api:us-east-1:\d+:nimbus\/\$default\/GET\/custom/,
      );
    });

    it('asks the authorizer once for simultaneous requests with one identity', async () => {
      const t = `allow-together-${backend}`;
      const rs = await Promise.all([1, 2, 3].map(() => get('/custom', { authorization: t })));
      expect(rs.map((r) => r.status)).toEqual([200, 200, 200]);
      const calls = (await records('authorize')).filter((r) => String(r.logs).includes(`AUTHORIZE ${t} `));
      expect(calls).toHaveLength(1);
    });

    it('answers 500 when the authorizer fails, and asks again next time', async () => {
      for (let i = 0; i < 2; i++) {
        const r = await get('/custom', { authorization: 'boom' });
        expect(r.status).toBe(500);
        expect(r.body.message).toBe('Internal Server Error');
      }
      const calls = (await records('authorize')).filter((r) => String(r.logs).includes('AUTHORIZE boom '));
      expect(calls).toHaveLength(2);
    });
  });

  describe('CORS', () => {
    const preflight = (origin: string) =>
      get(
        '/me',
        { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
        'OPTIONS',
      );

    it('answers a preflight from an allowed origin without invoking a function', async () => {
      const r = await preflight('https://app.example');
      expect(r.status).toBe(204);
      expect(r.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(r.headers.get('access-control-allow-methods')).toBe('GET,POST');
      expect(r.headers.get('access-control-allow-headers')).toBe('content-type,authorization');
      expect(r.headers.get('access-control-max-age')).toBe('600');
      expect(r.headers.get('access-control-allow-credentials')).toBe('true');
      const sub = await preflight('https://a.tenant.example');
      expect(sub.headers.get('access-control-allow-origin')).toBe('https://a.tenant.example');
    });

    it('gives a refused origin no CORS headers', async () => {
      for (const origin of ['https://evil.example', 'https://tenant.example']) {
        const r = await preflight(origin);
        expect(r.status).toBe(204);
        expect(r.headers.get('access-control-allow-origin')).toBeNull();
        expect(r.headers.get('access-control-allow-methods')).toBeNull();
      }
    });

    it('sets CORS headers on real responses for allowed origins only, replacing the function own', async () => {
      const ok = await get('/open', { origin: 'https://app.example' });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(ok.headers.get('access-control-expose-headers')).toBe('x-id');
      expect(ok.headers.get('vary')).toBe('Origin');
      const other = await get('/open', { origin: 'https://evil.example' });
      expect(other.status).toBe(200);
      expect(other.headers.get('access-control-allow-origin')).toBeNull();
      // A refusal carries them too, so the page can read it.
      const denied = await get('/me', { origin: 'https://app.example' });
      expect(denied.status).toBe(401);
      expect(denied.headers.get('access-control-allow-origin')).toBe('https://app.example');
    });
  });

  describe('throttling', () => {
    it('answers 429 Too Many Requests with Retry-After past the burst', async () => {
      expect((await get('/limited')).status).toBe(200);
      const r = await get('/limited');
      expect(r.status).toBe(429);
      expect(r.body.message).toBe('Too Many Requests');
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // Another route has its own bucket.
      expect((await get('/open')).status).toBe(200);
    });
  });
});

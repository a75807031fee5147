// The JWT verifier against a real key server on 127.0.0.1: rotation, the refetch cooldown, nbf and scopes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type KeyLike } from 'jose';
import { JwtVerifier } from './jwt.js';

let server: http.Server;
let keys: JWK[] = [];
let hits = 0;
let issuer = '';
const pairs: { kid: string; key: KeyLike; jwk: JWK }[] = [];

beforeAll(async () => {
  for (const kid of ['one', 'two']) {
    const p = await generateKeyPair('ES256');
    pairs.push({ kid, key: p.privateKey, jwk: { ...(await exportJWK(p.publicKey)), kid, alg: 'ES256' } });
  }
  server = http.createServer((_req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server?.close();
});

const authorizer = () => ({
  type: 'jwt' as const,
  issuer,
  audience: ['api'],
  jwksUrl: `${issuer}/jwks`,
  identitySource: '$request.header.Authorization',
});

function sign(i: number, claims: Record<string, unknown> = {}, nbf?: number): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: pairs[i]!.kid })
    .setIssuer(issuer)
    .setAudience('api')
    .setExpirationTime('5m');
  if (nbf !== undefined) jwt.setNotBefore(nbf);
  return jwt.sign(pairs[i]!.key);
}

describe('JwtVerifier', () => {
  it('accepts a rotated-in key once its kid shows up, refetching no faster than the cooldown', async () => {
    keys = [pairs[0]!.jwk];
    hits = 0;
    const v = new JwtVerifier({ cooldownMs: 0 });
    expect((await v.verify(authorizer(), await sign(0), undefined)).ok).toBe(true);
    expect((await v.verify(authorizer(), await sign(0), undefined)).ok).toBe(true);
    expect(hits).toBe(1);
    keys = [pairs[0]!.jwk, pairs[1]!.jwk];
    expect((await v.verify(authorizer(), await sign(1), undefined)).ok).toBe(true);
    expect(hits).toBe(2);

    keys = [pairs[0]!.jwk];
    const slow = new JwtVerifier({ cooldownMs: 60_000 });
    expect((await slow.verify(authorizer(), await sign(0), undefined)).ok).toBe(true);
    keys = [pairs[0]!.jwk, pairs[1]!.jwk];
    const before = hits;
    for (let i = 0; i < 3; i++) {
      expect(await slow.verify(authorizer(), await sign(1), undefined)).toMatchObject({
        ok: false,
        status: 401,
      });
    }
    expect(hits).toBe(before);
  });

  it('refuses a token that is not yet valid', async () => {
    keys = [pairs[0]!.jwk];
    const v = new JwtVerifier();
    const later = Math.floor(Date.now() / 1000) + 3600;
    expect(await v.verify(authorizer(), await sign(0, {}, later), undefined)).toMatchObject({
      ok: false,
      status: 401,
    });
  });

  it('reads scopes from scope or scp and passes claims as strings', async () => {
    keys = [pairs[0]!.jwk];
    const v = new JwtVerifier();
    const r = await v.verify(authorizer(), `Bearer ${await sign(0, { scp: ['a', 'b'], n: 3 })}`, ['b']);
    expect(r).toMatchObject({ ok: true, scopes: ['a', 'b'], claims: { n: '3', scp: '[a b]', aud: 'api' } });
    expect(await v.verify(authorizer(), await sign(0, { scope: 'x y' }), ['z'])).toMatchObject({
      ok: false,
      status: 403,
    });
  });

  it('answers 401 when the key set cannot be fetched', async () => {
    const v = new JwtVerifier();
    const gone = { ...authorizer(), jwksUrl: 'http://127.0.0.1:1/jwks' };
    expect(await v.verify(gone, await sign(0), undefined)).toMatchObject({ ok: false, status: 401 });
  });
});

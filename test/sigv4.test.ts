import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  credentialScope,
  isSigV4,
  verifySigV4,
  type SigV4Request,
  type SigV4Result,
} from '../src/api/sigv4.js';

const creds = { accessKeyId: 'nimbus', secretAccessKey: 'test-secret-0123456789' };
const signingDate = new Date('2024-05-01T12:00:00Z');
const now = signingDate.getTime();

function signer(accessKeyId = creds.accessKeyId, secretAccessKey = creds.secretAccessKey): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId, secretAccessKey },
    region: 'us-east-1',
    service: 'lambda',
    sha256: Sha256,
  });
}

interface Input {
  method?: string;
  path: string;
  query?: Record<string, string>;
  body?: string;
  headers?: Record<string, string>;
}

function toHttpRequest(input: Input): HttpRequest {
  return new HttpRequest({
    method: input.method ?? 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 8081,
    path: input.path,
    query: input.query ?? {},
    headers: { host: '127.0.0.1:8081', 'content-type': 'application/json', ...input.headers },
    body: input.body,
  });
}

/** What a server sees after a client sent this signed request: raw path, raw query, lower-cased headers. */
function received(
  signed: { method: string; path: string; query?: Record<string, unknown>; headers: Record<string, string> },
  body: string,
): SigV4Request {
  const rawQuery = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) headers[k.toLowerCase()] = v;
  return { method: signed.method, path: signed.path, rawQuery, headers, body: Buffer.from(body) };
}

async function signed(input: Input, s = signer(), date = signingDate): Promise<SigV4Request> {
  const req = (await s.sign(toHttpRequest(input), { signingDate: date })) as HttpRequest;
  return received(req, input.body ?? '');
}

function expectCode(r: SigV4Result, code: string): void {
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.code).toBe(code);
}

describe('verifySigV4 (Authorization header)', () => {
  it('accepts a request signed by the SDK signer and reports service and region', async () => {
    const req = await signed({ path: '/2015-03-31/functions/my-fn/invocations', body: '{"a":1}' });
    expect(verifySigV4(req, creds, now)).toMatchObject({ ok: true, service: 'lambda', region: 'us-east-1' });
  });

  it('accepts paths needing encoding (double-encoded canonical URI) and query strings', async () => {
    const arn = encodeURIComponent('arn:aws:lambda:us-east-1:000000000000:function:my-fn');
    const req = await signed({
      path: `/2015-03-31/functions/${arn}/invocations`,
      query: { Qualifier: '$LATEST', 'b key': 'x y/z', a: '' },
      body: '{}',
    });
    expect(req.path).toContain('%3A');
    expect(verifySigV4(req, creds, now).ok).toBe(true);
  });

  it('accepts a GET without a body', async () => {
    const req = await signed({ method: 'GET', path: '/2015-03-31/functions/' });
    expect(verifySigV4(req, creds, now).ok).toBe(true);
  });

  it('rejects a wrong secret', async () => {
    const req = await signed(
      { path: '/2015-03-31/functions/my-fn/invocations', body: '{}' },
      signer('nimbus', 'other'),
    );
    expectCode(verifySigV4(req, creds, now), 'InvalidSignatureException');
  });

  it('rejects a tampered body, path, query or signed header', async () => {
    const base = { path: '/2015-03-31/functions/my-fn/invocations', query: { q: '1' }, body: '{"amount":1}' };
    const req = await signed(base);
    expectCode(
      verifySigV4({ ...req, body: Buffer.from('{"amount":9}') }, creds, now),
      'InvalidSignatureException',
    );
    expectCode(
      verifySigV4({ ...req, path: '/2015-03-31/functions/other/invocations' }, creds, now),
      'InvalidSignatureException',
    );
    expectCode(verifySigV4({ ...req, rawQuery: 'q=2' }, creds, now), 'InvalidSignatureException');
    expectCode(
      verifySigV4({ ...req, headers: { ...req.headers, 'content-type': 'text/plain' } }, creds, now),
      'InvalidSignatureException',
    );
  });

  it('rejects a body that does not match x-amz-content-sha256, even with a valid signature', async () => {
    const req = await signed({ path: '/p', body: 'real', headers: { 'x-amz-content-sha256': sha('real') } });
    expect(verifySigV4(req, creds, now).ok).toBe(true);
    expectCode(verifySigV4({ ...req, body: Buffer.from('fake') }, creds, now), 'InvalidSignatureException');
  });

  it('answers UnrecognizedClientException for an unknown access key id', async () => {
    const req = await signed({ path: '/p', body: '' }, signer('someone-else', creds.secretAccessKey));
    expectCode(verifySigV4(req, creds, now), 'UnrecognizedClientException');
  });

  it('answers SignatureExpired outside the 15-minute window, both ways', async () => {
    const req = await signed({ path: '/p', body: '' });
    expect(verifySigV4(req, creds, now + 14 * 60_000).ok).toBe(true);
    expectCode(verifySigV4(req, creds, now + 16 * 60_000), 'SignatureExpired');
    expectCode(verifySigV4(req, creds, now - 16 * 60_000), 'SignatureExpired');
  });

  it('answers MissingAuthenticationToken without any signature', () => {
    const req: SigV4Request = {
      method: 'GET',
      path: '/p',
      rawQuery: '',
      headers: { host: 'x' },
      body: Buffer.alloc(0),
    };
    expectCode(verifySigV4(req, creds, now), 'MissingAuthenticationToken');
  });

  it('rejects malformed Authorization headers without throwing', () => {
    const base: SigV4Request = {
      method: 'GET',
      path: '/p',
      rawQuery: '',
      headers: { host: 'x' },
      body: Buffer.alloc(0),
    };
    for (const authorization of [
      'Bearer abc',
      'AWS4-HMAC-SHA256 Credential=nimbus/2024/us-east-1',
      'AWS4-HMAC-SHA256 garbage',
    ]) {
      expectCode(
        verifySigV4({ ...base, headers: { ...base.headers, authorization } }, creds, now),
        'InvalidSignatureException',
      );
    }
    expectCode(verifySigV4({ ...base, rawQuery: 'a=%E0%A4%A' }, creds, now), 'InvalidSignatureException');
  });
});

describe('verifySigV4 (presigned query)', () => {
  it('accepts a presigned request and rejects it once expired or tampered', async () => {
    const s = signer();
    const pre = (await s.presign(
      toHttpRequest({ method: 'GET', path: '/2015-03-31/functions/my-fn', query: { x: 'a b' } }),
      {
        signingDate,
        expiresIn: 300,
      },
    )) as HttpRequest;
    const req = received(pre, '');
    expect(req.rawQuery).toContain('X-Amz-Signature=');
    expect(verifySigV4(req, creds, now + 60_000).ok).toBe(true);
    expectCode(verifySigV4(req, creds, now + 301_000), 'RequestExpired');
    expectCode(
      verifySigV4({ ...req, rawQuery: req.rawQuery.replace('x=a%20b', 'x=a%20c') }, creds, now),
      'InvalidSignatureException',
    );
  });
});

describe('reading a request before verifying it', () => {
  it('reads the credential scope from a header or a presigned query, without checking the signature', async () => {
    const req = await signed({ path: '/p', body: '' }, signer('AKIDEXAMPLE', 'any'));
    expect(isSigV4(req.headers, req.rawQuery)).toBe(true);
    const claimed = credentialScope(req);
    expect(claimed).toMatchObject({
      ok: true,
      scope: { accessKeyId: 'AKIDEXAMPLE', date: '20240501', region: 'us-east-1', service: 'lambda' },
    });
    // What was read for routing is verified as it is, without reading the header again.
    const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'any' };
    expect(claimed.ok && verifySigV4(req, creds, signingDate.getTime(), claimed)).toMatchObject({ ok: true });
    const wrong = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'other' };
    expect(claimed.ok && verifySigV4(req, wrong, signingDate.getTime(), claimed)).toMatchObject({
      ok: false,
      code: 'InvalidSignatureException',
    });
    const pre = received(
      (await signer().presign(toHttpRequest({ method: 'GET', path: '/p' }), {
        signingDate,
        expiresIn: 60,
      })) as HttpRequest,
      '',
    );
    expect(isSigV4({ host: 'x' }, pre.rawQuery)).toBe(true);
    expect(credentialScope(pre)).toMatchObject({ ok: true, scope: { service: 'lambda' } });
  });

  it('tells unsigned and malformed requests apart', () => {
    expect(isSigV4({ authorization: 'Bearer k' }, 'a=1')).toBe(false);
    expect(
      credentialScope({ headers: { authorization: 'AWS4-HMAC-SHA256 garbage' }, rawQuery: '' }),
    ).toMatchObject({ ok: false, code: 'InvalidSignatureException' });
  });
});

describe('verifySigV4 with a secret lookup', () => {
  it('verifies with the secret of the access key id the request names', async () => {
    const secrets: Record<string, string> = { alice: 'alice-secret', bob: 'bob-secret' };
    const lookup = (id: string): string | undefined => secrets[id];
    const asBob = await signed({ path: '/p', body: '{}' }, signer('bob', 'bob-secret'));
    expect(verifySigV4(asBob, lookup, now).ok).toBe(true);
    const wrong = await signed({ path: '/p', body: '{}' }, signer('bob', 'alice-secret'));
    expectCode(verifySigV4(wrong, lookup, now), 'InvalidSignatureException');
    const stranger = await signed({ path: '/p', body: '{}' }, signer('carol', 'x'));
    expectCode(verifySigV4(stranger, lookup, now), 'UnrecognizedClientException');
  });
});

describe('verifySigV4 against the real Lambda client', () => {
  let server: Server;
  let url = '';
  const seen: SigV4Result[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const [path = '', rawQuery = ''] = (req.url ?? '').split(/\?(.*)/s);
        const result = verifySigV4(
          { method: req.method ?? '', path, rawQuery, headers: req.headers, body: Buffer.concat(chunks) },
          creds,
        );
        seen.push(result);
        if (!result.ok) {
          res.writeHead(403, { 'content-type': 'application/json', 'x-amzn-errortype': result.code });
          res.end(JSON.stringify({ message: result.message }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' });
        res.end(JSON.stringify({ path }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function client(secretAccessKey = creds.secretAccessKey): LambdaClient {
    return new LambdaClient({
      endpoint: url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey },
      maxAttempts: 1,
    });
  }

  it('verifies Invoke sent by @aws-sdk/client-lambda, including a qualifier and an ARN name', async () => {
    const c = client();
    const out = await c.send(
      new InvokeCommand({
        FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:my-fn',
        Qualifier: '$LATEST',
        Payload: new TextEncoder().encode(JSON.stringify({ hello: 'wörld' })),
      }),
    );
    expect(seen.at(-1)).toMatchObject({ ok: true, service: 'lambda', region: 'us-east-1' });
    expect(JSON.parse(new TextDecoder().decode(out.Payload))).toEqual({
      path: '/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Amy-fn/invocations',
    });
    c.destroy();
  });

  it('rejects the Lambda client signing with a wrong secret', async () => {
    const c = client('wrong');
    await expect(
      c.send(new InvokeCommand({ FunctionName: 'my-fn', Payload: new TextEncoder().encode('{}') })),
    ).rejects.toThrow();
    expect(seen.at(-1)).toMatchObject({ ok: false, code: 'InvalidSignatureException' });
    c.destroy();
  });
});

function sha(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

// Through the public gateway: routing, the events functions receive, response mapping and every status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BACKENDS, FIXTURES, startTestNimbus, type TestNimbus } from './helpers.js';

describe.each(BACKENDS)('on %s', (backend) => {
  let n: TestNimbus;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'behave'));
    // styles has a function whose export is missing on purpose: the deploy-time check would refuse it.
    await n.deploy(join(FIXTURES, 'styles'), { verify: false });
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  async function get(
    path: string,
    init?: RequestInit,
  ): Promise<{ status: number; body: unknown; headers: Headers }> {
    const res = await fetch(n.gatewayUrl + path, init);
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body, headers: res.headers };
  }

  describe('gateway', () => {
    it('delivers a v2.0 event built as API Gateway does', async () => {
      const r = await get('/echo/a/b%20c?x=1&x=2&y=z', {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: 'a=1; b=2', 'x-multi': 'one' },
        body: JSON.stringify({ hello: 'world' }),
      });
      expect(r.status).toBe(200);
      const { event, env, context } = r.body as { event: Record<string, any>; env: any; context: any };
      expect(event.version).toBe('2.0');
      expect(event.routeKey).toBe('ANY /echo/{proxy+}');
      expect(event.rawPath).toBe('/echo/a/b%20c');
      expect(event.rawQueryString).toBe('x=1&x=2&y=z');
      expect(event.cookies).toEqual(['a=1', 'b=2']);
      expect(event.headers['content-type']).toBe('application/json');
      expect(event.headers['x-multi']).toBe('one');
      expect(event.queryStringParameters).toEqual({ x: '1,2', y: 'z' });
      expect(event.pathParameters).toEqual({ proxy: 'a/b c' });
      expect(event.body).toBe('{"hello":"world"}');
      expect(event.isBase64Encoded).toBe(false);
      expect(event.requestContext.http).toMatchObject({
        method: 'POST',
        path: '/echo/a/b%20c',
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
      });
      expect(event.requestContext.routeKey).toBe('ANY /echo/{proxy+}');
      expect(typeof event.requestContext.requestId).toBe('string');
      expect(typeof event.requestContext.timeEpoch).toBe('number');
      expect(event.requestContext.time).toMatch(/^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
      expect(env).toEqual({ GREETING: 'hi', fn: 'echo', region: 'us-east-1' });
      expect(context).toMatchObject({ functionName: 'echo', memoryLimitInMB: '128' });
      expect(r.headers.get('x-nimbus-request-id')).toBe(event.requestContext.requestId);
    });

    it('delivers a v1.0 event when the route asks for it', async () => {
      const r = await get('/v1/deep/path?k=1&k=2', { headers: { 'x-dup': 'a' } });
      expect(r.status).toBe(200);
      const event = (r.body as { event: Record<string, any> }).event;
      expect(event.version).toBe('1.0');
      expect(event.resource).toBe('/v1/{proxy+}');
      expect(event.path).toBe('/v1/deep/path');
      expect(event.httpMethod).toBe('GET');
      expect(event.queryStringParameters).toEqual({ k: '2' });
      expect(event.multiValueQueryStringParameters).toEqual({ k: ['1', '2'] });
      expect(event.pathParameters).toEqual({ proxy: 'deep/path' });
      expect(event.body).toBeNull();
      expect(event.requestContext.httpMethod).toBe('GET');
      expect(event.requestContext.identity.sourceIp).toBe('127.0.0.1');
    });

    it('prefers the most specific route', async () => {
      const special = await get('/items/special');
      const byId = await get('/items/42');
      expect((special.body as any).event.routeKey).toBe('GET /items/special');
      expect((byId.body as any).event.pathParameters).toEqual({ id: '42' });
    });

    it('maps v2 results: status, headers, cookies, base64 bodies, objects without statusCode', async () => {
      const post = (result: unknown, path = '/respond') =>
        fetch(n.gatewayUrl + path, { method: 'POST', body: JSON.stringify(result) });
      let res = await post({
        statusCode: 201,
        headers: { 'x-a': 'b' },
        cookies: ['s=1', 't=2'],
        body: 'made',
      });
      expect(res.status).toBe(201);
      expect(res.headers.get('x-a')).toBe('b');
      expect(res.headers.getSetCookie()).toEqual(['s=1', 't=2']);
      expect(await res.text()).toBe('made');
      res = await post({
        statusCode: 200,
        isBase64Encoded: true,
        body: Buffer.from([0, 1, 2, 255]).toString('base64'),
      });
      expect(Buffer.from(await res.arrayBuffer())).toEqual(Buffer.from([0, 1, 2, 255]));
      res = await post({ plain: 'object' });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(await res.json()).toEqual({ plain: 'object' });
    });

    it('maps v1 results with multiValueHeaders', async () => {
      const res = await fetch(`${n.gatewayUrl}/respond-v1`, {
        method: 'POST',
        body: JSON.stringify({ statusCode: 202, multiValueHeaders: { 'x-m': ['1', '2'] }, body: 'ok' }),
      });
      expect(res.status).toBe(202);
      expect(res.headers.get('x-m')).toBe('1, 2');
      expect(await res.text()).toBe('ok');
    });

    it('answers 404 with a JSON body for an unknown route', async () => {
      const r = await get('/no/such/route');
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ message: 'Not Found' });
      expect(typeof (r.body as any).requestId).toBe('string');
    });

    it('answers 413 for a body over 6 MB', async () => {
      const r = await get('/echo/big', { method: 'POST', body: Buffer.alloc(6 * 1024 * 1024 + 10, 97) });
      expect(r.status).toBe(413);
      expect(typeof (r.body as any).requestId).toBe('string');
    });

    it('answers 502 when the function fails and 504 when it times out', async () => {
      const fail = await get('/fail');
      expect(fail.status).toBe(502);
      expect(typeof (fail.body as any).requestId).toBe('string');
      const slow = await get('/sleepy?ms=3000');
      expect(slow.status).toBe(504);
      expect(typeof (slow.body as any).requestId).toBe('string');
    });

    it('answers 429 at the reserved concurrency limit, at once', async () => {
      const first = get('/single');
      await new Promise((r) => setTimeout(r, 200));
      const second = await get('/single');
      expect(second.status).toBe(429);
      expect(typeof (second.body as any).requestId).toBe('string');
      expect((await first).status).toBe(200);
    });
  });

  describe('handler styles', () => {
    const call = async (fn: string, payload: unknown = {}) => {
      const r = await n.client.invoke(fn, JSON.stringify(payload), {});
      return { ...r, value: JSON.parse(r.payload) as any };
    };

    it('runs async, callback, succeed, ESM, .mjs, .cjs, TypeScript and nested handlers', async () => {
      expect((await call('asyncStyle', { a: 1 })).value).toEqual({ style: 'async', event: { a: 1 } });
      expect((await call('mjsStyle')).value).toEqual({ style: 'mjs' });
      expect((await call('cjsStyle')).value).toEqual({ style: 'cjs' });
      expect((await call('esmStyle')).value).toEqual({ style: 'esm', loadedAt: 'top-level await' });
      expect((await call('tsStyle', { word: 'hey' })).value).toEqual({ style: 'typescript', word: 'HEY!' });
      expect((await call('nested')).value).toEqual({ style: 'nested' });
      expect((await call('succeedStyle')).value).toEqual({ style: 'succeed' });
    });

    it('waits for the event loop after a callback unless told not to', async () => {
      // The timer's log line is part of the invocation only if the answer waited for it.
      const waited = await n.client.invoke('callbackStyle', '{}', { tail: true });
      expect(JSON.parse(waited.payload)).toEqual({ style: 'callback' });
      expect(waited.logResult).toContain('timer fired');
      const noWait = await n.client.invoke('callbackNoWait', '{}', { tail: true });
      expect(JSON.parse(noWait.payload)).toEqual({ style: 'callback-nowait' });
      expect(noWait.logResult).not.toContain('late timer fired');
    });

    it('reports a missing export as Runtime.HandlerNotFound', async () => {
      const r = await call('missingExport');
      expect(r.functionError).toBe('Unhandled');
      expect(r.value.errorType).toBe('Runtime.HandlerNotFound');
    });
  });
});

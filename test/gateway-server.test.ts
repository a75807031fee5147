// The gateway over real HTTP on port 0, with a small in-test Invoker behind it (the real seam). End-to-end
// runs with real sandboxes live elsewhere.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Route } from '../src/config/manifest.js';
import { Router } from '../src/gateway/router.js';
import { createGateway } from '../src/gateway/server.js';
import type { InvokeOutcome, InvokeRequest, Invoker } from '../src/invoker/types.js';

type Behaviour = (req: InvokeRequest) => Partial<InvokeOutcome> | Promise<Partial<InvokeOutcome>>;

/** Functions by name; each returns the parts of the outcome it cares about. */
const behaviours: Record<string, Behaviour> = {
  echo: (req) => ({
    status: 'ok',
    payload: JSON.stringify({ statusCode: 200, body: JSON.stringify(req.event) }),
  }),
  hello: () => ({ status: 'ok', payload: '"Hello from Lambda!"' }),
  described: () => ({
    status: 'ok',
    payload: JSON.stringify({
      statusCode: 201,
      headers: { 'Content-Type': 'text/plain', 'X-Nimbus-Request-Id': 'forged' },
      cookies: ['a=1', 'b=2'],
      body: 'created',
    }),
  }),
  binary: () => ({
    status: 'ok',
    payload: JSON.stringify({
      statusCode: 200,
      headers: { 'content-type': 'image/png' },
      body: Buffer.from([0x89, 0x50, 0x00, 0xff]).toString('base64'),
      isBase64Encoded: true,
    }),
  }),
  legacy: (req) => ({
    status: 'ok',
    payload: JSON.stringify({
      statusCode: 200,
      multiValueHeaders: { 'x-v': ['1', '2'] },
      body: JSON.stringify(req.event),
    }),
  }),
  legacyBad: () => ({ status: 'ok', payload: '{"message":"no statusCode"}' }),
  malformed: () => ({ status: 'ok', payload: '{"statusCode": "nope"}' }),
  badHeader: () => ({
    status: 'ok',
    payload: JSON.stringify({ statusCode: 200, headers: { 'x-bad': 'a\nb' } }),
  }),
  fails: () => ({ status: 'error', error: { errorType: 'Error', errorMessage: 'boom', trace: [] } }),
  crashes: () => ({ status: 'unhandled' }),
  oom: () => ({ status: 'oom' }),
  slow: () => ({ status: 'timeout' }),
  busy: () => ({ status: 'throttled' }),
  gone: () => ({ status: 'not_found' }),
  throws: () => {
    throw new Error('invoker bug');
  },
};

const calls: InvokeRequest[] = [];
const invoker: Invoker = {
  async invoke(req) {
    calls.push(req);
    const b = behaviours[req.fn.name];
    if (!b) throw new Error(`no behaviour for ${req.fn.name}`);
    const part = await b(req);
    return {
      requestId: req.requestId ?? 'none',
      project: req.fn.project,
      functionName: req.fn.name,
      version: '1',
      status: 'ok',
      durationMs: 1,
      cold: false,
      logs: '',
      ...part,
    };
  },
};

const route = (method: Route['method'], path: string, payload: Route['payload'] = '2.0') => ({
  method,
  path,
  payload,
});

let router = new Router([
  { functionName: 'echo', route: route('ANY', '/echo/{rest+}') },
  { functionName: 'hello', route: route('GET', '/hello') },
  { functionName: 'described', route: route('POST', '/described') },
  { functionName: 'binary', route: route('GET', '/binary') },
  { functionName: 'legacy', route: route('ANY', '/legacy/{id}', '1.0') },
  { functionName: 'legacyBad', route: route('GET', '/legacy-bad', '1.0') },
  { functionName: 'malformed', route: route('GET', '/malformed') },
  { functionName: 'badHeader', route: route('GET', '/bad-header') },
  { functionName: 'fails', route: route('GET', '/fails') },
  { functionName: 'crashes', route: route('GET', '/crashes') },
  { functionName: 'oom', route: route('GET', '/oom') },
  { functionName: 'slow', route: route('GET', '/slow') },
  { functionName: 'busy', route: route('GET', '/busy') },
  { functionName: 'gone', route: route('GET', '/gone') },
  { functionName: 'throws', route: route('GET', '/throws') },
]);

const warnings: { obj: object; msg: string }[] = [];
const MAX_BODY = 1024;
const server = createGateway({
  invoker,
  router: () => router,
  maxBodyBytes: MAX_BODY,
  apiId: 'testapi',
  logger: { warn: (obj, msg) => warnings.push({ obj, msg }) },
});
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let port = 0;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  agent.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  calls.length = 0;
  warnings.length = 0;
});

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: () => unknown;
  socketLocalPort: number | undefined;
}

function send(
  method: string,
  path: string,
  opts: { headers?: http.OutgoingHttpHeaders; body?: Buffer | string; chunks?: Buffer[] } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, headers: opts.headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: body.toString('utf8'),
            json: () => JSON.parse(body.toString('utf8')),
            socketLocalPort: res.socket?.localPort,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (opts.chunks) for (const c of opts.chunks) req.write(c);
    req.end(opts.body);
  });
}

// Request ids are time-ordered UUIDs (version 7), so the records they key are written in order.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function expectError(r: Reply, status: number, message: string): void {
  expect(r.status).toBe(status);
  expect(r.headers['content-type']).toBe('application/json');
  const id = r.headers['x-nimbus-request-id'];
  expect(id).toMatch(UUID);
  expect(r.json()).toStrictEqual({ message, requestId: id });
}

describe('gateway server', () => {
  it('maps an inferred 2.0 result to 200 application/json with a request id', async () => {
    const r = await send('GET', '/hello');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['content-length']).toBe(String('Hello from Lambda!'.length));
    expect(r.headers['x-nimbus-request-id']).toMatch(UUID);
    expect(r.text).toBe('Hello from Lambda!');
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      fn: { project: 'default', name: 'hello' },
      trigger: 'http',
      requestId: r.headers['x-nimbus-request-id'],
    });
  });

  it('sends a 2.0 event built from the real request', async () => {
    const r = await send('POST', '/echo/a%20b/c?x=1&x=2', {
      headers: { 'content-type': 'application/json', cookie: 'k=v; k2=v2', host: 'api.example.com:9999' },
      body: '{"hello":"world"}',
    });
    expect(r.status).toBe(200);
    const ev = r.json() as Record<string, unknown>;
    expect(ev).toMatchObject({
      version: '2.0',
      routeKey: 'ANY /echo/{rest+}',
      rawPath: '/echo/a%20b/c',
      rawQueryString: 'x=1&x=2',
      cookies: ['k=v', 'k2=v2'],
      queryStringParameters: { x: '1,2' },
      pathParameters: { rest: 'a b/c' },
      body: '{"hello":"world"}',
      isBase64Encoded: false,
      requestContext: {
        apiId: 'testapi',
        accountId: '000000000000',
        domainName: 'api.example.com',
        domainPrefix: 'api',
        requestId: r.headers['x-nimbus-request-id'],
        stage: '$default',
        http: { method: 'POST', path: '/echo/a%20b/c', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' },
      },
    });
    expect((ev['headers'] as Record<string, string>)['content-type']).toBe('application/json');
    expect(ev['headers']).not.toHaveProperty('cookie');
  });

  it('base64-encodes a binary request body and decodes a base64 response body', async () => {
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff]);
    const echoed = await send('PUT', '/echo/bin', {
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(echoed.json()).toMatchObject({ isBase64Encoded: true, body: bytes.toString('base64') });

    const r = await send('GET', '/binary');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.body).toEqual(Buffer.from([0x89, 0x50, 0x00, 0xff]));
  });

  it('applies statusCode, headers and cookies; the gateway request id wins over a forged one', async () => {
    const r = await send('POST', '/described', { body: 'x', headers: { 'content-type': 'text/plain' } });
    expect(r.status).toBe(201);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.headers['x-nimbus-request-id']).toMatch(UUID);
    expect(r.text).toBe('created');
  });

  it('sends a 1.0 event and maps a 1.0 result with multiValueHeaders', async () => {
    const r = await send('DELETE', '/legacy/42?a=1&a=2', { headers: { 'X-Custom': 'One' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-v']).toBe('1, 2');
    expect(r.json()).toMatchObject({
      version: '1.0',
      resource: '/legacy/{id}',
      path: '/legacy/42',
      httpMethod: 'DELETE',
      pathParameters: { id: '42' },
      queryStringParameters: { a: '2' },
      multiValueQueryStringParameters: { a: ['1', '2'] },
      headers: { 'X-Custom': 'One' },
      body: null,
      isBase64Encoded: false,
      requestContext: { resourcePath: '/legacy/{id}', httpMethod: 'DELETE', stage: '$default' },
    });
  });

  it('answers 404 for unknown routes without invoking anything', async () => {
    expectError(await send('GET', '/nowhere'), 404, 'Not Found');
    expectError(await send('POST', '/hello', { body: 'ignored' }), 404, 'Not Found');
    expectError(await send('GET', '/legacy/'), 404, 'Not Found');
    expect(calls).toHaveLength(0);
  });

  it('answers 404 when the function disappeared between routing and invoking', async () => {
    expectError(await send('GET', '/gone'), 404, 'Not Found');
  });

  it('answers 413 for a declared Content-Length over the limit, without invoking', async () => {
    const r = await send('POST', '/echo/x', { body: Buffer.alloc(MAX_BODY + 1, 97) });
    expectError(r, 413, 'Request Entity Too Large');
    expect(calls).toHaveLength(0);
    // The rest of the body was discarded, not left on the connection: it still serves the next request.
    const next = await send('GET', '/hello');
    expect(next.status).toBe(200);
    expect(next.socketLocalPort).toBe(r.socketLocalPort);
  });

  it('answers 413 for a chunked body that grows over the limit', async () => {
    const chunk = Buffer.alloc(400, 98);
    const r = await send('POST', '/echo/x', {
      chunks: [chunk, chunk, chunk, chunk],
      headers: { 'content-type': 'text/plain' },
    });
    expectError(r, 413, 'Request Entity Too Large');
    expect(calls).toHaveLength(0);
  });

  it('accepts a body of exactly the limit', async () => {
    const r = await send('POST', '/echo/x', {
      body: Buffer.alloc(MAX_BODY, 97),
      headers: { 'content-type': 'text/plain' },
    });
    expect(r.status).toBe(200);
    expect((r.json() as { body: string }).body).toHaveLength(MAX_BODY);
  });

  it('answers a huge declared body at once and closes the connection instead of reading it', async () => {
    const reply = await new Promise<{ status: number; connection: string | undefined; body: string }>(
      (resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/echo/x',
            headers: { 'content-length': String(64 * 1024 * 1024) },
            agent: false,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              resolve({
                status: res.statusCode ?? 0,
                connection: res.headers.connection,
                body: Buffer.concat(chunks).toString(),
              });
              req.destroy();
            });
          },
        );
        req.on('error', reject);
        req.write(Buffer.alloc(16, 99)); // only the start of the announced 64 MB
      },
    );
    expect(reply.status).toBe(413);
    expect(reply.connection).toBe('close');
    expect(JSON.parse(reply.body)).toMatchObject({ message: 'Request Entity Too Large' });
    expect(calls).toHaveLength(0);
  });

  it('answers 502 when the function fails, crashes or runs out of memory', async () => {
    expectError(await send('GET', '/fails'), 502, 'Internal Server Error');
    expectError(await send('GET', '/crashes'), 502, 'Internal Server Error');
    expectError(await send('GET', '/oom'), 502, 'Internal Server Error');
  });

  it('answers 502 and logs why when the result cannot be used as a response', async () => {
    expectError(await send('GET', '/malformed'), 502, 'Internal Server Error');
    expectError(await send('GET', '/legacy-bad'), 502, 'Internal Server Error');
    expectError(await send('GET', '/bad-header'), 502, 'Internal Server Error');
    expect(warnings.map((w) => w.obj)).toEqual([
      expect.objectContaining({ functionName: 'malformed', problem: expect.stringContaining('statusCode') }),
      expect.objectContaining({ functionName: 'legacyBad', problem: expect.stringContaining('statusCode') }),
      expect.objectContaining({ functionName: 'badHeader', problem: expect.stringContaining('x-bad') }),
    ]);
  });

  it('answers 504 on timeout and 429 when throttled', async () => {
    expectError(await send('GET', '/slow'), 504, 'Endpoint request timed out');
    expectError(await send('GET', '/busy'), 429, 'Too Many Requests');
  });

  it('answers 500 when the invoker itself throws, and keeps serving', async () => {
    expectError(await send('GET', '/throws'), 500, 'Internal Server Error');
    expect(warnings).toHaveLength(1);
    expect((await send('GET', '/hello')).status).toBe(200);
  });

  it('keeps connections alive across requests', async () => {
    const a = await send('GET', '/hello');
    const b = await send('GET', '/nowhere');
    const c = await send('GET', '/fails');
    expect(a.headers.connection).toBe('keep-alive');
    expect(new Set([a.socketLocalPort, b.socketLocalPort, c.socketLocalPort]).size).toBe(1);
  });

  it('gives every request its own id', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add(String((await send('GET', '/hello')).headers['x-nimbus-request-id']));
    expect(ids.size).toBe(5);
  });

  it('routes with whatever table the router getter returns at the time', async () => {
    const before = router;
    try {
      router = new Router([{ functionName: 'hello', route: route('GET', '/swapped') }]);
      expect((await send('GET', '/swapped')).status).toBe(200);
      expect((await send('GET', '/hello')).status).toBe(404);
    } finally {
      router = before;
    }
  });

  it('does not answer HEAD bodies but keeps the headers', async () => {
    const before = router;
    router = new Router([{ functionName: 'hello', route: route('HEAD', '/hello') }]);
    try {
      const r = await send('HEAD', '/hello');
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(0);
      expect(r.headers['x-nimbus-request-id']).toMatch(UUID);
    } finally {
      router = before;
    }
  });
});

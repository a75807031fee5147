// The API listener's dispatch on a real port: authentication, routing by SigV4 service, error faces and
// project scoping. The store, registry contents, invoker and deployer are small fakes behind the option
// types, since what is under test is which of them gets called, with what, and what the client sees.
import { request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { createApiServer, type ApiOptions } from '../src/api/server.js';
import { record as baseRecord } from '../src/store/conformance/harness.js';
import type { DeployResponse } from '../src/api/deploy.js';
import { FunctionRegistry } from '../src/invoker/registry.js';
import type { InvokeOutcome, InvokeRequest, ThrottleReason } from '../src/invoker/types.js';
import type {
  FunctionRef,
  FunctionStore,
  FunctionVersion,
  InvocationLog,
  InvocationQuery,
  Store,
  StoredInvocation,
} from '../src/store/types.js';
import { NO_QUOTA } from '../src/store/types.js';

const API_KEY = 'test-api-key-0123456789';

function version(project: string, name: string): FunctionVersion {
  return {
    project,
    name,
    service: 'svc',
    version: 1,
    config: {
      name,
      handler: 'index.handler',
      runtime: 'nodejs',
      memory: 128,
      timeout: 3,
      environment: {},
      reservedConcurrency: undefined,
      routes: [],
    },
    codeSha256: 'ab'.repeat(32),
    codeSize: 10,
    deployedAt: 1,
  };
}

function record(project: string, requestId: string, seq: number): StoredInvocation {
  const r = baseRecord({ project, requestId, functionName: 'hello', trigger: 'invoke', start: 1000 + seq });
  return { ...r, seq, durationMs: 1, billedMs: 1 };
}

/** Every call the fakes received, reset before each test. */
const calls = {
  invoke: [] as InvokeRequest[],
  enqueue: [] as { ref: FunctionRef; payload: string }[],
  deploy: [] as { size: number; project: string }[],
  query: [] as InvocationQuery[],
  remove: [] as FunctionRef[],
  errors: [] as { obj: object; msg: string }[],
};
let throttle: ThrottleReason | undefined;
let deployFails: Error | undefined;

const fns = [version('default', 'hello'), version('other', 'secret'), version('default', 'boom')];
const records = [record('default', 'mine', 1), record('other', 'theirs', 2)];

const functions: FunctionStore = {
  deploy: () => Promise.reject(new Error('the API deploys through the deployer')),
  getFunction: async (ref) => fns.find((f) => f.project === ref.project && f.name === ref.name),
  getVersion: async () => undefined,
  listFunctions: async (project) => fns.filter((f) => project === undefined || f.project === project),
  removeFunction: async (ref) => {
    calls.remove.push(ref);
    return fns.some((f) => f.project === ref.project && f.name === ref.name);
  },
  getCode: async () => undefined,
  pruneVersions: async () => [],
  setAsyncConfig: async () => false,
  listAsyncConfigs: async () => [],
};

const invocations: InvocationLog = {
  write: () => {},
  query: async (q) => {
    calls.query.push(q);
    return records.filter((r) => q.project === undefined || r.project === q.project);
  },
  get: async (id) => records.find((r) => r.requestId === id),
  flush: async () => {},
  usage: async () => [],
  oldestStart: async () => null,
  stats: async () => [],
  prune: async () => 0,
};

/** The parts of the store the API must not touch. */
function unused<T extends object>(part: string): T {
  return new Proxy({} as T, {
    get: (_, prop) => () => {
      throw new Error(`the API called store.${part}.${String(prop)}`);
    },
  });
}

const store: Store = {
  backend: 'sqlite',
  location: ':memory:',
  functions,
  invocations,
  spans: unused('spans'),
  events: { ...unused('events'), stats: async () => [] } as Store['events'],
  projects: unused('projects'),
  quotas: {
    ...unused('quotas'),
    get: async (project: string) => ({ project, quota: NO_QUOTA, storageBytes: 0 }),
  } as Store['quotas'],
  apiKeys: unused('apiKeys'),
  sessions: unused('sessions'),
  gatewayKeys: unused('gatewayKeys'),
  audit: unused('audit'),
  nodes: unused('nodes'),
  queues: unused('queues'),
  tables: unused('tables'),
  credentials: unused('credentials'),
  secrets: unused('secrets'),
  objects: unused('objects'),
  usage: unused('usage'),
  schedules: { ...unused('schedules'), list: async () => [] } as Store['schedules'],
  close: async () => {},
};

function outcome(req: InvokeRequest): InvokeOutcome {
  const base = {
    requestId: req.requestId ?? 'generated',
    project: req.fn.project,
    functionName: req.fn.name,
    version: '1',
    durationMs: 1.5,
    cold: false,
    logs: 'a log line\n',
  };
  if (throttle) return { ...base, status: 'throttled', throttleReason: throttle };
  if (req.fn.name === 'boom') throw new Error('secret internal detail');
  return { ...base, status: 'ok', payload: JSON.stringify({ got: req.event }) };
}

let server: Server;
let url = '';
let host = '';

beforeAll(async () => {
  const registry = new FunctionRegistry(functions);
  await registry.load();
  const options: ApiOptions = {
    apiKey: API_KEY,
    store,
    registry,
    invoker: {
      invoke: async (req) => {
        calls.invoke.push(req);
        return outcome(req);
      },
      stats: () => [],
      policyName: () => 'fixed 600s',
    },
    events: {
      enqueue: async (ref, payload) => {
        calls.enqueue.push({ ref, payload });
        return 'event-id';
      },
      replay: async () => 'not_found' as const,
      setAsyncOverride: () => {},
    },
    deployer: {
      deploy: async (archive, project): Promise<DeployResponse> => {
        calls.deploy.push({ size: archive.length, project });
        if (deployFails) throw deployFails;
        return {
          service: 'svc',
          functions: [],
          removed: [],
          queues: { created: [], updated: [], unchanged: [], removed: [] },
          warnings: [],
          tables: { created: [], updated: [], unchanged: [] },
          buckets: { created: [], unchanged: [] },
        };
      },
    },
    status: () => ({ sandbox: 'fake' }),
    stemCells: () => [],
    region: 'us-east-1',
    accountId: '000000000000',
    logger: { error: (obj, msg) => calls.errors.push({ obj, msg }) },
  };
  server = createApiServer(options);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  url = `http://${host}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  for (const list of Object.values(calls)) list.length = 0;
  throttle = undefined;
  deployFails = undefined;
});

const bearer = { authorization: `Bearer ${API_KEY}` };

async function call(
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(url + path, { method, headers: opts.headers, body: opts.body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : {} };
}

function signer(service: string, secretAccessKey = API_KEY): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: 'nimbus', secretAccessKey },
    region: 'us-east-1',
    service,
    sha256: Sha256,
  });
}

/** Sends a request signed like an AWS SDK would sign it. */
async function signedCall(
  s: SignatureV4,
  method: string,
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const req = new HttpRequest({
    method,
    protocol: 'http:',
    hostname: '127.0.0.1',
    path,
    headers: { host, 'content-type': 'application/json', ...headers },
    body,
  });
  const signed = (await s.sign(req)) as HttpRequest;
  const { host: _host, ...sent } = signed.headers;
  return call(method, path, { headers: sent, ...(body === '' ? {} : { body }) });
}

describe('bearer authentication', () => {
  it('accepts the API key and answers in the caller’s project', async () => {
    const r = await call('GET', '/v1/functions', { headers: bearer });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-nimbus-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect((r.json['functions'] as { name: string }[]).map((f) => f.name)).toEqual(['hello', 'boom']);
    expect((r.json['functions'] as unknown[])[0]).toMatchObject({
      scaling: { busy: 0, keepAlive: 'fixed 600s' },
    });
  });

  it('answers 401 for a wrong key and for none, in the control format', async () => {
    const wrong = await call('GET', '/v1/functions', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toEqual({
      error: {
        code: 'Unauthorized',
        message: 'the API key is wrong, revoked or rotated',
        hint: 'use the key in <data dir>/api-key, or a project key from `nimbus key create`',
      },
      requestId: wrong.headers.get('x-nimbus-request-id'),
    });
    const none = await call('DELETE', '/v1/functions/hello');
    expect(none.status).toBe(401);
    expect(none.json).toMatchObject({
      error: { code: 'Unauthorized', message: 'this request has no API key' },
    });
    expect(calls.remove).toEqual([]);
  });

  it('refuses a deploy without the key before its body has arrived', async () => {
    // Announce 200 MB, send 1 KB and keep the upload open: the answer must not wait for the rest.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${url}/v1/deploy`, {
        method: 'POST',
        headers: { 'content-length': String(200 * 1024 * 1024), authorization: 'Bearer wrong' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      // Were the body awaited, the answer would never come; the test then fails on its timeout.
      onTestFinished(() => void req.destroy());
      req.write(Buffer.alloc(1024));
    });
    expect(status).toBe(401);
    expect(calls.deploy).toEqual([]);
  });

  it('passes the principal’s project to the deployer and the store', async () => {
    const d = await call('POST', '/v1/deploy', { headers: bearer, body: 'archive' });
    expect(d.status).toBe(200);
    expect(calls.deploy).toEqual([{ size: 7, project: 'default' }]);
    expect((await call('DELETE', '/v1/functions/hello', { headers: bearer })).json).toEqual({
      removed: 'hello',
    });
    expect(calls.remove).toEqual([{ project: 'default', name: 'hello' }]);
    // A function of another project is not there for this caller.
    const theirs = await call('DELETE', '/v1/functions/secret', { headers: bearer });
    expect(theirs.status).toBe(404);
    expect(theirs.json).toMatchObject({ error: { code: 'ResourceNotFoundException' } });
  });

  it('maps a project missing at deploy time to 404', async () => {
    deployFails = Object.assign(new Error('project "default" does not exist'), { code: 'ProjectNotFound' });
    const r = await call('POST', '/v1/deploy', { headers: bearer, body: 'archive' });
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ error: { code: 'ProjectNotFound' } });
  });
});

describe('routing', () => {
  it('answers 404 for an unknown path and 405 with Allow for a known path with another method', async () => {
    const none = await call('GET', '/v1/nope', { headers: bearer });
    expect(none.status).toBe(404);
    expect(none.json).toMatchObject({
      error: {
        code: 'NotFound',
        message: 'no API route GET /v1/nope',
        hint: 'see docs/api.md for the routes',
      },
    });
    const wrongMethod = await call('GET', '/v1/deploy', { headers: bearer });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST');
    expect(wrongMethod.headers.get('content-type')).toBe('application/json');
    expect(wrongMethod.json).toMatchObject({ error: { code: 'MethodNotAllowed' } });
    const fn = await call('PUT', '/v1/functions/hello', { headers: bearer });
    expect(fn.status).toBe(405);
    expect(fn.headers.get('allow')).toBe('DELETE, GET');
  });

  it('answers 405 on the Invoke path in Lambda’s format', async () => {
    const r = await call('GET', '/2015-03-31/functions/hello/invocations', { headers: bearer });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
    expect(r.headers.get('x-amzn-errortype')).toBe('MethodNotAllowedException');
    expect(r.json).toMatchObject({ Type: 'User' });
  });

  it('answers 400 JSON for malformed percent-encoding in a path parameter', async () => {
    const r = await call('GET', '/v1/functions/%E0%A4%A', { headers: bearer });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: { code: 'BadRequest' } });
  });

  it('answers a request target that is no URL with 400 instead of crashing', async () => {
    const head = await new Promise<string>((resolve, reject) => {
      const c = connect(Number(host.split(':')[1]), '127.0.0.1', () =>
        c.write(`GET //[ HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${API_KEY}\r\n\r\n`),
      );
      c.on('data', (d) => {
        resolve(String(d));
        c.destroy();
      });
      c.on('error', reject);
    });
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(head).toContain('"code":"BadRequest"');
    expect((await call('GET', '/v1/health', { headers: bearer })).status).toBe(200);
  });

  it('hides records of another project on /v1/invocations and /v1/invocations/{id}', async () => {
    const mine = await call('GET', '/v1/invocations/mine', { headers: bearer });
    expect(mine.status).toBe(200);
    expect(mine.json).toMatchObject({ requestId: 'mine', project: 'default' });
    const theirs = await call('GET', '/v1/invocations/theirs', { headers: bearer });
    expect(theirs.status).toBe(404);
    expect(theirs.json).toMatchObject({
      error: { code: 'NotFound', message: 'invocation theirs not found' },
    });
    const list = await call('GET', '/v1/invocations?limit=5', { headers: bearer });
    expect((list.json['invocations'] as { requestId: string }[]).map((r) => r.requestId)).toEqual(['mine']);
    expect(calls.query).toEqual([{ project: 'default', limit: 5, ascending: false }]);
  });

  it('keeps the logs view to its documented fields: the attempt, not the project', async () => {
    const r = await call('GET', '/v1/functions/hello/logs', { headers: bearer });
    expect(r.status).toBe(200);
    const [rec] = r.json['records'] as Record<string, unknown>[];
    expect(rec).not.toHaveProperty('project');
    expect(rec).toHaveProperty('attempt');
    expect(r.json['cursor']).toBe(1);
    expect(calls.query).toEqual([
      { project: 'default', functionName: 'hello', ascending: true, limit: 1000 },
    ]);
  });

  it('turns an unexpected error into a logged 500 without its message or stack', async () => {
    const r = await call('POST', '/2015-03-31/functions/boom/invocations', { headers: bearer, body: '{}' });
    expect(r.status).toBe(500);
    expect(r.headers.get('x-amzn-errortype')).toBe('InternalError');
    expect(r.json).toEqual({
      Type: 'Service',
      message: 'Nimbus hit an internal error; the request changed nothing',
    });
    expect(calls.errors).toEqual([
      {
        obj: { err: expect.any(Error), requestId: r.headers.get('x-amzn-requestid') },
        msg: 'api request failed',
      },
    ]);
    deployFails = new Error('disk on fire');
    const d = await call('POST', '/v1/deploy', { headers: bearer, body: 'archive' });
    expect(d.status).toBe(500);
    expect(d.json).toEqual({
      error: { code: 'InternalError', message: 'Nimbus hit an internal error; the request changed nothing' },
      requestId: d.headers.get('x-nimbus-request-id'),
    });
  });
});

describe('the Lambda API', () => {
  it('invokes through @aws-sdk/client-lambda (SigV4) in the principal’s project', async () => {
    const lambda = new LambdaClient({
      endpoint: url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: API_KEY },
      maxAttempts: 1,
    });
    try {
      const out = await lambda.send(
        new InvokeCommand({ FunctionName: 'hello', Payload: Buffer.from('{"a":1}'), LogType: 'Tail' }),
      );
      expect(out.StatusCode).toBe(200);
      expect(JSON.parse(Buffer.from(out.Payload!).toString())).toEqual({ got: { a: 1 } });
      expect(out.ExecutedVersion).toBe('1');
      expect(Buffer.from(out.LogResult!, 'base64').toString()).toContain('a log line');
      expect(calls.invoke).toHaveLength(1);
      expect(calls.invoke[0]).toMatchObject({ fn: { project: 'default', name: 'hello' }, trigger: 'invoke' });
      expect(calls.invoke[0]!.requestId).toBe(out.$metadata.requestId);
      // "secret" exists, but in another project.
      await expect(lambda.send(new InvokeCommand({ FunctionName: 'secret' }))).rejects.toMatchObject({
        name: 'ResourceNotFoundException',
        $metadata: { httpStatusCode: 404 },
      });
      const ev = await lambda.send(
        new InvokeCommand({ FunctionName: 'hello', InvocationType: 'Event', Payload: Buffer.from('{}') }),
      );
      expect(ev.StatusCode).toBe(202);
      expect(calls.enqueue).toEqual([{ ref: { project: 'default', name: 'hello' }, payload: '{}' }]);
    } finally {
      lambda.destroy();
    }
  });

  it('answers a wrong secret with 403 in Lambda’s format, invoking nothing', async () => {
    const r = await signedCall(
      signer('lambda', 'wrong'),
      'POST',
      '/2015-03-31/functions/hello/invocations',
      '{}',
    );
    expect(r.status).toBe(403);
    expect(r.headers.get('x-amzn-errortype')).toBe('InvalidSignatureException');
    expect(r.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.json).toEqual({ Type: 'User', message: expect.stringContaining('signature') });
    expect(calls.invoke).toEqual([]);
  });

  it('answers a service it does not serve with 400 naming it and the supported ones', async () => {
    const r = await signedCall(signer('dynamodb'), 'POST', '/', '{}', {
      'x-amz-target': 'DynamoDB_20120810.ListTables',
      'content-type': 'application/x-amz-json-1.0',
    });
    expect(r.status).toBe(400);
    expect(r.headers.get('x-amzn-errortype')).toBe('UnknownServiceException');
    expect(r.json['__type']).toBe('UnknownServiceException');
    expect(r.json['message']).toMatch(/"dynamodb".*lambda/);
  });

  it('refuses SigV4 on the control API, whatever the service', async () => {
    const r = await signedCall(signer('lambda'), 'GET', '/v1/functions', '');
    expect(r.status).toBe(401);
    expect(r.json).toMatchObject({
      error: { code: 'Unauthorized', message: 'SigV4 is accepted on the Lambda API only' },
    });
  });

  it('takes the bearer key on the Invoke path, answering errors in Lambda’s format', async () => {
    const ok = await call('POST', '/2015-03-31/functions/hello/invocations', {
      headers: bearer,
      body: '{"b":2}',
    });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ got: { b: 2 } });
    const none = await call('POST', '/2015-03-31/functions/hello/invocations', { body: '{}' });
    expect(none.status).toBe(401);
    expect(none.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
    expect(none.json).toEqual({ Type: 'User', message: 'this request has no API key' });
    const missing = await call('POST', '/2015-03-31/functions/nosuch/invocations', { headers: bearer });
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({
      Type: 'User',
      message: 'Function not found: arn:aws:lambda:us-east-1:000000000000:function:nosuch',
    });
  });

  it.each([
    [
      'ReservedFunctionConcurrentInvocationLimitExceeded',
      'ReservedFunctionConcurrentInvocationLimitExceeded',
    ],
    ['ConcurrentInvocationLimitExceeded', 'ConcurrentInvocationLimitExceeded'],
    ['MemoryBudgetExceeded', 'ConcurrentInvocationLimitExceeded'],
    ['ScaleOutRateExceeded', 'ConcurrentInvocationLimitExceeded'],
    ['FunctionNotRegistered', 'ConcurrentInvocationLimitExceeded'],
  ] as const)('answers a throttle for %s with 429 Reason %s', async (reason, expected) => {
    throttle = reason;
    const r = await call('POST', '/2015-03-31/functions/hello/invocations', { headers: bearer, body: '{}' });
    expect(r.status).toBe(429);
    expect(r.headers.get('x-amzn-errortype')).toBe('TooManyRequestsException');
    expect(r.json).toEqual({ Type: 'User', message: 'Rate Exceeded.', Reason: expected });
  });

  it('refuses payloads over the invocation type’s limit', async () => {
    const r = await call('POST', '/2015-03-31/functions/hello/invocations', {
      headers: { ...bearer, 'x-amz-invocation-type': 'Event' },
      body: JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }),
    });
    expect(r.status).toBe(413);
    expect(r.json).toMatchObject({
      message: 'Request must be smaller than 1048576 bytes for the Event invocation type',
    });
    const huge = await call('POST', '/2015-03-31/functions/hello/invocations', {
      headers: bearer,
      body: 'x'.repeat(7 * 1024 * 1024),
    });
    expect(huge.status).toBe(413);
    expect(huge.headers.get('x-amzn-errortype')).toBe('RequestTooLargeException');
    expect(huge.json).toMatchObject({ message: 'Request must be smaller than 6291456 bytes' });
  });
});

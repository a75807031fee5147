// Who a request authenticates as: the admin key (API key), keys issued through the control API, function
// keys; what an unknown, removed or wrongly signed key gets; and what each may do on the Lambda API and the
// control API. Signed by the AWS SDK's own signer and client, against a real API listener whose store,
// registry and invoker are small fakes.
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  apiKeyCredentials,
  authenticateSigV4,
  canUseTable,
  issuedKeyLookup,
  type Principal,
} from '../src/api/auth.js';
import { ApiError } from '../src/api/errors.js';
import { createApiServer, type ApiOptions } from '../src/api/server.js';
import type { SigV4Request } from '../src/api/sigv4.js';
import { ManualClock } from '../src/clock/clock.js';
import type { FunctionRegistry } from '../src/invoker/registry.js';
import {
  ACCESS_KEY_ID,
  AccessKeys,
  newAccessKeyId,
  newSecretAccessKey,
} from '../src/security/access-keys.js';
import { SecretBox } from '../src/security/secrets.js';
import type { FunctionVersion, Store } from '../src/store/types.js';
import { MemoryCredentials } from './support/memory-credentials.js';

const API_KEY = 'test-api-key-0123456789';
const secrets = new SecretBox(randomBytes(32));

function signer(accessKeyId: string, secretAccessKey: string, service = 'dynamodb'): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId, secretAccessKey },
    region: 'us-east-1',
    service,
    sha256: Sha256,
  });
}

/** A DynamoDB-shaped request as the server receives it after the SDK's signer signed it. */
async function signed(accessKeyId: string, secret: string, at: number, body = '{}'): Promise<SigV4Request> {
  const req = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: 8081,
    path: '/',
    headers: {
      host: '127.0.0.1:8081',
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': 'DynamoDB_20120810.ListTables',
    },
    body,
  });
  const s = (await signer(accessKeyId, secret).sign(req, { signingDate: new Date(at) })) as HttpRequest;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.headers)) headers[k.toLowerCase()] = v;
  return { method: 'POST', path: '/', rawQuery: '', headers, body: Buffer.from(body) };
}

async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  const e = err as ApiError;
  return { status: e.status, code: e.code };
}

describe('access key ids and secrets', () => {
  it('look like AWS keys: 20-character ids of base32, 40-character secrets', () => {
    const ids = new Set(Array.from({ length: 200 }, () => newAccessKeyId()));
    expect(ids.size).toBe(200);
    for (const id of ids) expect(id).toMatch(ACCESS_KEY_ID);
    expect([...ids][0]).toHaveLength(20);
    expect(newSecretAccessKey()).toMatch(/^[A-Za-z0-9+/]{40}$/);
  });
});

describe('authenticateSigV4 with issued keys', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  let store: MemoryCredentials;
  let keys: AccessKeys;
  let creds: ReturnType<typeof apiKeyCredentials>;

  beforeEach(() => {
    store = new MemoryCredentials(() => clock.now());
    keys = new AccessKeys({ store, secrets, clock, cacheMs: 10_000 });
    creds = apiKeyCredentials(API_KEY, issuedKeyLookup(keys));
  });

  const auth = async (id: string, secret: string): Promise<Principal> =>
    authenticateSigV4(creds, await signed(id, secret, clock.now()), clock.now());

  it('takes the admin key ("nimbus" and the API key) without asking the store', async () => {
    expect(await auth('nimbus', API_KEY)).toEqual({
      project: 'default',
      keyId: 'nimbus',
      role: 'admin',
      permissions: null,
    });
    expect(store.calls).toBe(0);
  });

  it('takes an issued key, as a user of its project with its permissions; the store holds no clear secret', async () => {
    const k = await keys.create({
      project: 'default',
      name: 'ci',
      kind: 'user',
      functionName: null,
      permissions: { tables: ['items'] },
    });
    const row = store.rows.get(k.credential.accessKeyId)!;
    expect(JSON.stringify(row)).not.toContain(k.secretAccessKey);
    const p = await auth(k.credential.accessKeyId, k.secretAccessKey);
    expect(p).toEqual({
      project: 'default',
      keyId: k.credential.accessKeyId,
      role: 'user',
      permissions: { tables: ['items'] },
    });
    expect(canUseTable(p, 'items')).toBe(true);
    expect(canUseTable(p, 'orders')).toBe(false);
    expect(canUseTable({ ...p, permissions: null }, 'orders')).toBe(true);
    expect(canUseTable({ ...p, permissions: { tables: [] } }, 'items')).toBe(false);
  });

  it('takes a function key as the function role', async () => {
    const k = await keys.create({
      project: 'p2',
      name: 'function:orders',
      kind: 'function',
      functionName: 'orders',
      permissions: { tables: [] },
    });
    expect(await auth(k.credential.accessKeyId, k.secretAccessKey)).toMatchObject({
      project: 'p2',
      role: 'function',
      permissions: { tables: [] },
    });
  });

  it('refuses a wrong secret with InvalidSignatureException, an unknown id with UnrecognizedClientException', async () => {
    const k = await keys.create({
      project: 'default',
      name: 'ci',
      kind: 'user',
      functionName: null,
      permissions: null,
    });
    expect(await refusal(auth(k.credential.accessKeyId, newSecretAccessKey()))).toEqual({
      status: 403,
      code: 'InvalidSignatureException',
    });
    expect(await refusal(auth('nimbus', 'not-the-api-key'))).toEqual({
      status: 403,
      code: 'InvalidSignatureException',
    });
    expect(await refusal(auth(newAccessKeyId(), k.secretAccessKey))).toEqual({
      status: 403,
      code: 'UnrecognizedClientException',
    });
    // Not of Nimbus's shape: not even looked up.
    const before = store.calls;
    expect(await refusal(auth('AKIAIOSFODNN7EXAMPLE', k.secretAccessKey))).toEqual({
      status: 403,
      code: 'UnrecognizedClientException',
    });
    expect(store.calls).toBe(before);
  });

  it('refuses a removed key at once, though it was cached', async () => {
    const k = await keys.create({
      project: 'default',
      name: 'ci',
      kind: 'user',
      functionName: null,
      permissions: null,
    });
    const id = k.credential.accessKeyId;
    await auth(id, k.secretAccessKey);
    await auth(id, k.secretAccessKey);
    expect(await keys.remove('default', id)).toBe(true);
    expect(await refusal(auth(id, k.secretAccessKey))).toEqual({
      status: 403,
      code: 'UnrecognizedClientException',
    });
  });

  it('caches decrypted keys briefly: a removal by another node shows within the cache time', async () => {
    const k = await keys.create({
      project: 'default',
      name: 'ci',
      kind: 'user',
      functionName: null,
      permissions: null,
    });
    const id = k.credential.accessKeyId;
    await auth(id, k.secretAccessKey);
    const reads = store.calls;
    await auth(id, k.secretAccessKey);
    expect(store.calls).toBe(reads);
    // Another node removes it: this one still takes it until its cached copy is 10 s old.
    await store.remove('default', id);
    await auth(id, k.secretAccessKey);
    clock.advance(10_001);
    expect(await refusal(auth(id, k.secretAccessKey))).toMatchObject({ code: 'UnrecognizedClientException' });
  });

  it('treats a key whose secret does not decrypt (another master key) as unknown, and says why in the log', async () => {
    const errors: string[] = [];
    const k = await keys.create({
      project: 'default',
      name: 'ci',
      kind: 'user',
      functionName: null,
      permissions: null,
    });
    const other = new AccessKeys({
      store,
      secrets: new SecretBox(randomBytes(32)),
      clock,
      onError: (err) => errors.push(String(err)),
    });
    const otherCreds = apiKeyCredentials(API_KEY, issuedKeyLookup(other));
    const req = await signed(k.credential.accessKeyId, k.secretAccessKey, clock.now());
    expect(await refusal(authenticateSigV4(otherCreds, req, clock.now()))).toMatchObject({
      code: 'UnrecognizedClientException',
    });
    expect(errors.join('\n')).toMatch(/does not decrypt with this node's master key.*NIMBUS_MASTER_KEY/);
  });
});

describe('the API listener with issued keys', () => {
  let server: Server;
  let url = '';
  let store: MemoryCredentials;
  let keys: AccessKeys;
  const invoked: string[] = [];

  const fv: FunctionVersion = {
    project: 'default',
    name: 'hello',
    service: 'svc',
    version: 1,
    config: {
      name: 'hello',
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

  beforeAll(async () => {
    store = new MemoryCredentials();
    keys = new AccessKeys({ store, secrets });
    const registry = {
      get: (ref: { project: string; name: string }) =>
        ref.project === fv.project && ref.name === fv.name ? fv : undefined,
      all: () => [fv],
      load: async () => {},
    } as unknown as FunctionRegistry;
    const options: ApiOptions = {
      apiKey: API_KEY,
      store: { credentials: store } as unknown as Store,
      registry,
      invoker: {
        invoke: async (req) => {
          invoked.push(req.fn.name);
          return {
            requestId: req.requestId ?? 'r',
            project: req.fn.project,
            functionName: req.fn.name,
            version: '1',
            status: 'ok',
            payload: '"hi"',
            durationMs: 1,
            cold: false,
            logs: '',
          };
        },
        stats: () => [],
        policyName: () => 'fixed',
      },
      events: {
        enqueue: async () => 'e',
        replay: async () => 'not_found' as const,
        setAsyncOverride: () => {},
      },
      deployer: { deploy: () => Promise.reject(new Error('no deploys here')) },
      status: () => ({}),
      stemCells: () => [],
      region: 'us-east-1',
      accountId: '000000000000',
      accessKeys: keys,
    };
    server = createApiServer(options);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  function lambda(accessKeyId: string, secretAccessKey: string): LambdaClient {
    return new LambdaClient({
      endpoint: url,
      region: 'us-east-1',
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 1,
    });
  }

  async function invokeAs(accessKeyId: string, secretAccessKey: string): Promise<string> {
    const c = lambda(accessKeyId, secretAccessKey);
    try {
      const out = await c.send(
        new InvokeCommand({ FunctionName: 'hello', Payload: new TextEncoder().encode('{}') }),
      );
      return new TextDecoder().decode(out.Payload);
    } catch (err) {
      const e = err as { name: string; $metadata?: { httpStatusCode?: number }; message: string };
      return `${e.$metadata?.httpStatusCode} ${e.name}: ${e.message}`;
    }
  }

  async function control(
    method: string,
    path: string,
    body?: unknown,
    authorization = `Bearer ${API_KEY}`,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(url + path, {
      method,
      headers: { authorization, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  it('issues, lists (without secrets) and removes keys through /v1/credentials', async () => {
    const created = await control('POST', '/v1/credentials', {
      name: 'ci',
      tables: ['orders', 'items', 'items'],
    });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({
      name: 'ci',
      kind: 'user',
      functionName: null,
      permissions: { tables: ['items', 'orders'] },
    });
    const id = created.json['accessKeyId'] as string;
    const secret = created.json['secretAccessKey'] as string;
    expect(id).toMatch(ACCESS_KEY_ID);
    expect(secret).toHaveLength(40);

    const listed = await control('GET', '/v1/credentials');
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.json)).not.toContain(secret);
    expect(listed.json['credentials']).toEqual([
      expect.objectContaining({ accessKeyId: id, name: 'ci', permissions: { tables: ['items', 'orders'] } }),
    ]);

    expect(await invokeAs(id, secret)).toBe('"hi"');

    expect(await control('DELETE', `/v1/credentials/${id}`)).toEqual({ status: 200, json: { removed: id } });
    expect(await invokeAs(id, secret)).toMatch(
      /^403 UnrecognizedClientException: The security token included/,
    );
    expect((await control('DELETE', `/v1/credentials/${id}`)).status).toBe(404);
  });

  it('refuses bad input to POST /v1/credentials, and removing the admin key or a function key', async () => {
    expect((await control('POST', '/v1/credentials', { tables: ['items'] })).status).toBe(400);
    expect((await control('POST', '/v1/credentials', { name: 'x', tables: 'items' })).status).toBe(400);
    expect((await control('POST', '/v1/credentials', { name: 'x', tables: ['a'] })).status).toBe(400);
    expect((await control('POST', '/v1/credentials', { name: 'function:x' })).status).toBe(400);
    expect((await control('POST', '/v1/credentials', { name: 'x', extra: 1 })).status).toBe(400);
    expect((await control('DELETE', '/v1/credentials/nimbus')).status).toBe(400);
    const fk = await keys.create({
      project: 'default',
      name: 'function:hello',
      kind: 'function',
      functionName: 'hello',
      permissions: { tables: [] },
    });
    const r = await control('DELETE', `/v1/credentials/${fk.credential.accessKeyId}`);
    expect(r.status).toBe(409);
    expect(r.json['error']).toMatchObject({ code: 'FunctionKey' });
    await store.remove('default', fk.credential.accessKeyId);
  });

  it('accepts the bearer API key only: an issued secret is no bearer token, and nothing signs /v1', async () => {
    const k = await control('POST', '/v1/credentials', { name: 'bearer-test' });
    const secret = k.json['secretAccessKey'] as string;
    const r = await control('GET', '/v1/credentials', undefined, `Bearer ${secret}`);
    expect(r.status).toBe(401);
    await control('DELETE', `/v1/credentials/${k.json['accessKeyId'] as string}`);
  });

  it('lets admin and user keys use the Lambda API, and answers a function key AccessDeniedException', async () => {
    invoked.length = 0;
    expect(await invokeAs('nimbus', API_KEY)).toBe('"hi"');
    const user = await keys.create({
      project: 'default',
      name: 'u',
      kind: 'user',
      functionName: null,
      permissions: { tables: [] },
    });
    expect(await invokeAs(user.credential.accessKeyId, user.secretAccessKey)).toBe('"hi"');
    const fk = await keys.create({
      project: 'default',
      name: 'function:hello',
      kind: 'function',
      functionName: 'hello',
      permissions: { tables: ['items'] },
    });
    expect(await invokeAs(fk.credential.accessKeyId, fk.secretAccessKey)).toMatch(
      /^403 AccessDeniedException: User: NIMB\w+ is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:000000000000:function:hello/,
    );
    expect(invoked).toEqual(['hello', 'hello']);
    // A wrong secret for a function key is still a signature failure, not a refusal of what it may do.
    expect(await invokeAs(fk.credential.accessKeyId, newSecretAccessKey())).toMatch(
      /^403 InvalidSignatureException/,
    );
    await store.remove('default', fk.credential.accessKeyId);
  });
});

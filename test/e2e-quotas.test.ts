// Per-project quotas end to end, on each backend: the operator sets them with `nimbus project quota`, a tenant's
// key cannot; past a concurrency or memory quota invocations are throttled in Lambda's and API Gateway's words
// naming the quota, while another project keeps running; past a storage quota S3, DynamoDB and SQS writes are
// refused in each service's words and nothing is written; deletes free usage; raising or clearing a quota lets
// work through again. Invocations hold on a local HTTP server until the test releases them, so the overlap is
// the test's to decide, never a matter of timing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  CreateTableCommand,
  DeleteItemCommand,
  DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { NimbusClient } from '../src/client/index.js';
import { sigV4CredentialsOf } from '../src/security/api-keys.js';
import {
  BACKENDS,
  HOST_OUTSIDE,
  eventually,
  runNimbus,
  startTestNimbus,
  type TestNimbus,
} from './helpers.js';

const HANDLER = `export const hold = async (e) => {
  const r = await fetch(e.url ?? e.queryStringParameters.url);
  return { released: await r.text() };
};
`;

/** Parks every request until release(): a held invocation is one that is running. */
class Holds {
  private parked: ServerResponse[] = [];
  arrived = 0;
  private server: Server = createServer((_, res) => {
    this.arrived++;
    this.parked.push(res);
  });
  url = '';
  async start(): Promise<void> {
    // Sandboxes have their own network namespace: they reach the host on its outside address, not loopback.
    const host = HOST_OUTSIDE ?? '127.0.0.1';
    await new Promise<void>((r) => this.server.listen(0, host, r));
    this.url = `http://${host}:${(this.server.address() as AddressInfo).port}/hold`;
  }
  get held(): number {
    return this.parked.length;
  }
  release(): void {
    for (const res of this.parked.splice(0)) res.end('ok');
  }
  async stop(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

function service(name: string, functions: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-quotas-'));
  writeFileSync(join(dir, 'nimbus.yaml'), `service: ${name}\nfunctions:\n${functions}`);
  writeFileSync(join(dir, 'handler.js'), HANDLER);
  return dir;
}

describe.each(BACKENDS)('project quotas on %s', (backend) => {
  let n: TestNimbus;
  let qKey: string;
  const holds = new Holds();
  const dirs: string[] = [];

  const as = (key: string, args: string[]) =>
    runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: key }, args);
  const operator = (args: string[]) => as(n.apiKey, args);
  const api = (key: string, method: string, path: string, body?: unknown) =>
    fetch(n.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const creds = (key: string) => sigV4CredentialsOf(key) ?? { accessKeyId: 'nimbus', secretAccessKey: key };
  const aws = (key: string) => ({
    endpoint: n.apiUrl,
    region: 'us-east-1',
    credentials: creds(key),
    maxAttempts: 1,
  });
  const quota = async (project: string) =>
    (await (await api(n.apiKey, 'GET', `/v1/projects/${project}/quota`)).json()) as {
      quota: { concurrency: number | null; memoryMB: number | null; storageBytes: number | null };
      usage: { concurrency: number; memoryMB: number; storageBytes: number };
    };
  const setQuota = async (args: string[]) => {
    const r = await operator(['project', 'quota', 'team-q', ...args]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return r;
  };

  /** A held invocation through the Lambda API: resolves to its outcome once released (or refused). */
  function invoke(key: string, fn: string, type: 'RequestResponse' | 'Event' = 'RequestResponse') {
    const client = new LambdaClient(aws(key));
    return client
      .send(
        new InvokeCommand({
          FunctionName: fn,
          InvocationType: type,
          Payload: Buffer.from(JSON.stringify({ url: holds.url })),
        }),
      )
      .then(
        (r) => ({
          status: r.StatusCode,
          error: undefined as undefined | { name: string; message: string; Reason?: string },
        }),
        (e: { name: string; message: string; Reason?: string; $metadata?: { httpStatusCode?: number } }) => ({
          status: e.$metadata?.httpStatusCode,
          error: { name: e.name, message: e.message, ...(e.Reason ? { Reason: e.Reason } : {}) },
        }),
      )
      .finally(() => client.destroy());
  }

  beforeAll(async () => {
    await holds.start();
    n = await startTestNimbus({ backend, queueing: false });
    const created = await operator(['project', 'create', 'team-q']);
    expect(created.code).toBe(0);
    qKey = /Admin key\s+(\S+)/.exec(created.stdout)?.[1] ?? '';
    const fns =
      '  hold: { handler: handler.hold, memory: 128, timeout: 60 }\n' +
      '  hold2: { handler: handler.hold, memory: 128, timeout: 60 }\n';
    const dir = service('holders', fns);
    dirs.push(dir);
    for (const key of [qKey, n.apiKey]) {
      const d = await as(key, ['deploy', dir]);
      expect(d.code).toBe(0);
    }
  });
  afterAll(async () => {
    await n?.cleanup();
    await holds.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('refuses bad quota input with a clear error and changes nothing', async () => {
    await setQuota(['--concurrency', '7']);
    for (const args of [
      ['--concurrency', 'lots'],
      ['--concurrency=-1'],
      ['--memory', '1.5'],
      ['--storage', '5XB'],
      ['--storage=-5MB'],
    ]) {
      const r = await operator(['project', 'quota', 'team-q', ...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    const unknown = await operator(['project', 'quota', 'nope', '--concurrency', '2']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/project nope not found/);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);

    for (const body of [{ concurrency: -1 }, { concurrency: '2' }, { memoryMB: 0 }, {}, { bogus: 1 }]) {
      const r = await api(n.apiKey, 'PUT', '/v1/projects/team-q/quota', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(await r.json()).toMatchObject({ error: { code: 'BadRequest' } });
    }
    const missing = await api(n.apiKey, 'PUT', '/v1/projects/nope/quota', { concurrency: 2 });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'NotFound' } });
    expect((await quota('team-q')).quota).toStrictEqual({
      concurrency: 7,
      memoryMB: null,
      storageBytes: null,
    });
    await setQuota(['--concurrency', 'none']);
  });

  it("only the operator sets quotas; a project's own key reads its own and no other", async () => {
    const denied = await api(qKey, 'PUT', '/v1/projects/team-q/quota', { storageBytes: 10 ** 12 });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ error: { code: 'AccessDenied' } });
    const cli = await as(qKey, ['project', 'quota', 'team-q', '--concurrency', '100']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/only an admin key of project "default"/);
    expect((await quota('team-q')).quota.storageBytes).toBeNull();
    // Its own quota it may read; another project's is as absent as one that never existed.
    expect((await api(qKey, 'GET', '/v1/projects/team-q/quota')).status).toBe(200);
    expect((await api(qKey, 'GET', '/v1/projects/default/quota')).status).toBe(404);
    // Every change the operator made is in its audit log, naming the project.
    const audit = (await (await api(n.apiKey, 'GET', '/v1/audit?action=project.quota')).json()) as {
      entries: { target: string; detail: unknown }[];
    };
    expect(audit.entries.length).toBeGreaterThan(0);
    expect(audit.entries.every((e) => e.target === 'team-q')).toBe(true);
  });

  it('throttles past the concurrency quota with a message naming it, other projects unaffected', async () => {
    await setQuota(['--concurrency', '2']);
    const running = [invoke(qKey, 'hold'), invoke(qKey, 'hold2')];
    await eventually(async () => holds.held === 2, 30_000);
    const third = await invoke(qKey, 'hold');
    expect(third.status).toBe(429);
    expect(third.error).toMatchObject({
      name: 'TooManyRequestsException',
      Reason: 'ConcurrentInvocationLimitExceeded',
    });
    expect(third.error!.message).toMatch(/Project "team-q" is at its concurrency quota of 2/);
    expect(third.error!.message).toContain('nimbus project quota team-q --concurrency');
    // The default project has no quota: it runs beside the full one.
    const other = invoke(n.apiKey, 'hold');
    await eventually(async () => holds.held === 3, 30_000);
    // An event waits rather than fails: accepted now, run once there is room.
    expect((await invoke(qKey, 'hold', 'Event')).status).toBe(202);
    const shown = await operator(['project', 'quota', 'team-q']);
    expect(shown.stdout).toMatch(/concurrency\s+2 \/ 2/);
    const listed = await operator(['project', 'ls', '--json']);
    const teamQ = (
      JSON.parse(listed.stdout) as { projects: { name: string; usage: { concurrency: number } }[] }
    ).projects.find((p) => p.name === 'team-q');
    expect(teamQ?.usage.concurrency).toBe(2);
    const arrived = holds.arrived;
    holds.release();
    expect((await Promise.all([...running, other])).map((r) => r.status)).toEqual([200, 200, 200]);
    await eventually(async () => holds.arrived > arrived && holds.held === 1, 30_000);
    holds.release();

    // Raised, a third runs at once; cleared, there is no cap at all.
    await setQuota(['--concurrency', '3']);
    const three = [invoke(qKey, 'hold'), invoke(qKey, 'hold'), invoke(qKey, 'hold2')];
    await eventually(async () => holds.held === 3, 30_000);
    holds.release();
    expect((await Promise.all(three)).map((r) => r.status)).toEqual([200, 200, 200]);
    await setQuota(['--concurrency', '0']);
    expect((await quota('team-q')).quota.concurrency).toBeNull();
  });

  it("throttles at the gateway with a 429 JSON body naming the default project's quota", async () => {
    const routed = service(
      'routed',
      '  web:\n    handler: handler.hold\n    events:\n      - http: GET /hold\n',
    );
    dirs.push(routed);
    await n.deploy(routed);
    const put = await api(n.apiKey, 'PUT', '/v1/projects/default/quota', { concurrency: 1 });
    expect(put.status).toBe(200);
    const url = `${n.gatewayUrl}/hold?url=${encodeURIComponent(holds.url)}`;
    const first = fetch(url);
    await eventually(async () => holds.held === 1, 30_000);
    const second = await fetch(url);
    expect(second.status).toBe(429);
    expect(second.headers.get('content-type')).toMatch(/json/);
    expect(((await second.json()) as { message: string }).message).toMatch(
      /Too Many Requests: .*Project "default" is at its concurrency quota of 1/,
    );
    // team-q is not held to default's quota.
    const tenant = invoke(qKey, 'hold');
    await eventually(async () => holds.held === 2, 30_000);
    holds.release();
    expect((await first).status).toBe(200);
    expect((await tenant).status).toBe(200);
    const cleared = await api(n.apiKey, 'PUT', '/v1/projects/default/quota', { concurrency: null });
    expect(((await cleared.json()) as { quota: { concurrency: null } }).quota.concurrency).toBeNull();
    await n.client.remove('web');
  });

  it('refuses a deploy reserving more than the quota, and a quota below what is reserved', async () => {
    await setQuota(['--concurrency', '2', '--memory', '256']);
    const greedy = service(
      'greedy',
      '  g: { handler: handler.hold, memory: 128, concurrency: { reserved: 3 } }\n',
    );
    const big = service(
      'greedy',
      '  g: { handler: handler.hold, memory: 256, concurrency: { reserved: 2 } }\n',
    );
    dirs.push(greedy, big);
    const refused = await as(qKey, ['deploy', greedy]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/functions\.g\.concurrency\.reserved/);
    expect(refused.stderr).toMatch(/concurrency quota of 2/);
    const tooBig = await as(qKey, ['deploy', big]);
    expect(tooBig.code).not.toBe(0);
    expect(tooBig.stderr).toMatch(/memory quota of 256 MB/);
    const names = (await new NimbusClient({ apiUrl: n.apiUrl, apiKey: qKey }).list()).functions.map(
      (f) => f.name,
    );
    expect(names.sort()).toEqual(['hold', 'hold2']);

    const fits = service(
      'greedy',
      '  g: { handler: handler.hold, memory: 128, concurrency: { reserved: 2 } }\n',
    );
    dirs.push(fits);
    expect((await as(qKey, ['deploy', fits])).code).toBe(0);
    const lowered = await api(n.apiKey, 'PUT', '/v1/projects/team-q/quota', { concurrency: 1 });
    expect(lowered.status).toBe(409);
    expect(await lowered.json()).toMatchObject({ error: { code: 'QuotaBelowReservations' } });
    expect((await as(qKey, ['rm', 'g'])).code).toBe(0);
    await setQuota(['--concurrency', 'none', '--memory', 'none']);
  });

  it("past the memory quota retires the project's idle instances first, else throttles", async () => {
    // 256 MB: two instances of 128 MB. The instances the tests above left idle (hold's and hold2's) are
    // retired to make room for the new functions' first ones; only the project's own can be.
    const mem = service(
      'mem',
      '  m1: { handler: handler.hold, memory: 128 }\n  m2: { handler: handler.hold, memory: 128 }\n',
    );
    dirs.push(mem);
    expect((await as(qKey, ['deploy', mem])).code).toBe(0);
    await setQuota(['--memory', '256']);
    const busy = [invoke(qKey, 'm1'), invoke(qKey, 'm1')];
    await eventually(async () => holds.held === 2, 30_000);
    const refused = await invoke(qKey, 'm2');
    expect(refused.status).toBe(429);
    expect(refused.error!.message).toMatch(/Project "team-q" is at its memory quota of 256 MB/);
    expect((await quota('team-q')).usage.memoryMB).toBe(256);
    // The default project has no quota: its function starts beside the full one.
    const other = invoke(n.apiKey, 'hold2');
    await eventually(async () => holds.held === 3, 30_000);
    holds.release();
    expect((await Promise.all([...busy, other])).map((r) => r.status)).toEqual([200, 200, 200]);
    // Both of m1's instances are idle now: m2 gets room by retiring one of them.
    const tenant = new NimbusClient({ apiUrl: n.apiUrl, apiKey: qKey });
    const next = invoke(qKey, 'm2');
    await eventually(async () => holds.held === 1, 30_000);
    holds.release();
    expect((await next).status).toBe(200);
    expect((await tenant.get('m1')).scaling?.evicted).toBe(1);
    expect((await quota('team-q')).usage.memoryMB).toBe(256);
    await setQuota(['--memory', 'none']);
  });

  it("refuses writes past the storage quota in each service's words; deletes free it; raising lets writes in", async () => {
    const s3 = new S3Client({ ...aws(qKey), forcePathStyle: true });
    const ddb = new DynamoDBClient(aws(qKey));
    const sqs = new SQSClient(aws(qKey));
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'q-bucket' }));
      await ddb.send(
        new CreateTableCommand({
          TableName: 'q-table',
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
          AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      const queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'q-queue' }))).QueueUrl!;
      // Buckets, tables and queues themselves are not counted: only what they hold.
      const base = (await quota('team-q')).usage.storageBytes;
      expect(base).toBe(0);
      await setQuota(['--storage', '1000']);

      await s3.send(new PutObjectCommand({ Bucket: 'q-bucket', Key: 'a', Body: 'x'.repeat(600) }));
      expect((await quota('team-q')).usage.storageBytes).toBe(base + 600);
      const err = (await s3
        .send(new PutObjectCommand({ Bucket: 'q-bucket', Key: 'b', Body: 'y'.repeat(600) }))
        .catch((e: unknown) => e)) as {
        name: string;
        message: string;
        $metadata: { httpStatusCode: number };
      };
      expect(err.$metadata.httpStatusCode).toBe(403);
      expect(err.name).toBe('QuotaExceeded');
      expect(err.message).toMatch(/project "team-q" would exceed its storage quota of \d+ bytes/);
      expect(err.message).toContain('nimbus project quota team-q --storage');
      const absent = await s3
        .send(new GetObjectCommand({ Bucket: 'q-bucket', Key: 'b' }))
        .catch((e: Error) => e);
      expect((absent as Error).name).toBe('NoSuchKey');

      const item = await ddb
        .send(
          new PutItemCommand({
            TableName: 'q-table',
            Item: { id: { S: 'i' }, data: { S: 'z'.repeat(600) } },
          }),
        )
        .catch((e: { name: string; message: string; $metadata: { httpStatusCode: number } }) => e);
      expect(item).toMatchObject({ name: 'LimitExceededException', $metadata: { httpStatusCode: 400 } });
      expect((item as Error).message).toMatch(/storage quota/);
      const sent = await sqs
        .send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'm'.repeat(600) }))
        .catch((e: { name: string; message: string; $metadata: { httpStatusCode: number } }) => e);
      expect(sent).toMatchObject({ name: 'OverLimit', $metadata: { httpStatusCode: 403 } });
      // The control API (nimbus queue send) says it in its own JSON.
      const viaApi = await api(qKey, 'POST', '/v1/queues/q-queue/messages', { body: 'm'.repeat(600) });
      expect(viaApi.status).toBe(403);
      expect(await viaApi.json()).toMatchObject({
        error: { code: 'StorageQuotaExceeded', message: expect.stringContaining('project "team-q"') },
      });
      expect((await quota('team-q')).usage.storageBytes).toBe(base + 600);

      // Another project is not held to it.
      const other = new S3Client({ ...aws(n.apiKey), forcePathStyle: true });
      await other.send(new CreateBucketCommand({ Bucket: 'd-bucket' }));
      await other.send(new PutObjectCommand({ Bucket: 'd-bucket', Key: 'big', Body: 'd'.repeat(5000) }));
      other.destroy();

      // Usage in the CLI; a delete frees it, so the write fits now.
      const ls = await operator(['project', 'ls']);
      expect(ls.stdout).toMatch(/team-q .*600 B \/ 1000 B/);
      await s3.send(new DeleteObjectCommand({ Bucket: 'q-bucket', Key: 'a' }));
      expect((await quota('team-q')).usage.storageBytes).toBe(base);
      await ddb.send(
        new PutItemCommand({ TableName: 'q-table', Item: { id: { S: 'i' }, data: { S: 'z'.repeat(600) } } }),
      );
      await ddb.send(new DeleteItemCommand({ TableName: 'q-table', Key: { id: { S: 'i' } } }));
      // Raised, the two objects fit together.
      await setQuota(['--storage', '1MB']);
      await s3.send(new PutObjectCommand({ Bucket: 'q-bucket', Key: 'a', Body: 'x'.repeat(600) }));
      await s3.send(new PutObjectCommand({ Bucket: 'q-bucket', Key: 'b', Body: 'y'.repeat(600) }));
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'm'.repeat(600) }));
      const shown = await operator(['project', 'quota', 'team-q']);
      expect(shown.stdout).toMatch(/storage\s+\S+ (B|KB) \/ 1 MB/);
      await setQuota(['--storage', 'none']);
    } finally {
      s3.destroy();
      ddb.destroy();
      sqs.destroy();
    }
  });
});

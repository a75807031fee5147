// Projects and their keys end to end, on each backend, as two tenants would use one Nimbus: the data dir's key
// is the default project's admin; `nimbus project create` makes a second project and prints its admin key
// once; that key sees and touches its own project only, on every API (control, Lambda, DynamoDB, S3, SQS);
// roles limit what a key may do; revoked and rotated keys are refused; keys are stored hashed; every change is
// in the audit log.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBClient, GetItemCommand, ListTablesCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateQueueCommand, ListQueuesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { sigV4CredentialsOf } from '../src/security/api-keys.js';
import { BACKENDS, FIXTURES, runNimbus, secretOf, startTestNimbus, type TestNimbus } from './helpers.js';
import { withClient } from './support/postgres.js';

describe.each(BACKENDS)('projects and keys on %s', (backend) => {
  let n: TestNimbus;
  /** team-b's first admin key, printed by `nimbus project create`. */
  let bKey: string;
  let aQueueUrl: string;

  const as = (key: string, args: string[], stdin?: string) =>
    runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: key }, args, stdin);
  const api = (key: string, method: string, path: string, body?: unknown) =>
    fetch(n.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const aws = { endpoint: () => n.apiUrl, region: 'us-east-1', maxAttempts: 1 } as const;
  const creds = (key: string) => sigV4CredentialsOf(key) ?? { accessKeyId: 'nimbus', secretAccessKey: key };
  const s3 = (key: string) =>
    new S3Client({
      endpoint: n.apiUrl,
      region: aws.region,
      forcePathStyle: true,
      credentials: creds(key),
      maxAttempts: 1,
    });
  const ddb = (key: string) =>
    new DynamoDBClient({ endpoint: n.apiUrl, region: aws.region, credentials: creds(key), maxAttempts: 1 });
  const sqs = (key: string) =>
    new SQSClient({ endpoint: n.apiUrl, region: aws.region, credentials: creds(key), maxAttempts: 1 });
  const lambda = (key: string) =>
    new LambdaClient({ endpoint: n.apiUrl, region: aws.region, credentials: creds(key), maxAttempts: 1 });

  /** What an SDK call ends in: "ok" or "<status> <error name>". */
  async function outcome(p: Promise<unknown>): Promise<string> {
    try {
      await p;
      return 'ok';
    } catch (err) {
      const e = err as { name: string; $metadata?: { httpStatusCode?: number } };
      return `${e.$metadata?.httpStatusCode} ${e.name}`;
    }
  }

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    // Project default (the data dir's key): a service, a bucket with an object, a queue.
    await n.deploy(join(FIXTURES, 'awsenv'));
    const a = s3(n.apiKey);
    await a.send(new CreateBucketCommand({ Bucket: 'a-private' }));
    await a.send(
      new PutObjectCommand({ Bucket: 'a-private', Key: 'secret.txt', Body: 'of project default' }),
    );
    a.destroy();
    const q = sqs(n.apiKey);
    aQueueUrl = (await q.send(new CreateQueueCommand({ QueueName: 'a-jobs' }))).QueueUrl!;
    q.destroy();
    await ddb(n.apiKey).send(new PutItemCommand({ TableName: 'items', Item: { id: { S: 'a1' } } }));

    const created = await as(n.apiKey, ['project', 'create', 'team-b']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/will not be shown again/);
    bKey = /Admin key\s+(\S+)/.exec(created.stdout)?.[1] ?? '';
    expect(bKey).toMatch(/^nmb_NIMK[A-Z2-7]{16}_/);
    const deployed = await as(bKey, ['deploy', join(FIXTURES, 'noop')]);
    expect(deployed.stderr).not.toMatch(/error/i);
    expect(deployed.code).toBe(0);
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  it("lists and reads only its own project's functions, logs and invocations", async () => {
    const ls = await as(bKey, ['ls', '--json']);
    expect(ls.code).toBe(0);
    const names = (JSON.parse(ls.stdout) as { functions: { name: string }[] }).functions.map((f) => f.name);
    expect(names).toEqual(['noop']);
    const mine = await as(n.apiKey, ['ls', '--json']);
    expect(
      (JSON.parse(mine.stdout) as { functions: { name: string }[] }).functions.map((f) => f.name),
    ).not.toContain('noop');

    expect((await api(bKey, 'GET', '/v1/functions/whoami')).status).toBe(404);
    const logs = await as(bKey, ['logs', 'whoami']);
    expect(logs.code).not.toBe(0);
    expect(logs.stderr).toMatch(/whoami/);

    // A record of default's is as absent to team-b as one that never existed.
    const inv = await n.client.invoke('whoami', '{}');
    const requestId = (inv as { requestId: string }).requestId;
    expect((await api(n.apiKey, 'GET', `/v1/invocations/${requestId}`)).status).toBe(200);
    const other = await api(bKey, 'GET', `/v1/invocations/${requestId}`);
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ error: { code: 'NotFound' } });
  });

  it("invokes only its own project's functions, by bearer key and by SigV4", async () => {
    const invoke = await as(bKey, ['invoke', 'whoami']);
    expect(invoke.code).not.toBe(0);
    expect(invoke.stderr).toMatch(/whoami/);
    expect((await as(bKey, ['invoke', 'noop'])).code).toBe(0);
    const l = lambda(bKey);
    expect(await outcome(l.send(new InvokeCommand({ FunctionName: 'whoami' })))).toBe(
      '404 ResourceNotFoundException',
    );
    expect(await outcome(l.send(new InvokeCommand({ FunctionName: 'noop' })))).toBe('ok');
    l.destroy();
  });

  it("never sees or touches another project's tables, objects or queues", async () => {
    const d = ddb(bKey);
    expect((await d.send(new ListTablesCommand({}))).TableNames).not.toContain('items');
    expect(await outcome(d.send(new GetItemCommand({ TableName: 'items', Key: { id: { S: 'a1' } } })))).toBe(
      '400 ResourceNotFoundException',
    );
    d.destroy();
    expect((await api(bKey, 'GET', '/v1/tables/items/items')).status).toBe(404);
    expect(((await (await api(bKey, 'GET', '/v1/tables')).json()) as { tables: unknown[] }).tables).toEqual(
      [],
    );

    const b = s3(bKey);
    expect((await b.send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([]);
    expect(await outcome(b.send(new GetObjectCommand({ Bucket: 'a-private', Key: 'secret.txt' })))).toBe(
      '404 NoSuchBucket',
    );
    b.destroy();
    const bucketCli = await as(bKey, ['bucket', 'ls']);
    expect(bucketCli.code).toBe(0);
    expect(bucketCli.stdout).not.toContain('a-private');

    const q = sqs(bKey);
    expect((await q.send(new ListQueuesCommand({}))).QueueUrls ?? []).toEqual([]);
    expect(await outcome(q.send(new SendMessageCommand({ QueueUrl: aQueueUrl, MessageBody: 'x' })))).toMatch(
      /^400 QueueDoesNotExist|^400 AWS\.SimpleQueueService\.NonExistentQueue/,
    );
    q.destroy();
    expect((await api(bKey, 'GET', '/v1/queues/a-jobs')).status).toBe(404);
  });

  it('cannot name another project, or manage projects; the default admin can', async () => {
    const named = await as(bKey, ['ls', '--project', 'default']);
    expect(named.code).toBe(1);
    expect(named.stderr.trim().split('\n')).toHaveLength(1);
    expect(named.stderr).toMatch(/belongs to project team-b and cannot act in project default/);
    const projects = await as(bKey, ['project', 'ls']);
    expect(projects.code).toBe(1);
    expect(projects.stderr).toMatch(/only an admin key of project "default"/);

    const asOperator = await as(n.apiKey, ['ls', '--project', 'team-b', '--json']);
    expect(asOperator.code).toBe(0);
    expect(
      (JSON.parse(asOperator.stdout) as { functions: { name: string }[] }).functions.map((f) => f.name),
    ).toEqual(['noop']);
    const missing = await as(n.apiKey, ['ls', '--project', 'nobody']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/project nobody does not exist/);
    const busy = await as(n.apiKey, ['project', 'rm', 'team-b']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/still has 1 function/);
    expect((await as(n.apiKey, ['project', 'ls'])).stdout).toMatch(/team-b/);
  });

  it('limits each role to what it may do', async () => {
    const make = async (role: string) => {
      const r = await as(bKey, ['key', 'create', '--role', role, '--json']);
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as { key: string }).key;
    };
    const read = await make('read');
    const invoker = await make('invoke');
    const deployer = await make('deploy');

    // read: looks, changes nothing.
    expect((await as(read, ['ls'])).code).toBe(0);
    const refused = await as(read, ['deploy', join(FIXTURES, 'noop')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/has role read; to deploy takes role deploy/);
    expect((await as(read, ['invoke', 'noop'])).code).toBe(1);
    const r = lambda(read);
    expect(await outcome(r.send(new InvokeCommand({ FunctionName: 'noop' })))).toBe(
      '403 AccessDeniedException',
    );
    r.destroy();
    const rd = ddb(read);
    expect(await outcome(rd.send(new PutItemCommand({ TableName: 'x', Item: { id: { S: '1' } } })))).toBe(
      '403 AccessDeniedException',
    );
    rd.destroy();
    const rs = s3(read);
    expect(await outcome(rs.send(new CreateBucketCommand({ Bucket: 'b-read' })))).toBe('403 AccessDenied');
    rs.destroy();

    // invoke: invokes; does not deploy or remove.
    expect((await as(invoker, ['invoke', 'noop'])).code).toBe(0);
    expect((await as(invoker, ['rm', 'noop'])).stderr).toMatch(/takes role deploy/);

    // deploy: deploys; does not manage keys or read the audit log.
    expect((await as(deployer, ['deploy', join(FIXTURES, 'noop')])).code).toBe(0);
    const keys = await as(deployer, ['key', 'create', '--role', 'read']);
    expect(keys.code).toBe(1);
    expect(keys.stderr).toMatch(/takes role admin/);
    expect((await as(deployer, ['audit'])).stderr).toMatch(/takes role admin/);
  });

  it('refuses a revoked key at once, and the old secret of a rotated one', async () => {
    const created = JSON.parse(
      (await as(bKey, ['key', 'create', '--role', 'read', '--name', 'temp', '--json'])).stdout,
    ) as {
      id: string;
      key: string;
    };
    expect((await as(created.key, ['ls'])).code).toBe(0);
    const rotated = await as(bKey, ['key', 'rotate', created.id, '--json']);
    expect(rotated.code).toBe(0);
    const fresh = (JSON.parse(rotated.stdout) as { key: string }).key;
    expect(fresh).not.toBe(created.key);
    const old = await as(created.key, ['ls']);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/wrong, revoked or rotated/);
    expect((await as(fresh, ['ls'])).code).toBe(0);

    const listed = await as(bKey, ['key', 'ls']);
    expect(listed.stdout).toContain(created.id);
    expect(listed.stdout).not.toContain(fresh);
    expect((await as(bKey, ['key', 'revoke', created.id])).code).toBe(0);
    expect((await as(fresh, ['ls'])).code).toBe(1);
    // Another project's key is not found, and a key cannot revoke itself.
    const self = /^nmb_(NIMK\w{16})_/.exec(bKey)![1]!;
    expect((await as(bKey, ['key', 'revoke', self])).stderr).toMatch(/is the key making this request/);
    const foreign = await as(n.apiKey, ['key', 'revoke', self]);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(/not found/);
  });

  it('stores keys hashed: no key text anywhere in the store', async () => {
    let stored: string;
    if (backend === 'sqlite') {
      stored = filesUnder(n.dataDir)
        .filter((f) => !f.endsWith('api-key'))
        .map((f) => readFileSync(f).toString('latin1'))
        .join('\n');
    } else {
      const schema = /schema=(\w+)/.exec(n.store)![1]!;
      stored = await withClient(async (c) => {
        const r = await c.query(`SELECT t::text AS row FROM ${schema}.api_keys t`);
        return r.rows.map((x: { row: string }) => x.row).join('\n');
      });
    }
    const secret = secretOf(bKey);
    expect(stored).toContain(bKey.split('_')[1]!);
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(sigV4CredentialsOf(bKey)!.secretAccessKey);
  });

  it('writes every change to the audit log, readable per project with `nimbus audit`', async () => {
    const b = await as(bKey, ['audit', '--json']);
    expect(b.code).toBe(0);
    const entries = (
      JSON.parse(b.stdout) as { entries: { project: string; action: string; actor: string }[] }
    ).entries;
    const actions = entries.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['deploy', 'key.create', 'key.rotate', 'key.revoke']));
    expect(new Set(entries.map((e) => e.project))).toEqual(new Set(['team-b']));
    const bId = /^nmb_(NIMK\w{16})_/.exec(bKey)![1]!;
    expect(entries.find((e) => e.action === 'key.create')?.actor).toBe(bId);

    const a = await as(n.apiKey, ['audit', '--action', 'project.create']);
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/nimbus\s+project\.create\s+team-b/);
    const text = await as(bKey, ['audit']);
    expect(text.stdout).not.toContain(secretOf(bKey));
  });
});

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    const st = statSync(p);
    // Regular files only: the data dir also holds sockets (the sandboxes' AWS endpoint), which cannot be read.
    return st.isDirectory() ? filesUnder(p) : st.isFile() && st.size < 64 * 1024 * 1024 ? [p] : [];
  });
}

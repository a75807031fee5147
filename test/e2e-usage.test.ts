// Metering besides invocations, end to end on each backend: a known sequence of official AWS SDK v3 calls
// (DynamoDB, S3, SQS) comes back exactly as requests per table, bucket and queue in GET /v1/cost and
// `nimbus cost`; the project's stored bytes become GB-months over the server's (manual) clock; a provisioned
// instance is billed for the time it is kept, and an invocation on it at the provisioned duration price; the
// report's totals add up exactly.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { ManualClock } from '../src/clock/clock.js';
import type { CostReport, InvocationView, UsageLine } from '../src/client/index.js';
import { BACKENDS, FIXTURES, eventually, runNimbus, startTestNimbus, type TestNimbus } from './helpers.js';

// Prices chosen so every amount is a whole number of picodollars however the meter's flushes fall.
const PROVISIONED_GB_S = '0.000004096'; // 4,096,000 pico per GB-s: 4 pico per MB-ms
const PROVISIONED_DURATION_GB_S = '0.000008192'; // 8 pico per MB-ms

describe.each(BACKENDS)('usage metering on %s', (backend) => {
  let n: TestNimbus;
  const clock = new ManualClock(Date.now());
  let report: CostReport;
  let storedBytes = 0;
  let keptInvocation: InvocationView;
  const creds = () => ({ accessKeyId: 'nimbus', secretAccessKey: n.apiKey });
  const line = (service: string, resource: string, kind: string): UsageLine | undefined =>
    report.usage.lines.find((l) => l.service === service && l.resource === resource && l.kind === kind);

  beforeAll(async () => {
    n = await startTestNimbus({
      backend,
      clock,
      priceProvisionedGbSecond: PROVISIONED_GB_S,
      priceProvisionedDurationGbSecond: PROVISIONED_DURATION_GB_S,
    });
    await n.deploy(join(FIXTURES, 'provisioned'));
    // The provisioned instance is up before the clock moves: it is billed from the first second on.
    await eventually(async () => {
      const f = (await n.client.list()).functions.find((x) => x.name === 'kept');
      return f?.scaling?.provisioned === 1 && f.scaling.idle === 1;
    }, 30_000);

    const db = new DynamoDBClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: creds(),
      maxAttempts: 1,
    });
    await db.send(
      new CreateTableCommand({
        TableName: 'orders',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    for (const id of ['a', 'b', 'c']) {
      await db.send(new PutItemCommand({ TableName: 'orders', Item: { id: { S: id }, n: { N: '1' } } }));
    }
    await db.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: 'a' } } }));
    await db.send(new GetItemCommand({ TableName: 'orders', Key: { id: { S: 'z' } } }));
    await db.send(
      new QueryCommand({
        TableName: 'orders',
        KeyConditionExpression: 'id = :a',
        ExpressionAttributeValues: { ':a': { S: 'a' } },
      }),
    );

    const s3 = new S3Client({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: creds(),
      maxAttempts: 1,
    });
    await s3.send(new CreateBucketCommand({ Bucket: 'pics' }));
    await s3.send(new PutObjectCommand({ Bucket: 'pics', Key: 'one.txt', Body: 'x'.repeat(1000) }));
    await s3.send(new PutObjectCommand({ Bucket: 'pics', Key: 'two.txt', Body: 'y'.repeat(500) }));
    await (await s3.send(new GetObjectCommand({ Bucket: 'pics', Key: 'one.txt' }))).Body!.transformToString();
    await s3.send(new HeadObjectCommand({ Bucket: 'pics', Key: 'two.txt' }));
    await s3.send(new ListObjectsV2Command({ Bucket: 'pics' }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'pics', Key: 'two.txt' }));

    const sqs = new SQSClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: creds(),
      maxAttempts: 1,
    });
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'jobs' }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'first' }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'second' }));
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1 }));
    await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: got.Messages![0]!.ReceiptHandle! }));

    const res = await fetch(`${n.gatewayUrl}/kept`);
    expect(await res.text()).toBe('provisioned-concurrency');
    const record = await fetch(`${n.apiUrl}/v1/invocations/${res.headers.get('x-nimbus-request-id')}`, {
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    keptInvocation = (await record.json()) as InvocationView;

    storedBytes = (await n.client.projectQuota('default')).usage.storageBytes;
    // A minute passes on the server's clock: stored bytes are sampled, provisioned time accrues, counts flush.
    clock.advance(60_000);
    report = await n.client.cost({ since: clock.now() - 3_600_000 });
  }, 90_000);
  afterAll(async () => n?.cleanup());

  it('counts DynamoDB requests per table: reads and writes, priced per million', () => {
    expect(line('dynamodb', 'orders', 'write')).toMatchObject({
      quantity: '4',
      costPicoUsd: String(4 * 625_000),
    });
    expect(line('dynamodb', 'orders', 'read')).toMatchObject({
      quantity: '3',
      costPicoUsd: String(3 * 125_000),
    });
  });

  it("counts S3 requests per bucket in S3's tiers, DELETE free", () => {
    // CreateBucket, two PutObject, ListObjectsV2; then GetObject and HeadObject.
    expect(line('s3', 'pics', 'tier1')).toMatchObject({ quantity: '4', costPicoUsd: String(4 * 5_000_000) });
    expect(line('s3', 'pics', 'tier2')).toMatchObject({ quantity: '2', costPicoUsd: String(2 * 400_000) });
  });

  it('counts SQS requests per queue', () => {
    expect(line('sqs', 'jobs', 'request')).toMatchObject({ quantity: '5', costPicoUsd: String(5 * 400_000) });
  });

  it('turns the stored bytes into byte-seconds over the clock, priced per GB-month', () => {
    expect(storedBytes).toBeGreaterThan(1000);
    const byteSeconds = BigInt(storedBytes) * 60n;
    const perMonth = 2n ** 30n * 730n * 3600n;
    const pico = (byteSeconds * 23_000_000_000n * 2n + perMonth) / (2n * perMonth);
    expect(line('storage', '', 'byte-seconds')).toMatchObject({
      quantity: byteSeconds.toString(),
      unit: 'GB-months',
      costPicoUsd: pico.toString(),
    });
  });

  it('bills a provisioned instance for the time it is kept, and its invocation at the provisioned price', () => {
    const mbMs = 128 * 60_000;
    expect(line('lambda', 'kept', 'provisioned-mb-ms')).toMatchObject({
      quantity: String(mbMs),
      amount: mbMs / 1_024_000,
      unit: 'GB-seconds',
      costPicoUsd: String(mbMs * 4),
    });
    expect(keptInvocation.costPicoUsd).toBe(200_000 + keptInvocation.billedMs * 128 * 8);
  });

  it('adds up exactly: lines to the usage total, and that plus the invocations to the grand total', async () => {
    const lines = report.usage.lines.reduce((t, l) => t + BigInt(l.costPicoUsd), 0n);
    expect(report.usage.total.costPicoUsd).toBe(lines.toString());
    expect(report.grandTotal.costPicoUsd).toBe((lines + BigInt(report.total.costPicoUsd)).toString());
    const byService = await n.client.cost({ since: clock.now() - 3_600_000, by: 'service' });
    const groups = byService.groups.reduce((t, g) => t + BigInt(g.costPicoUsd), 0n);
    expect(groups.toString()).toBe(report.grandTotal.costPicoUsd);
    expect(byService.groups.map((g) => g.group).sort()).toEqual([
      'dynamodb',
      'lambda',
      's3',
      'sqs',
      'storage',
    ]);
  });

  it('shows the usage in `nimbus cost` and `nimbus cost --by service`', async () => {
    const env = { NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey };
    const plain = await runNimbus(env, ['cost', '--since', '1d']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^dynamodb\s+orders\s+write\s+4 requests\s+0\.0000025\s*$/m);
    expect(plain.stdout).toMatch(/^s3\s+pics\s+tier1\s+4 requests\s+0\.00002\s*$/m);
    expect(plain.stdout).toMatch(/^lambda\s+kept\s+provisioned-mb-ms\s+7\.5 GB-seconds\s+0\.00003072\s*$/m);
    expect(plain.stdout).toContain(`Total cost: ${report.grandTotal.costUsd} USD`);
    const services = await runNimbus(env, ['cost', '--since', '1d', '--by', 'service']);
    expect(services.code).toBe(0);
    expect(services.stdout).toMatch(/^sqs\s+5\s+0\.000002\s*$/m);
    expect(services.stdout).toMatch(
      new RegExp(`^total\\s+${report.grandTotal.costUsd.replace('.', '\\.')}\\s*$`, 'm'),
    );
    const bad = await runNimbus(env, ['cost', '--by', 'table']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--by "table" is not a grouping.*service/s);
  });
});

describe('usage counted just before a clean stop', () => {
  it('reaches the store: nothing counted in memory is lost when Nimbus stops', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-usage-stop-'));
    try {
      const first = await startTestNimbus({ dataDir });
      const sqs = new SQSClient({
        endpoint: first.apiUrl,
        region: 'us-east-1',
        credentials: { accessKeyId: 'nimbus', secretAccessKey: first.apiKey },
        maxAttempts: 1,
      });
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'late' }));
      for (let i = 0; i < 7; i++) await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `m${i}` }));
      // Well inside the 5 s flush interval: only the stop can have written these.
      await first.stop();
      const second = await startTestNimbus({ dataDir });
      try {
        const r = await second.client.cost({ since: Date.now() - 3_600_000 });
        expect(r.usage.lines.find((l) => l.service === 'sqs' && l.resource === 'late')).toMatchObject({
          quantity: '8',
        });
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});

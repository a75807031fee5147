// Storage triggers end to end, on both stores: objects put, copied and deleted through client-s3 invoke a
// deployed function with S3's event records (prefix and suffix filters respected, keys encoded as S3 encodes
// them), the function's own writes reach another bucket, a function writing into the bucket that triggers
// it is stopped by the loop limit, and changes acknowledged before a SIGKILL are delivered after a restart.
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageService } from '../src/build/package.js';
import { NimbusClient } from '../src/client/index.js';
import { MAX_LINEAGE } from '../src/events/trace.js';
import {
  BACKENDS,
  eventually,
  exited,
  FIXTURES,
  startTestNimbus,
  type TestNimbus,
  upProcessRig,
} from './helpers.js';

export function s3Client(apiUrl: string, key: string): S3Client {
  return new S3Client({
    endpoint: apiUrl,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'nimbus', secretAccessKey: key },
    maxAttempts: 1,
  });
}

async function keys(s3: S3Client, bucket: string, prefix?: string): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!);
}

async function text(s3: S3Client, bucket: string, key: string): Promise<string> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return got.Body!.transformToString();
}

/** The records the copier kept, by event name and decoded key. */
async function records(s3: S3Client): Promise<Record<string, unknown>[]> {
  const names = await keys(s3, 'copies', 'records/');
  return Promise.all(
    names.map(async (k) => JSON.parse(await text(s3, 'copies', k)) as Record<string, unknown>),
  );
}

describe.each(BACKENDS)('storage triggers on %s', (backend) => {
  let n: TestNimbus;
  let s3: S3Client;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'storage'));
    s3 = s3Client(n.apiUrl, n.apiKey);
  });
  afterAll(async () => {
    s3?.destroy();
    await n?.cleanup();
  });

  it('invokes with S3 records for created and removed objects that match the filters, and no others', async () => {
    const key = 'in/My Photo ü+1 (2).txt';
    // A put that fails (its Content-MD5 does not match) commits nothing, so nothing is announced.
    const bad = await s3
      .send(
        new PutObjectCommand({
          Bucket: 'inbox',
          Key: 'in/bad.txt',
          Body: 'abc',
          ContentMD5: Buffer.alloc(16).toString('base64'),
        }),
      )
      .catch((e: Error) => e.name);
    expect(bad).toBe('BadDigest');
    const put = await s3.send(new PutObjectCommand({ Bucket: 'inbox', Key: key, Body: 'hello' }));
    await s3.send(new PutObjectCommand({ Bucket: 'inbox', Key: 'out/other.txt', Body: 'no prefix' }));
    await s3.send(new PutObjectCommand({ Bucket: 'inbox', Key: 'in/picture.jpg', Body: 'no suffix' }));
    await s3.send(
      new CopyObjectCommand({ Bucket: 'inbox', Key: 'in/copied.txt', CopySource: 'inbox/in/picture.jpg' }),
    );

    await eventually(async () => (await keys(s3, 'copies', 'in/')).length === 2);
    expect(await text(s3, 'copies', key)).toBe('hello');
    expect(await text(s3, 'copies', 'in/copied.txt')).toBe('no suffix');

    await s3.send(new DeleteObjectCommand({ Bucket: 'inbox', Key: key }));
    await s3.send(
      new DeleteObjectsCommand({
        Bucket: 'inbox',
        Delete: { Objects: [{ Key: 'in/copied.txt' }, { Key: 'in/picture.jpg' }, { Key: 'in/never.txt' }] },
      }),
    );
    const all = await eventually(async () => {
      const r = await records(s3);
      return r.length === 4 ? r : undefined;
    });
    const byName = (name: string) =>
      all
        .filter((r) => r['eventName'] === name)
        .map((r) => (r['s3'] as { object: { key: string } }).object.key);
    // The key as S3 encodes it in events: spaces as "+", everything else outside [A-Za-z0-9.-_*/] escaped.
    const encoded = 'in/My+Photo+%C3%BC%2B1+%282%29.txt';
    expect(byName('ObjectCreated:Put')).toEqual([encoded]);
    expect(byName('ObjectCreated:Copy')).toEqual(['in/copied.txt']);
    expect(byName('ObjectRemoved:Delete').sort()).toEqual(['in/copied.txt', encoded].sort());

    const created = all.find((r) => r['eventName'] === 'ObjectCreated:Put')!;
    expect(created).toStrictEqual({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      awsRegion: 'us-east-1',
      eventTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      eventName: 'ObjectCreated:Put',
      userIdentity: { principalId: 'AWS:nimbus' },
      requestParameters: { sourceIPAddress: expect.stringMatching(/127\.0\.0\.1/) },
      responseElements: {
        'x-amz-request-id': put.$metadata.requestId,
        'x-amz-id-2': expect.any(String),
      },
      s3: {
        s3SchemaVersion: '1.0',
        configurationId: 'copier-storage-0',
        bucket: {
          name: 'inbox',
          ownerIdentity: { principalId: expect.any(String) },
          arn: 'arn:aws:s3:::inbox',
        },
        object: {
          key: encoded,
          size: 5,
          eTag: '5d41402abc4b2a76b9719d911017c592',
          sequencer: expect.stringMatching(/^[0-9A-F]{16}$/),
        },
      },
    });
    const removed = all.find(
      (r) => r['eventName'] === 'ObjectRemoved:Delete' && JSON.stringify(r).includes(encoded),
    )!;
    const obj = (r: Record<string, unknown>) => (r['s3'] as { object: { sequencer: string } }).object;
    expect(Object.keys(obj(removed))).toEqual(['key', 'sequencer']);
    // The removal came after the write: its sequencer sorts after.
    expect(obj(removed).sequencer > obj(created).sequencer).toBe(true);

    const runs = await n.client.logs('copier', { limit: 100 });
    expect(runs.records.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(await keys(s3, 'copies', 'in/bad')).toEqual([]);
  });

  it('announces a completed multipart upload as ObjectCreated:CompleteMultipartUpload, once', async () => {
    const key = 'in/parts.txt';
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'inbox', Key: key }));
    const part = await s3.send(
      new UploadPartCommand({ Bucket: 'inbox', Key: key, UploadId, PartNumber: 1, Body: 'part one' }),
    );
    // Neither starting an upload nor its parts are object changes: only the completion is.
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'inbox',
        Key: key,
        UploadId,
        MultipartUpload: { Parts: [{ ETag: part.ETag!, PartNumber: 1 }] },
      }),
    );
    await eventually(async () => (await keys(s3, 'copies', key)).length === 1);
    expect(await text(s3, 'copies', key)).toBe('part one');
    // The copier writes the copy, then the record it got: wait for both.
    const completes = await eventually(async () => {
      const mine = (await records(s3)).filter(
        (r) => (r['s3'] as { object: { key: string } }).object.key === key,
      );
      return mine.length > 0 ? mine : undefined;
    });
    expect(completes.map((r) => r['eventName'])).toEqual(['ObjectCreated:CompleteMultipartUpload']);
    expect((completes[0]!['s3'] as { object: { size: number; eTag: string } }).object).toMatchObject({
      size: 8,
      eTag: expect.stringMatching(/^[0-9a-f]{32}-1$/),
    });
  });

  it('stops a function that writes into the bucket that triggers it at the loop limit', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'loop', Key: 'k-0', Body: '0' }));
    const dead = await eventually(async () => {
      const d = await n.client.events({ function: 'looper', state: 'dead' });
      return d.length > 0 ? d : undefined;
    }, 60_000);
    expect(dead.map((e) => e.lastError)).toEqual(['RecursiveInvocationLoop']);
    // The put from outside, then one per run that was let through.
    const written = await keys(s3, 'loop');
    expect(written).toHaveLength(MAX_LINEAGE + 1);
    expect(written).toContain(`k-${MAX_LINEAGE}`);
    expect(await n.client.events({ function: 'looper', state: 'pending' })).toEqual([]);
  });
});

describe.each(BACKENDS)('storage triggers across a SIGKILL on %s', (backend) => {
  const rig = upProcessRig(backend, 'storagecrash');

  it(
    'delivers every change acknowledged before the kill once the server is back',
    { timeout: 120_000 },
    async () => {
      const first = await rig.start();
      const key = first.key;
      let up = first.up;
      const client = new NimbusClient({ apiUrl: up.info.apiUrl, apiKey: key });
      await client.deploy((await packageService(join(FIXTURES, 'storage'))).archive);
      let s3 = s3Client(up.info.apiUrl, key);
      const puts = Array.from({ length: 40 }, (_, i) => `in/${i}.txt`);
      await Promise.all(
        puts.map((k) => s3.send(new PutObjectCommand({ Bucket: 'inbox', Key: k, Body: `body ${k}` }))),
      );
      // Killed the moment the last put is acknowledged: most events are still in the log or the queue.
      up.proc.kill('SIGKILL');
      await exited(up.proc);
      s3.destroy();

      ({ up } = await rig.start());
      s3 = s3Client(up.info.apiUrl, key);
      const copied = await eventually(async () => {
        const k = await keys(s3, 'copies', 'in/');
        return k.length === puts.length ? k : undefined;
      }, 60_000);
      expect(copied.sort()).toEqual([...puts].sort());
      for (const k of puts.slice(0, 3)) expect(await text(s3, 'copies', k)).toBe(`body ${k}`);
      s3.destroy();
    },
  );
});

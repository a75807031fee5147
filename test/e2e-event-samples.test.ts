// `nimbus event generate` and `nimbus invoke --event`: every sample is accepted by invoke and reaches the
// function as printed, and the samples of the triggers a test can fire here (HTTP in both payload formats,
// a queue, a bucket, a table stream) have exactly the shape of the event the live trigger delivers.
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, eventually, runNimbus, startTestNimbus, type TestNimbus } from './helpers.js';

const SOURCES = ['http', 'http-v1', 'sqs', 's3', 'schedule', 'dynamodb', 'email'];
// Maps whose keys are the request's or the item's own, not part of the shape.
const FREE = new Set(['headers', 'multiValueHeaders', 'Keys', 'NewImage', 'OldImage']);

/** Every key path of a value with the type at its leaves; an array by its first element. */
function shape(v: unknown, path = ''): string[] {
  if (Array.isArray(v)) return v.length > 0 ? shape(v[0], `${path}[]`) : [`${path}[]`];
  if (typeof v === 'object' && v !== null) {
    if (FREE.has(path.split('.').pop() ?? '')) return [`${path}{}`];
    return Object.keys(v)
      .sort()
      .flatMap((k) => shape((v as Record<string, unknown>)[k], `${path}.${k}`));
  }
  return [`${path}:${v === null ? 'null' : typeof v}`];
}

describe('sample events', () => {
  let n: TestNimbus;
  let env: NodeJS.ProcessEnv;
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-samples-'));

  beforeAll(async () => {
    n = await startTestNimbus();
    await n.deploy(join(FIXTURES, 'samples'));
    env = { NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey };
  });
  afterAll(async () => {
    await n?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The events the function logged, oldest first. */
  async function seen(): Promise<Record<string, unknown>[]> {
    const { records } = await n.client.logs('shape', { limit: 500 });
    return records.flatMap((r) =>
      r.logs
        .split('\n')
        .filter((l) => l.includes('SHAPE '))
        .map((l) => JSON.parse(l.slice(l.indexOf('SHAPE ') + 6)) as Record<string, unknown>),
    );
  }

  async function generate(args: string[]): Promise<Record<string, unknown>> {
    const r = await runNimbus(env, ['event', 'generate', ...args]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  it.each(SOURCES)('nimbus invoke shape --event %s: the function gets the sample', async (source) => {
    const r = await runNimbus(env, ['invoke', 'shape', '--event', source]);
    expect(r.code, r.stderr).toBe(0);
    const got = JSON.parse(r.stdout) as Record<string, unknown>;
    // Same shape as what `event generate` prints (ids and times differ between two samples).
    expect(shape(got)).toEqual(shape(await generate([source])));
  });

  it('the HTTP samples are shaped like what the gateway sends, in both payload formats', async () => {
    await fetch(`${n.gatewayUrl}/shape/42?x=1`);
    await fetch(`${n.gatewayUrl}/shape-v1/42?x=1`);
    const live = await eventually(async () => {
      const all = await seen();
      const v2 = all.find((e) => e['version'] === '2.0' && e['rawPath'] === '/shape/42');
      const v1 = all.find((e) => e['version'] === '1.0' && e['resource'] === '/shape-v1/{id}');
      return v1 && v2 ? { v1, v2 } : undefined;
    });
    const common = ['--route', '/shape/{id}', '--path', '/shape/42', '--query', 'x=1'];
    const v2 = await generate(['http', ...common]);
    expect(shape(v2)).toEqual(shape(live.v2));
    expect(v2['pathParameters']).toEqual({ id: '42' });
    const v1 = await generate([
      'http-v1',
      '--route',
      '/shape-v1/{id}',
      '--path',
      '/shape-v1/42',
      '--query',
      'x=1',
    ]);
    expect(shape(v1)).toEqual(shape(live.v1));
  });

  it('the sqs sample is shaped like what the queue trigger delivers', async () => {
    const sent = await runNimbus(env, ['queue', 'send', 'sample-q', '--body', 'live']);
    expect(sent.code, sent.stderr).toBe(0);
    const live = await eventually(async () =>
      (await seen()).find((e) => (e['Records'] as { body?: string }[] | undefined)?.[0]?.body === 'live'),
    );
    expect(shape(await generate(['sqs', '--body', 'sample', '--queue', 'sample-q']))).toEqual(shape(live));
  });

  it('the s3 sample is shaped like what the storage trigger delivers', async () => {
    const file = join(dir, 'a.txt');
    writeFileSync(file, 'hello');
    const put = await runNimbus(env, ['bucket', 'put', 'sample-b/in/a.txt', file]);
    expect(put.code, put.stderr).toBe(0);
    const live = await eventually(async () =>
      (await seen()).find((e) => JSON.stringify(e).includes('"key":"in/a.txt"')),
    );
    const sample = await generate(['s3', '--bucket', 'sample-b', '--key', 'in/a.txt', '--size', '5']);
    expect(shape(sample)).toEqual(shape(live));
  });

  it('the dynamodb sample is shaped like what the table trigger delivers', async () => {
    const db = new DynamoDBClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
    try {
      await db.send(
        new PutItemCommand({ TableName: 'sample-t', Item: { id: { S: 'live' }, count: { N: '1' } } }),
      );
    } finally {
      db.destroy();
    }
    const live = await eventually(async () =>
      (await seen()).find((e) => JSON.stringify(e).includes('"Keys":{"id":{"S":"live"}}')),
    );
    expect(shape(await generate(['dynamodb', '--table', 'sample-t']))).toEqual(shape(live));
  });

  it('bad sources and fields are usage errors in one line', async () => {
    const unknown = await runNimbus(env, ['event', 'generate', 'kinesis']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toEqual([
      'nimbus event: unknown event source "kinesis". Choose one of http, http-v1, sqs, s3, schedule, dynamodb, email (see `nimbus event sources`).',
    ]);
    const field = await runNimbus(env, ['event', 'generate', 'sqs', '--bucket', 'x']);
    expect(field.code).toBe(2);
    expect(field.stderr).toContain('--bucket does not apply to sqs events');
    const mismatch = await runNimbus(env, [
      'event',
      'generate',
      'http',
      '--route',
      '/a/{id}',
      '--path',
      '/b/1',
    ]);
    expect(mismatch.code).toBe(2);
    const both = await runNimbus(env, ['invoke', 'shape', '--event', 'sqs', '--data', '{}']);
    expect(both.code).toBe(2);
    const bad = await runNimbus(env, ['invoke', 'shape', '--event', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown event source "nope"');
  });
});

// DynamoDB Streams through the official SDK v3 (@aws-sdk/client-dynamodb-streams, which signs for "dynamodb"
// and is answered by the same service), on both stores: the stream of a table's writes from TRIM_HORIZON,
// LATEST and a sequence number; iterators that are garbled, forged, expired, of a stream since replaced or of a
// table the key may not read; and TTL deletions appearing in the stream as the service's. The TTL suite runs
// a Nimbus on a ManualClock, so the sweep (every 30 s) and an iterator's 15 minutes pass at the test's word.
import {
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListStreamsCommand,
  ResourceNotFoundException,
  TrimmedDataAccessException,
  type _Record,
  type GetShardIteratorCommandInput,
} from '@aws-sdk/client-dynamodb-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock/clock.js';
import { BACKENDS, eventually, startTestNimbus, type TestNimbus } from './helpers.js';

const config = (n: TestNimbus, over: Record<string, unknown> = {}) => ({
  endpoint: n.apiUrl,
  region: 'us-east-1',
  credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
  maxAttempts: 1,
  ...over,
});

const keyOf = { AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' as const }] };
const table = (TableName: string, stream?: 'NEW_AND_OLD_IMAGES' | 'KEYS_ONLY') =>
  new CreateTableCommand({
    TableName,
    ...keyOf,
    KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST',
    ...(stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: stream } } : {}),
  });

/** The error a promise rejects with (the test fails if it resolves). */
async function failure(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  const v = await p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!v) throw new Error('expected the call to fail');
  return v;
}

describe.each(BACKENDS)('DynamoDB Streams API on %s', (backend) => {
  let n: TestNimbus;
  let db: DynamoDBClient;
  let streams: DynamoDBStreamsClient;
  let arn: string;

  const iterator = async (input: Omit<GetShardIteratorCommandInput, 'StreamArn' | 'ShardId'>, of = arn) => {
    const d = await streams.send(new DescribeStreamCommand({ StreamArn: of }));
    const r = await streams.send(
      new GetShardIteratorCommand({
        StreamArn: of,
        ShardId: d.StreamDescription!.Shards![0]!.ShardId,
        ...input,
      }),
    );
    return r.ShardIterator!;
  };
  /** Every record from the iterator on, page by page, and the iterator after the last. */
  const readAll = async (from: string, limit?: number) => {
    const out: _Record[] = [];
    let it = from;
    for (;;) {
      const page = await streams.send(new GetRecordsCommand({ ShardIterator: it, Limit: limit }));
      expect(page.NextShardIterator).toEqual(expect.any(String));
      it = page.NextShardIterator!;
      if (page.Records!.length === 0) return { records: out, next: it };
      out.push(...page.Records!);
    }
  };

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    db = new DynamoDBClient(config(n));
    streams = new DynamoDBStreamsClient(config(n));
    const created = await db.send(table('orders', 'NEW_AND_OLD_IMAGES'));
    arn = created.TableDescription!.LatestStreamArn!;
    await db.send(table('plain'));
  });
  afterAll(async () => {
    db?.destroy();
    streams?.destroy();
    await n?.cleanup();
  });

  it('lists and describes the stream of a table that has one, and none for a table without', async () => {
    expect(arn).toMatch(/^arn:aws:dynamodb:us-east-1:\d{12}:table\/orders\/stream\/\d{4}-\d\d-\d\dT[\d:.]+$/);
    const label = arn.split('/stream/')[1]!;
    const all = await streams.send(new ListStreamsCommand({}));
    expect(all.Streams).toEqual([{ StreamArn: arn, TableName: 'orders', StreamLabel: label }]);
    expect((await streams.send(new ListStreamsCommand({ TableName: 'plain' }))).Streams).toEqual([]);
    expect((await streams.send(new ListStreamsCommand({ TableName: 'orders' }))).Streams).toHaveLength(1);

    const d = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!;
    expect(d).toMatchObject({
      StreamArn: arn,
      StreamLabel: label,
      StreamStatus: 'ENABLED',
      StreamViewType: 'NEW_AND_OLD_IMAGES',
      TableName: 'orders',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
    });
    expect(d.CreationRequestDateTime!.getTime()).toBe(Date.parse(`${label}Z`));
    expect(d.Shards).toHaveLength(1);
    expect(d.Shards![0]!.ShardId).toBe(`shardId-00000001-${label.replace(/\D/g, '')}`);
    expect(d.Shards![0]!.SequenceNumberRange!.StartingSequenceNumber).toMatch(/^\d{21}$/);
    // One shard, which has no children and after which there is none.
    const after = await streams.send(
      new DescribeStreamCommand({ StreamArn: arn, ExclusiveStartShardId: d.Shards![0]!.ShardId }),
    );
    expect(after.StreamDescription!.Shards).toEqual([]);
  });

  it('reads INSERT, MODIFY and REMOVE from TRIM_HORIZON, in order, with both images', async () => {
    const t0 = Date.now();
    await db.send(new PutItemCommand({ TableName: 'orders', Item: { id: { S: 'a' }, n: { N: '1' } } }));
    await db.send(
      new UpdateItemCommand({
        TableName: 'orders',
        Key: { id: { S: 'a' } },
        UpdateExpression: 'SET n = n + :one, s = :s',
        ExpressionAttributeValues: { ':one': { N: '1' }, ':s': { S: 'paid' } },
      }),
    );
    await db.send(new DeleteItemCommand({ TableName: 'orders', Key: { id: { S: 'a' } } }));
    await db.send(new PutItemCommand({ TableName: 'plain', Item: { id: { S: 'x' } } }));

    const { records } = await readAll(await iterator({ ShardIteratorType: 'TRIM_HORIZON' }));
    expect(records.map((r) => r.eventName)).toEqual(['INSERT', 'MODIFY', 'REMOVE']);
    for (const r of records) {
      expect(r).toMatchObject({
        eventID: expect.stringMatching(/^[0-9a-f]{32}$/),
        eventVersion: '1.1',
        eventSource: 'aws:dynamodb',
        awsRegion: 'us-east-1',
        dynamodb: {
          Keys: { id: { S: 'a' } },
          SequenceNumber: expect.stringMatching(/^\d{21}$/),
          SizeBytes: expect.any(Number),
          StreamViewType: 'NEW_AND_OLD_IMAGES',
        },
      });
      expect(r.userIdentity).toBeUndefined();
      const at = r.dynamodb!.ApproximateCreationDateTime!.getTime();
      expect(at).toBeGreaterThanOrEqual(Math.floor(t0 / 1000) * 1000);
      expect(at).toBeLessThanOrEqual(Date.now());
    }
    const [insert, modify, remove] = records.map((r) => r.dynamodb!);
    expect(insert!.NewImage).toEqual({ id: { S: 'a' }, n: { N: '1' } });
    expect(insert!.OldImage).toBeUndefined();
    expect(modify!.OldImage).toEqual({ id: { S: 'a' }, n: { N: '1' } });
    expect(modify!.NewImage).toEqual({ id: { S: 'a' }, n: { N: '2' }, s: { S: 'paid' } });
    expect(remove!.OldImage).toEqual({ id: { S: 'a' }, n: { N: '2' }, s: { S: 'paid' } });
    expect(remove!.NewImage).toBeUndefined();
    const seqs = records.map((r) => BigInt(r.dynamodb!.SequenceNumber!));
    expect(seqs[0]! < seqs[1]! && seqs[1]! < seqs[2]!).toBe(true);
    expect(new Set(records.map((r) => r.eventID)).size).toBe(3);

    // The shard starts at the oldest record; a page of one goes on where the last ended.
    const d = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!;
    expect(d.Shards![0]!.SequenceNumberRange!.StartingSequenceNumber).toBe(insert!.SequenceNumber);
    const byOne = await readAll(await iterator({ ShardIteratorType: 'TRIM_HORIZON' }), 1);
    expect(byOne.records).toEqual(records);
  });

  it('starts LATEST after the last record, and at or after a sequence number', async () => {
    const latest = await iterator({ ShardIteratorType: 'LATEST' });
    expect((await streams.send(new GetRecordsCommand({ ShardIterator: latest }))).Records).toEqual([]);
    await db.send(new PutItemCommand({ TableName: 'orders', Item: { id: { S: 'b' } } }));
    const fresh = await readAll(latest);
    expect(fresh.records.map((r) => [r.eventName, r.dynamodb!.Keys])).toEqual([
      ['INSERT', { id: { S: 'b' } }],
    ]);
    // The iterator after the last page sees the next write, and only it.
    await db.send(new PutItemCommand({ TableName: 'orders', Item: { id: { S: 'c' } } }));
    expect((await readAll(fresh.next)).records.map((r) => r.dynamodb!.Keys)).toEqual([{ id: { S: 'c' } }]);

    const { records } = await readAll(await iterator({ ShardIteratorType: 'TRIM_HORIZON' }));
    const seq = records.map((r) => r.dynamodb!.SequenceNumber!);
    expect(seq).toHaveLength(5);
    const at = await readAll(
      await iterator({ ShardIteratorType: 'AT_SEQUENCE_NUMBER', SequenceNumber: seq[1] }),
    );
    expect(at.records.map((r) => r.dynamodb!.SequenceNumber)).toEqual(seq.slice(1));
    const after = await readAll(
      await iterator({ ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: seq[3] }),
    );
    expect(after.records.map((r) => r.dynamodb!.SequenceNumber)).toEqual(seq.slice(4));
    const last = await iterator({ ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: seq[4] });
    expect((await readAll(last)).records).toEqual([]);

    // A number the stream has not reached yet, and one that is not a sequence number.
    const ahead = (BigInt(seq[4]!) + 10n).toString().padStart(21, '0');
    expect(
      await failure(iterator({ ShardIteratorType: 'AT_SEQUENCE_NUMBER', SequenceNumber: ahead })),
    ).toMatchObject({ name: 'ValidationException' });
    expect(
      await failure(iterator({ ShardIteratorType: 'AT_SEQUENCE_NUMBER', SequenceNumber: '12' })),
    ).toMatchObject({ name: 'ValidationException' });
    expect(await failure(iterator({ ShardIteratorType: 'AT_SEQUENCE_NUMBER' }))).toMatchObject({
      name: 'ValidationException',
    });
  });

  it('refuses garbled and forged iterators, other shards and streams, in DynamoDB Streams words', async () => {
    const good = await iterator({ ShardIteratorType: 'TRIM_HORIZON' });
    const garbled = await failure(streams.send(new GetRecordsCommand({ ShardIterator: 'not-an-iterator' })));
    expect(garbled).toMatchObject({ name: 'ValidationException', message: 'Invalid ShardIterator' });
    expect(garbled.$metadata?.httpStatusCode).toBe(400);
    // Its position changed (another table, further back) under the same signature.
    const [body, mac] = good.split('.');
    const pos = JSON.parse(Buffer.from(body!, 'base64url').toString()) as unknown[];
    pos[2] = 'plain';
    pos[5] = 0;
    const forged = `${Buffer.from(JSON.stringify(pos)).toString('base64url')}.${mac}`;
    expect(await failure(streams.send(new GetRecordsCommand({ ShardIterator: forged })))).toMatchObject({
      name: 'ValidationException',
    });
    // A signature of its own making.
    const resigned = `${body}.${Buffer.alloc(32).toString('base64url')}`;
    expect(await failure(streams.send(new GetRecordsCommand({ ShardIterator: resigned })))).toMatchObject({
      name: 'ValidationException',
    });

    const shard = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!
      .Shards![0]!.ShardId!;
    const otherShard = await failure(
      streams.send(
        new GetShardIteratorCommand({
          StreamArn: arn,
          ShardId: 'shardId-00000001-00000000000000000',
          ShardIteratorType: 'LATEST',
        }),
      ),
    );
    expect(otherShard).toBeInstanceOf(ResourceNotFoundException);
    const label = arn.split('/stream/')[1]!;
    const noStream = arn.replace('/orders/', '/plain/');
    expect(await failure(streams.send(new DescribeStreamCommand({ StreamArn: noStream })))).toBeInstanceOf(
      ResourceNotFoundException,
    );
    expect(
      await failure(
        streams.send(new DescribeStreamCommand({ StreamArn: arn.replace(label, '2001-01-01T00:00:00.000') })),
      ),
    ).toBeInstanceOf(ResourceNotFoundException);
    expect(
      await failure(
        streams.send(
          new GetShardIteratorCommand({
            StreamArn: arn,
            ShardId: shard,
            ShardIteratorType: 'NEWEST' as 'LATEST',
          }),
        ),
      ),
    ).toMatchObject({ name: 'ValidationException' });
    expect(await failure(streams.send(new ListStreamsCommand({ TableName: 'nope' })))).toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it('ends a stream turned off, and starts another with a new label when it is turned on again', async () => {
    await db.send(table('flip', 'KEYS_ONLY'));
    await db.send(new PutItemCommand({ TableName: 'flip', Item: { id: { S: 'before' } } }));
    const old = (await streams.send(new ListStreamsCommand({ TableName: 'flip' }))).Streams![0]!.StreamArn!;
    const oldIterator = await iterator({ ShardIteratorType: 'TRIM_HORIZON' }, old);
    await db.send(
      new UpdateTableCommand({ TableName: 'flip', StreamSpecification: { StreamEnabled: false } }),
    );
    expect((await streams.send(new ListStreamsCommand({ TableName: 'flip' }))).Streams).toEqual([]);
    await new Promise((r) => setTimeout(r, 2));
    const on = await db.send(
      new UpdateTableCommand({
        TableName: 'flip',
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' },
      }),
    );
    const next = on.TableDescription!.LatestStreamArn!;
    expect(next).not.toBe(old);
    expect(await failure(streams.send(new DescribeStreamCommand({ StreamArn: old })))).toBeInstanceOf(
      ResourceNotFoundException,
    );
    expect(await failure(streams.send(new GetRecordsCommand({ ShardIterator: oldIterator })))).toBeInstanceOf(
      ResourceNotFoundException,
    );
    // The new stream holds only what was written since.
    await db.send(new PutItemCommand({ TableName: 'flip', Item: { id: { S: 'after' } } }));
    const { records } = await readAll(await iterator({ ShardIteratorType: 'TRIM_HORIZON' }, next));
    expect(records.map((r) => [r.dynamodb!.Keys, r.dynamodb!.StreamViewType])).toEqual([
      [{ id: { S: 'after' } }, 'NEW_IMAGE'],
    ]);
    // A sequence number of the stream before is gone.
    const d = (await streams.send(new DescribeStreamCommand({ StreamArn: next }))).StreamDescription!;
    expect(
      await failure(
        streams.send(
          new GetShardIteratorCommand({
            StreamArn: next,
            ShardId: d.Shards![0]!.ShardId,
            ShardIteratorType: 'AT_SEQUENCE_NUMBER',
            SequenceNumber: '1'.padStart(21, '0'),
          }),
        ),
      ),
    ).toBeInstanceOf(TrimmedDataAccessException);
  });

  it('lets a key limited to some tables read only their streams, and list streams only by table', async () => {
    const key = await n.client.createCredential({ name: 'plain-only', tables: ['plain'] });
    const limited = new DynamoDBStreamsClient(
      config(n, { credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey } }),
    );
    try {
      const it = await iterator({ ShardIteratorType: 'TRIM_HORIZON' });
      for (const call of [
        () => limited.send(new DescribeStreamCommand({ StreamArn: arn })),
        () => limited.send(new GetRecordsCommand({ ShardIterator: it })),
        () => limited.send(new ListStreamsCommand({})),
        () => limited.send(new ListStreamsCommand({ TableName: 'orders' })),
      ]) {
        expect(await failure(call())).toMatchObject({
          name: 'AccessDeniedException',
          message: expect.stringMatching(
            /not authorized to perform: dynamodb:\w+ on resource: arn:aws:dynamodb:/,
          ),
        });
      }
      expect((await limited.send(new ListStreamsCommand({ TableName: 'plain' }))).Streams).toEqual([]);
    } finally {
      limited.destroy();
    }
  });
});

describe.each(BACKENDS)('TTL through the DynamoDB API on %s, in store time', (backend) => {
  // The server's clock starts at real time (signatures are checked against it) and moves when told.
  const clock = new ManualClock(Date.now());
  let n: TestNimbus;
  let db: DynamoDBClient;
  let streams: DynamoDBStreamsClient;

  beforeAll(async () => {
    n = await startTestNimbus({ backend, clock });
    db = new DynamoDBClient(config(n));
    streams = new DynamoDBStreamsClient(config(n));
  });
  afterAll(async () => {
    db?.destroy();
    streams?.destroy();
    await n?.cleanup();
  });

  it('deletes an expired item at the next sweep, with a REMOVE record of the service', async () => {
    const created = await db.send(table('sessions', 'NEW_AND_OLD_IMAGES'));
    const arn = created.TableDescription!.LatestStreamArn!;
    await db.send(
      new UpdateTimeToLiveCommand({
        TableName: 'sessions',
        TimeToLiveSpecification: { AttributeName: 'expires', Enabled: true },
      }),
    );
    expect(
      (await db.send(new DescribeTimeToLiveCommand({ TableName: 'sessions' }))).TimeToLiveDescription,
    ).toEqual({
      TimeToLiveStatus: 'ENABLED',
      AttributeName: 'expires',
    });
    const now = Math.floor(clock.now() / 1000);
    const old = { id: { S: 'old' }, expires: { N: String(now - 60) } };
    await db.send(new PutItemCommand({ TableName: 'sessions', Item: old }));
    await db.send(
      new PutItemCommand({
        TableName: 'sessions',
        Item: { id: { S: 'live' }, expires: { N: String(now + 3600) } },
      }),
    );
    const get = (id: string) =>
      db.send(new GetItemCommand({ TableName: 'sessions', Key: { id: { S: id } } }));
    // Expired but not yet swept: DynamoDB, too, serves such an item until it is deleted.
    expect((await get('old')).Item).toEqual(old);

    clock.advance(30_000);
    await eventually(async () => (await get('old')).Item === undefined);
    expect((await get('live')).Item).toBeDefined();

    const d = (await streams.send(new DescribeStreamCommand({ StreamArn: arn }))).StreamDescription!;
    const { ShardIterator } = await streams.send(
      new GetShardIteratorCommand({
        StreamArn: arn,
        ShardId: d.Shards![0]!.ShardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    const { Records } = await streams.send(new GetRecordsCommand({ ShardIterator }));
    expect(Records!.map((r) => [r.eventName, r.dynamodb!.Keys!.id])).toEqual([
      ['INSERT', { S: 'old' }],
      ['INSERT', { S: 'live' }],
      ['REMOVE', { S: 'old' }],
    ]);
    const removal = Records![2]!;
    expect(removal.userIdentity).toEqual({ Type: 'Service', PrincipalId: 'dynamodb.amazonaws.com' });
    expect(removal.dynamodb!.OldImage).toEqual(old);
    expect(Records![0]!.userIdentity).toBeUndefined();

    // 15 minutes on, the iterator has expired (the client signs in the server's time).
    clock.advance(15 * 60_000 + 1);
    const later = new DynamoDBStreamsClient(config(n, { systemClockOffset: clock.now() - Date.now() }));
    try {
      expect(await failure(later.send(new GetRecordsCommand({ ShardIterator })))).toBeInstanceOf(
        ExpiredIteratorException,
      );
    } finally {
      later.destroy();
    }
  });
});

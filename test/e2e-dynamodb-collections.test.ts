// ItemCollectionSizeLimitExceededException and ItemCollectionMetrics through the AWS SDK, on both stores: a
// Nimbus started with a test-sized NIMBUS_ITEM_COLLECTION_LIMIT refuses a write that would grow one
// partition of a table with a local secondary index past it, and writes nothing of it.
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ItemCollectionSizeLimitExceededException,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startTestNimbus, type TestNimbus } from './helpers.js';

const LIMIT = 2000;

describe.each(BACKENDS)('DynamoDB item collections on %s', (backend) => {
  let n: TestNimbus;
  let db: DynamoDBClient;
  const pad = (bytes: number) => ({ S: 'x'.repeat(bytes) });
  const put = (pk: string, sk: string, bytes: number) =>
    db.send(
      new PutItemCommand({
        TableName: 'notes',
        Item: { user: { S: pk }, id: { S: sk }, day: { S: '2026-12-02' }, body: pad(bytes) },
        ReturnItemCollectionMetrics: 'SIZE',
      }),
    );

  beforeAll(async () => {
    n = await startTestNimbus({ backend, itemCollectionLimit: LIMIT });
    db = new DynamoDBClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
    for (const [name, lsi] of [
      ['notes', true],
      ['plain', false],
    ] as const) {
      await db.send(
        new CreateTableCommand({
          TableName: name,
          AttributeDefinitions: [
            { AttributeName: 'user', AttributeType: 'S' },
            { AttributeName: 'id', AttributeType: 'S' },
            ...(lsi ? [{ AttributeName: 'day', AttributeType: 'S' as const }] : []),
          ],
          KeySchema: [
            { AttributeName: 'user', KeyType: 'HASH' },
            { AttributeName: 'id', KeyType: 'RANGE' },
          ],
          ...(lsi
            ? {
                LocalSecondaryIndexes: [
                  {
                    IndexName: 'byDay',
                    KeySchema: [
                      { AttributeName: 'user', KeyType: 'HASH' },
                      { AttributeName: 'day', KeyType: 'RANGE' },
                    ],
                    Projection: { ProjectionType: 'KEYS_ONLY' },
                  },
                ],
              }
            : {}),
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
    }
  }, 60_000);
  afterAll(async () => {
    db?.destroy();
    await n?.stop();
  });

  it('answers ItemCollectionMetrics for a write to a table with a local index', async () => {
    const r = await put('ann', 'a', 100);
    expect(r.ItemCollectionMetrics).toEqual({
      ItemCollectionKey: { user: { S: 'ann' } },
      SizeEstimateRangeGB: [0, 1],
    });
    // Without the request, or on a table without a local index, there are none.
    const plain = await db.send(
      new PutItemCommand({
        TableName: 'plain',
        Item: { user: { S: 'ann' }, id: { S: 'a' }, body: pad(5000) },
        ReturnItemCollectionMetrics: 'SIZE',
      }),
    );
    expect(plain.ItemCollectionMetrics).toBeUndefined();
    const quiet = await db.send(
      new PutItemCommand({
        TableName: 'notes',
        Item: { user: { S: 'ann' }, id: { S: 'b' }, day: { S: 'd' } },
      }),
    );
    expect(quiet.ItemCollectionMetrics).toBeUndefined();
  });

  it('refuses a write that would grow the item collection past the limit, writing nothing', async () => {
    await put('bob', 'a', 1200);
    const err = await put('bob', 'b', 1200).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ItemCollectionSizeLimitExceededException);
    expect(err).toMatchObject({
      name: 'ItemCollectionSizeLimitExceededException',
      message: 'Item collection size limit exceeded',
      $metadata: { httpStatusCode: 400 },
    });
    const got = await db.send(
      new GetItemCommand({ TableName: 'notes', Key: { user: { S: 'bob' }, id: { S: 'b' } } }),
    );
    expect(got.Item).toBeUndefined();
    const q = await db.send(
      new QueryCommand({
        TableName: 'notes',
        IndexName: 'byDay',
        KeyConditionExpression: '#u = :u',
        ExpressionAttributeNames: { '#u': 'user' },
        ExpressionAttributeValues: { ':u': { S: 'bob' } },
      }),
    );
    expect(q.Count).toBe(1);
    // An update that grows it is refused the same way; one that shrinks it makes room again.
    const grow = db.send(
      new UpdateItemCommand({
        TableName: 'notes',
        Key: { user: { S: 'bob' }, id: { S: 'a' } },
        UpdateExpression: 'SET extra = :x',
        ExpressionAttributeValues: { ':x': pad(1000) },
      }),
    );
    await expect(grow).rejects.toBeInstanceOf(ItemCollectionSizeLimitExceededException);
    await put('bob', 'a', 10);
    await expect(put('bob', 'b', 1200)).resolves.toMatchObject({
      ItemCollectionMetrics: { ItemCollectionKey: { user: { S: 'bob' } } },
    });
    // The table without a local index has no such limit.
    for (const id of ['a', 'b', 'c']) {
      await db.send(
        new PutItemCommand({
          TableName: 'plain',
          Item: { user: { S: 'bob' }, id: { S: id }, body: pad(1500) },
        }),
      );
    }
  });

  it('cancels a transaction with the reason ItemCollectionSizeLimitExceeded', async () => {
    const item = (id: string, bytes: number) => ({
      Put: {
        TableName: 'notes',
        Item: { user: { S: 'cy' }, id: { S: id }, day: { S: 'd' }, body: pad(bytes) },
      },
    });
    const err = await db
      .send(new TransactWriteItemsCommand({ TransactItems: [item('a', 1200), item('b', 1200)] }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionCanceledException);
    const reasons = (err as TransactionCanceledException).CancellationReasons!.map((r) => r.Code);
    expect(reasons).toContain('ItemCollectionSizeLimitExceeded');
    const got = await db.send(
      new GetItemCommand({ TableName: 'notes', Key: { user: { S: 'cy' }, id: { S: 'a' } } }),
    );
    expect(got.Item).toBeUndefined();
  });

  it('refuses an unknown ReturnItemCollectionMetrics before writing', async () => {
    const err = await db
      .send(
        new PutItemCommand({
          TableName: 'notes',
          Item: { user: { S: 'dee' }, id: { S: 'a' }, day: { S: 'd' } },
          ReturnItemCollectionMetrics: 'ALL' as 'SIZE',
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ValidationException' });
    const got = await db.send(
      new GetItemCommand({ TableName: 'notes', Key: { user: { S: 'dee' }, id: { S: 'a' } } }),
    );
    expect(got.Item).toBeUndefined();
  });
});

// The DynamoDB API through the official AWS SDK v3 (client-dynamodb and lib-dynamodb's DocumentClient), on
// both stores: tables, items with conditions and update expressions, queries and scans with pagination,
// batches, transactions, and the errors DynamoDB gives, in its words.
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteItemCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  QueryCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  ScanCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand as DocQuery,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, BIN, FIXTURES, eventually, startTestNimbus, type TestNimbus } from './helpers.js';

const run = promisify(execFile);

describe.each(BACKENDS)('DynamoDB API on %s', (backend) => {
  let n: TestNimbus;
  let db: DynamoDBClient;
  let doc: DynamoDBDocumentClient;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    db = new DynamoDBClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
    doc = DynamoDBDocumentClient.from(db);
    await db.send(
      new CreateTableCommand({
        TableName: 'orders',
        AttributeDefinitions: [
          { AttributeName: 'customer', AttributeType: 'S' },
          { AttributeName: 'ts', AttributeType: 'N' },
          { AttributeName: 'status', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'customer', KeyType: 'HASH' },
          { AttributeName: 'ts', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'byStatus',
            KeySchema: [{ AttributeName: 'status', KeyType: 'HASH' }],
            Projection: { ProjectionType: 'KEYS_ONLY' },
          },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  });
  afterAll(async () => {
    db?.destroy();
    await n?.cleanup();
  });

  it('creates, describes and lists tables, and refuses a second one of the same name', async () => {
    const d = await db.send(new DescribeTableCommand({ TableName: 'orders' }));
    expect(d.Table).toMatchObject({
      TableName: 'orders',
      TableStatus: 'ACTIVE',
      KeySchema: [
        { AttributeName: 'customer', KeyType: 'HASH' },
        { AttributeName: 'ts', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [{ IndexName: 'byStatus', IndexStatus: 'ACTIVE' }],
      TableArn: 'arn:aws:dynamodb:us-east-1:000000000000:table/orders',
    });
    expect((await db.send(new ListTablesCommand({}))).TableNames).toContain('orders');
    await expect(
      db.send(
        new CreateTableCommand({
          TableName: 'orders',
          AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
          KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      ),
    ).rejects.toBeInstanceOf(ResourceInUseException);
  });

  it('puts, gets, updates and deletes items with conditions, as DynamoDB answers', async () => {
    await db.send(
      new PutItemCommand({
        TableName: 'orders',
        Item: {
          customer: { S: 'ada' },
          ts: { N: '1' },
          status: { S: 'open' },
          total: { N: '12.50' },
          tags: { SS: ['a', 'b'] },
          lines: { L: [{ M: { sku: { S: 'x' }, qty: { N: '2' } } }] },
        },
      }),
    );
    const got = await db.send(
      new GetItemCommand({ TableName: 'orders', Key: { customer: { S: 'ada' }, ts: { N: '1' } } }),
    );
    expect(got.Item).toMatchObject({ total: { N: '12.5' }, tags: { SS: ['a', 'b'] } });
    const upd = await db.send(
      new UpdateItemCommand({
        TableName: 'orders',
        Key: { customer: { S: 'ada' }, ts: { N: '1' } },
        UpdateExpression:
          'SET #t = #t + :inc, #l = list_append(#l, :more), note = if_not_exists(note, :n) REMOVE tags ADD visits :one',
        ConditionExpression: '#s = :open',
        ExpressionAttributeNames: { '#t': 'total', '#s': 'status', '#l': 'lines' },
        ExpressionAttributeValues: {
          ':inc': { N: '0.25' },
          ':more': { L: [{ M: { sku: { S: 'y' } } }] },
          ':n': { S: 'first' },
          ':one': { N: '1' },
          ':open': { S: 'open' },
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    expect(upd.Attributes).toMatchObject({ total: { N: '12.75' }, note: { S: 'first' }, visits: { N: '1' } });
    expect(upd.Attributes?.['tags']).toBeUndefined();
    expect(upd.Attributes?.['lines']).toEqual({
      L: [{ M: { sku: { S: 'x' }, qty: { N: '2' } } }, { M: { sku: { S: 'y' } } }],
    });
    const failed = await db
      .send(
        new PutItemCommand({
          TableName: 'orders',
          Item: { customer: { S: 'ada' }, ts: { N: '1' } },
          ConditionExpression: 'attribute_not_exists(customer)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      )
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ConditionalCheckFailedException);
    expect((failed as ConditionalCheckFailedException).message).toBe('The conditional request failed');
    expect((failed as ConditionalCheckFailedException).Item).toMatchObject({ status: { S: 'open' } });
    const del = await db.send(
      new DeleteItemCommand({
        TableName: 'orders',
        Key: { customer: { S: 'ada' }, ts: { N: '1' } },
        ReturnValues: 'ALL_OLD',
      }),
    );
    expect(del.Attributes).toMatchObject({ note: { S: 'first' } });
    const gone = await db.send(
      new GetItemCommand({ TableName: 'orders', Key: { customer: { S: 'ada' }, ts: { N: '1' } } }),
    );
    expect(gone.Item).toBeUndefined();
  });

  it('queries a partition by sort key range in order, both ways, with a filter, a limit and pagination', async () => {
    for (let i = 1; i <= 12; i++) {
      await doc.send(
        new PutCommand({
          TableName: 'orders',
          Item: { customer: 'bob', ts: i * 10, status: i % 2 ? 'open' : 'done', n: i },
        }),
      );
    }
    await doc.send(
      new PutCommand({ TableName: 'orders', Item: { customer: 'carl', ts: 15, status: 'open' } }),
    );
    const all = await doc.send(
      new DocQuery({
        TableName: 'orders',
        KeyConditionExpression: 'customer = :c AND ts BETWEEN :lo AND :hi',
        ExpressionAttributeValues: { ':c': 'bob', ':lo': 20, ':hi': 90 },
      }),
    );
    expect(all.Items?.map((i) => i['ts'])).toEqual([20, 30, 40, 50, 60, 70, 80, 90]);
    const back = await doc.send(
      new DocQuery({
        TableName: 'orders',
        KeyConditionExpression: 'customer = :c AND ts > :lo',
        FilterExpression: '#s = :open',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':c': 'bob', ':lo': 50, ':open': 'open' },
        ScanIndexForward: false,
      }),
    );
    expect(back.Items?.map((i) => i['ts'])).toEqual([110, 90, 70]);
    expect(back).toMatchObject({ Count: 3, ScannedCount: 7 });
    const pages: number[][] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await doc.send(
        new DocQuery({
          TableName: 'orders',
          KeyConditionExpression: 'customer = :c',
          ExpressionAttributeValues: { ':c': 'bob' },
          Limit: 5,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      pages.push((page.Items ?? []).map((i) => i['ts'] as number));
      start = page.LastEvaluatedKey;
    } while (start);
    expect(pages.flat()).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]);
    expect(pages[0]).toHaveLength(5);
    const count = await db.send(
      new QueryCommand({
        TableName: 'orders',
        IndexName: 'byStatus',
        KeyConditionExpression: '#s = :open',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':open': { S: 'open' } },
        Select: 'COUNT',
      }),
    );
    expect(count.Count).toBe(7);
    expect(count.Items).toBeUndefined();
  });

  it('scans in parallel segments that together hold every item once', async () => {
    const seen: string[] = [];
    for (let segment = 0; segment < 3; segment++) {
      const page = await db.send(
        new ScanCommand({ TableName: 'orders', Segment: segment, TotalSegments: 3 }),
      );
      seen.push(...(page.Items ?? []).map((i) => `${i['customer']!.S}/${i['ts']!.N}`));
    }
    const whole = await db.send(new ScanCommand({ TableName: 'orders' }));
    expect(seen.sort()).toEqual((whole.Items ?? []).map((i) => `${i['customer']!.S}/${i['ts']!.N}`).sort());
    expect(seen.length).toBe(whole.Count);
  });

  it('writes and reads batches', async () => {
    await db.send(
      new BatchWriteItemCommand({
        RequestItems: {
          orders: [
            { PutRequest: { Item: { customer: { S: 'dan' }, ts: { N: '1' } } } },
            { PutRequest: { Item: { customer: { S: 'dan' }, ts: { N: '2' } } } },
            { DeleteRequest: { Key: { customer: { S: 'carl' }, ts: { N: '15' } } } },
          ],
        },
      }),
    );
    const r = await db.send(
      new BatchGetItemCommand({
        RequestItems: {
          orders: {
            Keys: [
              { customer: { S: 'dan' }, ts: { N: '1' } },
              { customer: { S: 'dan' }, ts: { N: '2' } },
              { customer: { S: 'carl' }, ts: { N: '15' } },
            ],
          },
        },
      }),
    );
    expect(r.Responses?.['orders']).toHaveLength(2);
    expect(r.UnprocessedKeys).toEqual({});
  });

  it('runs a transaction all or nothing and names the failed condition among the cancellation reasons', async () => {
    const err = await db
      .send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: 'orders', Item: { customer: { S: 'eve' }, ts: { N: '1' } } } },
            {
              ConditionCheck: {
                TableName: 'orders',
                Key: { customer: { S: 'dan' }, ts: { N: '1' } },
                ConditionExpression: 'attribute_not_exists(customer)',
              },
            },
          ],
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionCanceledException);
    expect((err as TransactionCanceledException).CancellationReasons?.map((r) => r.Code)).toEqual([
      'None',
      'ConditionalCheckFailed',
    ]);
    const eve = await db.send(
      new GetItemCommand({ TableName: 'orders', Key: { customer: { S: 'eve' }, ts: { N: '1' } } }),
    );
    expect(eve.Item).toBeUndefined();
    const token = 'tok-1';
    const ok = () =>
      db.send(
        new TransactWriteItemsCommand({
          ClientRequestToken: token,
          TransactItems: [
            {
              Update: {
                TableName: 'orders',
                Key: { customer: { S: 'eve' }, ts: { N: '1' } },
                UpdateExpression: 'ADD n :one',
                ExpressionAttributeValues: { ':one': { N: '1' } },
              },
            },
          ],
        }),
      );
    await ok();
    await ok();
    // The same token within 10 minutes is the same transaction: it ran once.
    const after = await doc.send(new GetCommand({ TableName: 'orders', Key: { customer: 'eve', ts: 1 } }));
    expect(after.Item?.['n']).toBe(1);
  });

  it('keeps numbers exact to 38 digits and orders them by value', async () => {
    const big = '12345678901234567890123456789012345678';
    await db.send(
      new PutItemCommand({ TableName: 'orders', Item: { customer: { S: 'num' }, ts: { N: big } } }),
    );
    await db.send(
      new PutItemCommand({ TableName: 'orders', Item: { customer: { S: 'num' }, ts: { N: '-1.5' } } }),
    );
    await db.send(
      new PutItemCommand({ TableName: 'orders', Item: { customer: { S: 'num' }, ts: { N: '0.001' } } }),
    );
    const q = await db.send(
      new QueryCommand({
        TableName: 'orders',
        KeyConditionExpression: 'customer = :c',
        ExpressionAttributeValues: { ':c': { S: 'num' } },
      }),
    );
    expect(q.Items?.map((i) => i['ts']!.N)).toEqual(['-1.5', '0.001', big]);
    const up = await db.send(
      new UpdateItemCommand({
        TableName: 'orders',
        Key: { customer: { S: 'num' }, ts: { N: big } },
        UpdateExpression: 'SET v = :a + :b',
        ExpressionAttributeValues: { ':a': { N: '0.1' }, ':b': { N: '0.2' } },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    expect(up.Attributes).toEqual({ v: { N: '0.3' } });
  });

  it("answers DynamoDB's errors in DynamoDB's words and writes nothing", async () => {
    const err = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: { name: string; message: string }) => ({ name: e.name, message: e.message }),
      );
    expect(await err(db.send(new GetItemCommand({ TableName: 'nope', Key: { id: { S: 'x' } } })))).toEqual({
      name: 'ResourceNotFoundException',
      message: 'Requested resource not found',
    });
    expect(
      await err(db.send(new GetItemCommand({ TableName: 'orders', Key: { customer: { S: 'x' } } }))),
    ).toEqual({
      name: 'ValidationException',
      message: 'The provided key element does not match the schema',
    });
    expect(
      await err(
        db.send(
          new UpdateItemCommand({
            TableName: 'orders',
            Key: { customer: { S: 'zed' }, ts: { N: '1' } },
            UpdateExpression: 'SET status = :s',
            ExpressionAttributeValues: { ':s': { S: 'x' } },
          }),
        ),
      ),
    ).toMatchObject({
      name: 'ValidationException',
      message: expect.stringMatching(/reserved keyword: status/),
    });
    expect(
      await err(
        db.send(
          new UpdateItemCommand({
            TableName: 'orders',
            Key: { customer: { S: 'zed' }, ts: { N: '1' } },
            UpdateExpression: 'SET a = ',
          }),
        ),
      ),
    ).toMatchObject({
      name: 'ValidationException',
      message: expect.stringMatching(/^Invalid UpdateExpression: Syntax error/),
    });
    expect(
      await err(
        db.send(
          new PutItemCommand({
            TableName: 'orders',
            Item: { customer: { S: 'zed' }, ts: { N: '1' }, blob: { S: 'x'.repeat(410 * 1024) } },
          }),
        ),
      ),
    ).toEqual({ name: 'ValidationException', message: 'Item size has exceeded the maximum allowed size' });
    expect(
      await err(
        db.send(
          new PutItemCommand({ TableName: 'orders', Item: { customer: { S: 'zed' }, ts: { S: 'x' } } }),
        ),
      ),
    ).toEqual({
      name: 'ValidationException',
      message: 'One or more parameter values were invalid: Type mismatch for key ts expected: N actual: S',
    });
    const none = await db.send(
      new GetItemCommand({ TableName: 'orders', Key: { customer: { S: 'zed' }, ts: { N: '1' } } }),
    );
    expect(none.Item).toBeUndefined();
  });

  it('refuses a bad signature and an unknown access key', async () => {
    const forged = new DynamoDBClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: 'wrong' },
      maxAttempts: 1,
    });
    const unknown = new DynamoDBClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    try {
      await expect(forged.send(new ListTablesCommand({}))).rejects.toMatchObject({
        name: 'InvalidSignatureException',
      });
      await expect(unknown.send(new ListTablesCommand({}))).rejects.toMatchObject({
        name: 'UnrecognizedClientException',
      });
    } finally {
      forged.destroy();
      unknown.destroy();
    }
  });

  it('adds an index to a table with items and answers queries on it', async () => {
    await db.send(
      new UpdateTableCommand({
        TableName: 'orders',
        AttributeDefinitions: [{ AttributeName: 'n', AttributeType: 'N' }],
        GlobalSecondaryIndexUpdates: [
          {
            Create: {
              IndexName: 'byN',
              KeySchema: [{ AttributeName: 'n', KeyType: 'HASH' }],
              Projection: { ProjectionType: 'ALL' },
            },
          },
        ],
      }),
    );
    const q = await doc.send(
      new DocQuery({
        TableName: 'orders',
        IndexName: 'byN',
        KeyConditionExpression: 'n = :n',
        ExpressionAttributeValues: { ':n': 3 },
      }),
    );
    expect(q.Items?.map((i) => `${i['customer']}/${i['ts']}`)).toEqual(['bob/30']);
    await doc.send(
      new UpdateCommand({
        TableName: 'orders',
        Key: { customer: 'bob', ts: 30 },
        UpdateExpression: 'SET n = :m',
        ExpressionAttributeValues: { ':m': 99 },
      }),
    );
    const moved = await doc.send(
      new DocQuery({
        TableName: 'orders',
        IndexName: 'byN',
        KeyConditionExpression: 'n = :n',
        ExpressionAttributeValues: { ':n': 99 },
      }),
    );
    expect(moved.Items).toHaveLength(1);
  });

  it('deletes a table with its items', async () => {
    await db.send(
      new CreateTableCommand({
        TableName: 'scratch',
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    await doc.send(new PutCommand({ TableName: 'scratch', Item: { id: 'a' } }));
    await db.send(new DeleteTableCommand({ TableName: 'scratch' }));
    await expect(db.send(new DescribeTableCommand({ TableName: 'scratch' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });
});

describe.each(BACKENDS)('tables from the manifest, used by functions, on %s', (backend) => {
  let n: TestNimbus;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'tables'));
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  it('lets a function on lib-dynamodb save and read items with its own credentials', async () => {
    const post = await fetch(`${n.gatewayUrl}/items`, {
      method: 'POST',
      body: JSON.stringify({ id: 'a1', data: { colour: 'red', n: 3 } }),
    });
    expect(post.status).toBe(201);
    const get = await fetch(`${n.gatewayUrl}/items/a1`);
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ id: 'a1', data: { colour: 'red', n: 3 } });
    expect((await fetch(`${n.gatewayUrl}/items/none`)).status).toBe(404);
  });

  it('refuses a function the tables its manifest does not grant it', async () => {
    const r = await fetch(`${n.gatewayUrl}/snoop`);
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringMatching(
        /not authorized to perform: dynamodb:GetItem on resource: .*table\/secrets/,
      ),
    });
  });

  it('shows the tables and their items in the CLI', async () => {
    const env = { ...process.env, NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey };
    const ls = await run(process.execPath, [BIN, 'table', 'ls'], { env });
    expect(ls.stdout).toMatch(/items\s+id S\s+-\s+-\s+-\s+1\s/);
    const scan = await run(process.execPath, [BIN, 'table', 'scan', 'items'], { env });
    expect(scan.stdout.trim()).toBe(JSON.stringify({ id: 'a1', data: { colour: 'red', n: 3 } }));
    const got = await run(process.execPath, [BIN, 'table', 'get', 'items', '{"id":"a1"}', '--json'], { env });
    expect(JSON.parse(got.stdout).item).toEqual({
      id: { S: 'a1' },
      data: { M: { colour: { S: 'red' }, n: { N: '3' } } },
    });
    const missing = await run(process.execPath, [BIN, 'table', 'get', 'items', '{"id":"zz"}'], { env }).catch(
      (e) => e,
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('keeps a table that a later deploy leaves out, and refuses a change of its key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-tables-'));
    try {
      writeFileSync(join(dir, 'index.js'), 'exports.h = async () => ({});\n');
      writeFileSync(
        join(dir, 'nimbus.yaml'),
        'service: shop\ntables:\n  items:\n    key: { sku: S }\nfunctions:\n  save:\n    handler: index.h\n',
      );
      const err = await n.deploy(dir).catch((e: unknown) => e as Error);
      expect((err as Error).message).toMatch(/tables\.items\.key: changes the key of table "items"/);
      writeFileSync(join(dir, 'nimbus.yaml'), 'service: shop\nfunctions:\n  save:\n    handler: index.h\n');
      await n.deploy(dir);
      expect((await n.client.tables()).map((t) => t.name).sort()).toEqual(['items', 'secrets']);
      expect((await n.client.scanTable('items')).items).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(BACKENDS)('table triggers on %s', (backend) => {
  let n: TestNimbus;
  let db: DynamoDBClient;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'streams'));
    db = new DynamoDBClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    db?.destroy();
    await n?.cleanup();
  });

  const records = async (fn: string) =>
    (
      (await (
        await fetch(`${n.apiUrl}/v1/invocations?function=${fn}&limit=1000`, {
          headers: { authorization: `Bearer ${n.apiKey}` },
        })
      ).json()) as { invocations: any[] }
    ).invocations;
  const logged = async (fn: string, tag: string) =>
    (await records(fn))
      .sort((a, b) => a.seq - b.seq)
      .flatMap((r) => [...String(r.logs).matchAll(new RegExp(`${tag} (.*)\\n`, 'g'))].map((m) => m[1]!));

  it('delivers INSERT, MODIFY and REMOVE in order with their images, through the stream', async () => {
    await db.send(
      new PutItemCommand({ TableName: 'notes', Item: { id: { S: 'n1' }, text: { S: 'hello' } } }),
    );
    await db.send(
      new UpdateItemCommand({
        TableName: 'notes',
        Key: { id: { S: 'n1' } },
        UpdateExpression: 'SET #t = :t',
        ExpressionAttributeNames: { '#t': 'text' },
        ExpressionAttributeValues: { ':t': { S: 'world' } },
      }),
    );
    await db.send(new DeleteItemCommand({ TableName: 'notes', Key: { id: { S: 'n1' } } }));
    const seen = await eventually(async () => {
      const all = (await logged('watcher', 'REC')).map((l) => JSON.parse(l));
      return all.length >= 3 ? all : undefined;
    });
    expect(seen.map((r) => [r.name, r.id, r.text, r.old, r.source])).toEqual([
      ['INSERT', 'n1', 'hello', null, 'aws:dynamodb'],
      ['MODIFY', 'n1', 'world', 'hello', 'aws:dynamodb'],
      ['REMOVE', 'n1', 'world', 'world', 'aws:dynamodb'],
    ]);
    const seqs = seen.map((r) => r.seq);
    expect([...seqs].sort()).toEqual(seqs);
    expect((await records('watcher')).every((r) => r.trigger === 'stream')).toBe(true);
  });

  it('filters records, retries a failing one, and skips it after maximumRetryAttempts while later ones go on', async () => {
    await db.send(
      new PutItemCommand({ TableName: 'notes', Item: { id: { S: 'p1' }, text: { S: 'poison' } } }),
    );
    await db.send(new PutItemCommand({ TableName: 'notes', Item: { id: { S: 'p2' }, text: { S: 'fine' } } }));
    const picks = await eventually(async () => {
      const all = await logged('picky', 'PICK');
      return all.filter((p) => p === 'poison').length >= 2 && all.includes('fine') ? all : undefined;
    }, 20_000);
    // Only INSERTs reach it (the MODIFY and REMOVE of n1 are filtered out); poison is tried twice, then skipped.
    expect(picks.filter((p) => p === 'poison')).toHaveLength(2);
    expect(picks.filter((p) => p === 'world')).toHaveLength(0);
    // After the skip, the stream goes on: a later note reaches it once.
    await db.send(
      new PutItemCommand({ TableName: 'notes', Item: { id: { S: 'p3' }, text: { S: 'later' } } }),
    );
    const after = await eventually(async () => {
      const all = await logged('picky', 'PICK');
      return all.includes('later') ? all : undefined;
    });
    expect(after.filter((p) => p === 'later')).toHaveLength(1);
    expect(after.filter((p) => p === 'poison')).toHaveLength(2);
    // The skipped batch is described on the onFailure queue, as Lambda's failure destination record.
    const peeked = await fetch(`${n.apiUrl}/v1/queues/stream-failures/messages?limit=10`, {
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    expect(peeked.status).toBe(200);
    const messages = ((await peeked.json()) as { messages: { body: string }[] }).messages;
    expect(messages).toHaveLength(1);
    const failure = JSON.parse(messages[0]!.body);
    expect(failure.requestContext).toMatchObject({
      condition: 'RetryAttemptsExhausted',
      functionArn: expect.stringMatching(/:function:picky$/),
      approximateInvokeCount: 2,
    });
    // picky reported the record in batchItemFailures: the invocation itself succeeded.
    expect(failure.responseContext).toMatchObject({ statusCode: 200, executedVersion: '$LATEST' });
    // It names the records skipped, from poison to the end of its batch (fine, when it came in the same one).
    const info = failure.DDBStreamBatchInfo;
    expect(info.streamArn).toMatch(/:table\/notes\/stream\//);
    expect(info.batchSize).toBeGreaterThanOrEqual(1);
    expect(info.startSequenceNumber <= info.endSequenceNumber).toBe(true);
  });
});

// PartiQL through the official AWS SDK v3 (client-dynamodb's ExecuteStatement, BatchExecuteStatement and
// ExecuteTransaction, and lib-dynamodb's ExecuteStatementCommand with native values), on both stores: SELECT
// as a Query or a Scan with paging, INSERT, UPDATE and DELETE with RETURNING, the errors DynamoDB gives in
// its words, the caller's table grants, and writes that reach the table's stream like PutItem's do.
import {
  BatchExecuteStatementCommand,
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DuplicateItemException,
  DynamoDBClient,
  ExecuteStatementCommand,
  ExecuteTransactionCommand,
  GetItemCommand,
  ResourceNotFoundException,
  TransactionCanceledException,
  type AttributeValue,
  type ExecuteStatementCommandInput,
} from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { DynamoDBDocumentClient, ExecuteStatementCommand as DocStatement } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startTestNimbus, type TestNimbus } from './helpers.js';

/** The error a promise rejects with (the test fails if it resolves). */
async function failure(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  const v = await p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  if (!v) throw new Error('expected the call to fail');
  return v;
}

describe.each(BACKENDS)('PartiQL on %s', (backend) => {
  let n: TestNimbus;
  let db: DynamoDBClient;
  let doc: DynamoDBDocumentClient;
  const client = (accessKeyId: string, secretAccessKey: string) =>
    new DynamoDBClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 1,
    });
  const run = (
    Statement: string,
    Parameters?: AttributeValue[],
    more: Partial<ExecuteStatementCommandInput> = {},
  ) => db.send(new ExecuteStatementCommand({ Statement, ...(Parameters ? { Parameters } : {}), ...more }));
  const item = (artist: string, song: string, extra: Record<string, AttributeValue> = {}) => ({
    artist: { S: artist },
    song: { S: song },
    ...extra,
  });

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    db = client('nimbus', n.apiKey);
    doc = DynamoDBDocumentClient.from(db);
    await db.send(
      new CreateTableCommand({
        TableName: 'music',
        AttributeDefinitions: [
          { AttributeName: 'artist', AttributeType: 'S' },
          { AttributeName: 'song', AttributeType: 'S' },
          { AttributeName: 'genre', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'artist', KeyType: 'HASH' },
          { AttributeName: 'song', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'byGenre',
            KeySchema: [{ AttributeName: 'genre', KeyType: 'HASH' }],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
      }),
    );
    for (const [artist, song, genre, year] of [
      ['ada', 's1', 'jazz', '1990'],
      ['ada', 's2', 'jazz', '1991'],
      ['ada', 's3', 'rock', '1992'],
      ['ada', 't1', 'rock', '1993'],
      ['bo', 's1', 'jazz', '2001'],
      ['bo', 's2', 'pop', '2002'],
      ['cy', 's1', 'pop', '2010'],
    ] as const) {
      await run(`INSERT INTO "music" VALUE {'artist': ?, 'song': ?, 'genre': ?, 'year': ${year}}`, [
        { S: artist },
        { S: song },
        { S: genre },
      ]);
    }
  });
  afterAll(async () => {
    db?.destroy();
    await n?.cleanup();
  });

  it('inserts an item with every literal, and refuses a second one with the same key', async () => {
    await run(
      `INSERT INTO music VALUE {'artist': 'dee', 'song': 'x', 'n': -12.50, 'ok': TRUE, 'z': NULL, 'tags': <<'a', 'b'>>, 'ns': <<1, 2>>, 'l': [1, 'two', {'three': 3}], 'm': {'k': ?}}`,
      [{ L: [{ S: 'p' }] }],
    );
    const got = await db.send(new GetItemCommand({ TableName: 'music', Key: item('dee', 'x') }));
    expect(got.Item).toEqual({
      ...item('dee', 'x'),
      n: { N: '-12.5' },
      ok: { BOOL: true },
      z: { NULL: true },
      tags: { SS: ['a', 'b'] },
      ns: { NS: ['1', '2'] },
      l: { L: [{ N: '1' }, { S: 'two' }, { M: { three: { N: '3' } } }] },
      m: { M: { k: { L: [{ S: 'p' }] } } },
    });
    const dup = await failure(run(`INSERT INTO music VALUE {'artist': 'dee', 'song': 'x'}`));
    expect(dup).toBeInstanceOf(DuplicateItemException);
    expect(dup.message).toBe('Duplicate primary key exists in table');
    // Nothing was written by the refused INSERT.
    const again = await db.send(new GetItemCommand({ TableName: 'music', Key: item('dee', 'x') }));
    expect(again.Item?.['ok']).toEqual({ BOOL: true });
    await run(`DELETE FROM music WHERE artist = 'dee' AND song = 'x'`);
  });

  it('selects a partition by sort key range in order, with a projection, ORDER BY and pages of Limit', async () => {
    const r = await run(`SELECT song, "year" FROM "music" WHERE artist = ? AND begins_with(song, 's')`, [
      { S: 'ada' },
    ]);
    expect(r.Items).toEqual([
      { song: { S: 's1' }, year: { N: '1990' } },
      { song: { S: 's2' }, year: { N: '1991' } },
      { song: { S: 's3' }, year: { N: '1992' } },
    ]);
    expect(r.NextToken).toBeUndefined();
    const desc = await run(`SELECT song FROM music WHERE artist = 'ada' AND song > 's1' ORDER BY song DESC`);
    expect(desc.Items!.map((i) => i['song']!.S)).toEqual(['t1', 's3', 's2']);

    const pages: string[][] = [];
    let token: string | undefined;
    do {
      const page = await run(
        `SELECT * FROM music WHERE artist IN ['bo', 'ada', 'cy'] AND "year" > 1990`,
        undefined,
        {
          Limit: 2,
          ...(token ? { NextToken: token } : {}),
        },
      );
      pages.push(page.Items!.map((i) => `${i['artist']!.S}/${i['song']!.S}`));
      token = page.NextToken;
    } while (token);
    // Limit counts the items read (ada/s1 is read and filtered out); IN reads each partition in turn.
    expect(pages.flat()).toEqual(['bo/s1', 'bo/s2', 'ada/s2', 'ada/s3', 'ada/t1', 'cy/s1']);
    expect(pages[0]).toEqual(['bo/s1', 'bo/s2']);
    expect(pages.every((p) => p.length <= 2)).toBe(true);
  });

  it('scans when the partition key is not pinned, filtering with the whole WHERE, and reads an index', async () => {
    const r = await run(
      `SELECT artist, song FROM music WHERE ("year" BETWEEN 1991 AND 2002 AND NOT genre = 'rock') OR song IS MISSING`,
      undefined,
      { ConsistentRead: true },
    );
    expect(r.Items!.map((i) => `${i['artist']!.S}/${i['song']!.S}`).sort()).toEqual([
      'ada/s2',
      'bo/s1',
      'bo/s2',
    ]);
    const paged: unknown[] = [];
    let token: string | undefined;
    do {
      const page = await run(`SELECT * FROM music WHERE contains(genre, 'o')`, undefined, {
        Limit: 3,
        ...(token ? { NextToken: token } : {}),
      });
      paged.push(...page.Items!);
      token = page.NextToken;
    } while (token);
    expect(paged).toHaveLength(4); // rock ×2, pop ×2
    const jazz = await run(`SELECT artist FROM "music"."byGenre" WHERE genre = 'jazz'`);
    expect(jazz.Items!.map((i) => i['artist']!.S).sort()).toEqual(['ada', 'ada', 'bo']);
    const consistent = await failure(
      run(`SELECT * FROM music."byGenre" WHERE genre = 'jazz'`, undefined, { ConsistentRead: true }),
    );
    expect(consistent.message).toBe('Consistent reads are not supported on global secondary indexes');
    const bad = await failure(
      run(`SELECT * FROM music WHERE genre = 'jazz'`, undefined, { NextToken: 'bm9wZQ==' }),
    );
    expect(bad).toMatchObject({ name: 'ValidationException', message: 'Invalid NextToken' });
  });

  it('updates with SET, REMOVE and list_append, returning what was asked; a missing item fails its condition', async () => {
    await run(`INSERT INTO music VALUE {'artist': 'eve', 'song': 'u', 'plays': 1, 'l': [1], 'old': 'x'}`);
    const r = await run(
      `UPDATE music SET plays = plays + ?, l = list_append(l, [2]) SET note = 'hi' REMOVE old WHERE artist = 'eve' AND song = 'u' RETURNING ALL NEW *`,
      [{ N: '2' }],
    );
    expect(r.Items).toEqual([
      { ...item('eve', 'u'), plays: { N: '3' }, l: { L: [{ N: '1' }, { N: '2' }] }, note: { S: 'hi' } },
    ]);
    const modified = await run(
      `UPDATE music SET plays = 10 WHERE artist = 'eve' AND song = 'u' RETURNING MODIFIED OLD *`,
    );
    expect(modified.Items).toEqual([{ plays: { N: '3' } }]);
    const none = await run(`UPDATE music SET plays = 11 WHERE artist = 'eve' AND song = 'u'`);
    expect(none.Items).toEqual([]);

    const missing = await failure(run(`UPDATE music SET plays = 1 WHERE artist = 'eve' AND song = 'nope'`));
    expect(missing).toBeInstanceOf(ConditionalCheckFailedException);
    // The rest of the WHERE is the condition; ALL_OLD returns the item it failed on.
    const unmet = await failure(
      run(`UPDATE music SET plays = 0 WHERE artist = 'eve' AND song = 'u' AND plays < 5`, undefined, {
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    expect(unmet).toBeInstanceOf(ConditionalCheckFailedException);
    expect((unmet as ConditionalCheckFailedException).Item?.['plays']).toEqual({ N: '11' });
    const partial = await failure(run(`UPDATE music SET plays = 0 WHERE artist = 'eve'`));
    expect(partial).toMatchObject({
      name: 'ValidationException',
      message: 'Where clause does not contain a mandatory equality on all key attributes',
    });
    const keyUpdate = await failure(run(`UPDATE music SET song = 'v' WHERE artist = 'eve' AND song = 'u'`));
    expect(keyUpdate.message).toMatch(/Cannot update attribute song. This attribute is part of the key/);
    const got = await db.send(new GetItemCommand({ TableName: 'music', Key: item('eve', 'u') }));
    expect(got.Item?.['plays']).toEqual({ N: '11' });

    const del = await run(`DELETE FROM music WHERE artist = 'eve' AND song = 'u' RETURNING ALL OLD *`);
    expect(del.Items![0]).toMatchObject({ plays: { N: '11' } });
    const gone = await failure(run(`DELETE FROM music WHERE artist = 'eve' AND song = 'u'`));
    expect(gone).toBeInstanceOf(ConditionalCheckFailedException);
  });

  it("works with lib-dynamodb's native values", async () => {
    await doc.send(
      new DocStatement({
        Statement: `INSERT INTO music VALUE {'artist': ?, 'song': ?, 'meta': ?, 'tags': ?}`,
        Parameters: ['fay', 'n1', { plays: 7, live: false, by: ['a', 'b'] }, new Set(['x', 'y'])],
      }),
    );
    const r = await doc.send(
      new DocStatement({
        Statement: `SELECT * FROM music WHERE artist = ? AND meta.plays >= ?`,
        Parameters: ['fay', 7],
      }),
    );
    expect(r.Items).toEqual([
      {
        artist: 'fay',
        song: 'n1',
        meta: { plays: 7, live: false, by: ['a', 'b'] },
        tags: new Set(['x', 'y']),
      },
    ]);
    const nested = await doc.send(
      new DocStatement({ Statement: `SELECT meta.by[1] FROM music WHERE artist = 'fay' AND size(tags) = 2` }),
    );
    expect(nested.Items).toEqual([{ meta: { by: ['b'] } }]);
  });

  it("answers errors in DynamoDB's words and writes nothing", async () => {
    const syntax = await failure(run(`SELEKT * FROM music`));
    expect(syntax).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    expect(syntax.message).toMatch(
      /^Statement wasn't well formed, can't be processed: Unexpected token "SELEKT"/,
    );
    const params = await failure(run(`SELECT * FROM music WHERE artist = ?`));
    expect(params.message).toBe("Number of parameters in request and statement don't match.");
    const badValue = await failure(
      run(`SELECT * FROM music WHERE artist = ?`, [{ N: 'abc' } as AttributeValue]),
    );
    expect(badValue.message).toMatch(/cannot be converted to a numeric value/);
    const table = await failure(run(`SELECT * FROM "nope"`));
    expect(table).toBeInstanceOf(ResourceNotFoundException);
    const index = await failure(run(`SELECT * FROM music.nope`));
    expect(index.message).toBe('The table does not have the specified index: nope');
    const big = await failure(
      run(`INSERT INTO music VALUE {'artist': 'big', 'song': 'b', 'x': ?}`, [{ S: 'x'.repeat(410_000) }]),
    );
    expect(big.message).toBe('Item size has exceeded the maximum allowed size');
    const empty = await failure(run(`INSERT INTO music VALUE {'artist': '', 'song': 'b'}`));
    expect(empty.message).toMatch(/cannot contain an empty string value. Key: artist/);
    const r = await run(`SELECT * FROM music WHERE artist IN ['big', '']`);
    expect(r.Items).toEqual([]);
  });

  it('refuses a key the table is not granted to, for every statement and in batches', async () => {
    const key = await n.client.createCredential({ name: 'other-only', tables: ['other'] });
    const limited = client(key.accessKeyId, key.secretAccessKey);
    try {
      for (const [statement, action] of [
        [`SELECT * FROM music`, 'PartiQLSelect'],
        [`INSERT INTO music VALUE {'artist': 'x', 'song': 'y'}`, 'PartiQLInsert'],
        [`UPDATE music SET a = 1 WHERE artist = 'ada' AND song = 's1'`, 'PartiQLUpdate'],
        [`DELETE FROM music WHERE artist = 'ada' AND song = 's1'`, 'PartiQLDelete'],
      ] as const) {
        const err = await failure(limited.send(new ExecuteStatementCommand({ Statement: statement })));
        expect(err).toMatchObject({
          name: 'AccessDeniedException',
          message: expect.stringMatching(
            new RegExp(
              `not authorized to perform: dynamodb:${action} on resource: arn:aws:dynamodb:.*:table/music$`,
            ),
          ),
        });
      }
      const batch = await limited.send(
        new BatchExecuteStatementCommand({
          Statements: [{ Statement: `SELECT * FROM music WHERE artist = 'ada' AND song = 's1'` }],
        }),
      );
      expect(batch.Responses![0]!.Error).toMatchObject({ Code: 'AccessDenied' });
      const tx = await failure(
        limited.send(
          new ExecuteTransactionCommand({
            TransactStatements: [{ Statement: `DELETE FROM music WHERE artist = 'ada' AND song = 's1'` }],
          }),
        ),
      );
      expect(tx.name).toBe('AccessDeniedException');
      const still = await db.send(new GetItemCommand({ TableName: 'music', Key: item('ada', 's1') }));
      expect(still.Item).toBeDefined();
    } finally {
      limited.destroy();
    }
  });

  it('runs a batch of writes or of reads, each with its own answer, and refuses a mixed one', async () => {
    const w = await db.send(
      new BatchExecuteStatementCommand({
        Statements: [
          { Statement: `INSERT INTO music VALUE {'artist': 'gus', 'song': 'a'}` },
          { Statement: `INSERT INTO music VALUE {'artist': 'ada', 'song': 's1'}` },
          { Statement: `UPDATE music SET n = 1 WHERE artist = 'gus' AND song = 'zz'` },
          { Statement: `INSERT INTO nope VALUE {'artist': 'x', 'song': 'y'}` },
          { Statement: `INSERT INTO music VALUE` },
          {
            Statement: `UPDATE music SET n = ? WHERE artist = 'bo' AND song = 's1'`,
            Parameters: [{ N: '5' }],
          },
        ],
      }),
    );
    expect(w.Responses).toEqual([
      { TableName: 'music' },
      {
        TableName: 'music',
        Error: { Code: 'DuplicateItem', Message: 'Duplicate primary key exists in table' },
      },
      {
        TableName: 'music',
        Error: { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' },
      },
      { TableName: 'nope', Error: { Code: 'ResourceNotFound', Message: 'Requested resource not found' } },
      { Error: { Code: 'ValidationError', Message: expect.stringMatching(/^Statement wasn't well formed/) } },
      { TableName: 'music' },
    ]);
    const r = await db.send(
      new BatchExecuteStatementCommand({
        Statements: [
          { Statement: `SELECT artist, n FROM music WHERE artist = 'bo' AND song = 's1'` },
          { Statement: `SELECT * FROM music WHERE artist = 'gus' AND song = 'none'` },
          { Statement: `SELECT * FROM music WHERE artist = 'gus'` },
        ],
      }),
    );
    expect(r.Responses).toEqual([
      { TableName: 'music', Item: { artist: { S: 'bo' }, n: { N: '5' } } },
      { TableName: 'music' },
      {
        TableName: 'music',
        Error: {
          Code: 'ValidationError',
          Message: expect.stringMatching(/must specify an equality condition on all key attributes/),
        },
      },
    ]);
    const mixed = await failure(
      db.send(
        new BatchExecuteStatementCommand({
          Statements: [
            { Statement: `SELECT * FROM music WHERE artist = 'gus' AND song = 'a'` },
            { Statement: `DELETE FROM music WHERE artist = 'gus' AND song = 'a'` },
          ],
        }),
      ),
    );
    expect(mixed).toMatchObject({
      name: 'ValidationException',
      message: expect.stringMatching(/either read statements or write statements/),
    });
    const many = await failure(
      db.send(
        new BatchExecuteStatementCommand({
          Statements: Array.from({ length: 26 }, (_, i) => ({
            Statement: `DELETE FROM music WHERE artist = 'x' AND song = '${i}'`,
          })),
        }),
      ),
    );
    expect(many.message).toMatch(/Member must have length less than or equal to 25/);
    expect(
      (await db.send(new GetItemCommand({ TableName: 'music', Key: item('gus', 'a') }))).Item,
    ).toBeDefined();
  });

  it('runs a transaction of writes all or nothing, naming the statement that failed', async () => {
    const tx = (...statements: string[]) =>
      db.send(
        new ExecuteTransactionCommand({ TransactStatements: statements.map((Statement) => ({ Statement })) }),
      );
    const err = await failure(
      tx(
        `INSERT INTO music VALUE {'artist': 'hal', 'song': 'a'}`,
        `UPDATE music SET n = 2 WHERE artist = 'hal' AND song = 'missing'`,
      ),
    );
    expect(err).toBeInstanceOf(TransactionCanceledException);
    expect((err as TransactionCanceledException).CancellationReasons).toEqual([
      { Code: 'None' },
      { Code: 'ConditionalCheckFailed', Message: 'The conditional request failed' },
    ]);
    expect(
      (await db.send(new GetItemCommand({ TableName: 'music', Key: item('hal', 'a') }))).Item,
    ).toBeUndefined();
    await tx(
      `INSERT INTO music VALUE {'artist': 'hal', 'song': 'a'}`,
      `UPDATE music SET n = 3 WHERE artist = 'bo' AND song = 's2'`,
    );
    const read = await db.send(
      new ExecuteTransactionCommand({
        TransactStatements: [
          { Statement: `SELECT song FROM music WHERE artist = 'hal' AND song = 'a'` },
          { Statement: `SELECT n FROM music WHERE artist = 'bo' AND song = 's2'` },
        ],
      }),
    );
    expect(read.Responses).toEqual([{ Item: { song: { S: 'a' } } }, { Item: { n: { N: '3' } } }]);
    // A ClientRequestToken makes a retry answer as the first call did, without running it again.
    const once = (Statement: string) =>
      db.send(
        new ExecuteTransactionCommand({
          TransactStatements: [{ Statement }],
          ClientRequestToken: 'tx-hal-b',
        }),
      );
    await once(`INSERT INTO music VALUE {'artist': 'hal', 'song': 'b'}`);
    await once(`INSERT INTO music VALUE {'artist': 'hal', 'song': 'b'}`);
    const other = await failure(once(`INSERT INTO music VALUE {'artist': 'hal', 'song': 'c'}`));
    expect(other.name).toBe('IdempotentParameterMismatchException');
    const counted = await run(`SELECT song FROM music WHERE artist = 'hal'`, undefined, {
      ReturnConsumedCapacity: 'TOTAL',
    });
    expect(counted.Items).toEqual([{ song: { S: 'a' } }, { song: { S: 'b' } }]);
    expect(counted.ConsumedCapacity).toMatchObject({ TableName: 'music' });
    const dup = await failure(tx(`INSERT INTO music VALUE {'artist': 'hal', 'song': 'a'}`));
    expect((dup as TransactionCanceledException).CancellationReasons).toEqual([
      { Code: 'DuplicateItem', Message: 'Duplicate primary key exists in table' },
    ]);
  });

  it("writes reach the table's stream as PutItem's, UpdateItem's and DeleteItem's do", async () => {
    const streams = new DynamoDBStreamsClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
    try {
      await run(`INSERT INTO music VALUE {'artist': 'ivy', 'song': 'a', 'v': 1}`);
      await run(`UPDATE music SET v = 2 WHERE artist = 'ivy' AND song = 'a'`);
      await run(`DELETE FROM music WHERE artist = 'ivy' AND song = 'a'`);
      const arn = (await db.send(new DescribeTableCommand({ TableName: 'music' }))).Table!.LatestStreamArn!;
      const d = await streams.send(new DescribeStreamCommand({ StreamArn: arn }));
      let it = (
        await streams.send(
          new GetShardIteratorCommand({
            StreamArn: arn,
            ShardId: d.StreamDescription!.Shards![0]!.ShardId,
            ShardIteratorType: 'TRIM_HORIZON',
          }),
        )
      ).ShardIterator!;
      const ivy: string[] = [];
      for (;;) {
        const page = await streams.send(new GetRecordsCommand({ ShardIterator: it }));
        if (page.Records!.length === 0) break;
        for (const r of page.Records!) {
          if (r.dynamodb?.Keys?.['artist']?.S === 'ivy')
            ivy.push(`${r.eventName} ${r.dynamodb.NewImage?.['v']?.N ?? '-'}`);
        }
        it = page.NextShardIterator!;
      }
      expect(ivy).toEqual(['INSERT 1', 'MODIFY 2', 'REMOVE -']);
    } finally {
      streams.destroy();
    }
  });
});

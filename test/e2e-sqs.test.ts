// The SQS API through the official AWS SDK v3 (@aws-sdk/client-sqs, AWS JSON 1.0) and through the query
// protocol older SDKs send (a signed form, answered in XML), on both stores: queues, messages with their
// checksums, batches, FIFO order and deduplication, long polling, dead letters, tags, SQS's errors in its
// words, and a function's key limited to the queues its manifest grants.
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  PurgeQueueCommand,
  QueueDoesNotExist,
  QueueNameExists,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
  TagQueueCommand,
  TooManyEntriesInBatchRequest,
  BatchEntryIdsNotDistinct,
  EmptyBatchRequest,
  UntagQueueCommand,
} from '@aws-sdk/client-sqs';
import { Sha256 } from '@smithy/core/checksum';
import AWS from 'aws-sdk';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5OfMessageAttributes } from '../src/events/sqs-md5.js';
import { BACKENDS, FIXTURES, startTestNimbus, type TestNimbus } from './helpers.js';

const ACCOUNT = '000000000000';
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

describe.each(BACKENDS)('SQS API on %s', (backend) => {
  let n: TestNimbus;
  let sqs: SQSClient;
  let url: (name: string) => string;

  const create = async (QueueName: string, Attributes?: Record<string, string>) =>
    (await sqs.send(new CreateQueueCommand({ QueueName, Attributes }))).QueueUrl!;
  const stats = async (QueueUrl: string) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }))).Attributes!;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    sqs = client(n.apiUrl, n.apiKey);
    url = (name) => `${n.apiUrl}/${ACCOUNT}/${name}`;
  });
  afterAll(async () => {
    sqs?.destroy();
    await n?.cleanup();
  });

  it('creates queues idempotently, finds, lists with a prefix and pages, and deletes them', async () => {
    expect(await create('orders', { VisibilityTimeout: '45' })).toBe(url('orders'));
    // The same attributes (or none) answer the same URL; a different value is QueueAlreadyExists.
    expect(await create('orders', { VisibilityTimeout: '45' })).toBe(url('orders'));
    expect(await create('orders')).toBe(url('orders'));
    const clash = await sqs
      .send(new CreateQueueCommand({ QueueName: 'orders', Attributes: { VisibilityTimeout: '10' } }))
      .catch((e: unknown) => e);
    expect(clash).toBeInstanceOf(QueueNameExists);
    // The SDK names it after the JSON shape and keeps SQS's query code in Code.
    expect(clash).toMatchObject({
      name: 'QueueNameExists',
      Code: 'QueueAlreadyExists',
      message:
        'A queue already exists with the same name and a different value for attribute VisibilityTimeout',
      $metadata: { httpStatusCode: 400 },
    });
    await create('orders-archive');
    await create('other');

    expect((await sqs.send(new GetQueueUrlCommand({ QueueName: 'orders' }))).QueueUrl).toBe(url('orders'));
    const all = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'orders' }));
    expect(all.QueueUrls).toEqual([url('orders'), url('orders-archive')]);
    expect(all.NextToken).toBeUndefined();
    const page1 = await sqs.send(new ListQueuesCommand({ MaxResults: 2 }));
    expect(page1.QueueUrls).toHaveLength(2);
    const page2 = await sqs.send(new ListQueuesCommand({ MaxResults: 2, NextToken: page1.NextToken }));
    expect([...page1.QueueUrls!, ...(page2.QueueUrls ?? [])]).toEqual(
      [url('orders'), url('orders-archive'), url('other')].sort(),
    );

    await sqs.send(new DeleteQueueCommand({ QueueUrl: url('other') }));
    const gone = await sqs.send(new GetQueueUrlCommand({ QueueName: 'other' })).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(QueueDoesNotExist);
    expect(gone).toMatchObject({
      name: 'QueueDoesNotExist',
      message: 'The specified queue does not exist.',
      Code: 'AWS.SimpleQueueService.NonExistentQueue',
    });
    const bad = await create('no spaces allowed').catch((e: unknown) => e);
    expect(bad).toMatchObject({
      name: 'InvalidParameterValue',
      message: 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length',
    });
  });

  it('sends and receives with attributes and the checksums the SDK verifies, and deletes', async () => {
    const q = await create('attrs');
    const MessageAttributes = {
      colour: { DataType: 'String', StringValue: 'red' },
      'meta.size': { DataType: 'Number.int', StringValue: '42' },
      'meta.raw': { DataType: 'Binary', BinaryValue: Buffer.from([0, 1, 2, 255]) },
    };
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: q,
        MessageBody: 'héllo ☃',
        MessageAttributes,
        MessageSystemAttributes: {
          AWSTraceHeader: { DataType: 'String', StringValue: 'Root=1-5759e988-bd862e3fe1be46a994272793' },
        },
      }),
    );
    expect(sent.MD5OfMessageBody).toBe(md5('héllo ☃'));
    const wire = {
      colour: { DataType: 'String', StringValue: 'red' },
      'meta.size': { DataType: 'Number.int', StringValue: '42' },
      'meta.raw': { DataType: 'Binary', BinaryValue: Buffer.from([0, 1, 2, 255]).toString('base64') },
    };
    expect(sent.MD5OfMessageAttributes).toBe(md5OfMessageAttributes(wire));
    expect(sent.MD5OfMessageSystemAttributes).toMatch(/^[0-9a-f]{32}$/);

    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: q,
        MessageAttributeNames: ['meta.*'],
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'AWSTraceHeader'],
      }),
    );
    expect(got.Messages).toHaveLength(1);
    const m = got.Messages![0]!;
    expect(m).toMatchObject({
      MessageId: sent.MessageId,
      Body: 'héllo ☃',
      MD5OfBody: md5('héllo ☃'),
      Attributes: {
        ApproximateReceiveCount: '1',
        AWSTraceHeader: 'Root=1-5759e988-bd862e3fe1be46a994272793',
      },
    });
    expect(Number(m.Attributes!.SentTimestamp)).toBeGreaterThan(0);
    // Only the attributes asked for come back, and the digest is theirs.
    expect(Object.keys(m.MessageAttributes!).sort()).toEqual(['meta.raw', 'meta.size']);
    expect(Buffer.from(m.MessageAttributes!['meta.raw']!.BinaryValue!)).toEqual(Buffer.from([0, 1, 2, 255]));
    expect(m.MD5OfMessageAttributes).toBe(
      md5OfMessageAttributes({ 'meta.size': wire['meta.size'], 'meta.raw': wire['meta.raw'] }),
    );
    // Hidden now: nothing to receive until it is deleted or its timeout ends.
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: q }))).Messages ?? []).toEqual([]);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: q, ReceiptHandle: m.ReceiptHandle }));
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q, AttributeNames: ['All'] }));
    expect(attrs.Attributes).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
      QueueArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:attrs`,
      VisibilityTimeout: '30',
    });

    const bad = await sqs
      .send(new DeleteMessageCommand({ QueueUrl: q, ReceiptHandle: 'not-a-handle' }))
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ReceiptHandleIsInvalid);
    expect(bad).toMatchObject({ $metadata: { httpStatusCode: 404 } });
    const noBody = await sqs
      .send(new SendMessageCommand({ QueueUrl: q, MessageBody: '\u0000' }))
      .catch((e: unknown) => e);
    expect(noBody).toMatchObject({ name: 'InvalidMessageContents' });
  });

  it('sends a batch entry by entry, and refuses a batch SQS refuses as a whole', async () => {
    const q = await create('batch', { MaximumMessageSize: '1024' });
    const r = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: q,
        Entries: [
          { Id: 'a', MessageBody: 'one' },
          { Id: 'b', MessageBody: 'x'.repeat(2000) },
          { Id: 'c', MessageBody: 'three', DelaySeconds: 0 },
        ],
      }),
    );
    expect(r.Successful!.map((s) => [s.Id, s.MD5OfMessageBody])).toEqual([
      ['a', md5('one')],
      ['c', md5('three')],
    ]);
    expect(r.Failed).toEqual([
      {
        Id: 'b',
        SenderFault: true,
        Code: 'InvalidParameterValue',
        Message: 'One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.',
      },
    ]);
    const send = (Entries: { Id: string; MessageBody: string }[]) =>
      sqs.send(new SendMessageBatchCommand({ QueueUrl: q, Entries })).catch((e: unknown) => e);
    expect(await send([])).toBeInstanceOf(EmptyBatchRequest);
    expect(
      await send(Array.from({ length: 11 }, (_, i) => ({ Id: `m${i}`, MessageBody: 'x' }))),
    ).toBeInstanceOf(TooManyEntriesInBatchRequest);
    const dup = await send([
      { Id: 'same', MessageBody: 'x' },
      { Id: 'same', MessageBody: 'y' },
    ]);
    expect(dup).toBeInstanceOf(BatchEntryIdsNotDistinct);
    expect(dup).toMatchObject({ message: 'Id same repeated.' });

    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, MaxNumberOfMessages: 10 }));
    expect(got.Messages!.map((m) => m.Body).sort()).toEqual(['one', 'three']);
    const del = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: q,
        Entries: [
          ...got.Messages!.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })),
          { Id: 'bogus', ReceiptHandle: 'bogus' },
        ],
      }),
    );
    expect(del.Successful!.map((s) => s.Id)).toEqual(['d0', 'd1']);
    expect(del.Failed).toMatchObject([{ Id: 'bogus', Code: 'ReceiptHandleIsInvalid', SenderFault: true }]);
    expect((await stats(q)).ApproximateNumberOfMessages).toBe('0');
  });

  it('keeps FIFO order per group, drops duplicates, and numbers messages in sequence', async () => {
    const q = await create('steps.fifo', { FifoQueue: 'true', ContentBasedDeduplication: 'true' });
    const seqs: string[] = [];
    for (const [body, group] of [
      ['a1', 'a'],
      ['b1', 'b'],
      ['a2', 'a'],
      ['a2', 'a'],
    ] as const) {
      const s = await sqs.send(
        new SendMessageCommand({ QueueUrl: q, MessageBody: body, MessageGroupId: group }),
      );
      seqs.push(s.SequenceNumber!);
    }
    expect(seqs[3]).toBe(seqs[2]);
    expect(new Set(seqs.slice(0, 3)).size).toBe(3);
    expect([...seqs.slice(0, 3)].sort()).toEqual(seqs.slice(0, 3));
    const explicit = await sqs.send(
      new SendMessageCommand({
        QueueUrl: q,
        MessageBody: 'a2',
        MessageGroupId: 'a',
        MessageDeduplicationId: 'new',
      }),
    );
    expect(explicit.SequenceNumber! > seqs[2]!).toBe(true);

    const first = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: q, MaxNumberOfMessages: 10, AttributeNames: ['All'] }),
    );
    expect(first.Messages!.map((m) => m.Body)).toEqual(['a1', 'b1', 'a2', 'a2']);
    expect(first.Messages![0]!.Attributes).toMatchObject({
      MessageGroupId: 'a',
      SequenceNumber: seqs[0],
      MessageDeduplicationId: createHash('sha256').update('a1').digest('hex'),
    });
    // While group a has messages in flight, nothing more of it is received.
    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'a3', MessageGroupId: 'a' }));
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: q }))).Messages ?? []).toEqual([]);

    const missing = await sqs
      .send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'x' }))
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({
      name: 'MissingParameter',
      message: 'The request must contain the parameter MessageGroupId.',
    });
    expect(await create('suffix-only.fifo').catch((e: unknown) => e)).toMatchObject({
      name: 'InvalidParameterValue',
    });
    expect(await create('no-suffix', { FifoQueue: 'true' }).catch((e: unknown) => e)).toMatchObject({
      name: 'InvalidParameterValue',
      message: expect.stringContaining('must end with .fifo suffix'),
    });
    const plain = await create('plain.fifo', { FifoQueue: 'true' });
    const noDedup = await sqs
      .send(new SendMessageCommand({ QueueUrl: plain, MessageBody: 'x', MessageGroupId: 'g' }))
      .catch((e: unknown) => e);
    expect(noDedup).toMatchObject({
      name: 'InvalidParameterValue',
      message:
        'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly',
    });
  });

  it('answers a long poll as soon as a message is sent, and an empty one when the wait ends', async () => {
    const q = await create('waiting');
    const polling = sqs.send(new ReceiveMessageCommand({ QueueUrl: q, WaitTimeSeconds: 20 }));
    await new Promise((r) => setTimeout(r, 300));
    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'wake up' }));
    expect((await polling).Messages!.map((m) => m.Body)).toEqual(['wake up']);

    // The queue's ReceiveMessageWaitTimeSeconds makes every receive a long poll.
    await sqs.send(
      new SetQueueAttributesCommand({ QueueUrl: q, Attributes: { ReceiveMessageWaitTimeSeconds: '20' } }),
    );
    const byDefault = sqs.send(new ReceiveMessageCommand({ QueueUrl: q }));
    await new Promise((r) => setTimeout(r, 300));
    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'by default' }));
    const woken = await byDefault;
    expect(woken.Messages!.map((m) => m.Body)).toEqual(['by default']);
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: q, ReceiptHandle: woken.Messages![0]!.ReceiptHandle }),
    );
    await sqs.send(
      new SetQueueAttributesCommand({ QueueUrl: q, Attributes: { ReceiveMessageWaitTimeSeconds: '0' } }),
    );

    // A long poll whose client gave up takes nothing: the next message goes to the next receive.
    const giveUp = new AbortController();
    const abandoned = sqs
      .send(new ReceiveMessageCommand({ QueueUrl: q, WaitTimeSeconds: 20 }), { abortSignal: giveUp.signal })
      .catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    giveUp.abort();
    expect(await abandoned).toMatchObject({ name: 'AbortError' });
    await new Promise((r) => setTimeout(r, 300));
    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'for the next one' }));
    const next = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, WaitTimeSeconds: 5 }));
    expect(next.Messages?.map((m) => m.Body)).toEqual(['for the next one']);
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: q, ReceiptHandle: next.Messages![0]!.ReceiptHandle }),
    );

    const empty = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, WaitTimeSeconds: 1 }));
    expect(empty.Messages ?? []).toEqual([]);
    const tooLong = await sqs
      .send(new ReceiveMessageCommand({ QueueUrl: q, WaitTimeSeconds: 21 }))
      .catch((e: unknown) => e);
    expect(tooLong).toMatchObject({
      name: 'InvalidParameterValue',
      message:
        'Value 21 for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.',
    });
  });

  it('changes visibility, moves messages to a dead-letter queue, and names its sources', async () => {
    const dlq = await create('dead');
    const q = await create('work');
    await sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: q,
        Attributes: {
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:dead`,
            maxReceiveCount: 2,
          }),
          DelaySeconds: '0',
        },
      }),
    );
    expect((await stats(q)).RedrivePolicy).toBe(
      JSON.stringify({ deadLetterTargetArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:dead`, maxReceiveCount: 2 }),
    );
    // A receive's own VisibilityTimeout, and a message's own delay.
    await sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: 'later', DelaySeconds: 900 }));
    expect(await stats(dlq)).toMatchObject({
      ApproximateNumberOfMessagesDelayed: '1',
      ApproximateNumberOfMessages: '0',
    });
    await sqs.send(new PurgeQueueCommand({ QueueUrl: dlq }));
    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'again' }));
    const once = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q, VisibilityTimeout: 0 }));
    const twice = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: q, VisibilityTimeout: 600, AttributeNames: ['All'] }),
    );
    expect(twice.Messages![0]).toMatchObject({
      MessageId: once.Messages![0]!.MessageId,
      Attributes: { ApproximateReceiveCount: '2' },
    });
    expect(await stats(q)).toMatchObject({ ApproximateNumberOfMessagesNotVisible: '1' });
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: q, ReceiptHandle: twice.Messages![0]!.ReceiptHandle }),
    );

    await sqs.send(new SendMessageCommand({ QueueUrl: q, MessageBody: 'poison' }));
    for (let i = 0; i < 2; i++) {
      const [m] = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: q }))).Messages!;
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: q,
          ReceiptHandle: m!.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    }
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: q }))).Messages ?? []).toEqual([]);
    const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, AttributeNames: ['All'] }));
    expect(dead.Messages![0]).toMatchObject({
      Body: 'poison',
      Attributes: { DeadLetterQueueSourceArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:work` },
    });
    const batch = await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: dlq,
        Entries: [
          { Id: 'ok', ReceiptHandle: dead.Messages![0]!.ReceiptHandle, VisibilityTimeout: 60 },
          { Id: 'bad', ReceiptHandle: 'nope', VisibilityTimeout: 60 },
        ],
      }),
    );
    expect(batch.Successful).toEqual([{ Id: 'ok' }]);
    expect(batch.Failed).toMatchObject([{ Id: 'bad', Code: 'ReceiptHandleIsInvalid' }]);
    expect((await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq }))).queueUrls).toEqual([q]);
    const missing = await sqs
      .send(
        new SetQueueAttributesCommand({
          QueueUrl: q,
          Attributes: {
            RedrivePolicy: JSON.stringify({
              deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:none',
              maxReceiveCount: 1,
            }),
          },
        }),
      )
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({
      name: 'InvalidParameterValue',
      message: expect.stringContaining('Dead letter target does not exist.'),
    });
    const unknown = await sqs
      .send(
        new SetQueueAttributesCommand({
          QueueUrl: q,
          Attributes: { Colour: 'blue' } as Record<string, string>,
        }),
      )
      .catch((e: unknown) => e);
    expect(unknown).toMatchObject({ name: 'InvalidAttributeName', message: 'Unknown Attribute Colour.' });
  });

  it('tags, purges, and resolves the queue URLs of older code to the same queue', async () => {
    const q = await create('tagged');
    await sqs.send(new TagQueueCommand({ QueueUrl: q, Tags: { team: 'core', env: 'test' } }));
    await sqs.send(new UntagQueueCommand({ QueueUrl: q, TagKeys: ['env'] }));
    expect((await sqs.send(new ListQueueTagsCommand({ QueueUrl: q }))).Tags).toEqual({ team: 'core' });

    for (const legacy of [
      `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/tagged`,
      `https://queue.amazonaws.com/${ACCOUNT}/tagged`,
    ]) {
      await sqs.send(new SendMessageCommand({ QueueUrl: legacy, MessageBody: legacy }));
    }
    expect((await stats(q)).ApproximateNumberOfMessages).toBe('2');
    await sqs.send(new PurgeQueueCommand({ QueueUrl: q }));
    expect((await stats(q)).ApproximateNumberOfMessages).toBe('0');
    const otherAccount = await sqs
      .send(
        new SendMessageCommand({
          QueueUrl: `https://queue.amazonaws.com/123456789012/tagged`,
          MessageBody: 'x',
        }),
      )
      .catch((e: unknown) => e);
    expect(otherAccount).toBeInstanceOf(QueueDoesNotExist);
  });

  it('refuses a bad signature and an unknown key in SQS’s words', async () => {
    const wrong = client(n.apiUrl, 'not-the-key');
    const err = await wrong.send(new ListQueuesCommand({})).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
    wrong.destroy();
    const stranger = new SQSClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIANOBODY', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    expect(await stranger.send(new ListQueuesCommand({})).catch((e: unknown) => e)).toMatchObject({
      name: 'InvalidClientTokenId',
      $metadata: { httpStatusCode: 403 },
    });
    stranger.destroy();
  });

  it('serves aws-sdk v2, which speaks the query protocol and checks body checksums', async () => {
    const v2 = new AWS.SQS({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      accessKeyId: 'nimbus',
      secretAccessKey: n.apiKey,
      maxRetries: 0,
    });
    const { QueueUrl } = await v2
      .createQueue({ QueueName: 'v2', Attributes: { VisibilityTimeout: '5' } })
      .promise();
    expect(QueueUrl).toBe(url('v2'));
    const sent = await v2
      .sendMessage({
        QueueUrl: QueueUrl!,
        MessageBody: 'hi',
        MessageAttributes: { a: { DataType: 'String', StringValue: 'b' } },
      })
      .promise();
    expect(sent.MD5OfMessageAttributes).toBe(
      md5OfMessageAttributes({ a: { DataType: 'String', StringValue: 'b' } }),
    );
    await v2.sendMessageBatch({ QueueUrl: QueueUrl!, Entries: [{ Id: '1', MessageBody: 'x' }] }).promise();
    const got = await v2
      .receiveMessage({
        QueueUrl: QueueUrl!,
        MaxNumberOfMessages: 10,
        AttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      })
      .promise();
    expect(got.Messages!.map((m) => m.Body)).toEqual(['hi', 'x']);
    expect(got.Messages![0]).toMatchObject({
      MessageAttributes: { a: { DataType: 'String', StringValue: 'b' } },
      Attributes: { ApproximateReceiveCount: '1' },
    });
    const del = await v2
      .deleteMessageBatch({
        QueueUrl: QueueUrl!,
        Entries: got.Messages!.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })),
      })
      .promise();
    expect(del.Failed).toEqual([]);
    const attrs = await v2.getQueueAttributes({ QueueUrl: QueueUrl!, AttributeNames: ['All'] }).promise();
    expect(attrs.Attributes).toMatchObject({
      VisibilityTimeout: '5',
      ApproximateNumberOfMessagesNotVisible: '0',
    });
    const missing = await v2
      .getQueueUrl({ QueueName: 'nope' })
      .promise()
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({
      code: 'AWS.SimpleQueueService.NonExistentQueue',
      message: 'The specified queue does not exist.',
      statusCode: 400,
    });
  });

  it('answers malformed input with SQS errors and writes nothing, never an internal error', async () => {
    const q = await create('junk');
    const cases: [string, unknown][] = [
      ['SendMessage', { QueueUrl: q, MessageBody: 5 }],
      ['SendMessage', { QueueUrl: q, MessageBody: 'x', MessageAttributes: { a: null } }],
      [
        'SendMessage',
        {
          QueueUrl: q,
          MessageBody: 'x',
          MessageAttributes: { a: { DataType: 'Number', StringValue: 'ten' } },
        },
      ],
      ['SendMessage', { QueueUrl: q, MessageBody: 'x', MessageSystemAttributes: 'trace' }],
      ['SendMessage', { QueueUrl: q, MessageBody: 'x', DelaySeconds: 901 }],
      ['SendMessage', { QueueUrl: 42, MessageBody: 'x' }],
      ['SendMessage', { QueueUrl: 'not a url', MessageBody: 'x' }],
      ['SendMessageBatch', { QueueUrl: q, Entries: [null] }],
      ['SendMessageBatch', { QueueUrl: q, Entries: 'all' }],
      ['SendMessageBatch', { QueueUrl: q, Entries: [{ Id: 'bad id!', MessageBody: 'x' }] }],
      ['ReceiveMessage', { QueueUrl: q, MaxNumberOfMessages: 'ten' }],
      ['ReceiveMessage', { QueueUrl: q, AttributeNames: 'All' }],
      ['ReceiveMessage', { QueueUrl: q, VisibilityTimeout: -1 }],
      ['ChangeMessageVisibility', { QueueUrl: q, ReceiptHandle: 'x' }],
      ['CreateQueue', { QueueName: ['a'] }],
      ['CreateQueue', { QueueName: 'ok', Attributes: { VisibilityTimeout: 5 } }],
      ['CreateQueue', { QueueName: 'ok', Attributes: { RedrivePolicy: '{not json' } }],
      ['CreateQueue', { QueueName: 'ok', tags: { 'aws:x': 'y' } }],
      ['TagQueue', { QueueUrl: q, Tags: { k: 5 } }],
      ['ListQueues', { MaxResults: 0 }],
      ['ListQueues', { NextToken: '!!' }],
      ['Nonsense', {}],
    ];
    for (const [action, input] of cases) {
      const r = await signedJson(n, action, JSON.stringify(input));
      expect({ action, input, status: r.status }).toMatchObject({
        status: expect.toSatisfy((s: number) => s >= 400 && s < 500),
      });
      expect(r.headers.get('x-amzn-query-error')).toMatch(/;Sender$/);
      expect(JSON.parse(r.body)).toMatchObject({ __type: expect.any(String), message: expect.any(String) });
    }
    const notJson = await signedJson(n, 'ListQueues', '{');
    expect(notJson.status).toBe(400);
    expect(await stats(q)).toMatchObject({ ApproximateNumberOfMessages: '0' });
    const names = (await sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [];
    expect(names).not.toContain(url('ok'));
  });

  it('speaks the query protocol: a signed form in, XML out, errors as ErrorResponse', async () => {
    const q = await query(n, {
      Action: 'CreateQueue',
      QueueName: 'legacy',
      'Attribute.1.Name': 'DelaySeconds',
      'Attribute.1.Value': '0',
    });
    expect(q.status).toBe(200);
    expect(q.body).toContain(`<CreateQueueResult><QueueUrl>${url('legacy')}</QueueUrl></CreateQueueResult>`);

    const sent = await query(n, {
      Action: 'SendMessage',
      QueueUrl: `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/legacy`,
      MessageBody: 'a <b> & "c"',
      'MessageAttribute.1.Name': 'kind',
      'MessageAttribute.1.Value.DataType': 'String',
      'MessageAttribute.1.Value.StringValue': 'order',
    });
    expect(sent.status).toBe(200);
    expect(sent.body).toMatch(
      /^<\?xml version="1.0"\?><SendMessageResponse xmlns="http:\/\/queue.amazonaws.com\/doc\/2012-11-05\/">/,
    );
    expect(sent.body).toContain(`<MD5OfMessageBody>${md5('a <b> & "c"')}</MD5OfMessageBody>`);
    expect(sent.body).toContain(
      `<MD5OfMessageAttributes>${md5OfMessageAttributes({ kind: { DataType: 'String', StringValue: 'order' } })}</MD5OfMessageAttributes>`,
    );

    // aws-sdk v2 posts to the queue URL's path.
    const got = await query(
      n,
      { Action: 'ReceiveMessage', 'AttributeName.1': 'All', 'MessageAttributeName.1': 'All' },
      `/${ACCOUNT}/legacy`,
    );
    expect(got.status).toBe(200);
    expect(got.body).toContain('<Body>a &#60;b&#62; &#38; &#34;c&#34;</Body>');
    expect(got.body).toContain('<Attribute><Name>ApproximateReceiveCount</Name><Value>1</Value></Attribute>');
    expect(got.body).toContain(
      '<MessageAttribute><Name>kind</Name><Value><DataType>String</DataType><StringValue>order</StringValue></Value></MessageAttribute>',
    );
    expect(got.body).toMatch(/<ReceiptHandle>[A-Za-z0-9_-]+<\/ReceiptHandle>/);

    const missing = await query(n, { Action: 'GetQueueUrl', QueueName: 'nope' });
    expect(missing.status).toBe(400);
    expect(missing.body).toContain(
      '<Error><Type>Sender</Type><Code>AWS.SimpleQueueService.NonExistentQueue</Code><Message>The specified queue does not exist.</Message><Detail/></Error>',
    );
    const unknown = await query(n, { Action: 'Fly' });
    expect(unknown.body).toContain('<Code>InvalidAction</Code>');
    const badSig = await query(n, { Action: 'ListQueues' }, '/', 'wrong-secret');
    expect(badSig.status).toBe(403);
    expect(badSig.body).toContain('<Code>SignatureDoesNotMatch</Code>');
  });
});

describe.each(BACKENDS)('queues used by functions through the SQS API, on %s', (backend) => {
  let n: TestNimbus;
  let sqs: SQSClient;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'sqs'));
    sqs = client(n.apiUrl, n.apiKey);
  });
  afterAll(async () => {
    sqs?.destroy();
    await n?.cleanup();
  });

  it('feeds a queue-triggered function from SendMessage, which answers through its own granted queue', async () => {
    const jobs = (await sqs.send(new GetQueueUrlCommand({ QueueName: 'jobs' }))).QueueUrl!;
    const done = (await sqs.send(new GetQueueUrlCommand({ QueueName: 'done' }))).QueueUrl!;
    await sqs.send(new SendMessageCommand({ QueueUrl: jobs, MessageBody: 'job-1' }));
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: done, WaitTimeSeconds: 20 }));
    expect(got.Messages?.map((m) => m.Body)).toEqual(['relayed:job-1']);
  });

  it('refuses a function key a queue its manifest does not grant, as AccessDenied', async () => {
    const r = await fetch(`${n.gatewayUrl}/snoop`);
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({
      name: 'AccessDenied',
      message: expect.stringMatching(
        /is not authorized to perform: sqs:GetQueueUrl on resource: arn:aws:sqs:us-east-1:000000000000:secret/,
      ),
    });
  });

  it('keeps a queue created through the API when a deploy does not declare it', async () => {
    await sqs.send(new CreateQueueCommand({ QueueName: 'adhoc' }));
    await n.deploy(join(FIXTURES, 'sqs'));
    expect((await sqs.send(new GetQueueUrlCommand({ QueueName: 'adhoc' }))).QueueUrl).toMatch(/\/adhoc$/);
    const owned = await sqs.send(new DeleteQueueCommand({ QueueUrl: `${n.apiUrl}/${ACCOUNT}/adhoc` }));
    expect(owned.$metadata.httpStatusCode).toBe(200);
  });
});

function client(endpoint: string, secretAccessKey: string): SQSClient {
  return new SQSClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'nimbus', secretAccessKey },
    maxAttempts: 1,
  });
}

/** A query-protocol request as aws-sdk v2 sends it: a form body, signed with SigV4 for "sqs". */
async function query(
  n: TestNimbus,
  form: Record<string, string>,
  path = '/',
  secret = n.apiKey,
): Promise<{ status: number; body: string }> {
  const api = new URL(n.apiUrl);
  const body = new URLSearchParams({ ...form, Version: '2012-11-05' }).toString();
  const signer = new SignatureV4({
    credentials: { accessKeyId: 'nimbus', secretAccessKey: secret },
    region: 'us-east-1',
    service: 'sqs',
    sha256: Sha256,
  });
  const signed = (await signer.sign(
    new HttpRequest({
      method: 'POST',
      protocol: 'http:',
      hostname: api.hostname,
      port: Number(api.port),
      path,
      headers: { host: api.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body,
    }),
  )) as HttpRequest;
  const { host: _host, ...headers } = signed.headers;
  const res = await fetch(n.apiUrl + path, { method: 'POST', headers, body });
  return { status: res.status, body: await res.text() };
}

/** A JSON-protocol request as @aws-sdk/client-sqs sends it, with any body. */
async function signedJson(
  n: TestNimbus,
  action: string,
  body: string,
): Promise<{ status: number; headers: Headers; body: string }> {
  const api = new URL(n.apiUrl);
  const signer = new SignatureV4({
    credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
    region: 'us-east-1',
    service: 'sqs',
    sha256: Sha256,
  });
  const signed = (await signer.sign(
    new HttpRequest({
      method: 'POST',
      protocol: 'http:',
      hostname: api.hostname,
      port: Number(api.port),
      path: '/',
      headers: {
        host: api.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `AmazonSQS.${action}`,
      },
      body,
    }),
  )) as HttpRequest;
  const { host: _host, ...headers } = signed.headers;
  const res = await fetch(`${n.apiUrl}/`, { method: 'POST', headers, body });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

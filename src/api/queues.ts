// The control API's queues (/v1/queues/...): list them with their depth, send messages, look at what waits,
// purge. Messages sent here are the same SQS messages queue triggers receive (and, later, the SQS API).
import { QueueInputError, QueueNotFoundError } from '../store/errors.js';
import type {
  MessageAttributeValue,
  NewMessage,
  QueueMessage,
  QueueStats,
  QueueStore,
  StoredQueue,
} from '../store/types.js';
import { md5OfMessageAttributes } from '../events/sqs-md5.js';
import { ApiError, badRequest, notFound } from './errors.js';

export interface QueueDeps {
  store: { queues: QueueStore };
  /** Wakes the queue's consumers on this node after a send. */
  notifyQueue?: (project: string, queue: string) => void;
}

interface Req {
  principal: { project: string };
  params: Record<string, string>;
  url: URL;
  body: Buffer;
}

/** SQS's SendMessageBatch limit. */
const MAX_BATCH = 10;

export async function listQueues(d: QueueDeps, c: Req): Promise<unknown> {
  const project = c.principal.project;
  const [queues, stats] = await Promise.all([
    d.store.queues.listQueues(project),
    d.store.queues.stats(project),
  ]);
  return { queues: queues.map((q) => queueView(q, stats)) };
}

export async function getQueue(d: QueueDeps, c: Req): Promise<unknown> {
  const q = await existing(d, c);
  return queueView(q, await d.store.queues.stats(q.project));
}

export async function sendMessages(d: QueueDeps, c: Req): Promise<unknown> {
  const q = await existing(d, c);
  const input = parseJson(c.body);
  const list = Array.isArray(input['messages']) ? (input['messages'] as unknown[]) : [input];
  if (list.length === 0 || list.length > MAX_BATCH) {
    throw badRequest(
      `send 1 to ${MAX_BATCH} messages at once (got ${list.length})`,
      'split the messages into batches of 10',
    );
  }
  const messages = list.map((m, i) => newMessage(m, list.length > 1 ? `messages[${i}].` : ''));
  try {
    const sent = await d.store.queues.send(q.project, q.name, messages);
    d.notifyQueue?.(q.project, q.name);
    return {
      messages: sent.map((s, i) => ({
        messageId: s.id,
        md5OfBody: s.md5OfBody,
        md5OfMessageAttributes: md5OfMessageAttributes(messages[i]!.attributes ?? {}),
        sequenceNumber: s.sequenceNumber,
        duplicate: s.duplicate,
      })),
    };
  } catch (err) {
    throw queueError(err);
  }
}

export async function peekMessages(d: QueueDeps, c: Req): Promise<unknown> {
  const q = await existing(d, c);
  const raw = c.url.searchParams.get('limit');
  const limit = raw === null ? 100 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw badRequest('query parameter limit must be a whole number from 1 to 1000', `got "${raw}"`);
  }
  const messages = await d.store.queues.peek(q.project, q.name, limit);
  return { messages: messages.map(messageView) };
}

export async function purgeQueue(d: QueueDeps, c: Req): Promise<unknown> {
  const q = await existing(d, c);
  return { purged: await d.store.queues.purge(q.project, q.name) };
}

async function existing(d: QueueDeps, c: Req): Promise<StoredQueue> {
  const name = c.params['name']!;
  const q = await d.store.queues.getQueue(c.principal.project, name);
  if (!q) throw notFound(`queue ${name}`);
  return q;
}

function queueView(q: StoredQueue, stats: readonly QueueStats[]): Record<string, unknown> {
  const own = stats.find((s) => s.queue === q.name);
  const dlq = q.deadLetterQueue === undefined ? undefined : stats.find((s) => s.queue === q.deadLetterQueue);
  return {
    name: q.name,
    service: q.service,
    fifo: q.fifo,
    contentBasedDeduplication: q.contentBasedDeduplication,
    visibilityTimeout: q.visibilityTimeout,
    messageRetentionPeriod: q.messageRetentionPeriod,
    delaySeconds: q.delaySeconds,
    maximumMessageSize: q.maximumMessageSize,
    deadLetterQueue: q.deadLetterQueue ?? null,
    maxReceiveCount: q.maxReceiveCount ?? null,
    depth: own ? own.visible + own.delayed : 0,
    visible: own?.visible ?? 0,
    inFlight: own?.inFlight ?? 0,
    delayed: own?.delayed ?? 0,
    oldestSentAt: own?.oldestSentAt ?? null,
    deadLetters: dlq ? dlq.visible + dlq.inFlight + dlq.delayed : null,
    createdAt: q.createdAt,
  };
}

function messageView(m: QueueMessage): Record<string, unknown> {
  return {
    messageId: m.id,
    body: m.body,
    md5OfBody: m.md5OfBody,
    attributes: m.attributes,
    groupId: m.groupId,
    deduplicationId: m.deduplicationId,
    sequenceNumber: m.sequenceNumber,
    sentAt: m.sentAt,
    receiveCount: m.receiveCount,
    deadLetterSource: m.deadLetterSource,
  };
}

function parseJson(body: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw badRequest(
    'the request body must be a JSON object such as {"body": "hello"}',
    'send {"body": TEXT, "attributes"?: {...}, "groupId"?, "deduplicationId"?, "delaySeconds"?} or {"messages": [...]}',
  );
}

const MESSAGE_FIELDS = new Set(['body', 'attributes', 'groupId', 'deduplicationId', 'delaySeconds']);

function newMessage(raw: unknown, at: string): NewMessage {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw badRequest(`${at || 'the message'} must be an object with a "body"`, 'see docs/api.md');
  }
  const m = raw as Record<string, unknown>;
  for (const key of Object.keys(m)) {
    if (!MESSAGE_FIELDS.has(key))
      throw badRequest(`unknown field "${at}${key}"`, `a message has ${[...MESSAGE_FIELDS].join(', ')}`);
  }
  if (typeof m['body'] !== 'string')
    throw badRequest(`"${at}body" must be a string`, 'send the message text as "body"');
  const out: NewMessage = { body: m['body'] };
  if (m['attributes'] !== undefined) out.attributes = attributes(m['attributes'], `${at}attributes`);
  for (const key of ['groupId', 'deduplicationId'] as const) {
    const v = m[key];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw badRequest(`"${at}${key}" must be a string`, '');
    out[key] = v;
  }
  if (m['delaySeconds'] !== undefined) {
    const v = m['delaySeconds'];
    if (typeof v !== 'number')
      throw badRequest(`"${at}delaySeconds" must be a number of seconds (0..900)`, '');
    out.delaySeconds = v;
  }
  return out;
}

/** SQS's attribute objects, or the shorthand a person types: a string is a String, a number a Number. */
export function attributes(raw: unknown, at: string): Record<string, MessageAttributeValue> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw badRequest(
      `"${at}" must be an object of attributes`,
      'for example {"type": "order"} or {"type": {"DataType": "String", "StringValue": "order"}}',
    );
  }
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v === 'string') out[name] = { DataType: 'String', StringValue: v };
    else if (typeof v === 'number' && Number.isFinite(v))
      out[name] = { DataType: 'Number', StringValue: String(v) };
    else if (
      v !== null &&
      typeof v === 'object' &&
      typeof (v as { DataType?: unknown }).DataType === 'string'
    ) {
      const a = v as Record<string, unknown>;
      out[name] = {
        DataType: a['DataType'] as string,
        ...(typeof a['StringValue'] === 'string' ? { StringValue: a['StringValue'] } : {}),
        ...(typeof a['BinaryValue'] === 'string' ? { BinaryValue: a['BinaryValue'] } : {}),
      };
    } else {
      throw badRequest(
        `attribute "${name}" of "${at}" must be a string, a number or {"DataType", "StringValue" | "BinaryValue"}`,
        '',
      );
    }
  }
  return out;
}

/** What the store refuses, as the client sees it. */
export function queueError(err: unknown): unknown {
  if (err instanceof QueueInputError) {
    return new ApiError(400, 'InvalidMessage', err.message, `fix ${err.field} and send again`);
  }
  if (err instanceof QueueNotFoundError) return notFound(`queue ${err.queue}`);
  return err;
}

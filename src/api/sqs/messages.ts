// SQS's message operations over the QueueStore: SendMessage(Batch), ReceiveMessage with long polling,
// DeleteMessage(Batch) and ChangeMessageVisibility(Batch). Every message keeps SQS's checksums: MD5OfBody and
// MD5OfMessageAttributes, which the SDKs verify. A batch checks each entry on its own, so one bad entry is a
// Failed entry and the others go through, as on SQS.
import { md5OfMessageAttributes } from '../../events/sqs-md5.js';
import { QueueInputError } from '../../store/errors.js';
import { checkMessages, parseReceiptHandle } from '../../store/queue-rules.js';
import type { MessageAttributeValue, NewMessage, QueueMessage, StoredQueue } from '../../store/types.js';
import { queueArn } from './attributes.js';
import type { SqsContext, SqsRuntime } from './context.js';
import { invalidParameter, missingParameter, sqsError, type Input } from './protocol.js';
import { translate } from './queues.js';

const MAX_BATCH = 10;
/** SQS's limit on a whole SendMessageBatch, bodies and attributes together. */
const MAX_BATCH_BYTES = 1_048_576;
const BATCH_ID = /^[A-Za-z0-9_-]{1,80}$/;
const SYSTEM_ATTRIBUTES = [
  'SenderId',
  'SentTimestamp',
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
  'SequenceNumber',
  'MessageDeduplicationId',
  'MessageGroupId',
  'AWSTraceHeader',
  'DeadLetterQueueSourceArn',
] as const;

export async function sendMessage(
  d: SqsRuntime,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  const m = newMessage(input);
  check(q, m);
  let sent;
  try {
    [sent] = await d.store.queues.send(c.project, q.name, [m]);
  } catch (err) {
    throw err instanceof QueueInputError ? messageError(q, err) : translate(err);
  }
  notify(d, c, q);
  return sendResult(sent!, m);
}

export async function sendMessageBatch(
  d: SqsRuntime,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  const entries = batchEntries(input, 'SendMessageBatchRequestEntry');
  const failed: Input[] = [];
  const good: { id: string; m: NewMessage }[] = [];
  let bytes = 0;
  for (const e of entries) {
    try {
      const m = newMessage(e);
      bytes += Buffer.byteLength(m.body) + attributeBytes(m.attributes ?? {});
      check(q, m);
      good.push({ id: e['Id'] as string, m });
    } catch (err) {
      failed.push(failure(e['Id'] as string, err));
    }
  }
  if (bytes > MAX_BATCH_BYTES) {
    throw sqsError(
      400,
      'BatchRequestTooLong',
      `Batch requests cannot be longer than ${MAX_BATCH_BYTES} bytes. You have sent ${bytes} bytes.`,
    );
  }
  const successful: Input[] = [];
  if (good.length > 0) {
    let sent;
    try {
      sent = await d.store.queues.send(
        c.project,
        q.name,
        good.map((g) => g.m),
      );
    } catch (err) {
      throw err instanceof QueueInputError ? messageError(q, err) : translate(err);
    }
    notify(d, c, q);
    sent.forEach((s, i) => successful.push({ Id: good[i]!.id, ...sendResult(s, good[i]!.m) }));
  }
  return { Successful: successful, Failed: failed };
}

export async function receiveMessage(
  d: SqsRuntime,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  const max = intParam(input, 'MaxNumberOfMessages', 1, 10, 'Must be between 1 and 10, if provided.') ?? 1;
  const wait =
    intParam(input, 'WaitTimeSeconds', 0, 20, 'Must be >= 0 and <= 20, if provided.') ??
    q.receiveMessageWaitTimeSeconds ??
    0;
  const visibilityTimeout = intParam(
    input,
    'VisibilityTimeout',
    0,
    43_200,
    'Must be >= 0 and <= 43200, if provided.',
  );
  const system = systemAttributeNames(input);
  const wanted = attributeNameFilter(input);
  const look = () =>
    d.store.queues
      .receive(c.project, q.name, {
        max,
        ...(visibilityTimeout !== undefined ? { visibilityTimeout } : {}),
      })
      .catch((err: unknown) => Promise.reject(translate(err)));
  const messages =
    wait === 0
      ? await look()
      : await d.waiters.poll(
          c.project,
          q.name,
          wait * 1000,
          d.pollMs,
          look,
          () => d.store.queues.nextVisibleAt(c.project, q.name),
          c.signal,
        );
  return { Messages: messages.map((m) => messageView(d, m, system, wanted)) };
}

export async function deleteMessage(
  d: SqsRuntime,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  const handle = receiptHandle(input);
  // A handle that is ours but no longer the latest deletes nothing and is no error, as on SQS.
  await d.store.queues
    .delete(c.project, q.name, handle)
    .catch((err: unknown) => Promise.reject(translate(err)));
  return {};
}

export async function deleteMessageBatch(
  d: SqsRuntime,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  const entries = batchEntries(input, 'DeleteMessageBatchRequestEntry');
  const failed: Input[] = [];
  const good: { id: string; handle: string }[] = [];
  for (const e of entries) {
    try {
      good.push({ id: e['Id'] as string, handle: receiptHandle(e) });
    } catch (err) {
      failed.push(failure(e['Id'] as string, err));
    }
  }
  if (good.length > 0) {
    await d.store.queues
      .deleteBatch(
        c.project,
        q.name,
        good.map((g) => g.handle),
      )
      .catch((err: unknown) => Promise.reject(translate(err)));
  }
  return { Successful: good.map((g) => ({ Id: g.id })), Failed: failed };
}

export async function changeMessageVisibility(
  d: SqsRuntime,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  await changeOne(d, c, q, input);
  return {};
}

export async function changeMessageVisibilityBatch(
  d: SqsRuntime,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  const entries = batchEntries(input, 'ChangeMessageVisibilityBatchRequestEntry');
  const successful: Input[] = [];
  const failed: Input[] = [];
  for (const e of entries) {
    try {
      await changeOne(d, c, q, e);
      successful.push({ Id: e['Id'] });
    } catch (err) {
      failed.push(failure(e['Id'] as string, err));
    }
  }
  return { Successful: successful, Failed: failed };
}

async function changeOne(d: SqsRuntime, c: SqsContext, q: StoredQueue, input: Input): Promise<void> {
  const handle = receiptHandle(input);
  if (input['VisibilityTimeout'] === undefined) throw missingParameter('VisibilityTimeout');
  const seconds = intParam(input, 'VisibilityTimeout', 0, 43_200, 'Must be >= 0 and <= 43200.')!;
  const changed = await d.store.queues
    .changeVisibility(c.project, q.name, handle, seconds)
    .catch((err: unknown) => Promise.reject(translate(err)));
  if (!changed) {
    throw invalidParameter(
      `Value ${handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.`,
    );
  }
}

function notify(d: SqsRuntime, c: SqsContext, q: StoredQueue): void {
  d.waiters.notify(c.project, q.name);
  d.notifyQueue?.(c.project, q.name);
}

/** The entries of a batch request, with SQS's checks of the batch itself. */
function batchEntries(input: Input, queryName: string): Input[] {
  const raw = input['Entries'];
  if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) {
    throw sqsError(400, 'EmptyBatchRequest', `There should be at least one ${queryName} in the request.`);
  }
  if (!Array.isArray(raw) || raw.some((e) => e === null || typeof e !== 'object')) {
    throw invalidParameter('Entries must be a list of entries.');
  }
  if (raw.length > MAX_BATCH) {
    throw sqsError(
      400,
      'TooManyEntriesInBatchRequest',
      `Maximum number of entries per request are ${MAX_BATCH}. You have sent ${raw.length}.`,
    );
  }
  const seen = new Set<string>();
  for (const e of raw as Input[]) {
    const id = e['Id'];
    if (typeof id !== 'string' || !BATCH_ID.test(id)) {
      throw sqsError(
        400,
        'InvalidBatchEntryId',
        'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.',
      );
    }
    if (seen.has(id)) throw sqsError(400, 'BatchEntryIdsNotDistinct', `Id ${id} repeated.`);
    seen.add(id);
  }
  return raw as Input[];
}

function failure(id: string, err: unknown): Input {
  const e = err as { code?: string; message?: string; status?: number };
  return {
    Id: id,
    SenderFault: true,
    Code: e.code ?? 'InternalError',
    Message: e.message ?? 'The entry could not be processed.',
  };
}

function newMessage(input: Input): NewMessage {
  const body = input['MessageBody'];
  if (body === undefined || body === '') throw missingParameter('MessageBody');
  if (typeof body !== 'string') throw invalidParameter('MessageBody must be a string.');
  const m: NewMessage = { body };
  const attrs = messageAttributes(input['MessageAttributes']);
  if (Object.keys(attrs).length > 0) m.attributes = attrs;
  const delay = intParam(input, 'DelaySeconds', 0, 900, 'Must be >= 0 and <= 900, if provided.');
  if (delay !== undefined) m.delaySeconds = delay;
  for (const [member, key] of [
    ['MessageGroupId', 'groupId'],
    ['MessageDeduplicationId', 'deduplicationId'],
  ] as const) {
    const v = input[member];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw invalidParameter(`${member} must be a string.`);
    m[key] = v;
  }
  const system = input['MessageSystemAttributes'];
  if (system !== undefined && system !== null) {
    const trace = (system as Input)['AWSTraceHeader'] as Input | undefined;
    for (const name of Object.keys(system as Input)) {
      if (name !== 'AWSTraceHeader') {
        throw invalidParameter(`Message system attribute name '${name}' is invalid.`);
      }
    }
    if (trace === undefined || trace['DataType'] !== 'String' || typeof trace['StringValue'] !== 'string') {
      throw invalidParameter('Message system attribute AWSTraceHeader must be a String with a StringValue.');
    }
    m.trace = trace['StringValue'];
  }
  return m;
}

function messageAttributes(raw: unknown): Record<string, MessageAttributeValue> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw invalidParameter('MessageAttributes must be a map.');
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, v] of Object.entries(raw as Input)) {
    const a = (v ?? {}) as Input;
    if (a['DataType'] === undefined) {
      throw missingParameter(`MessageAttributes.${name}.DataType`);
    }
    if (a['StringListValues'] !== undefined || a['BinaryListValues'] !== undefined) {
      throw sqsError(
        400,
        'UnsupportedOperation',
        `Message attribute list values are not supported (attribute ${name}).`,
      );
    }
    out[name] = {
      DataType: a['DataType'] as string,
      ...(a['StringValue'] !== undefined ? { StringValue: a['StringValue'] as string } : {}),
      ...(a['BinaryValue'] !== undefined ? { BinaryValue: a['BinaryValue'] as string } : {}),
    };
  }
  return out;
}

/** The store's checks, run before anything is stored, so a batch can fail one entry and send the rest. */
function check(q: StoredQueue, m: NewMessage): void {
  try {
    checkMessages(q, [m]);
  } catch (err) {
    throw err instanceof QueueInputError ? messageError(q, err) : err;
  }
}

/** What the store refuses in a message, in SQS's words and codes. */
function messageError(q: StoredQueue, err: QueueInputError): unknown {
  const msg = err.message;
  if (err.field === 'body' && msg.includes('characters')) {
    return sqsError(
      400,
      'InvalidMessageContents',
      'Invalid binary character was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF',
    );
  }
  if (err.field === 'body' && msg.includes('bytes')) {
    return invalidParameter(
      `One or more parameters are invalid. Reason: Message must be shorter than ${q.maximumMessageSize} bytes.`,
    );
  }
  if (err.field === 'groupId' && msg.includes('needs')) return missingParameter('MessageGroupId');
  if (err.field === 'deduplicationId' && msg.includes('needs')) {
    return invalidParameter(
      'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly',
    );
  }
  if (err.field === 'delaySeconds' && q.fifo) {
    return invalidParameter(
      'Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.',
    );
  }
  if (err.field.startsWith('attributes')) {
    return invalidParameter(`One or more parameters are invalid. Reason: ${msg}`);
  }
  return invalidParameter(msg);
}

function sendResult(
  s: { id: string; md5OfBody: string; sequenceNumber: string | null },
  m: NewMessage,
): Input {
  const out: Input = { MessageId: s.id, MD5OfMessageBody: s.md5OfBody };
  const md5 = md5OfMessageAttributes(m.attributes ?? {});
  if (md5 !== null) out['MD5OfMessageAttributes'] = md5;
  if (m.trace) {
    out['MD5OfMessageSystemAttributes'] = md5OfMessageAttributes({
      AWSTraceHeader: { DataType: 'String', StringValue: m.trace },
    });
  }
  if (s.sequenceNumber !== null) out['SequenceNumber'] = s.sequenceNumber;
  return out;
}

function attributeBytes(attrs: Record<string, MessageAttributeValue>): number {
  let n = 0;
  for (const [name, a] of Object.entries(attrs)) {
    n += Buffer.byteLength(name) + Buffer.byteLength(String(a.DataType));
    n += a.BinaryValue !== undefined ? Math.floor((String(a.BinaryValue).length * 3) / 4) : 0;
    n += a.StringValue !== undefined ? Buffer.byteLength(String(a.StringValue)) : 0;
  }
  return n;
}

function receiptHandle(input: Input): string {
  const h = input['ReceiptHandle'];
  if (h === undefined || h === '') throw missingParameter('ReceiptHandle');
  if (typeof h !== 'string' || parseReceiptHandle(h) === undefined) {
    throw sqsError(
      404,
      'ReceiptHandleIsInvalid',
      `The input receipt handle "${String(h)}" is not a valid receipt handle.`,
    );
  }
  return h;
}

/** An integer parameter within SQS's range, in its words; undefined when left out. */
function intParam(input: Input, name: string, min: number, max: number, reason: string): number | undefined {
  const v = input[name];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw invalidParameter(`Value ${String(v)} for parameter ${name} is invalid. Reason: ${reason}`);
  }
  return n;
}

/** The system attributes a receive asks for (AttributeNames, deprecated, and MessageSystemAttributeNames). */
function systemAttributeNames(input: Input): Set<string> {
  const names = [...list(input, 'AttributeNames'), ...list(input, 'MessageSystemAttributeNames')];
  if (names.includes('All')) return new Set(SYSTEM_ATTRIBUTES);
  for (const n of names) {
    if (!(SYSTEM_ATTRIBUTES as readonly string[]).includes(n)) {
      throw sqsError(400, 'InvalidAttributeName', `Unknown Attribute ${n}.`);
    }
  }
  return new Set(names);
}

/** MessageAttributeNames: "All" or ".*" for every one, "foo.*" for a prefix, or exact names. */
function attributeNameFilter(input: Input): (name: string) => boolean {
  const names = list(input, 'MessageAttributeNames');
  if (names.includes('All') || names.includes('.*')) return () => true;
  const exact = new Set(names.filter((n) => !n.endsWith('.*')));
  const prefixes = names.filter((n) => n.endsWith('.*')).map((n) => n.slice(0, -1));
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p));
}

function list(input: Input, member: string): string[] {
  const raw = input[member];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.some((v) => typeof v !== 'string')) {
    throw invalidParameter(`${member} must be a list of strings.`);
  }
  return raw as string[];
}

function messageView(
  d: SqsRuntime,
  m: QueueMessage,
  system: Set<string>,
  wanted: (name: string) => boolean,
): Input {
  const out: Input = {
    MessageId: m.id,
    ReceiptHandle: m.receiptHandle,
    MD5OfBody: m.md5OfBody,
    Body: m.body,
  };
  const attrs: Record<string, string> = {};
  const all: Record<string, string | null> = {
    SenderId: d.accountId,
    SentTimestamp: String(Math.floor(m.sentAt)),
    ApproximateReceiveCount: String(m.receiveCount),
    ApproximateFirstReceiveTimestamp: String(Math.floor(m.firstReceivedAt ?? m.sentAt)),
    SequenceNumber: m.sequenceNumber,
    MessageDeduplicationId: m.deduplicationId,
    MessageGroupId: m.groupId,
    AWSTraceHeader: m.trace,
    DeadLetterQueueSourceArn: m.deadLetterSource === null ? null : queueArn(d, m.deadLetterSource),
  };
  for (const n of system) if (all[n] !== null && all[n] !== undefined) attrs[n] = all[n];
  if (Object.keys(attrs).length > 0) out['Attributes'] = attrs;
  // The digest covers the attributes returned, which is what a client can check it against.
  const returned: Record<string, MessageAttributeValue> = {};
  for (const [name, a] of Object.entries(m.attributes)) if (wanted(name)) returned[name] = a;
  const md5 = md5OfMessageAttributes(returned);
  if (md5 !== null) {
    out['MD5OfMessageAttributes'] = md5;
    out['MessageAttributes'] = returned;
  }
  return out;
}

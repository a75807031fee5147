// What a queue accepts, decided once for both backends: the checks on a deploy's queue configs, on every
// message before send() stores any, and on receive options; the deploy plan for a service's queues; and the
// receipt-handle format. All of it follows SQS's rules, so the SQS-compatible API refuses what SQS refuses.
import { createHash } from 'node:crypto';
import { QUEUE_DEFAULTS, QUEUE_NAME, type QueueConfig } from '../config/manifest.js';
import { canonicalJson } from './canonical-json.js';
import { QueueInputError, QueueOwnedError } from './errors.js';
import type {
  DeployResult,
  MessageAttributeValue,
  NewMessage,
  ReceiveOptions,
  StoredQueue,
} from './types.js';

/** How long a FIFO queue remembers a deduplication id (SQS: 5 minutes). */
export const DEDUP_WINDOW_MS = 300_000;
const MAX_ATTRIBUTES = 10;
const MAX_RECEIVE = 10_000;
const MAX_VISIBILITY_TIMEOUT = 43_200;
const MAX_DELAY_SECONDS = 900;
export const DEFAULT_PEEK_LIMIT = 100;
export const MAX_PEEK_LIMIT = 1000;

/** Group and deduplication ids: 1 to 128 of the printable ASCII characters (alphanumerics and punctuation). */
const MESSAGE_TAG = /^[!-~]{1,128}$/;
/** The characters SQS allows in a body or attribute value; anything else (NUL, lone surrogates) is refused. */
const INVALID_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const ATTRIBUTE_NAME = /^[A-Za-z0-9_.-]{1,256}$/;
const DATA_TYPE = /^(String|Number|Binary)(\..+)?$/;
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A message as both backends store it, checked and with everything derived from it. */
export interface MessageRow {
  body: string;
  md5: string;
  /** JSON of the attributes, with only the fields SQS defines. */
  attributes: string;
  groupId: string | null;
  dedupId: string | null;
  trace: string | null;
  /** Milliseconds after sending that it becomes receivable. */
  delayMs: number;
}

/** The safety net under the manifest parser and the API: a deploy's queue configs as SQS would take them. */
export function checkQueueConfigs(service: string, queues: readonly QueueConfig[]): void {
  const byName = new Map<string, QueueConfig>();
  for (const q of queues) {
    if (typeof q.name !== 'string' || !QUEUE_NAME.test(q.name)) {
      throw new QueueInputError(
        'queues',
        `queue name "${String(q.name)}" is not valid: use 1 to 80 letters, digits, "-" or "_" (a FIFO queue's name ends in ".fifo")`,
      );
    }
    if (byName.has(q.name)) {
      throw new QueueInputError(
        `queues.${q.name}`,
        `queue "${q.name}" appears twice in the deploy of "${service}"`,
      );
    }
    byName.set(q.name, q);
    const field = (key: string) => `queues.${q.name}.${key}`;
    if (q.fifo !== q.name.endsWith('.fifo')) {
      throw new QueueInputError(
        field('fifo'),
        q.fifo
          ? `a FIFO queue's name must end in ".fifo"`
          : `"${q.name}" ends in ".fifo", so it must be a FIFO queue`,
      );
    }
    if (typeof q.contentBasedDeduplication !== 'boolean') {
      throw new QueueInputError(field('contentBasedDeduplication'), 'must be true or false');
    }
    if (q.contentBasedDeduplication && !q.fifo) {
      throw new QueueInputError(field('contentBasedDeduplication'), 'applies to FIFO queues only');
    }
    checkRange(field('visibilityTimeout'), q.visibilityTimeout, 0, MAX_VISIBILITY_TIMEOUT);
    checkRange(field('messageRetentionPeriod'), q.messageRetentionPeriod, 60, 1_209_600);
    checkRange(field('delaySeconds'), q.delaySeconds, 0, MAX_DELAY_SECONDS);
    checkRange(field('maximumMessageSize'), q.maximumMessageSize, 1024, 1_048_576);
    if (q.receiveMessageWaitTimeSeconds !== undefined) {
      checkRange(field('receiveMessageWaitTimeSeconds'), q.receiveMessageWaitTimeSeconds, 0, 20);
    }
    if (q.maxReceiveCount !== undefined) checkRange(field('maxReceiveCount'), q.maxReceiveCount, 1, 1000);
    if (q.deadLetterQueue !== undefined) {
      if (typeof q.deadLetterQueue !== 'string' || !QUEUE_NAME.test(q.deadLetterQueue)) {
        throw new QueueInputError(field('deadLetterQueue'), 'is not a valid queue name');
      }
      if (q.deadLetterQueue === q.name) {
        throw new QueueInputError(field('deadLetterQueue'), 'names the queue itself');
      }
    }
  }
  for (const q of queues) {
    const dlq = q.deadLetterQueue === undefined ? undefined : byName.get(q.deadLetterQueue);
    if (dlq && dlq.fifo !== q.fifo) {
      throw new QueueInputError(
        `queues.${q.name}.deadLetterQueue`,
        `the dead-letter queue of a ${q.fifo ? 'FIFO' : 'standard'} queue must be ${q.fifo ? 'FIFO' : 'standard'} too`,
      );
    }
  }
}

function checkRange(field: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new QueueInputError(field, `must be a whole number from ${min} to ${max}, not ${String(value)}`);
  }
}

/** The tags after a TagQueue / UntagQueue, as stored (keys sorted); throws for anything but strings. */
export function mergeTags(
  current: Record<string, string>,
  add: Record<string, string>,
  remove: readonly string[] = [],
): string {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(current)) out[k] = v;
  for (const [k, v] of Object.entries(add)) {
    if (typeof v !== 'string') throw new QueueInputError(`tags.${k}`, 'a tag value must be a string');
    out[k] = v;
  }
  for (const k of remove) delete out[k];
  return canonicalJson(out);
}

/** What a queue row holds: its config as canonical JSON, so "changed" is a comparison of text. */
export function queueConfigText(q: QueueConfig): string {
  return canonicalJson(q);
}

export interface CurrentQueue {
  name: string;
  service: string | null;
  config: string;
}

export interface QueuePlan {
  create: QueueConfig[];
  update: QueueConfig[];
  result: DeployResult['queues'];
}

/**
 * What a deploy does to the project's queues, given the rows it names or the service owns. Throws
 * QueueOwnedError before anything is written when a declared queue belongs to someone else.
 */
export function planQueues(
  service: string,
  declared: readonly QueueConfig[],
  current: readonly CurrentQueue[],
): QueuePlan {
  const byName = new Map(current.map((q) => [q.name, q]));
  const plan: QueuePlan = {
    create: [],
    update: [],
    result: { created: [], updated: [], unchanged: [], removed: [] },
  };
  for (const q of declared) {
    const row = byName.get(q.name);
    if (row && row.service !== service) throw new QueueOwnedError(q.name, row.service, service);
    if (!row) plan.create.push(q);
    else if (row.config !== queueConfigText(q)) plan.update.push(q);
    else plan.result.unchanged.push(q.name);
  }
  const names = new Set(declared.map((q) => q.name));
  plan.result.created = plan.create.map((q) => q.name).sort();
  plan.result.updated = plan.update.map((q) => q.name).sort();
  plan.result.unchanged.sort();
  plan.result.removed = current
    .filter((q) => q.service === service && !names.has(q.name))
    .map((q) => q.name)
    .sort();
  return plan;
}

/** Checks every message against the queue and derives what is stored; throws for the first bad one. */
export function checkMessages(queue: StoredQueue, messages: readonly NewMessage[]): MessageRow[] {
  return messages.map((m, i) => {
    try {
      return checkMessage(queue, m);
    } catch (err) {
      if (!(err instanceof QueueInputError) || messages.length === 1) throw err;
      throw new QueueInputError(err.field, `message ${i + 1} of ${messages.length}: ${err.message}`);
    }
  });
}

function checkMessage(queue: StoredQueue, m: NewMessage): MessageRow {
  if (typeof m.body !== 'string' || m.body.length === 0) {
    throw new QueueInputError('body', 'the message body must not be empty');
  }
  if (INVALID_CHAR.test(m.body)) {
    throw new QueueInputError('body', 'the message body contains characters SQS does not allow');
  }
  const { json, bytes } = checkAttributes(m.attributes ?? {});
  const size = Buffer.byteLength(m.body) + bytes;
  if (size > queue.maximumMessageSize) {
    throw new QueueInputError(
      'body',
      `the message is ${size} bytes (body and attributes); queue "${queue.name}" takes at most ${queue.maximumMessageSize}`,
    );
  }
  let groupId: string | null = null;
  let dedupId: string | null = null;
  let delaySeconds = queue.delaySeconds;
  if (queue.fifo) {
    if (m.groupId === undefined) {
      throw new QueueInputError(
        'groupId',
        `a message to FIFO queue "${queue.name}" needs a message group id`,
      );
    }
    groupId = checkTag('groupId', 'message group id', m.groupId);
    if (m.deduplicationId !== undefined)
      dedupId = checkTag('deduplicationId', 'deduplication id', m.deduplicationId);
    else if (queue.contentBasedDeduplication) dedupId = createHash('sha256').update(m.body).digest('hex');
    else {
      throw new QueueInputError(
        'deduplicationId',
        `a message to FIFO queue "${queue.name}" needs a deduplication id, or the queue needs contentBasedDeduplication`,
      );
    }
    if (m.delaySeconds !== undefined) {
      throw new QueueInputError(
        'delaySeconds',
        "FIFO queues take no per-message delay; set the queue's delaySeconds",
      );
    }
  } else {
    if (m.groupId !== undefined) {
      throw new QueueInputError(
        'groupId',
        `message group ids are for FIFO queues; "${queue.name}" is standard`,
      );
    }
    if (m.deduplicationId !== undefined) {
      throw new QueueInputError(
        'deduplicationId',
        `deduplication ids are for FIFO queues; "${queue.name}" is standard`,
      );
    }
    if (m.delaySeconds !== undefined) {
      checkRange('delaySeconds', m.delaySeconds, 0, MAX_DELAY_SECONDS);
      delaySeconds = m.delaySeconds;
    }
  }
  return {
    body: m.body,
    md5: createHash('md5').update(m.body).digest('hex'),
    attributes: json,
    groupId,
    dedupId,
    trace: m.trace ?? null,
    delayMs: delaySeconds * 1000,
  };
}

function checkTag(field: string, what: string, value: unknown): string {
  if (typeof value !== 'string' || !MESSAGE_TAG.test(value)) {
    throw new QueueInputError(field, `the ${what} must be 1 to 128 letters, digits or punctuation`);
  }
  return value;
}

/** The attributes as stored (only SQS's fields, in a stable order) and the bytes SQS counts for them. */
function checkAttributes(attrs: Record<string, MessageAttributeValue>): { json: string; bytes: number } {
  if (attrs === null || typeof attrs !== 'object') {
    throw new QueueInputError('attributes', 'message attributes must be an object of name to value');
  }
  const names = Object.keys(attrs);
  if (names.length > MAX_ATTRIBUTES) {
    throw new QueueInputError(
      'attributes',
      `a message has at most ${MAX_ATTRIBUTES} attributes, not ${names.length}`,
    );
  }
  const out: Record<string, MessageAttributeValue> = Object.create(null) as Record<
    string,
    MessageAttributeValue
  >;
  let bytes = 0;
  for (const name of names.sort()) {
    const field = `attributes.${name}`;
    if (
      !ATTRIBUTE_NAME.test(name) ||
      name.startsWith('.') ||
      name.endsWith('.') ||
      name.includes('..') ||
      /^(aws|amazon)\./i.test(name)
    ) {
      throw new QueueInputError(
        field,
        `attribute name "${name}" is not valid: use up to 256 letters, digits, "_", "-" or ".", not starting with "AWS." or "Amazon."`,
      );
    }
    const a = attrs[name]!;
    const type = (a as { DataType?: unknown } | null)?.DataType;
    if (typeof type !== 'string' || type.length > 256 || !DATA_TYPE.test(type)) {
      throw new QueueInputError(
        field,
        `attribute "${name}" needs a DataType of String, Number or Binary (optionally with ".label")`,
      );
    }
    let valueBytes: number;
    if (type.startsWith('Binary')) {
      if (a.StringValue !== undefined) {
        throw new QueueInputError(field, `attribute "${name}" is Binary: give BinaryValue, not StringValue`);
      }
      if (typeof a.BinaryValue !== 'string' || a.BinaryValue.length === 0 || !BASE64.test(a.BinaryValue)) {
        throw new QueueInputError(field, `attribute "${name}" needs a non-empty base64 BinaryValue`);
      }
      valueBytes = Buffer.from(a.BinaryValue, 'base64').length;
      out[name] = { DataType: type, BinaryValue: a.BinaryValue };
    } else {
      if (a.BinaryValue !== undefined) {
        throw new QueueInputError(field, `attribute "${name}" is ${type}: give StringValue, not BinaryValue`);
      }
      if (typeof a.StringValue !== 'string' || a.StringValue.length === 0) {
        throw new QueueInputError(field, `attribute "${name}" needs a non-empty StringValue`);
      }
      if (INVALID_CHAR.test(a.StringValue)) {
        throw new QueueInputError(field, `attribute "${name}" contains characters SQS does not allow`);
      }
      if (
        type.startsWith('Number') &&
        !(NUMBER.test(a.StringValue) && Number.isFinite(Number(a.StringValue)))
      ) {
        throw new QueueInputError(
          field,
          `attribute "${name}" is a Number, but "${a.StringValue}" is not a number`,
        );
      }
      valueBytes = Buffer.byteLength(a.StringValue);
      out[name] = { DataType: type, StringValue: a.StringValue };
    }
    bytes += Buffer.byteLength(name) + Buffer.byteLength(type) + valueBytes;
  }
  return { json: JSON.stringify(out), bytes };
}

/** receive()'s options, checked: how many (clamped) and for how long they stay hidden. */
export function receiveLimits(queue: StoredQueue, opts: ReceiveOptions): { max: number; hideMs: number } {
  const max = Math.min(MAX_RECEIVE, Math.max(1, Math.floor(Number.isFinite(opts.max) ? opts.max : 1)));
  const seconds = opts.visibilityTimeout ?? queue.visibilityTimeout;
  checkRange('visibilityTimeout', seconds, 0, MAX_VISIBILITY_TIMEOUT);
  return { max, hideMs: seconds * 1000 };
}

/** changeVisibility()'s seconds, checked. */
export function visibilityMs(seconds: number): number {
  checkRange('visibilityTimeout', seconds, 0, MAX_VISIBILITY_TIMEOUT);
  return seconds * 1000;
}

/** When a message of this queue sent at or before this time has passed its retention. */
export function expiredBefore(queue: QueueConfig, now: number): number {
  return now - queue.messageRetentionPeriod * 1000;
}

/** The receive count at which the next receive moves a message to the dead-letter queue, if it has one. */
export function maxReceives(queue: QueueConfig): number | undefined {
  if (queue.deadLetterQueue === undefined) return undefined;
  return queue.maxReceiveCount ?? QUEUE_DEFAULTS.maxReceiveCount;
}

/** A receipt handle: base64url of "<message id>:<token>"; the token changes with every receive. */
export function receiptHandle(id: string, token: string): string {
  return Buffer.from(`${id}:${token}`).toString('base64url');
}

/** The message id and token a handle names, or undefined for anything that is not one of ours. */
export function parseReceiptHandle(handle: unknown): { id: string; token: string } | undefined {
  if (typeof handle !== 'string' || handle.length === 0 || handle.length > 1024) return undefined;
  const [id, token, ...rest] = Buffer.from(handle, 'base64url').toString('utf8').split(':');
  if (!id || !token || rest.length > 0) return undefined;
  return { id, token };
}

/** FIFO sequence numbers are the store's message seq, as SQS's 20-digit decimal. */
export function sequenceNumber(seq: number): string {
  return String(seq).padStart(20, '0');
}

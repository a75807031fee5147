// Queue attributes as SQS names them (strings on the wire, "VisibilityTimeout": "30") and the QueueConfig they
// stand for. CreateQueue and SetQueueAttributes read them; GetQueueAttributes writes them with the counts.
import { QUEUE_DEFAULTS, type QueueConfig } from '../../config/manifest.js';
import type { QueueStats, StoredQueue } from '../../store/types.js';
import { invalidParameter, sqsError, type Input } from './protocol.js';

/** Ranges SQS allows, in its units. */
const RANGES: Record<string, [keyof QueueConfig, number, number]> = {
  DelaySeconds: ['delaySeconds', 0, 900],
  MaximumMessageSize: ['maximumMessageSize', 1024, 1_048_576],
  MessageRetentionPeriod: ['messageRetentionPeriod', 60, 1_209_600],
  ReceiveMessageWaitTimeSeconds: ['receiveMessageWaitTimeSeconds', 0, 20],
  VisibilityTimeout: ['visibilityTimeout', 0, 43_200],
};

/** Attributes SQS has that Nimbus accepts and does not act on: encryption at rest is the disk's, access
 *  policies are the manifest's permissions, and FIFO throughput is whatever the store gives. */
const IGNORED = new Set([
  'Policy',
  'KmsMasterKeyId',
  'KmsDataKeyReusePeriodSeconds',
  'SqsManagedSseEnabled',
  'RedriveAllowPolicy',
  'DeduplicationScope',
  'FifoThroughputLimit',
]);

export const QUEUE_ATTRIBUTE_NAMES = [
  'QueueArn',
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'CreatedTimestamp',
  'LastModifiedTimestamp',
  'VisibilityTimeout',
  'MaximumMessageSize',
  'MessageRetentionPeriod',
  'DelaySeconds',
  'ReceiveMessageWaitTimeSeconds',
  'RedrivePolicy',
  'FifoQueue',
  'ContentBasedDeduplication',
  'SqsManagedSseEnabled',
] as const;

export interface ArnContext {
  region: string;
  accountId: string;
}

export const queueArn = (c: ArnContext, name: string): string =>
  `arn:aws:sqs:${c.region}:${c.accountId}:${name}`;

/** The string-to-string map of an Attributes member, or InvalidParameterValue. */
export function attributeMap(input: Input, member = 'Attributes'): Record<string, string> {
  const raw = input[member];
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidParameter(`${member} must be a map.`);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Input)) {
    if (typeof v !== 'string') {
      throw sqsError(400, 'InvalidAttributeValue', `Invalid value for the parameter ${k}.`);
    }
    out[k] = v;
  }
  return out;
}

/**
 * The config a queue has after these attributes are applied to `base` (a new queue's defaults, or its
 * config now). `dlqOf` answers the dead-letter queue a RedrivePolicy names, for the checks SQS makes.
 */
export function applyAttributes(
  c: ArnContext,
  base: QueueConfig,
  attrs: Record<string, string>,
  opts: { creating: boolean; dlqOf: (name: string) => StoredQueue | undefined },
): QueueConfig {
  const next: QueueConfig = { ...base };
  for (const [name, value] of Object.entries(attrs)) {
    const range = RANGES[name];
    if (range) {
      const [key, min, max] = range;
      const n = /^\d+$/.test(value) ? Number(value) : NaN;
      if (!(n >= min && n <= max)) {
        throw sqsError(400, 'InvalidAttributeValue', `Invalid value for the parameter ${name}.`);
      }
      (next as unknown as Record<string, number>)[key] = n;
      continue;
    }
    if (name === 'FifoQueue') {
      const fifo = value === 'true';
      if (!opts.creating && fifo !== base.fifo) {
        throw sqsError(400, 'InvalidAttributeName', `Unknown Attribute ${name}.`);
      }
      if (value !== 'true' && value !== 'false') {
        throw sqsError(400, 'InvalidAttributeValue', `Invalid value for the parameter ${name}.`);
      }
      if (fifo !== base.name.endsWith('.fifo')) {
        throw sqsError(
          400,
          'InvalidParameterValue',
          fifo
            ? 'The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.'
            : 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length',
        );
      }
      continue;
    }
    if (name === 'ContentBasedDeduplication') {
      if (!base.fifo) throw sqsError(400, 'InvalidAttributeName', `Unknown Attribute ${name}.`);
      if (value !== 'true' && value !== 'false') {
        throw sqsError(400, 'InvalidAttributeValue', `Invalid value for the parameter ${name}.`);
      }
      next.contentBasedDeduplication = value === 'true';
      continue;
    }
    if (name === 'RedrivePolicy') {
      applyRedrive(c, next, value, opts.dlqOf);
      continue;
    }
    if (IGNORED.has(name)) continue;
    // The counts, QueueArn and the timestamps are read-only: SQS calls setting them an unknown attribute.
    throw sqsError(400, 'InvalidAttributeName', `Unknown Attribute ${name}.`);
  }
  if (next.receiveMessageWaitTimeSeconds === 0) delete next.receiveMessageWaitTimeSeconds;
  return next;
}

function applyRedrive(
  c: ArnContext,
  next: QueueConfig,
  value: string,
  dlqOf: (name: string) => StoredQueue | undefined,
): void {
  if (value === '') {
    delete next.deadLetterQueue;
    delete next.maxReceiveCount;
    return;
  }
  const bad = (reason: string) =>
    invalidParameter(`Value ${value} for parameter RedrivePolicy is invalid. Reason: ${reason}`);
  let policy: unknown;
  try {
    policy = JSON.parse(value);
  } catch {
    throw bad('Redrive policy is not a valid JSON map.');
  }
  const p = (policy ?? {}) as Input;
  const arn = p['deadLetterTargetArn'];
  const count = Number(p['maxReceiveCount']);
  if (typeof arn !== 'string')
    throw bad('Redrive policy does not contain mandatory attribute: deadLetterTargetArn.');
  if (p['maxReceiveCount'] === undefined) {
    throw bad('Redrive policy does not contain mandatory attribute: maxReceiveCount.');
  }
  if (!Number.isInteger(count) || count < 1 || count > 1000) {
    throw bad('Invalid value for maxReceiveCount: must be an integer from 1 to 1000.');
  }
  const prefix = `arn:aws:sqs:${c.region}:${c.accountId}:`;
  const dlq = arn.startsWith(prefix) ? dlqOf(arn.slice(prefix.length)) : undefined;
  if (!dlq) throw bad('Dead letter target does not exist.');
  if (dlq.name === next.name) throw bad('Dead letter target cannot be the queue itself.');
  if (dlq.fifo !== next.fifo) {
    throw bad(
      next.fifo
        ? 'Dead-letter queue of a FIFO queue must be a FIFO queue.'
        : 'Dead-letter queue of a standard queue must be a standard queue.',
    );
  }
  next.deadLetterQueue = dlq.name;
  next.maxReceiveCount = count;
}

/** A new queue's config before its attributes: SQS's defaults. */
export function defaultConfig(name: string): QueueConfig {
  return {
    name,
    fifo: name.endsWith('.fifo'),
    contentBasedDeduplication: false,
    visibilityTimeout: QUEUE_DEFAULTS.visibilityTimeout,
    messageRetentionPeriod: QUEUE_DEFAULTS.messageRetentionPeriod,
    delaySeconds: QUEUE_DEFAULTS.delaySeconds,
    maximumMessageSize: QUEUE_DEFAULTS.maximumMessageSize,
  };
}

/** Every attribute of a queue as GetQueueAttributes answers it. */
export function allAttributes(
  c: ArnContext,
  q: StoredQueue,
  stats: QueueStats | undefined,
): Record<string, string> {
  const out: Record<string, string> = {
    QueueArn: queueArn(c, q.name),
    ApproximateNumberOfMessages: String(stats?.visible ?? 0),
    ApproximateNumberOfMessagesNotVisible: String(stats?.inFlight ?? 0),
    ApproximateNumberOfMessagesDelayed: String(stats?.delayed ?? 0),
    CreatedTimestamp: String(Math.floor(q.createdAt / 1000)),
    LastModifiedTimestamp: String(Math.floor(q.updatedAt / 1000)),
    VisibilityTimeout: String(q.visibilityTimeout),
    MaximumMessageSize: String(q.maximumMessageSize),
    MessageRetentionPeriod: String(q.messageRetentionPeriod),
    DelaySeconds: String(q.delaySeconds),
    ReceiveMessageWaitTimeSeconds: String(q.receiveMessageWaitTimeSeconds ?? 0),
    SqsManagedSseEnabled: 'false',
  };
  if (q.deadLetterQueue !== undefined) {
    out['RedrivePolicy'] = JSON.stringify({
      deadLetterTargetArn: queueArn(c, q.deadLetterQueue),
      maxReceiveCount: q.maxReceiveCount ?? QUEUE_DEFAULTS.maxReceiveCount,
    });
  }
  if (q.fifo) {
    out['FifoQueue'] = 'true';
    out['ContentBasedDeduplication'] = String(q.contentBasedDeduplication);
  }
  return out;
}

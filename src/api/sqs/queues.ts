// SQS's queue operations over the QueueStore: CreateQueue, GetQueueUrl, ListQueues, DeleteQueue,
// GetQueueAttributes, SetQueueAttributes, PurgeQueue, the tags and ListDeadLetterSourceQueues. A queue
// created here has no service (a deploy never removes it); a manifest's queue is the same queue to every
// operation here.
import { QUEUE_NAME } from '../../config/manifest.js';
import { QueueExistsError, QueueInputError, QueueNotFoundError } from '../../store/errors.js';
import type { StoredQueue } from '../../store/types.js';
import {
  QUEUE_ATTRIBUTE_NAMES,
  allAttributes,
  applyAttributes,
  attributeMap,
  defaultConfig,
} from './attributes.js';
import { invalidParameter, missingParameter, queueDoesNotExist, sqsError, type Input } from './protocol.js';
import type { SqsContext, SqsDeps } from './context.js';

const MAX_TAGS = 50;
const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;

export async function createQueue(d: SqsDeps, c: SqsContext, input: Input): Promise<Input> {
  const name = queueName(input);
  const attrs = attributeMap(input);
  const tags = tagMap(input['tags'] ?? input['Tags']);
  // As on SQS, a FIFO queue is asked for by the attribute; the suffix alone is a standard name with a dot.
  if (name.endsWith('.fifo') && attrs['FifoQueue'] !== 'true') {
    throw invalidParameter(
      'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length',
    );
  }
  const dlqOf = await dlqLookup(d, c, attrs);
  const existing = await d.store.queues.getQueue(c.project, name);
  if (existing) return { QueueUrl: sameQueue(d, c, existing, attrs, dlqOf) };
  const config = applyAttributes(d, defaultConfig(name), attrs, { creating: true, dlqOf });
  try {
    await d.store.queues.createQueue(c.project, config, tags);
  } catch (err) {
    if (!(err instanceof QueueExistsError)) throw translate(err);
    // Created by someone else a moment ago: the same answer as if it had been there first.
    const now = await d.store.queues.getQueue(c.project, name);
    if (now) return { QueueUrl: sameQueue(d, c, now, attrs, dlqOf) };
    throw err;
  }
  return { QueueUrl: c.queueUrl(name) };
}

/** CreateQueue of an existing name succeeds when every attribute it gives matches, as on SQS. */
function sameQueue(
  d: SqsDeps,
  c: SqsContext,
  q: StoredQueue,
  attrs: Record<string, string>,
  dlqOf: (name: string) => StoredQueue | undefined,
): string {
  const wanted = applyAttributes(d, q, attrs, { creating: true, dlqOf });
  const now = allAttributes(d, q, undefined);
  const then = allAttributes(d, { ...q, ...wanted }, undefined);
  for (const name of Object.keys(attrs)) {
    if (now[name] !== then[name]) {
      throw sqsError(
        400,
        'QueueAlreadyExists',
        `A queue already exists with the same name and a different value for attribute ${name}`,
      );
    }
  }
  return c.queueUrl(q.name);
}

/** The queue a RedrivePolicy attribute names, when it names one of this project, as a lookup for
 *  applyAttributes (which answers SQS's error for a target that does not exist). */
async function dlqLookup(
  d: SqsDeps,
  c: SqsContext,
  attrs: Record<string, string>,
): Promise<(name: string) => StoredQueue | undefined> {
  const policy = attrs['RedrivePolicy'];
  let arn: unknown;
  try {
    arn = policy ? (JSON.parse(policy) as Input | null)?.['deadLetterTargetArn'] : undefined;
  } catch {
    arn = undefined;
  }
  const prefix = `arn:aws:sqs:${d.region}:${d.accountId}:`;
  const name = typeof arn === 'string' && arn.startsWith(prefix) ? arn.slice(prefix.length) : undefined;
  const target = name === undefined ? undefined : await d.store.queues.getQueue(c.project, name);
  return (n) => (target?.name === n ? target : undefined);
}

export async function getQueueUrl(d: SqsDeps, c: SqsContext, input: Input): Promise<Input> {
  const name = queueName(input);
  const owner = input['QueueOwnerAWSAccountId'];
  if (owner !== undefined && owner !== d.accountId) throw queueDoesNotExist();
  const q = await d.store.queues.getQueue(c.project, name);
  if (!q) throw queueDoesNotExist();
  return { QueueUrl: c.queueUrl(q.name) };
}

export async function listQueues(d: SqsDeps, c: SqsContext, input: Input): Promise<Input> {
  const prefix = input['QueueNamePrefix'];
  if (prefix !== undefined && typeof prefix !== 'string')
    throw invalidParameter('QueueNamePrefix must be a string.');
  const max = input['MaxResults'];
  if (max !== undefined && !(Number.isInteger(max) && (max as number) >= 1 && (max as number) <= 1000)) {
    throw invalidParameter(
      'Value for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000.',
    );
  }
  const token = input['NextToken'];
  const after = token === undefined ? undefined : decodeToken(token);
  const names = (await d.store.queues.listQueues(c.project))
    .map((q) => q.name)
    .filter((n) => (prefix === undefined || n.startsWith(prefix)) && c.mayUse(n))
    .filter((n) => after === undefined || n > after);
  // Without MaxResults SQS answers up to 1000 and no token.
  const page = names.slice(0, (max as number | undefined) ?? 1000);
  const out: Input = { QueueUrls: page.map((n) => c.queueUrl(n)) };
  if (max !== undefined && names.length > page.length) out['NextToken'] = encodeToken(page.at(-1)!);
  return out;
}

export async function deleteQueue(d: SqsDeps, c: SqsContext, q: StoredQueue): Promise<Input> {
  await d.store.queues.deleteQueue(c.project, q.name);
  return {};
}

export async function getQueueAttributes(
  d: SqsDeps,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  const names = stringList(input, 'AttributeNames');
  for (const n of names) {
    if (n !== 'All' && !(QUEUE_ATTRIBUTE_NAMES as readonly string[]).includes(n)) {
      throw sqsError(400, 'InvalidAttributeName', `Unknown Attribute ${n}.`);
    }
  }
  if (names.length === 0) return {};
  const stats = (await d.store.queues.stats(c.project)).find((s) => s.queue === q.name);
  const all = allAttributes(d, q, stats);
  const want = names.includes('All') ? Object.keys(all) : names;
  const out: Record<string, string> = {};
  for (const n of want) if (all[n] !== undefined) out[n] = all[n];
  return { Attributes: out };
}

export async function setQueueAttributes(
  d: SqsDeps,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  const attrs = attributeMap(input);
  if (Object.keys(attrs).length === 0) throw missingParameter('Attribute.1.Name');
  const dlqOf = await dlqLookup(d, c, attrs);
  const next = applyAttributes(d, q, attrs, { creating: false, dlqOf });
  const { project: _p, service: _s, createdAt: _c, updatedAt: _u, ...config } = { ...q, ...next };
  try {
    await d.store.queues.updateQueue(c.project, config);
  } catch (err) {
    throw translate(err);
  }
  return {};
}

export async function purgeQueue(d: SqsDeps, c: SqsContext, q: StoredQueue): Promise<Input> {
  await d.store.queues.purge(c.project, q.name);
  return {};
}

export async function listQueueTags(d: SqsDeps, c: SqsContext, q: StoredQueue): Promise<Input> {
  const tags = await d.store.queues.queueTags(c.project, q.name);
  return Object.keys(tags).length === 0 ? {} : { Tags: tags };
}

export async function tagQueue(d: SqsDeps, c: SqsContext, q: StoredQueue, input: Input): Promise<Input> {
  if (input['Tags'] === undefined) throw missingParameter('Tags');
  const tags = tagMap(input['Tags']);
  const now = await d.store.queues.queueTags(c.project, q.name);
  if (Object.keys({ ...now, ...tags }).length > MAX_TAGS) {
    throw invalidParameter(`Too many tags added for queue ${q.name}. A queue has at most ${MAX_TAGS} tags.`);
  }
  await d.store.queues.tagQueue(c.project, q.name, tags);
  return {};
}

export async function untagQueue(d: SqsDeps, c: SqsContext, q: StoredQueue, input: Input): Promise<Input> {
  if (input['TagKeys'] === undefined) throw missingParameter('TagKeys');
  await d.store.queues.tagQueue(c.project, q.name, {}, stringList(input, 'TagKeys'));
  return {};
}

export async function listDeadLetterSourceQueues(
  d: SqsDeps,
  c: SqsContext,
  q: StoredQueue,
  input: Input,
): Promise<Input> {
  const max = input['MaxResults'];
  const after = input['NextToken'] === undefined ? undefined : decodeToken(input['NextToken']);
  const names = (await d.store.queues.listQueues(c.project))
    .filter((s) => s.deadLetterQueue === q.name && c.mayUse(s.name))
    .map((s) => s.name)
    .filter((n) => after === undefined || n > after);
  const page = typeof max === 'number' ? names.slice(0, max) : names;
  const out: Input = { queueUrls: page.map((n) => c.queueUrl(n)) };
  if (typeof max === 'number' && names.length > page.length) out['NextToken'] = encodeToken(page.at(-1)!);
  return out;
}

/** QueueName, checked as SQS checks it. */
export function queueName(input: Input): string {
  const name = input['QueueName'];
  if (name === undefined || name === '') throw missingParameter('QueueName');
  if (typeof name !== 'string' || !QUEUE_NAME.test(name)) {
    throw invalidParameter(
      typeof name === 'string' && name.endsWith('.fifo')
        ? 'The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.'
        : 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length',
    );
  }
  return name;
}

function tagMap(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidParameter('Tags must be a map.');
  const tags = raw as Input;
  if (Object.keys(tags).length > MAX_TAGS) {
    throw invalidParameter(`Too many tags: a queue has at most ${MAX_TAGS}.`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) {
    if (!TAG_KEY.test(k) || /^aws:/i.test(k)) throw invalidParameter(`Tag key ${k} is not valid.`);
    if (typeof v !== 'string' || v.length > 256)
      throw invalidParameter(`Tag value for key ${k} is not valid.`);
    out[k] = v;
  }
  return out;
}

function stringList(input: Input, member: string): string[] {
  const raw = input[member];
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.some((v) => typeof v !== 'string')) {
    throw invalidParameter(`${member} must be a list of strings.`);
  }
  return raw as string[];
}

/** Page tokens are the last name of the page, opaque to clients. */
function encodeToken(name: string): string {
  return Buffer.from(`n:${name}`).toString('base64url');
}

function decodeToken(token: unknown): string {
  const text = typeof token === 'string' ? Buffer.from(token, 'base64url').toString('utf8') : '';
  if (!text.startsWith('n:')) throw invalidParameter('Invalid NextToken value.');
  return text.slice(2);
}

/** The store's refusals in SQS's words. */
export function translate(err: unknown): unknown {
  if (err instanceof QueueNotFoundError) return queueDoesNotExist();
  if (err instanceof QueueInputError) return invalidParameter(err.message);
  return err;
}

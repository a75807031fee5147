// The SQS API as an AwsService (credential scope "sqs"): one table of operations, reached through either
// wire protocol (protocol.ts). Every operation acts in the caller's project. A queue is named by its URL,
// <origin>/<account id>/<name>, and any origin resolves (the URL a client was given, the
// sqs.<region>.amazonaws.com or queue.amazonaws.com one in older code): only the account id and the name
// decide. A function's key reaches the queues its manifest grants (permissions: { queues: [...] }); every
// other key reaches all of its project's queues.
import { systemClock } from '../../clock/clock.js';
import { StorageQuotaExceededError } from '../../store/errors.js';
import { canUseQueue, readOnly, type Principal } from '../auth.js';
import type { AwsRequest, AwsResponse, AwsService } from '../aws.js';
import { ApiError } from '../errors.js';
import type { BodyLimit } from '../limits.js';
import type { StoredQueue } from '../../store/types.js';
import type { SqsContext, SqsDeps, SqsRuntime } from './context.js';
import { QueueWaiters } from './long-poll.js';
import {
  changeMessageVisibility,
  changeMessageVisibilityBatch,
  deleteMessage,
  deleteMessageBatch,
  receiveMessage,
  sendMessage,
  sendMessageBatch,
} from './messages.js';
import {
  decodeRequest,
  encodeError,
  encodeOutput,
  missingParameter,
  queueDoesNotExist,
  sqsError,
  wireOf,
  type Input,
  type Wire,
} from './protocol.js';
import {
  createQueue,
  deleteQueue,
  getQueueAttributes,
  getQueueUrl,
  listDeadLetterSourceQueues,
  listQueueTags,
  listQueues,
  purgeQueue,
  queueName,
  setQueueAttributes,
  tagQueue,
  untagQueue,
} from './queues.js';

/** A SendMessageBatch of 1 MiB, form-encoded (up to 3 bytes a byte), with room for the rest. */
const SQS_BODY: BodyLimit = { maxBytes: 4 * 1024 * 1024, statedBytes: 4 * 1024 * 1024 };

type Free = (d: SqsRuntime, c: SqsContext, input: Input) => Promise<Input>;
type OnQueue = (d: SqsRuntime, c: SqsContext, q: StoredQueue, input: Input) => Promise<Input>;

/** Operations on the queue set: named by QueueName, or none. */
const FREE: Record<string, Free> = {
  CreateQueue: createQueue,
  GetQueueUrl: getQueueUrl,
  ListQueues: listQueues,
};

/** Operations on one queue, named by its QueueUrl. */
const ON_QUEUE: Record<string, OnQueue> = {
  DeleteQueue: (d, c, q) => deleteQueue(d, c, q),
  GetQueueAttributes: getQueueAttributes,
  SetQueueAttributes: setQueueAttributes,
  PurgeQueue: (d, c, q) => purgeQueue(d, c, q),
  ListQueueTags: (d, c, q) => listQueueTags(d, c, q),
  TagQueue: tagQueue,
  UntagQueue: untagQueue,
  ListDeadLetterSourceQueues: listDeadLetterSourceQueues,
  SendMessage: sendMessage,
  SendMessageBatch: sendMessageBatch,
  ReceiveMessage: receiveMessage,
  DeleteMessage: deleteMessage,
  DeleteMessageBatch: deleteMessageBatch,
  ChangeMessageVisibility: changeMessageVisibility,
  ChangeMessageVisibilityBatch: changeMessageVisibilityBatch,
};

export interface SqsService extends AwsService {
  /** Wakes long polls waiting on the queue (a message was sent to it some other way on this node). */
  notify(project: string, queue: string): void;
}

export function createSqsService(deps: SqsDeps): SqsService {
  const clock = deps.clock ?? systemClock;
  const d: SqsRuntime = { ...deps, clock, waiters: new QueueWaiters(clock), pollMs: deps.pollMs ?? 1000 };
  return {
    service: 'sqs',
    title: 'SQS',
    body: SQS_BODY,
    notify: (project, queue) => d.waiters.notify(project, queue),
    async handle(req: AwsRequest, principal: Principal): Promise<AwsResponse> {
      const { wire, action, input } = decodeRequest(req.method, req.headers, req.url, req.body);
      try {
        // A read key looks (Get*, List*) and changes nothing: receiving a message changes its visibility.
        if (readOnly(principal) && !/^(Get|List)/.test(action)) {
          throw new ApiError(
            403,
            'AccessDenied',
            `User: arn:aws:iam::${d.accountId}:user/${principal.keyId} is not authorized to perform: sqs:${action} because its key has role read`,
          );
        }
        const c = context(d, req, principal);
        return encodeOutput(wire, action, await run(d, c, action, input, wire), req.requestId);
      } catch (err) {
        // The listener renders errors from the headers alone; a query request names its wire here too.
        if (err instanceof ApiError) return encodeError(wire, err, req.requestId);
        // SQS's own words for an action that would break a limit.
        if (err instanceof StorageQuotaExceededError)
          return encodeError(wire, sqsError(403, 'OverLimit', err.message), req.requestId);
        throw err;
      }
    },
    error: (err, requestId, headers) => encodeError(headers ? wireOf(headers) : 'json', err, requestId),
  };
}

async function run(d: SqsRuntime, c: SqsContext, action: string, input: Input, wire: Wire): Promise<Input> {
  const free = Object.hasOwn(FREE, action) ? FREE[action] : undefined;
  if (free) {
    if (action !== 'ListQueues') authorize(d, c, action, queueName(input));
    d.usage?.count(c.project, 'sqs', action === 'ListQueues' ? '' : queueName(input), 'request');
    return free(d, c, input);
  }
  const onQueue = Object.hasOwn(ON_QUEUE, action) ? ON_QUEUE[action] : undefined;
  if (!onQueue) {
    throw wire === 'json'
      ? new ApiError(400, 'UnknownOperationException', 'The action or operation requested is invalid.')
      : sqsError(400, 'InvalidAction', `The action ${action} is not valid for this web service.`);
  }
  const name = queueOfUrl(d, input['QueueUrl']);
  authorize(d, c, action, name);
  d.usage?.count(c.project, 'sqs', name, 'request');
  const q = await d.store.queues.getQueue(c.project, name);
  if (!q) throw queueDoesNotExist();
  return onQueue(d, c, q, input);
}

function context(d: SqsRuntime, req: AwsRequest, principal: Principal): SqsContext {
  const host = req.headers.host ?? req.url.host;
  const origin = `http://${host}`;
  return {
    project: principal.project,
    principal,
    queueUrl: (name) => `${origin}/${d.accountId}/${name}`,
    mayUse: (name) => canUseQueue(principal, name),
    ...(req.signal ? { signal: req.signal } : {}),
  };
}

/** The queue name a QueueUrl names, whatever its host: <scheme>://<host>/<account id>/<name>. */
export function queueOfUrl(d: SqsRuntime, raw: unknown): string {
  if (raw === undefined || raw === '') throw missingParameter('QueueUrl');
  let parts: string[] = [];
  try {
    if (typeof raw === 'string') {
      parts = new URL(raw).pathname
        .split('/')
        .filter((p) => p !== '')
        .map((p) => decodeURIComponent(p));
    }
  } catch {
    parts = [];
  }
  if (parts.length !== 2) {
    throw sqsError(404, 'InvalidAddress', `The address ${String(raw)} is not valid for this endpoint.`);
  }
  const [account, name] = parts as [string, string];
  if (account !== d.accountId) throw queueDoesNotExist();
  return name;
}

function authorize(d: SqsRuntime, c: SqsContext, action: string, queue: string): void {
  if (c.mayUse(queue)) return;
  throw new ApiError(
    403,
    'AccessDenied',
    `User: arn:aws:iam::${d.accountId}:user/${c.principal.keyId} is not authorized to perform: sqs:${action} on resource: arn:aws:sqs:${d.region}:${d.accountId}:${queue} because no identity-based policy allows the sqs:${action} action`,
  );
}

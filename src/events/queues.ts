// Queue triggers: Lambda's SQS event source mappings over the QueueStore. For every (function, queue) pair a
// poller receives batches and invokes the function with SQS's event; the queue, not this process, holds every
// message until the function has handled it, so a crash or a restart loses nothing (a received message whose
// handler never finished reappears when its visibility timeout ends). That is why queue batches do not pass
// through the EventQueue: the message is already durable, and its retries are the queue's own (visibility
// timeout, receive count, dead-letter queue), as they are on AWS.
//
// What becomes of a batch: a success deletes its messages, except those the function names in
// `batchItemFailures` (ReportBatchItemFailures); an error, a timeout or a crash deletes none, and they are
// received again after the visibility timeout, until the queue's maxReceiveCount moves them to its dead-letter
// queue. On a FIFO queue a failed message also holds back the later messages of its group in the batch, so
// order within a group survives retries. Pollers take only what the function may run now (its concurrency,
// less the share kept for synchronous callers), so a backlog waits in the store, never in memory.
import type { QueueTrigger } from '../config/manifest.js';
import { systemClock, type Clock, type Timer } from '../clock/clock.js';
import { Waker } from './waker.js';
import type { Invoker, InvokeOutcome } from '../invoker/types.js';
import type { FunctionRef, FunctionVersion, QueueMessage, QueueStore, StoredQueue } from '../store/types.js';
import { QueueNotFoundError } from '../store/errors.js';
import { compileFilters, sqsFilterView, type EventFilter } from './filter.js';
import { md5OfMessageAttributes } from './sqs-md5.js';
import { continueTrace, MAX_LINEAGE } from './trace.js';
import type { TriggerSource } from './types.js';
import { timeOrderedId } from '../ids.js';

export interface QueueSourceOptions {
  queues: QueueStore;
  invoker: Invoker & { headroom(ref: FunctionRef, share: number): number };
  clock?: Clock;
  /** The share of a function's concurrency queue batches may use (the rest stays for synchronous calls). */
  share?: number;
  /** Longest wait between receives on an empty queue, for messages sent through other nodes. Default 1 s. */
  pollMs?: number;
  /** Resolves once the records of ended invocations are written: a batch's messages are deleted only after
   *  its record is, so a crash never leaves messages handled and their run without a trace. */
  recordsWritten?: () => Promise<void>;
  region?: string;
  accountId?: string;
  onError?: (err: unknown, context: string) => void;
}

/** Batches of one mapping running at once, when the manifest sets no maximumConcurrency. */
const DEFAULT_MAX_CONCURRENCY = 1000;
/** A throttled batch (another caller took the last slot) is received again after this long. */
const THROTTLE_RETRY_SECONDS = 1;
/** How often messages past their retention are deleted. */
const EXPIRE_EVERY_MS = 60_000;

interface Mapping {
  key: string;
  fn: FunctionRef;
  trigger: QueueTrigger;
  filter: EventFilter;
  running: number;
  active: boolean;
  /** The receive loop, while it runs. */
  loop: Promise<void> | null;
  /** Wakes the loop early (a send, a finished batch, a stop). */
  waker: Waker;
}

export class QueueSource implements TriggerSource {
  readonly kind = 'queue';
  readonly name = 'queue triggers';
  private readonly clock: Clock;
  private readonly share: number;
  private readonly pollMs: number;
  private mappings = new Map<string, Mapping>();
  private batches = new Set<Promise<void>>();
  private queueCache = new Map<string, { q: StoredQueue | undefined; at: number }>();
  private started = false;
  private stopped = false;
  private expireTimer: Timer | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: QueueSourceOptions) {
    this.clock = o.clock ?? systemClock;
    this.share = o.share ?? 0.8;
    this.pollMs = o.pollMs ?? 1000;
  }

  sync(functions: readonly FunctionVersion[]): void {
    const next = new Map<string, Mapping>();
    for (const f of functions) {
      for (const t of f.config.queueTriggers ?? []) {
        const key = `${f.project}/${f.name}/${t.queue}`;
        const old = this.mappings.get(key);
        if (old && sameTrigger(old.trigger, t)) {
          next.set(key, old);
          continue;
        }
        next.set(key, {
          key,
          fn: { project: f.project, name: f.name },
          trigger: t,
          filter: compileFilters(t.filters ?? []),
          running: old?.running ?? 0,
          active: true,
          loop: null,
          waker: new Waker(this.clock),
        });
        if (old) this.retire(old);
      }
    }
    for (const [key, m] of this.mappings) if (!next.has(key)) this.retire(m);
    this.mappings = next;
    // Queue settings may have changed with the deploy.
    this.queueCache.clear();
    if (this.started && !this.stopped) for (const m of next.values()) this.run(m);
  }

  async start(): Promise<void> {
    this.started = true;
    this.stopped = false;
    for (const m of this.mappings.values()) this.run(m);
    this.expire();
  }

  /** Receives nothing more and waits for running batches, so what they did is stored before the store closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.expireTimer?.cancel();
    for (const m of this.mappings.values()) this.wakeLoop(m);
    await Promise.all([...this.mappings.values()].map((m) => m.loop));
    await Promise.all(this.batches);
  }

  /** A message was sent to the queue through this node: its pollers look now rather than at the next poll. */
  notify(project: string, queue: string): void {
    for (const m of this.mappings.values()) {
      if (m.fn.project === project && m.trigger.queue === queue) this.wakeLoop(m);
    }
  }

  /** Resolves once no batch is running and no poller holds messages (for tests). */
  async idle(): Promise<void> {
    while (this.batches.size > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private retire(m: Mapping): void {
    m.active = false;
    this.wakeLoop(m);
  }

  private run(m: Mapping): void {
    if (m.loop || !m.active) return;
    m.loop = this.poll(m)
      .catch((err: unknown) => this.o.onError?.(err, `queue trigger ${m.key}`))
      .finally(() => {
        m.loop = null;
        // A deploy may have re-activated it while the loop wound down.
        if (m.active && !this.stopped && this.mappings.get(m.key) === m) this.run(m);
      });
  }

  private async poll(m: Mapping): Promise<void> {
    const { project } = m.fn;
    const queueName = m.trigger.queue;
    while (m.active && !this.stopped) {
      const max = m.trigger.maximumConcurrency ?? DEFAULT_MAX_CONCURRENCY;
      const room = Math.min(max - m.running, this.o.invoker.headroom(m.fn, this.share));
      if (room <= 0) {
        // Full: a finishing batch (or synchronous call) frees a slot; look again then, or after a short while.
        await m.waker.sleep(100);
        continue;
      }
      let q: StoredQueue | undefined;
      let batch: QueueMessage[];
      try {
        q = await this.queue(project, queueName);
        if (!q) {
          // Removed with a deploy that has not reached this node's registry yet; wait for the sync.
          await m.waker.sleep(this.pollMs);
          continue;
        }
        batch = await this.o.queues.receive(project, queueName, { max: m.trigger.batchSize });
        if (batch.length > 0 && batch.length < m.trigger.batchSize && m.trigger.maximumBatchingWindow > 0) {
          batch = await this.gather(m, batch);
        }
      } catch (err) {
        this.o.onError?.(err, `queue trigger ${m.key}: receiving`);
        await m.waker.sleep(this.pollMs);
        continue;
      }
      if (batch.length === 0) {
        const next = await this.o.queues.nextVisibleAt(project, queueName).catch(() => undefined);
        const wait = next === undefined ? this.pollMs : Math.min(this.pollMs, next - this.clock.now());
        await m.waker.sleep(Math.max(1, wait));
        continue;
      }
      const runnable = await this.screen(m, q, batch);
      if (runnable.length > 0) this.launch(m, q, runnable);
      if (this.stopped) return;
    }
  }

  /** Keeps receiving until the batch is full or the batching window has passed since its first message. */
  private async gather(m: Mapping, first: QueueMessage[]): Promise<QueueMessage[]> {
    const batch = [...first];
    const deadline = this.clock.now() + m.trigger.maximumBatchingWindow * 1000;
    while (batch.length < m.trigger.batchSize && m.active && !this.stopped) {
      const left = deadline - this.clock.now();
      if (left <= 0) break;
      await m.waker.sleep(Math.min(left, this.pollMs));
      const more = await this.o.queues.receive(m.fn.project, m.trigger.queue, {
        max: m.trigger.batchSize - batch.length,
      });
      batch.push(...more);
    }
    return batch;
  }

  /** Drops what must not run: messages no filter matches (deleted, as Lambda does) and messages whose chain
   *  has passed through the function too often (stopped: moved to the dead-letter queue, or deleted). */
  private async screen(m: Mapping, q: StoredQueue, batch: QueueMessage[]): Promise<QueueMessage[]> {
    const keep: QueueMessage[] = [];
    const drop: QueueMessage[] = [];
    for (const msg of batch) {
      const trace = continueTrace(msg.trace, `${m.fn.project}/${m.fn.name}`);
      if (trace.count > MAX_LINEAGE) {
        this.o.onError?.(
          new Error(
            `stopped a recursive loop: message ${msg.id} of queue ${q.name} would pass through ${m.fn.name} for the ${trace.count}th time${q.deadLetterQueue ? `; moved to ${q.deadLetterQueue}` : '; deleted (the queue has no deadLetterQueue)'}`,
          ),
          'queue triggers',
        );
        if (q.deadLetterQueue) await this.moveToDeadLetters(q, msg);
        drop.push(msg);
      } else if (!m.filter.matches(sqsFilterView(this.record(q, msg)))) {
        drop.push(msg);
      } else {
        keep.push(msg);
      }
    }
    await this.deleteAll(q, drop);
    return keep;
  }

  private async moveToDeadLetters(q: StoredQueue, msg: QueueMessage): Promise<void> {
    await this.o.queues.send(q.project, q.deadLetterQueue!, [
      {
        body: msg.body,
        attributes: msg.attributes,
        trace: msg.trace,
        ...(msg.groupId !== null ? { groupId: msg.groupId, deduplicationId: msg.id } : {}),
      },
    ]);
  }

  private launch(m: Mapping, q: StoredQueue, batch: QueueMessage[]): void {
    m.running++;
    const p = this.runBatch(m, q, batch)
      .catch((err: unknown) => this.o.onError?.(err, `queue trigger ${m.key}: batch`))
      .finally(() => {
        m.running--;
        this.batches.delete(p);
        this.wakeLoop(m);
        if (this.batches.size === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    this.batches.add(p);
  }

  private async runBatch(m: Mapping, q: StoredQueue, batch: QueueMessage[]): Promise<void> {
    // The batch continues the longest chain among its messages, so a loop through a queue is counted.
    let trace = continueTrace(batch[0]!.trace, `${m.fn.project}/${m.fn.name}`);
    for (const msg of batch.slice(1)) {
      const t = continueTrace(msg.trace, `${m.fn.project}/${m.fn.name}`);
      if (t.count > trace.count) trace = t;
    }
    const outcome = await this.o.invoker.invoke({
      fn: m.fn,
      event: { Records: batch.map((msg) => this.record(q, msg)) },
      trigger: 'queue',
      requestId: timeOrderedId(),
      traceId: trace.header,
    });
    if (outcome.status !== 'not_found') await this.o.recordsWritten?.();
    await this.settle(q, batch, outcome);
  }

  private async settle(q: StoredQueue, batch: QueueMessage[], outcome: InvokeOutcome): Promise<void> {
    if (outcome.status === 'throttled' || outcome.status === 'not_found') {
      // Never ran: receivable again soon (or, for a function just removed, at once for whoever consumes next).
      const seconds = outcome.status === 'throttled' ? THROTTLE_RETRY_SECONDS : 0;
      await Promise.all(
        batch.map((msg) => this.o.queues.changeVisibility(q.project, q.name, msg.receiptHandle!, seconds)),
      );
      return;
    }
    // An error, a timeout or a crash: nothing is deleted; the messages return after the visibility timeout.
    if (outcome.status !== 'ok') return;
    const failed = batchItemFailures(outcome.payload, batch);
    if (failed === 'all') {
      this.o.onError?.(
        new Error(
          `${outcome.functionName} returned an invalid batchItemFailures response (request ${outcome.requestId}); every message of the batch will be retried`,
        ),
        'queue triggers',
      );
      return;
    }
    if (q.fifo) holdBackGroups(batch, failed);
    await this.deleteAll(
      q,
      batch.filter((msg) => !failed.has(msg.id)),
    );
  }

  /** One commit for the whole batch. A queue removed meanwhile took its messages with it. */
  private async deleteAll(q: StoredQueue, msgs: QueueMessage[]): Promise<void> {
    if (msgs.length === 0) return;
    try {
      await this.o.queues.deleteBatch(
        q.project,
        q.name,
        msgs.map((msg) => msg.receiptHandle!),
      );
    } catch (err) {
      if (!(err instanceof QueueNotFoundError)) throw err;
    }
  }

  /** SQS's record as Lambda delivers it. */
  private record(q: StoredQueue, msg: QueueMessage): Record<string, unknown> {
    return sqsRecord(msg, {
      region: this.o.region ?? 'us-east-1',
      accountId: this.o.accountId ?? '000000000000',
      queueArn: (name) => this.queueArn(name),
      queue: q.name,
      now: this.clock.now(),
    });
  }

  private queueArn(name: string): string {
    return `arn:aws:sqs:${this.o.region ?? 'us-east-1'}:${this.o.accountId ?? '000000000000'}:${name}`;
  }

  /** Queue settings, read at most once a second per queue (a deploy clears them). */
  private async queue(project: string, name: string): Promise<StoredQueue | undefined> {
    const key = `${project}/${name}`;
    const hit = this.queueCache.get(key);
    const now = this.clock.now();
    if (hit && now - hit.at < 1000) return hit.q;
    const q = await this.o.queues.getQueue(project, name);
    this.queueCache.set(key, { q, at: now });
    return q;
  }

  private wakeLoop(m: Mapping): void {
    m.waker.wake();
  }

  /** Deletes messages past their retention, now and every minute. */
  private expire = (): void => {
    if (this.stopped) return;
    this.o.queues
      .expire()
      .catch((err: unknown) => this.o.onError?.(err, 'queues: deleting expired messages'));
    this.expireTimer = this.clock.setTimeout(this.expire, EXPIRE_EVERY_MS);
  };
}

function sameTrigger(a: QueueTrigger, b: QueueTrigger): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The message ids a ReportBatchItemFailures response names, or 'all' when the response is malformed (an
 * entry without an itemIdentifier, or one that is not in the batch), as Lambda treats it: the whole batch
 * failed. A response without batchItemFailures, or with an empty list, is a success of every message.
 */
export function batchItemFailures(payload: string | undefined, batch: QueueMessage[]): Set<string> | 'all' {
  let value: unknown;
  try {
    value = JSON.parse(payload ?? 'null');
  } catch {
    return new Set();
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return new Set();
  const list = (value as { batchItemFailures?: unknown }).batchItemFailures;
  if (list === undefined || list === null) return new Set();
  if (!Array.isArray(list)) return 'all';
  const ids = new Set(batch.map((m) => m.id));
  const failed = new Set<string>();
  for (const entry of list) {
    const id = (entry as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || !ids.has(id)) return 'all';
    failed.add(id);
  }
  return failed;
}

/** FIFO: once a message of a group failed, the later messages of that group in the batch wait with it. */
function holdBackGroups(batch: QueueMessage[], failed: Set<string>): void {
  const blocked = new Set<string>();
  for (const msg of batch) {
    const group = msg.groupId ?? '';
    if (blocked.has(group)) failed.add(msg.id);
    else if (failed.has(msg.id)) blocked.add(group);
  }
}

/** SQS's record as Lambda delivers it; also what `nimbus event generate sqs` prints. */
export function sqsRecord(
  msg: QueueMessage,
  o: { region: string; accountId: string; queue: string; queueArn: (name: string) => string; now: number },
): Record<string, unknown> {
  const attributes: Record<string, string> = {
    ApproximateReceiveCount: String(msg.receiveCount),
    SentTimestamp: String(msg.sentAt),
    SenderId: o.accountId,
    ApproximateFirstReceiveTimestamp: String(msg.firstReceivedAt ?? o.now),
  };
  if (msg.trace) attributes['AWSTraceHeader'] = msg.trace;
  if (msg.sequenceNumber !== null) attributes['SequenceNumber'] = msg.sequenceNumber;
  if (msg.groupId !== null) attributes['MessageGroupId'] = msg.groupId;
  if (msg.deduplicationId !== null) attributes['MessageDeduplicationId'] = msg.deduplicationId;
  if (msg.deadLetterSource !== null)
    attributes['DeadLetterQueueSourceArn'] = o.queueArn(msg.deadLetterSource);
  const messageAttributes: Record<string, unknown> = {};
  for (const [name, a] of Object.entries(msg.attributes)) {
    messageAttributes[name] = {
      ...(a.StringValue !== undefined ? { stringValue: a.StringValue } : {}),
      ...(a.BinaryValue !== undefined ? { binaryValue: a.BinaryValue } : {}),
      stringListValues: [],
      binaryListValues: [],
      dataType: a.DataType,
    };
  }
  const attributesMd5 = md5OfMessageAttributes(msg.attributes);
  return {
    messageId: msg.id,
    receiptHandle: msg.receiptHandle,
    body: msg.body,
    attributes,
    messageAttributes,
    md5OfBody: msg.md5OfBody,
    ...(attributesMd5 !== null ? { md5OfMessageAttributes: attributesMd5 } : {}),
    eventSource: 'aws:sqs',
    eventSourceARN: o.queueArn(o.queue),
    awsRegion: o.region,
  };
}

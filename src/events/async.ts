// Asynchronous (Event) invocations: committed to the EventQueue before they are acknowledged, then claimed
// with a lease and run through the invoker like any other trigger. The queue, not memory, holds what is
// pending and when it is due, so a restart or a crash loses nothing; the lease keeps two nodes (or a node and
// its own restart) from running one event at once.
//
// What becomes of an attempt follows Lambda's EventInvokeConfig (the manifest's `async:` block): a function
// error is retried up to maximumRetryAttempts times, the first after retryBaseMs and then doubling (with up to
// 20 % jitter so a burst of failures does not retry in step); a throttle is retried sooner and never counts as
// a failure; an event older than maximumEventAgeInSeconds is not run again. A success goes to onSuccess; an
// event that is out of retries or too old goes to onFailure with AWS's destination record, and stays in the
// queue as dead, for a person to list and replay.
import { ASYNC_DEFAULTS, type AsyncConfig, type Destination } from '../config/manifest.js';
import { functionArn } from '../config/limits.js';
import { refKey } from '../invoker/registry.js';
import { systemClock, type Clock, type Timer } from '../clock/clock.js';
import type { InvokeTarget, Invoker, InvokeOutcome } from '../invoker/types.js';
import type {
  EventQueue,
  FunctionRef,
  FunctionVersion,
  QueuedEvent,
  QueueStore,
  StoredAsyncConfig,
} from '../store/types.js';
import { QueueNotFoundError } from '../store/errors.js';
import { timeOrderedId } from '../ids.js';
import { derivedId } from './ids.js';
import { continueTrace, MAX_LINEAGE } from './trace.js';
import type { TriggerSource } from './types.js';
import type { EventObserver } from '../observability/metrics.js';

/** How soon a node whose only due events belong to full functions looks again. */
const FULL_RECHECK_MS = 50;

type Condition = 'Success' | 'RetriesExhausted' | 'EventAgeExceeded' | 'RecursiveInvocationLoop';

export interface AsyncEventsOptions {
  queue: EventQueue;
  invoker: Invoker;
  /** This node's id: the owner of the leases it takes. Stable across restarts of the same data dir. */
  nodeId: string;
  clock?: Clock;
  /** Events running at once on this node; the rest wait in the queue. Default 16. */
  concurrency?: number;
  /** How long a claim holds without renewal; renewed every third of it while the event runs. Default 60 s. */
  leaseMs?: number;
  /** Longest wait between looks at the queue, for events other nodes enqueued. Default 1 s. */
  pollMs?: number;
  /** First retry after a function error; each further retry waits twice as long. Default 60 s. */
  retryBaseMs?: number;
  /** Jitter source, [0, 1); tests pass a fixed one. */
  random?: () => number;
  /** Whether the store holds the function. A node sharing the store with others may not have heard of a
   *  deploy made through another node yet; such an event waits for the registry instead of dying. */
  functionExists?: (ref: InvokeTarget) => Promise<boolean>;
  /** Asked to catch up with the store when functionExists found what the registry did not. */
  refreshFunctions?: () => Promise<void>;
  /** Resolves once the records of invocations that have ended are written. An event is settled only after
   *  its attempt's record is, so a crash can never leave an event done and its run without a trace. */
  recordsWritten?: () => Promise<void>;
  /** Failed events are kept this long after they were accepted (or replayed), then deleted. Default 14 days. */
  deadRetentionMs?: number;
  /** The async configurations set through the Lambda API, which apply instead of the manifest's. */
  asyncConfigs?: () => Promise<StoredAsyncConfig[]>;
  /** Where queue destinations are sent. */
  queues?: QueueStore;
  /** Told after a destination record was sent to a queue, so its consumers look at once. */
  onQueued?: (project: string, queue: string) => void;
  /** How many more event invocations of a function may start now (the invoker's headroom, which keeps a
   *  share for synchronous callers); an event of a function without room waits in the queue. */
  headroom?: (ref: FunctionRef) => number;
  /** For the function ARNs in destination records. */
  region?: string;
  accountId?: string;
  onError?: (err: unknown, context: string) => void;
  /** Told each attempt's event age and each dead-lettering (metrics). */
  observer?: EventObserver;
}

export class AsyncEventSource implements TriggerSource {
  readonly kind = 'event';
  readonly name = 'async events';
  private readonly clock: Clock;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly retryBaseMs: number;
  private readonly random: () => number;
  private readonly running = new Map<string, Promise<void>>();
  private started = false;
  private stopped = false;
  /** The pump's run while it reads the queue; stop() waits for it. */
  private pumping: Promise<void> | null = null;
  private nextDelay = 0;
  private soon: NodeJS.Immediate | null = null;
  private again = false;
  private wakeTimer: Timer | null = null;
  private renewTimer: Timer | null = null;
  private purgeTimer: Timer | null = null;
  private idleWaiters: (() => void)[] = [];
  private functions = new Map<string, FunctionVersion>();
  /** Functions found with no room to run an event: their events stay unclaimed until room frees up. */
  private full = new Map<string, FunctionRef>();
  private overrides = new Map<string, AsyncConfig>();
  private overrideChanges = 0;
  private loadingOverrides: Promise<void> = Promise.resolve();

  constructor(private readonly o: AsyncEventsOptions) {
    this.clock = o.clock ?? systemClock;
    this.concurrency = o.concurrency ?? 16;
    this.leaseMs = o.leaseMs ?? 60_000;
    this.pollMs = o.pollMs ?? 1000;
    this.retryBaseMs = o.retryBaseMs ?? 60_000;
    this.random = o.random ?? Math.random;
  }

  /** Durably accepts an event; resolves once it is committed (the caller may then answer 202). */
  async enqueue(
    ref: InvokeTarget,
    payload: string,
    requestId: string = timeOrderedId(),
    trace?: string,
  ): Promise<string> {
    await this.o.queue.enqueue({
      id: requestId,
      project: ref.project,
      functionName: ref.name,
      qualifier: ref.qualifier ?? null,
      trace: trace ?? null,
      source: 'invoke',
      payload,
    });
    this.wake();
    return requestId;
  }

  /** The API set (or, with null, removed) a function's async configuration. */
  setAsyncOverride(ref: FunctionRef, config: AsyncConfig | null): void {
    this.overrideChanges++;
    if (config) this.overrides.set(refKey(ref), config);
    else this.overrides.delete(refKey(ref));
  }

  sync(functions: readonly FunctionVersion[]): void {
    this.functions = new Map(functions.map((f) => [refKey(f), f]));
    // Another node may have set one, and a removed function's is gone with it.
    void this.loadOverrides();
    // A deploy may make a waiting event runnable, so look now.
    this.wake();
  }

  /** Another source put events in the queue: look now rather than at the next poll. */
  notify(): void {
    this.wake();
  }

  /** A person's replay of a dead event: it runs again as soon as a slot is free, with its retries anew. */
  async replay(id: string, project: string): Promise<'replayed' | 'not_found' | 'not_dead'> {
    const ev = await this.o.queue.get(id);
    if (!ev || ev.project !== project) return 'not_found';
    if (!(await this.o.queue.revive(id))) return 'not_dead';
    this.wake();
    return 'replayed';
  }

  async start(): Promise<void> {
    // Leases this node held before a crash or restart cover nothing that runs now.
    await this.o.queue.releaseOwner(this.o.nodeId);
    await this.loadOverrides();
    this.purge();
    this.started = true;
    this.stopped = false;
    this.renew();
    this.wake();
  }

  /** Takes no new events and waits for the running ones, so their completion is stored before the store closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeTimer?.cancel();
    if (this.soon) clearImmediate(this.soon);
    this.soon = null;
    // A claim in flight now must settle (its events are released, not run) before the running ones are counted.
    await this.pumping;
    // Leases are renewed until the last running event is done, so no other node takes one meanwhile.
    await Promise.all(this.running.values());
    this.renewTimer?.cancel();
    this.purgeTimer?.cancel();
  }

  /** Resolves when nothing is running and no claimable event is left (for tests and clean stops). */
  async idle(): Promise<void> {
    for (;;) {
      if (this.running.size === 0 && !this.pumping) {
        const next = await this.o.queue.nextDueAt();
        if (next === undefined || next > this.clock.now() || this.stopped) return;
      }
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
  }

  private wake = (): void => {
    if (!this.started || this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      this.afterPump();
    });
  };

  private async pump(): Promise<void> {
    this.wakeTimer?.cancel();
    try {
      // Whether a full function has room again is asked at every pump: one runs whenever an event ends, and at
      // least every pollMs, which is how room that synchronous calls freed is noticed.
      for (const [key, ref] of this.full) if (this.room(ref)) this.full.delete(key);
      while (!this.stopped && this.running.size < this.concurrency) {
        const limit = this.concurrency - this.running.size;
        const batch = await this.o.queue.claim({
          owner: this.o.nodeId,
          leaseMs: this.leaseMs,
          limit,
          ...(this.full.size > 0 ? { skip: [...this.full.values()] } : {}),
        });
        if (this.stopped) {
          // Claimed while stopping: hand them back uncounted for the next start (or another node).
          await Promise.all(batch.map((ev) => this.o.queue.release(ev.id, this.o.nodeId)));
          return;
        }
        for (const ev of batch) this.launch(ev);
        if (batch.length < limit) break;
      }
      const next = await this.o.queue.nextDueAt();
      if (next !== undefined) this.nextDelay = Math.min(this.pollMs, Math.max(0, next - this.clock.now()));
      else this.nextDelay = this.pollMs;
      // The due event may be one of a full function's, which the next claim skips: look again soon, not at once.
      if (this.full.size > 0) this.nextDelay = Math.max(this.nextDelay, FULL_RECHECK_MS);
    } catch (err) {
      this.nextDelay = this.pollMs;
      this.o.onError?.(err, 'async events: reading the queue');
    }
  }

  private afterPump(): void {
    if (this.stopped) return this.notifyIdle();
    if (this.again) {
      this.again = false;
      return this.wake();
    }
    // A full node is woken by a finishing event; otherwise look again when the next event is due.
    if (this.running.size < this.concurrency)
      this.wakeTimer = this.clock.setTimeout(this.wake, this.nextDelay);
    this.notifyIdle();
  }

  private launch(ev: QueuedEvent): void {
    const p = this.run(ev)
      .catch((err: unknown) => this.o.onError?.(err, `async event ${ev.id}`))
      .finally(() => {
        this.running.delete(ev.id);
        this.wakeSoon();
        this.notifyIdle();
      });
    this.running.set(ev.id, p);
  }

  /** Events that finish in the same turn free their slots together: one claim for all of them, not one each. */
  private wakeSoon(): void {
    this.soon ??= setImmediate(() => {
      this.soon = null;
      this.wake();
    });
  }

  private async run(ev: QueuedEvent): Promise<void> {
    const policy = this.policyOf(ev);
    if (this.clock.now() - ev.enqueuedAt > policy.maxAgeMs) {
      // Too old to run again: what the claim counted never started.
      return this.giveUp(ev, policy, 'EventAgeExceeded', ev.failures, undefined);
    }
    const trace = continueTrace(ev.trace, `${ev.project}/${ev.functionName}`);
    if (trace.count > MAX_LINEAGE) {
      // As Lambda does for async loops: the chain is stopped, and whoever handles failures hears of it.
      this.o.onError?.(
        new Error(
          `stopped a recursive loop: event ${ev.id} would pass through ${ev.functionName} for the ${trace.count}th time`,
        ),
        'async events',
      );
      return this.giveUp(ev, policy, 'RecursiveInvocationLoop', ev.failures, undefined, trace.header);
    }
    const ref = { project: ev.project, name: ev.functionName };
    if (!this.room(ref)) {
      // The function's event share is in use (by its other events or its HTTP traffic): hand the event back
      // uncounted, and claim no more of its events until it has room, so others' events go first meanwhile.
      this.full.set(refKey(ref), ref);
      if (!(await this.o.queue.release(ev.id, this.o.nodeId))) this.lostLease(ev);
      return;
    }
    this.o.observer?.attempt(ref, this.clock.now() - ev.enqueuedAt);
    const outcome = await this.o.invoker.invoke({
      // The version named at enqueue is the one that runs: a later deploy makes the event not found.
      fn: {
        project: ev.project,
        name: ev.functionName,
        ...(ev.qualifier ? { qualifier: ev.qualifier } : {}),
      },
      event: parsePayload(ev.payload),
      trigger: ev.source === 'schedule' || ev.source === 'storage' ? ev.source : 'event',
      // Every attempt keeps the event's request id, as Lambda's retries do; the record's attempt tells them apart.
      requestId: ev.id,
      attempt: ev.attempts,
      traceId: trace.header,
    });
    await this.settle(ev, outcome, policy, trace.header);
  }

  /** Stores what became of one attempt. */
  private async settle(
    ev: QueuedEvent,
    outcome: InvokeOutcome,
    policy: Policy,
    trace?: string,
  ): Promise<void> {
    if (outcome.status !== 'not_found') await this.o.recordsWritten?.();
    const q = this.o.queue;
    const owner = this.o.nodeId;
    const now = this.clock.now();
    let held: boolean;
    if (outcome.status === 'not_found' && this.stopped) {
      held = await q.release(ev.id, owner);
    } else if (outcome.status === 'not_found' && (await this.knownElsewhere(ev))) {
      // Deployed through another node: catch up and run it again at once; if catching up fails, a little later.
      const caughtUp = await (this.o.refreshFunctions?.() ?? Promise.resolve()).then(
        () => true,
        (err: unknown) => (this.o.onError?.(err, 'reloading functions'), false),
      );
      held = caughtUp
        ? await q.release(ev.id, owner)
        : await q.postpone(ev.id, owner, { nextAttemptAt: now + 1000, error: 'function not loaded yet' });
    } else if (outcome.status === 'not_found') {
      held = await q.deadLetter(ev.id, owner, outcome.error?.errorMessage ?? 'function not found');
      if (held) this.o.observer?.dead({ project: ev.project, name: ev.functionName }, 'FunctionNotFound');
    } else if (outcome.status === 'throttled') {
      const next = now + Math.min(30_000, 200 * 2 ** Math.min(ev.attempts, 8));
      if (next - ev.enqueuedAt > policy.maxAgeMs)
        return this.giveUp(ev, policy, 'EventAgeExceeded', ev.failures, outcome, trace);
      held = await q.postpone(ev.id, owner, {
        nextAttemptAt: next,
        error: `throttled: ${outcome.throttleReason ?? 'no capacity'}`,
      });
    } else if (outcome.status === 'ok') {
      // Invocations that ran: the failed ones before and this one (throttles and crashes never ran it).
      if (policy.onSuccess)
        await this.deliver(ev, policy.onSuccess, 'Success', ev.failures + 1, outcome, trace);
      held = await q.complete(ev.id, owner);
    } else {
      const failures = ev.failures + 1;
      if (failures > policy.maxRetries)
        return this.giveUp(ev, policy, 'RetriesExhausted', ev.failures + 1, outcome, trace);
      const delay = this.retryBaseMs * 2 ** (failures - 1) * (1 + 0.2 * this.random());
      const next = now + delay;
      if (next - ev.enqueuedAt > policy.maxAgeMs) {
        return this.giveUp(ev, policy, 'EventAgeExceeded', ev.failures + 1, outcome, trace);
      }
      held = await q.fail(ev.id, owner, { nextAttemptAt: next, error: describeError(outcome) });
    }
    if (!held) this.lostLease(ev);
  }

  /** No more attempts: onFailure hears of it, and the event stays as dead for a person to see and replay. */
  private async giveUp(
    ev: QueuedEvent,
    policy: Policy,
    condition: Condition,
    invokeCount: number,
    outcome: InvokeOutcome | undefined,
    trace?: string,
  ): Promise<void> {
    if (policy.onFailure) await this.deliver(ev, policy.onFailure, condition, invokeCount, outcome, trace);
    const why = outcome && outcome.status !== 'ok' ? `: ${describeError(outcome)}` : '';
    const failed = outcome !== undefined && outcome.status !== 'ok' && outcome.status !== 'throttled';
    if (!(await this.o.queue.deadLetter(ev.id, this.o.nodeId, `${condition}${why}`, failed))) {
      this.lostLease(ev);
    } else if (condition !== 'Success') {
      this.o.observer?.dead({ project: ev.project, name: ev.functionName }, condition);
    }
  }

  /** Enqueues AWS's destination record for the destination function. Its id is derived from the event and
   *  the attempt, so the same outcome delivered twice (a crash before the source event was settled) is one. */
  private async deliver(
    ev: QueuedEvent,
    dest: Destination,
    condition: Condition,
    invokeCount: number,
    outcome: InvokeOutcome | undefined,
    trace?: string,
  ): Promise<void> {
    const record = destinationRecord(ev, condition, invokeCount, outcome, this.clock.now(), this.arn(ev));
    if (dest.queue !== undefined) return this.sendToQueue(ev, dest.queue, record, trace);
    await this.o.queue.enqueue({
      id: derivedId(`${ev.id}/${condition}/${ev.attempts}`),
      project: ev.project,
      functionName: dest.function,
      source: 'destination',
      payload: JSON.stringify(record),
      // The destination continues the chain, so a loop through destinations is counted too.
      trace: trace ?? ev.trace,
    });
    this.wake();
  }

  /** A queue destination gets the record as a message body. A queue removed since the deploy loses it, with
   *  a log line: the event itself is settled either way (its own record and dead state remain). */
  private async sendToQueue(
    ev: QueuedEvent,
    queue: string,
    record: Record<string, unknown>,
    trace?: string,
  ): Promise<void> {
    if (!this.o.queues) throw new Error(`event ${ev.id}: queue destination "${queue}" but no queue store`);
    try {
      await this.o.queues.send(ev.project, queue, [
        { body: JSON.stringify(record), trace: trace ?? ev.trace },
      ]);
      this.o.onQueued?.(ev.project, queue);
    } catch (err) {
      if (!(err instanceof QueueNotFoundError)) throw err;
      this.o.onError?.(
        new Error(
          `event ${ev.id}: destination queue "${queue}" does not exist any more; the record was not sent`,
        ),
        'async events',
      );
    }
  }

  private async knownElsewhere(ev: QueuedEvent): Promise<boolean> {
    if (!this.o.functionExists || ev.qualifier) return false;
    return this.o.functionExists({ project: ev.project, name: ev.functionName });
  }

  /** Loads run one after another, and a change the API made while one ran wins over what it read. */
  private loadOverrides(): Promise<void> {
    const load = async (): Promise<void> => {
      if (!this.o.asyncConfigs) return;
      const changedBefore = this.overrideChanges;
      try {
        const all = await this.o.asyncConfigs();
        if (this.overrideChanges === changedBefore)
          this.overrides = new Map(all.map((c) => [refKey(c), c.config]));
      } catch (err) {
        this.o.onError?.(err, 'async events: loading event invoke configurations');
      }
    };
    this.loadingOverrides = this.loadingOverrides.then(load);
    return this.loadingOverrides;
  }

  private policyOf(ev: QueuedEvent): Policy {
    const key = refKey({ project: ev.project, name: ev.functionName });
    const a = this.overrides.get(key) ?? this.functions.get(key)?.config.async;
    return {
      maxRetries: a?.maximumRetryAttempts ?? ASYNC_DEFAULTS.maximumRetryAttempts,
      maxAgeMs: (a?.maximumEventAgeInSeconds ?? ASYNC_DEFAULTS.maximumEventAgeInSeconds) * 1000,
      onSuccess: a?.onSuccess,
      onFailure: a?.onFailure,
    };
  }

  private room(ref: FunctionRef): boolean {
    return !this.o.headroom || this.o.headroom(ref) > 0;
  }

  private arn(ev: QueuedEvent): string {
    return functionArn(this.o.region ?? 'us-east-1', this.o.accountId ?? '000000000000', ev.functionName);
  }

  private lostLease(ev: QueuedEvent): void {
    this.o.onError?.(
      new Error(`event ${ev.id}: another node took it over before this attempt ended; it may run again`),
      'async event',
    );
  }

  /** Deletes failed events past their retention, now and every hour, so they never grow without bound. */
  private purge = (): void => {
    if (this.stopped) return;
    const keep = this.o.deadRetentionMs ?? 14 * 24 * 3_600_000;
    this.o.queue
      .purgeDead(this.clock.now() - keep)
      .catch((err: unknown) => this.o.onError?.(err, 'async events: deleting old failed events'));
    this.purgeTimer = this.clock.setTimeout(this.purge, 3_600_000);
  };

  /** Keeps the leases of running events from running out while they run. */
  private renew = (): void => {
    if (this.stopped && this.running.size === 0) return;
    for (const id of this.running.keys()) {
      this.o.queue
        .extend(id, this.o.nodeId, this.leaseMs)
        .catch((err: unknown) => this.o.onError?.(err, `async event ${id}: renewing its lease`));
    }
    this.renewTimer = this.clock.setTimeout(this.renew, this.leaseMs / 3);
  };

  private notifyIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }
}

function parsePayload(payload: string): unknown {
  try {
    return JSON.parse(payload);
  } catch {
    return payload;
  }
}

interface Policy {
  maxRetries: number;
  maxAgeMs: number;
  onSuccess: Destination | undefined;
  onFailure: Destination | undefined;
}

/** The record Lambda sends to a destination (its documented shape, field for field). */
export function destinationRecord(
  ev: QueuedEvent,
  condition: Condition,
  invokeCount: number,
  outcome: InvokeOutcome | undefined,
  now: number,
  arn: string,
): Record<string, unknown> {
  const record: Record<string, unknown> = {
    version: '1.0',
    timestamp: new Date(now).toISOString(),
    requestContext: {
      requestId: ev.id,
      functionArn: `${arn}:$LATEST`,
      condition,
      approximateInvokeCount: invokeCount,
    },
    requestPayload: parsePayload(ev.payload),
  };
  // A response exists only when the function ran; a throttle or an expiry before any run has none.
  if (outcome && outcome.status !== 'throttled' && outcome.status !== 'not_found') {
    record['responseContext'] = {
      statusCode: 200,
      executedVersion: '$LATEST',
      ...(outcome.status === 'ok' ? {} : { functionError: 'Unhandled' }),
    };
    record['responsePayload'] =
      outcome.status === 'ok' ? parsePayload(outcome.payload ?? 'null') : (outcome.error ?? null);
  }
  return record;
}

function describeError(o: InvokeOutcome): string {
  return o.error ? `${o.error.errorType}: ${o.error.errorMessage}` : o.status;
}

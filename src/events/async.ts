// Asynchronous (Event) invocations: committed to the EventQueue before they are acknowledged, then claimed
// with a lease and run through the invoker like any other trigger. The queue, not memory, holds what is
// pending and when it is due, so a restart or a crash loses nothing; the lease keeps two nodes (or a node and
// its own restart) from running one event at once. Retries of function errors and destinations belong to the
// events issue; here an event is retried while it is throttled, and one whose function is gone is kept as
// dead for a person to see.
import { randomUUID } from 'node:crypto';
import { systemClock, type Clock, type Timer } from '../clock/clock.js';
import type { Invoker, InvokeOutcome } from '../invoker/types.js';
import type { EventQueue, FunctionRef, FunctionVersion, QueuedEvent } from '../store/types.js';
import type { TriggerSource } from './types.js';

/** Lambda keeps retrying a throttled asynchronous event for up to six hours. */
const MAX_EVENT_AGE_MS = 6 * 60 * 60 * 1000;

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
  onError?: (err: unknown, context: string) => void;
}

export class AsyncEventSource implements TriggerSource {
  readonly kind = 'event';
  readonly name = 'async events';
  private readonly clock: Clock;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly running = new Map<string, Promise<void>>();
  private started = false;
  private stopped = false;
  private pumping = false;
  private again = false;
  private wakeTimer: Timer | null = null;
  private renewTimer: Timer | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: AsyncEventsOptions) {
    this.clock = o.clock ?? systemClock;
    this.concurrency = o.concurrency ?? 16;
    this.leaseMs = o.leaseMs ?? 60_000;
    this.pollMs = o.pollMs ?? 1000;
  }

  /** Durably accepts an event; resolves once it is committed (the caller may then answer 202). */
  async enqueue(ref: FunctionRef, payload: string, requestId: string = randomUUID()): Promise<string> {
    await this.o.queue.enqueue({
      id: requestId,
      project: ref.project,
      functionName: ref.name,
      source: 'invoke',
      payload,
    });
    this.wake();
    return requestId;
  }

  sync(_functions: readonly FunctionVersion[]): void {
    // Events name their function when they run; a deploy may make a waiting event runnable, so look now.
    this.wake();
  }

  async start(): Promise<void> {
    // Leases this node held before a crash or restart cover nothing that runs now.
    await this.o.queue.releaseOwner(this.o.nodeId);
    this.started = true;
    this.stopped = false;
    this.renew();
    this.wake();
  }

  /** Takes no new events and waits for the running ones, so their completion is stored before the store closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeTimer?.cancel();
    this.renewTimer?.cancel();
    await Promise.all(this.running.values());
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
    void this.pump();
  };

  private async pump(): Promise<void> {
    this.pumping = true;
    this.wakeTimer?.cancel();
    let delay = this.pollMs;
    try {
      while (!this.stopped && this.running.size < this.concurrency) {
        const limit = this.concurrency - this.running.size;
        const batch = await this.o.queue.claim({ owner: this.o.nodeId, leaseMs: this.leaseMs, limit });
        for (const ev of batch) this.launch(ev);
        if (batch.length < limit) break;
      }
      const next = await this.o.queue.nextDueAt();
      if (next !== undefined) delay = Math.min(this.pollMs, Math.max(0, next - this.clock.now()));
    } catch (err) {
      this.o.onError?.(err, 'async events: reading the queue');
    } finally {
      this.pumping = false;
    }
    if (this.stopped) return this.notifyIdle();
    if (this.again) {
      this.again = false;
      return this.wake();
    }
    // A full node is woken by a finishing event; otherwise look again when the next event is due.
    if (this.running.size < this.concurrency) this.wakeTimer = this.clock.setTimeout(this.wake, delay);
    this.notifyIdle();
  }

  private launch(ev: QueuedEvent): void {
    const p = this.run(ev)
      .catch((err: unknown) => this.o.onError?.(err, `async event ${ev.id}`))
      .finally(() => {
        this.running.delete(ev.id);
        this.wake();
        this.notifyIdle();
      });
    this.running.set(ev.id, p);
  }

  private async run(ev: QueuedEvent): Promise<void> {
    const outcome = await this.o.invoker.invoke({
      fn: { project: ev.project, name: ev.functionName },
      event: parsePayload(ev.payload),
      trigger: 'event',
      // Every attempt keeps the event's request id, as Lambda's retries do; the record's attempt tells them apart.
      requestId: ev.id,
      attempt: ev.attempts,
    });
    await this.settle(ev, outcome);
  }

  /** Stores what became of one attempt. */
  private async settle(ev: QueuedEvent, outcome: InvokeOutcome): Promise<void> {
    const q = this.o.queue;
    const owner = this.o.nodeId;
    const now = this.clock.now();
    let held: boolean;
    if (outcome.status === 'not_found' && this.stopped) {
      held = await q.release(ev.id, owner);
    } else if (outcome.status === 'not_found') {
      held = await q.deadLetter(ev.id, owner, outcome.error?.errorMessage ?? 'function not found');
    } else if (outcome.status === 'throttled' && now - ev.enqueuedAt < MAX_EVENT_AGE_MS) {
      // Throttled events wait and try again, as Lambda's async queue does, for up to six hours.
      const backoff = Math.min(30_000, 200 * 2 ** Math.min(ev.attempts, 8));
      held = await q.fail(ev.id, owner, {
        nextAttemptAt: now + backoff,
        error: `throttled: ${outcome.throttleReason ?? 'no capacity'}`,
      });
    } else if (outcome.status === 'throttled') {
      held = await q.deadLetter(ev.id, owner, 'EventAgeExceeded: throttled for six hours');
    } else {
      held = await q.complete(ev.id, owner);
    }
    if (!held) {
      this.o.onError?.(
        new Error(
          `event ${ev.id}: its lease ran out before the attempt ended; another node may run it again`,
        ),
        'async event',
      );
    }
  }

  /** Keeps the leases of running events from running out while they run. */
  private renew = (): void => {
    if (this.stopped) return;
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

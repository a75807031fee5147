// Asynchronous (Event) invocations: written to the store before they are acknowledged, then run through the
// invoker like any other trigger. Pending events are replayed at start, so an accepted event survives a
// restart. Retries on function errors and dead letters belong to the events issue; here an event is retried
// only while it is throttled or Nimbus stops before it completes.
import { randomUUID } from 'node:crypto';
import type { Invoker } from '../invoker/types.js';
import type { QueuedEvent, Store } from '../store/types.js';

/** Lambda keeps retrying a throttled asynchronous event for up to six hours. */
const MAX_EVENT_AGE_MS = 6 * 60 * 60 * 1000;

export interface AsyncEventsOptions {
  store: Store;
  invoker: Invoker;
  /** Events running at once; the rest wait in the store. */
  concurrency?: number;
  onError?: (err: unknown, context: string) => void;
}

export class AsyncEvents {
  private queue: QueuedEvent[] = [];
  private queuedIds = new Set<string>();
  private running = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private idleWaiters: (() => void)[] = [];
  private readonly concurrency: number;

  constructor(private readonly o: AsyncEventsOptions) {
    this.concurrency = o.concurrency ?? 16;
  }

  /** Durably accepts an event; resolves once it is in the store (the caller may then answer 202). */
  async enqueue(functionName: string, payload: string, requestId: string = randomUUID()): Promise<string> {
    const ev: QueuedEvent = { id: requestId, functionName, payload, enqueuedAt: Date.now(), attempts: 0 };
    await this.o.store.enqueueEvent(ev);
    this.push(ev);
    return requestId;
  }

  /** Loads events accepted before the last stop. */
  async start(): Promise<void> {
    for (const ev of await this.o.store.pendingEvents(10_000)) this.push(ev);
  }

  private push(ev: QueuedEvent): void {
    if (this.queuedIds.has(ev.id)) return;
    this.queuedIds.add(ev.id);
    this.queue.push(ev);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running < this.concurrency && this.queue.length > 0) {
      const ev = this.queue.shift()!;
      this.running++;
      void this.run(ev).finally(() => {
        this.running--;
        if (this.running === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
        this.pump();
      });
    }
  }

  private async run(ev: QueuedEvent): Promise<void> {
    let event: unknown;
    try {
      event = JSON.parse(ev.payload);
    } catch {
      event = ev.payload;
    }
    try {
      const outcome = await this.o.invoker.invoke({
        functionName: ev.functionName,
        event,
        trigger: 'event',
        requestId: ev.attempts === 0 ? ev.id : `${ev.id}-${ev.attempts}`,
      });
      if (outcome.status === 'throttled' || (outcome.status === 'not_found' && this.stopped)) {
        this.queuedIds.delete(ev.id);
        // Stopping: the event stays in the store and runs after the next start.
        if (this.stopped) return;
        // Throttled events wait and try again, as Lambda's async queue does, for up to six hours.
        if (Date.now() - ev.enqueuedAt < MAX_EVENT_AGE_MS) {
          ev.attempts = await this.o.store.recordEventAttempt(ev.id);
          this.retryLater(ev, Math.min(30_000, 200 * 2 ** Math.min(ev.attempts, 8)));
          return;
        }
        this.o.onError?.(
          new Error(`event ${ev.id} for ${ev.functionName} dropped after six hours of throttling`),
          'async event',
        );
      }
      await this.o.store.completeEvent(ev.id);
      this.queuedIds.delete(ev.id);
    } catch (err) {
      this.o.onError?.(err, `async event ${ev.id}`);
      this.queuedIds.delete(ev.id);
    }
  }

  private retryLater(ev: QueuedEvent, ms: number): void {
    const t = setTimeout(() => this.push(ev), ms);
    t.unref();
    this.retryTimer = t;
  }

  /** Resolves when no event is running or queued in memory. */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stops taking new work; running events finish (the caller drains the invoker). */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.queue = [];
  }
}

// Invocation records (and the logs they hold) are deleted once older than the retention, at start and every
// hour of the injected clock, in bounded batches with the event loop free between them: no sweep holds a
// lock for long or keeps a request waiting.
import type { Clock, Timer } from '../clock/clock.js';
import type { Component } from '../component.js';
import type { InvocationLog, SpanStore } from '../store/types.js';

export interface RetentionOptions {
  log: Pick<InvocationLog, 'prune'>;
  /** Spans go with the invocations they belong to, after the same retention. */
  spans?: Pick<SpanStore, 'prune'>;
  clock: Clock;
  retentionMs: number;
  /** Records per delete statement. Default 1000. */
  batch?: number;
  /** How often to sweep, in the clock's ms. Default one hour. */
  everyMs?: number;
  onError?: (err: unknown, context: string) => void;
}

export class InvocationRetention implements Component {
  readonly name = 'invocation retention';
  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  /** A sweep was due while one ran: run again when it ends, with the clock's time then. */
  private again = false;
  private stopped = false;
  private readonly batch: number;
  private readonly everyMs: number;

  constructor(private readonly o: RetentionOptions) {
    this.batch = Math.max(1, Math.floor(o.batch ?? 1000));
    this.everyMs = o.everyMs ?? 3_600_000;
  }

  async start(): Promise<void> {
    this.stopped = false;
    // Not awaited: a first sweep over a long backlog must not hold up the start.
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    await this.running;
  }

  /** Resolves when the sweep under way (if any) and any it asked for have finished. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private readonly tick = (): void => {
    if (this.stopped) return;
    this.timer = this.o.clock.setTimeout(this.tick, this.everyMs);
    this.sweep();
  };

  private sweep(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run()
      .catch((err: unknown) => this.o.onError?.(err, 'deleting invocation records past their retention'))
      .finally(() => {
        this.running = null;
        if (this.again && !this.stopped) {
          this.again = false;
          this.sweep();
        }
      });
  }

  private async run(): Promise<void> {
    const before = this.o.clock.now() - this.o.retentionMs;
    await this.prune((n) => this.o.log.prune(before, n));
    const spans = this.o.spans;
    if (spans) await this.prune((n) => spans.prune(before, n));
  }

  private async prune(batch: (limit: number) => Promise<number>): Promise<void> {
    while (!this.stopped) {
      const n = await batch(this.batch);
      if (n < this.batch) return;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

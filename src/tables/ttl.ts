// Time to live: DynamoDB deletes an item some time after the number (epoch seconds) in the table's TTL
// attribute has passed, with a REMOVE stream record whose userIdentity is the service's. The store does one
// batch of that in one transaction (TableStore.expire); this component runs it in the background: at start
// and every 30 seconds of the injected clock, in batches of 1000 until a batch comes back short, so a
// backlog is cleared in one sweep and one sweep at a time runs. With a shared PostgreSQL store every node
// sweeps; the store skips items another transaction holds, so each expires once.
import { systemClock, type Clock, type Timer } from '../clock/clock.js';
import type { Component } from '../component.js';
import type { TableStore } from '../store/types.js';

/** How often expired items are looked for. DynamoDB promises "within a few days"; in practice minutes. */
export const TTL_SWEEP_MS = 30_000;
/** Items deleted per store call (one transaction). */
export const TTL_BATCH = 1000;

export interface TtlSweeperOptions {
  tables: Pick<TableStore, 'expire'>;
  clock?: Clock;
  onError?: (err: unknown, context: string) => void;
}

export class TtlSweeper implements Component {
  readonly name = 'ttl sweeper';
  private readonly clock: Clock;
  private timer: Timer | null = null;
  private running: Promise<void> | null = null;
  /** Between stop() and the next start(): no batch or sweep begins. */
  private stopped = false;

  constructor(private readonly o: TtlSweeperOptions) {
    this.clock = o.clock ?? systemClock;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.tick();
  }

  /** Sweeps no more, and waits for a sweep in flight (its batch finishes; no other starts). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    await this.running;
  }

  /** Deletes every item expired by now, a batch at a time; returns how many. */
  async sweep(): Promise<number> {
    let deleted = 0;
    for (;;) {
      const n = await this.o.tables.expire(this.clock.now() / 1000, TTL_BATCH);
      deleted += n;
      if (n < TTL_BATCH || this.stopped) return deleted;
    }
  }

  private tick = (): void => {
    this.timer = null;
    this.running = this.sweep()
      .then(
        () => undefined,
        (err: unknown) => this.o.onError?.(err, 'tables: deleting expired items'),
      )
      .finally(() => {
        this.running = null;
        if (!this.stopped) this.timer = this.clock.setTimeout(this.tick, TTL_SWEEP_MS);
      });
  };
}

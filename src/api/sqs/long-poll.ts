// Long polling: a ReceiveMessage with WaitTimeSeconds waits for a message instead of answering empty. It
// looks again when a send through this node wakes it, when a hidden or delayed message's time comes (the
// store says when), or after pollMs for what other nodes or paths without a wake-up (an async destination)
// sent; never in a tighter loop. Each waiter registers before it looks, so a send between its empty receive
// and its sleep still wakes it (the Waker keeps the early wake). A poll whose client went away stops looking.
import type { Clock } from '../../clock/clock.js';
import { Waker } from '../../events/waker.js';

export class QueueWaiters {
  private readonly waiting = new Map<string, Set<Waker>>();

  constructor(private readonly clock: Clock) {}

  /** Wakes every receive waiting on the queue. */
  notify(project: string, queue: string): void {
    for (const w of this.waiting.get(key(project, queue)) ?? []) w.wake();
  }

  /**
   * Runs `look` until it finds something or `waitMs` has passed, sleeping between looks until woken or until
   * `nextAt()` (the earliest time something becomes receivable), at most pollMs at a time.
   */
  async poll<T>(
    project: string,
    queue: string,
    waitMs: number,
    pollMs: number,
    look: () => Promise<T[]>,
    nextAt: () => Promise<number | undefined>,
    signal?: AbortSignal,
  ): Promise<T[]> {
    const deadline = this.clock.now() + waitMs;
    const waker = new Waker(this.clock);
    const k = key(project, queue);
    const set = this.waiting.get(k) ?? new Set<Waker>();
    this.waiting.set(k, set);
    set.add(waker);
    const abandon = () => waker.wake();
    signal?.addEventListener('abort', abandon);
    try {
      for (;;) {
        // Nobody is left to hand messages to: receiving them would only hide them for their timeout.
        if (signal?.aborted) return [];
        const found = await look();
        const now = this.clock.now();
        if (found.length > 0 || now >= deadline) return found;
        const next = await nextAt();
        const until = Math.min(deadline, now + pollMs, next ?? Infinity);
        await waker.sleep(Math.max(1, until - now));
      }
    } finally {
      signal?.removeEventListener('abort', abandon);
      set.delete(waker);
      if (set.size === 0) this.waiting.delete(k);
    }
  }
}

function key(project: string, queue: string): string {
  return `${project}\u0000${queue}`;
}

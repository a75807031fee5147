// Time as a dependency. Everything that decides by time (keep-alive, event retries and leases, schedules,
// heartbeats) reads it from a Clock, so a test moves a ManualClock forward instead of sleeping.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Runs fn once after ms (never before the clock has advanced by ms). The timer never keeps a process alive. */
  setTimeout(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that moves only when told to; due timers run, in time order, inside advance(). */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Set<Pending>();

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.timers.add(p);
    // A timer that is already due needs no advance: it runs on the next turn of the event loop, as a real
    // zero-delay timer would, so code that re-arms "now" never waits for a test to move time.
    if (ms <= 0) {
      setImmediate(() => {
        if (this.timers.delete(p)) p.fn();
      });
    }
    return { cancel: () => this.timers.delete(p) };
  }

  /** Moves time forward by ms, running every timer that falls due on the way at its own time. */
  advance(ms: number): void {
    const end = this.t + Math.max(0, ms);
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.timers) {
        if (p.at <= end && (!next || p.at < next.at || (p.at === next.at && p.seq < next.seq))) next = p;
      }
      if (!next) break;
      this.timers.delete(next);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  /** Timers not yet run. */
  get pendingTimers(): number {
    return this.timers.size;
  }
}

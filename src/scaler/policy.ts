// Keep-alive policies: pure code that decides how long a function's instances stay warm after it goes idle,
// and whether to let them go and pre-warm one later. The scaler asks; processes obey; the trace simulator
// replays real workloads against exactly these objects in simulated time.

/** What to do once a function has gone idle (its last in-flight invocation ended at time `idleSince`). */
export interface IdlePlan {
  /**
   * 0: keep the instances warm from the moment the function goes idle.
   * > 0: stop the idle instances now (scale to zero) and start one again `prewarmMs` after going idle.
   */
  prewarmMs: number;
  /** How long instances stay warm, counted from the end of the pre-warm wait (or from going idle). */
  keepAliveMs: number;
  /**
   * Window for a function's extra instances (those beyond the last one to finish), counted from their own
   * last use. The idle-time histogram describes when the function is invoked again, which says nothing
   * about when it needs several instances at once; defaults to keepAliveMs.
   */
  extraKeepAliveMs?: number;
}

export interface KeepAlivePolicy {
  /** Shown in `nimbus ls` and the API, e.g. "fixed 600s" or "hybrid". */
  readonly name: string;
  /** An invocation of `fn` started at `now`; `idleMs` is how long the function had been idle, or null if unknown. */
  observe(fn: string, now: number, idleMs: number | null): void;
  /** The plan for `fn` now that it has gone idle. Must be cheap: called on every transition to idle. */
  plan(fn: string): IdlePlan;
  /** Forget a function (removed). */
  forget(fn: string): void;
}

/** AWS-like: instances live for a fixed window after the last invocation. */
export class FixedKeepAlive implements KeepAlivePolicy {
  readonly name: string;
  private readonly planned: IdlePlan;

  constructor(readonly keepAliveMs: number) {
    this.name = `fixed ${Math.round(keepAliveMs / 1000)}s`;
    this.planned = { prewarmMs: 0, keepAliveMs };
  }

  observe(): void {}

  plan(): IdlePlan {
    return this.planned;
  }

  forget(): void {}
}

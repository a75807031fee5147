// Usage plan quotas: how many requests a key may make per day, week or month, counted across every node that
// shares the store without a store round trip per request. Each node reserves a block of a key's quota from
// the store (GatewayKeyStore.reserve never lets used + reserved pass the limit), admits requests from the
// block in memory, and settles what it admitted every second (and what it gives back when a key goes idle,
// its period ends, or the node stops). So:
// - the limit is never passed, by any number of nodes: a request is admitted only from a reserved slot;
// - a count is never lost: an admitted request stays counted as reserved until its settle lands, and a failed
//   settle is retried; a node that dies leaves its unsettled requests and unused slots reserved (the period
//   ends with up to one block per dead node under-used, and `used` short by its unsettled requests);
// - `used` in the store lags by up to one flush (1 s) per node; this node's own count is flushed before a read.
// Periods are UTC: a day from 00:00, a week from Monday 00:00, a month from the 1st, read from the Clock.
import type { Clock, Timer } from '../clock/clock.js';
import type { Component } from '../component.js';
import type { QuotaPeriod } from '../config/manifest.js';
import type { GatewayKeyStore } from '../store/types.js';

export interface Quota {
  limit: number;
  period: QuotaPeriod;
}

/** The period a time falls in, as the store's counter key: "DAY 2026-12-03", "WEEK 2026-11-30", "MONTH 2026-12". */
export function periodOf(period: QuotaPeriod, now: number): string {
  return `${period} ${new Date(periodStart(period, now)).toISOString().slice(0, period === 'MONTH' ? 7 : 10)}`;
}

export function periodStart(period: QuotaPeriod, now: number): number {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  if (period === 'MONTH') return Date.UTC(y, m, 1);
  const day = Date.UTC(y, m, d.getUTCDate());
  if (period === 'DAY') return day;
  // getUTCDay: Sunday 0 … Saturday 6; weeks start on Monday (ISO 8601).
  return day - ((d.getUTCDay() + 6) % 7) * 86_400_000;
}

/** When the period after the one `now` falls in begins. */
export function periodEnd(period: QuotaPeriod, now: number): number {
  const start = new Date(periodStart(period, now));
  if (period === 'MONTH') return Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1);
  return start.getTime() + (period === 'DAY' ? 1 : 7) * 86_400_000;
}

/** Slots reserved at a time: about 5 % of the limit, at most 100 (a small limit reserves one at a time). */
export function blockSize(limit: number): number {
  return Math.max(1, Math.min(100, Math.floor(limit / 20)));
}

/** After the store said a quota is used up, how long before asking again (another node may give slots back). */
const EXHAUSTED_RECHECK_MS = 1000;
export const QUOTA_FLUSH_MS = 1000;

interface Counter {
  project: string;
  keyId: string;
  period: string;
  limit: number;
  /** Reserved in the store, not yet admitted. */
  granted: number;
  /** Admitted since the last settle. */
  admitted: number;
  /** Whether any request came since the last flush (an idle key's slots go back). */
  active: boolean;
  exhaustedAt: number | undefined;
  reserving: Promise<void> | undefined;
  /** Requests waiting for the reservation in flight: a burst reserves for all of them at once. */
  waiting: number;
}

export interface QuotaOptions {
  store: Pick<GatewayKeyStore, 'reserve' | 'settle'>;
  clock: Clock;
  onError: (err: unknown, context: string) => void;
  flushMs?: number;
}

export class KeyQuotas implements Component {
  readonly name = 'gateway key quotas';
  private readonly counters = new Map<string, Counter>();
  /** Counters of ended periods (or forgotten keys) still to settle. */
  private retired: Counter[] = [];
  private timer: Timer | null = null;
  private flushing: Promise<void> | undefined;

  constructor(private readonly o: QuotaOptions) {}

  /** Admits one request of the key under its quota, or answers false when the period's quota is used up.
   *  Rejects when the store cannot be reached and nothing is reserved locally. */
  async take(project: string, keyId: string, quota: Quota): Promise<boolean> {
    const now = this.o.clock.now();
    const period = periodOf(quota.period, now);
    const k = `${project}\u0000${keyId}`;
    let c = this.counters.get(k);
    if (c && c.period !== period) {
      this.retired.push(c);
      c = undefined;
    }
    if (!c) {
      c = {
        project,
        keyId,
        period,
        limit: quota.limit,
        granted: 0,
        admitted: 0,
        active: false,
        exhaustedAt: undefined,
        reserving: undefined,
        waiting: 0,
      };
      this.counters.set(k, c);
    }
    c.limit = quota.limit;
    c.active = true;
    // Each round either gets slots (of a finite quota) or learns it is used up, so this ends.
    for (;;) {
      if (c.granted > 0) {
        c.granted--;
        c.admitted++;
        // The next block is asked for before this one runs out, so a busy key does not wait on the store.
        if (c.granted < blockSize(c.limit) / 2 && c.exhaustedAt === undefined && !c.reserving) {
          this.refill(c).catch((err: unknown) => this.o.onError(err, 'reserving a key quota block'));
        }
        return true;
      }
      if (c.exhaustedAt !== undefined && this.o.clock.now() - c.exhaustedAt < EXHAUSTED_RECHECK_MS) {
        return false;
      }
      c.waiting++;
      try {
        await this.refill(c);
      } finally {
        c.waiting--;
      }
      // The period ended (or a flush retired the counter) while waiting: start again on the current one.
      if (this.counters.get(k) !== c) return this.take(project, keyId, quota);
    }
  }

  /** Settles every counter's admitted requests (and gives back what idle, ended or all counters hold). */
  flush(releaseAll = false): Promise<void> {
    // One flush at a time; a caller during one waits for it and then runs its own.
    const run = (this.flushing ?? Promise.resolve()).then(() => this.flushOnce(releaseAll));
    const p = run.finally(() => {
      if (this.flushing === p) this.flushing = undefined;
    });
    this.flushing = p;
    return p;
  }

  async start(): Promise<void> {
    const loop = (): void => {
      this.flush()
        .catch((err: unknown) => this.o.onError(err, 'settling key quotas'))
        .finally(() => {
          if (this.timer) this.timer = this.o.clock.setTimeout(loop, this.o.flushMs ?? QUOTA_FLUSH_MS);
        });
    };
    this.timer = this.o.clock.setTimeout(loop, this.o.flushMs ?? QUOTA_FLUSH_MS);
  }

  /** Settles everything and gives every reserved slot back, so a clean stop leaves nothing held. */
  async stop(): Promise<void> {
    this.timer?.cancel();
    this.timer = null;
    // A block still being reserved is given back too, once it has landed.
    await Promise.all([...this.counters.values()].map((c) => c.reserving?.catch(() => undefined)));
    await this.flush(true);
  }

  private refill(c: Counter): Promise<void> {
    c.reserving ??= this.o.store
      .reserve(
        c.project,
        c.keyId,
        c.period,
        Math.max(blockSize(c.limit), Math.min(c.waiting + 1, 1000)),
        c.limit,
      )
      .then((n) => {
        c.granted += n;
        c.exhaustedAt = n === 0 ? this.o.clock.now() : undefined;
      })
      .finally(() => {
        c.reserving = undefined;
      });
    return c.reserving;
  }

  private async flushOnce(releaseAll: boolean): Promise<void> {
    const now = this.o.clock.now();
    for (const [k, c] of this.counters) {
      // A counter whose period ended without a request since is retired here (take() retires the others).
      const ended = releaseAll || !c.active || c.period !== periodOfCounter(c, now);
      if (ended && !c.reserving) {
        this.counters.delete(k);
        this.retired.push(c);
      }
    }
    const retired = this.retired;
    this.retired = [];
    let failed: unknown;
    for (const c of retired) {
      await c.reserving?.catch(() => undefined);
      try {
        await this.settle(c, c.granted);
      } catch (err) {
        this.retired.push(c);
        failed ??= err;
      }
    }
    for (const c of this.counters.values()) {
      c.active = false;
      if (c.admitted === 0) continue;
      try {
        await this.settle(c, 0);
      } catch (err) {
        failed ??= err;
      }
    }
    if (failed !== undefined) throw failed;
  }

  /** Reports the counter's admitted requests and gives `release` slots back; on failure both stay held. */
  private async settle(c: Counter, release: number): Promise<void> {
    const admitted = c.admitted;
    if (admitted === 0 && release === 0) return;
    c.admitted = 0;
    c.granted -= release;
    try {
      await this.o.store.settle(c.project, c.keyId, c.period, admitted, release);
    } catch (err) {
      c.admitted += admitted;
      c.granted += release;
      throw err;
    }
  }
}

/** The period kind is the counter key's first word. */
function periodOfCounter(c: Counter, now: number): string {
  return periodOf(c.period.slice(0, c.period.indexOf(' ')) as QuotaPeriod, now);
}

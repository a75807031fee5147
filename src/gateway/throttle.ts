// API Gateway's throttling: a token bucket per route and one per service, refilled at `rate` tokens a second
// up to `burst`. Time comes from the injected Clock, so the bucket's arithmetic is tested without waiting.
import type { Clock } from '../clock/clock.js';
import type { ThrottleConfig } from '../config/manifest.js';

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly config: ThrottleConfig,
    now: number,
  ) {
    this.tokens = config.burst;
    this.at = now;
  }

  /** Tokens now, after refilling for the time since the last look. */
  available(now: number): number {
    if (now > this.at) {
      this.tokens = Math.min(this.config.burst, this.tokens + ((now - this.at) / 1000) * this.config.rate);
      this.at = now;
    }
    return this.tokens;
  }

  take(): void {
    this.tokens -= 1;
  }

  /** Whole seconds until one token is there (at least 1, as Retry-After is whole seconds). */
  retryAfter(now: number): number {
    const missing = 1 - this.available(now);
    if (this.config.rate <= 0 || this.config.burst < 1) return 1;
    return Math.max(1, Math.ceil(missing / this.config.rate));
  }
}

/** Buckets outlive route-table swaps: a redeploy with the same limits keeps the tokens already spent. */
export class Throttles {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly clock: Clock) {}

  /**
   * Takes one token from every bucket named, or none when any is empty: a request refused by its service's
   * bucket does not spend its route's. Returns undefined when admitted, else Retry-After seconds.
   */
  admit(limits: readonly { key: string; config: ThrottleConfig }[]): number | undefined {
    const now = this.clock.now();
    const buckets = limits.map((l) => this.bucket(l.key, l.config, now));
    const empty = buckets.find((b) => b.available(now) < 1);
    if (empty) return empty.retryAfter(now);
    for (const b of buckets) b.take();
    return undefined;
  }

  private bucket(key: string, config: ThrottleConfig, now: number): TokenBucket {
    let b = this.buckets.get(key);
    if (!b || b.config.rate !== config.rate || b.config.burst !== config.burst) {
      b = new TokenBucket(config, now);
      this.buckets.set(key, b);
    }
    return b;
  }
}

// The usage meter: what is billed besides invocations, counted in memory and added to the UsageStore in
// batches. A data request costs a Map update, never a store write of its own; every flushMs (and at stop) the
// counts go out as one UsageStore.add, and a failed flush keeps them for the next, so a clean stop loses none.
// It also samples each project's stored bytes (kept exact by the store's triggers for quotas) into
// byte-seconds, and takes the provisioned instances' kept time from the invoker.
import type { Clock, Timer } from '../clock/clock.js';
import type { Component } from '../component.js';
import {
  HOUR_MS,
  type QuotaStore,
  type UsageEntry,
  type UsageService,
  type UsageStore,
} from '../store/types.js';
import { mbMsPico, parseUsd } from './price.js';

/** What the data services call for each request they serve (cheap: in memory). */
export interface UsageCounter {
  count(project: string, service: 'dynamodb' | 's3' | 'sqs', resource: string, kind: string): void;
}

/** What the invoker calls with the time provisioned instances were kept (MB x ms). */
export interface ProvisionedMeter {
  provisioned(project: string, fn: string, mbMs: number): void;
}

/** Prices of what the meter counts, in picodollars per unit (exact integers). */
export interface UsagePrices {
  /** Per request, by "service.kind": dynamodb.read, dynamodb.write, s3.tier1, s3.tier2, sqs.request. */
  request: Record<string, bigint>;
  /** Per GB-month stored (a GB is 2^30 bytes, a month 730 hours, as AWS prices storage). */
  storageGbMonthPico: bigint;
  /** Per GB-second a provisioned instance is kept. */
  provisionedGbSecondPico: bigint;
}

export const DEFAULT_USAGE_PRICES = {
  dynamodbWritesPerMillion: '0.625',
  dynamodbReadsPerMillion: '0.125',
  s3Tier1PerThousand: '0.005',
  s3Tier2PerThousand: '0.0004',
  sqsRequestsPerMillion: '0.40',
  storageGbMonth: '0.023',
  provisionedGbSecond: '0.0000041667',
} as const;

export function usagePrices(p: {
  dynamodbWritesPerMillion: string;
  dynamodbReadsPerMillion: string;
  s3Tier1PerThousand: string;
  s3Tier2PerThousand: string;
  sqsRequestsPerMillion: string;
  storageGbMonth: string;
  provisionedGbSecond: string;
}): UsagePrices {
  return {
    request: {
      // Per million to per request in picodollars: x 10^12 / 10^6; per thousand: x 10^12 / 10^3.
      'dynamodb.write': parseUsd(p.dynamodbWritesPerMillion, 6),
      'dynamodb.read': parseUsd(p.dynamodbReadsPerMillion, 6),
      's3.tier1': parseUsd(p.s3Tier1PerThousand, 9),
      's3.tier2': parseUsd(p.s3Tier2PerThousand, 9),
      'sqs.request': parseUsd(p.sqsRequestsPerMillion, 6),
    },
    storageGbMonthPico: parseUsd(p.storageGbMonth, 12),
    provisionedGbSecondPico: parseUsd(p.provisionedGbSecond, 12),
  };
}

/** Byte-seconds in a GB-month: 2^30 bytes for 730 hours. */
export const BYTE_SECONDS_PER_GB_MONTH = 2n ** 30n * 730n * 3600n;

export interface UsageMeterOptions {
  usage: UsageStore;
  quotas: QuotaStore;
  clock: Clock;
  prices: UsagePrices;
  /** How often counts go to the store (default 5 s). */
  flushMs?: number;
  /** How often stored bytes are sampled (default 60 s). */
  sampleMs?: number;
  onError?: (err: unknown, what: string) => void;
}

interface Pending {
  project: string;
  service: UsageService;
  resource: string;
  kind: string;
  hour: number;
  quantity: number;
}

export class UsageMeter implements Component, UsageCounter, ProvisionedMeter {
  readonly name = 'usage meter';
  private pending = new Map<string, Pending>();
  /** Stored byte-milliseconds not yet a whole byte-second, per project. */
  private storageRemainder = new Map<string, bigint>();
  private lastSample: number | null = null;
  private flushTimer: Timer | null = null;
  private sampleTimer: Timer | null = null;
  private flushing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly o: UsageMeterOptions) {}

  count(project: string, service: 'dynamodb' | 's3' | 'sqs', resource: string, kind: string): void {
    this.add(project, service, resource, kind, 1);
  }

  provisioned(project: string, fn: string, mbMs: number): void {
    if (mbMs > 0) this.add(project, 'lambda', fn, 'provisioned-mb-ms', Math.round(mbMs));
  }

  private add(
    project: string,
    service: UsageService,
    resource: string,
    kind: string,
    n: number,
    at = this.o.clock.now(),
  ): void {
    const hour = at - (at % HOUR_MS);
    const key = `${hour}\u0000${project}\u0000${service}\u0000${resource}\u0000${kind}`;
    const p = this.pending.get(key);
    if (p) p.quantity += n;
    else this.pending.set(key, { project, service, resource, kind, hour, quantity: n });
  }

  async start(): Promise<void> {
    this.lastSample = this.o.clock.now();
    const everyFlush = (): void => {
      void this.flush();
      if (!this.stopped) this.flushTimer = this.o.clock.setTimeout(everyFlush, this.o.flushMs ?? 5000);
    };
    const everySample = (): void => {
      void this.sample().then(() => this.flush());
      if (!this.stopped) this.sampleTimer = this.o.clock.setTimeout(everySample, this.o.sampleMs ?? 60_000);
    };
    this.flushTimer = this.o.clock.setTimeout(everyFlush, this.o.flushMs ?? 5000);
    this.sampleTimer = this.o.clock.setTimeout(everySample, this.o.sampleMs ?? 60_000);
  }

  /** The last sample and flush: what was counted until now reaches the store before the store closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.flushTimer?.cancel();
    this.sampleTimer?.cancel();
    await this.sample();
    await this.flush();
  }

  /**
   * Stored bytes now, times the time since the last sample, per project: byte-seconds of the current hour.
   * The store keeps each project's total exact in the writing transaction; sampling it costs one query.
   */
  async sample(): Promise<void> {
    const now = this.o.clock.now();
    const since = this.lastSample ?? now;
    this.lastSample = now;
    const elapsed = BigInt(Math.max(0, now - since));
    if (elapsed === 0n) return;
    let projects;
    try {
      projects = await this.o.quotas.list();
    } catch (err) {
      this.o.onError?.(err, 'usage meter: stored bytes');
      return;
    }
    for (const p of projects) {
      if (p.storageBytes <= 0) continue;
      const byteMs = BigInt(p.storageBytes) * elapsed + (this.storageRemainder.get(p.project) ?? 0n);
      this.storageRemainder.set(p.project, byteMs % 1000n);
      const seconds = Number(byteMs / 1000n);
      if (seconds > 0) this.add(p.project, 'storage', '', 'byte-seconds', seconds, now);
    }
  }

  /** Everything counted so far, to the store in one batch; one flush at a time, in order. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.flushOnce());
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const entries: UsageEntry[] = [...batch.values()].map((p) => ({ ...p, costPicoUsd: this.cost(p) }));
    try {
      await this.o.usage.add(entries);
    } catch (err) {
      // Kept for the next flush: a store that is briefly unreachable loses no counts.
      for (const [key, p] of batch) {
        const now = this.pending.get(key);
        if (now) now.quantity += p.quantity;
        else this.pending.set(key, p);
      }
      this.o.onError?.(err, 'usage meter: flush');
    }
  }

  /** A batch row's cost, rounded half up to a picodollar where the price is not per whole unit. */
  private cost(p: Pending): number {
    const q = BigInt(p.quantity);
    const pr = this.o.prices;
    if (p.service === 'storage') {
      return Number(
        (q * pr.storageGbMonthPico * 2n + BYTE_SECONDS_PER_GB_MONTH) / (2n * BYTE_SECONDS_PER_GB_MONTH),
      );
    }
    if (p.service === 'lambda') {
      return Number(mbMsPico(q, pr.provisionedGbSecondPico));
    }
    return Number(q * (pr.request[`${p.service}.${p.kind}`] ?? 0n));
  }
}

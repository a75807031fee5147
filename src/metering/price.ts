// Metering: what one invocation costs under a price table, in exact integer picodollars (1e-12 USD). Pure: the
// invoker stamps each record with it at invocation time, so a later price change never rewrites history, and
// reports sum integers, so a total is exactly the sum of its records.

/** Picodollars per USD. */
export const PICO_PER_USD = 1_000_000_000_000n;
/** MB-milliseconds per GB-second: a GB is 1,024 MB, a second 1,000 ms. */
export const MB_MS_PER_GB_SECOND = 1_024_000;

export interface PriceTable {
  /** Price of one request, picodollars ($0.20 per million = 200,000). */
  requestPico: bigint;
  /** Price of one GB-second, picodollars ($0.0000166667 = 16,666,700). */
  gbSecondPico: bigint;
  /** Whether reports subtract the monthly free tier (per project and calendar month, UTC). */
  freeTier: boolean;
  /** Price of one GB-second of duration on a provisioned instance (AWS: $0.0000097222); absent: gbSecondPico. */
  provisionedGbSecondPico?: bigint;
}

/** AWS Lambda's free tier per month, as AWS states it. */
export const FREE_TIER = { requests: 1_000_000, gbSeconds: 400_000 } as const;

/** AWS us-east-1 x86 list prices. */
export const DEFAULT_PRICES = {
  requestsPerMillion: '0.20',
  gbSecond: '0.0000166667',
  /** Duration on a provisioned instance (the instance's kept time is priced by the usage meter). */
  provisionedGbSecond: '0.0000097222',
} as const;

export class PriceError extends Error {
  override name = 'PriceError';
}

/**
 * A decimal USD amount ("0.20", "0.0000166667") times 10^scale as an exact integer; an amount with more
 * fractional digits than scale cannot be represented and is refused rather than rounded.
 */
export function parseUsd(text: string, scale: number): bigint {
  const m = /^\s*\$?(\d+)(?:\.(\d*))?\s*$/.exec(text);
  if (!m) throw new PriceError(`"${text}" is not a USD amount (write it like 0.20)`);
  const frac = (m[2] ?? '').replace(/0+$/, '');
  if (frac.length > scale) {
    throw new PriceError(`"${text}" has more than ${scale} decimal places, finer than a picodollar`);
  }
  return BigInt(m[1]!) * 10n ** BigInt(scale) + BigInt(frac.padEnd(scale, '0') || '0');
}

/** The price table from its settings: USD per million requests and USD per GB-second, as decimal text. */
export function priceTable(
  requestsPerMillion: string,
  gbSecond: string,
  freeTier: boolean,
  provisionedGbSecond?: string,
): PriceTable {
  // Per million requests to per request in picodollars: x 10^12 / 10^6.
  return {
    requestPico: parseUsd(requestsPerMillion, 6),
    gbSecondPico: parseUsd(gbSecond, 12),
    freeTier,
    ...(provisionedGbSecond !== undefined
      ? { provisionedGbSecondPico: parseUsd(provisionedGbSecond, 12) }
      : {}),
  };
}

export const DEFAULT_PRICE_TABLE = priceTable(
  DEFAULT_PRICES.requestsPerMillion,
  DEFAULT_PRICES.gbSecond,
  false,
  DEFAULT_PRICES.provisionedGbSecond,
);

/** The metered usage of one invocation. */
export interface Usage {
  /** Billed requests: 1, or 0 for a throttled invocation (which is not billed). */
  requests: number;
  /** Billed duration x memory / 1024, in GB-seconds (billed ms / 1000). */
  gbSeconds: number;
  costPicoUsd: number;
}

/** Billed duration x memory as GB-seconds. Exact for display; sums use MB-ms integers instead. */
export function gbSeconds(billedMs: number, memoryMB: number): number {
  return (billedMs * memoryMB) / MB_MS_PER_GB_SECOND;
}

/** The cost of compute: MB-ms x price per GB-s / 1,024,000, rounded half up to a whole picodollar. */
export function computePico(mbMs: bigint, p: PriceTable): bigint {
  return mbMsPico(mbMs, p.gbSecondPico);
}

/** MB-ms at a price per GB-second, rounded half up to a whole picodollar. */
export function mbMsPico(mbMs: bigint, gbSecondPico: bigint): bigint {
  const d = BigInt(MB_MS_PER_GB_SECOND);
  return (mbMs * gbSecondPico * 2n + d) / (2n * d);
}

/**
 * One invocation's usage and cost. A throttled invocation has no billed duration and costs nothing; one that
 * ran on a provisioned instance pays the provisioned duration price (the instance's kept time is billed apart).
 */
export function meter(
  billedMs: number,
  memoryMB: number,
  throttled: boolean,
  p: PriceTable,
  provisioned = false,
): Usage {
  if (throttled) return { requests: 0, gbSeconds: 0, costPicoUsd: 0 };
  const perGbSecond = provisioned ? (p.provisionedGbSecondPico ?? p.gbSecondPico) : p.gbSecondPico;
  const cost = p.requestPico + mbMsPico(BigInt(billedMs) * BigInt(memoryMB), perGbSecond);
  return { requests: 1, gbSeconds: gbSeconds(billedMs, memoryMB), costPicoUsd: Number(cost) };
}

/** Lambda's billed duration: run time plus a cold start's init, rounded up to the next millisecond (min 1). */
export function billedMs(durationMs: number, initMs: number | null): number {
  return Math.max(1, Math.ceil(durationMs + (initMs ?? 0)));
}

/** Picodollars as exact USD text with 12 decimals, trailing zeros trimmed to at least 2 ("0.000002083338"). */
export function formatUsd(pico: bigint | number): string {
  const v = BigInt(pico);
  const neg = v < 0n;
  const a = neg ? -v : v;
  const whole = a / PICO_PER_USD;
  const frac = (a % PICO_PER_USD).toString().padStart(12, '0').replace(/0+$/, '').padEnd(2, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

/** Usage summed over many invocations, exact. */
export interface UsageTotals {
  requests: number;
  mbMs: bigint;
}

/**
 * The free tier's part of one project's usage in one calendar month: what it covers of `within`, given that
 * `before` (the month's usage before the report's window) already used part of it. Priced at `p`.
 */
export function freeTierCredit(
  before: UsageTotals,
  within: UsageTotals,
  p: PriceTable,
): { requests: number; mbMs: bigint; costPicoUsd: bigint } {
  const freeMbMs = BigInt(FREE_TIER.gbSeconds) * BigInt(MB_MS_PER_GB_SECOND);
  const minB = (a: bigint, b: bigint): bigint => (a < b ? a : b);
  const requests =
    Math.min(FREE_TIER.requests, before.requests + within.requests) -
    Math.min(FREE_TIER.requests, before.requests);
  const mbMs = minB(freeMbMs, before.mbMs + within.mbMs) - minB(freeMbMs, before.mbMs);
  return { requests, mbMs, costPicoUsd: BigInt(requests) * p.requestPico + computePico(mbMs, p) };
}

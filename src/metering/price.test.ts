import { describe, expect, it } from 'vitest';
import { resolveSettings, SettingsError } from '../config/settings.js';
import {
  billedMs,
  DEFAULT_PRICE_TABLE,
  formatUsd,
  freeTierCredit,
  meter,
  parseUsd,
  PriceError,
  priceTable,
} from './price.js';

describe('price table', () => {
  it('parses decimal USD exactly, refusing what is finer than the scale', () => {
    expect(parseUsd('0.20', 6)).toBe(200_000n);
    expect(parseUsd('0.0000166667', 12)).toBe(16_666_700n);
    expect(parseUsd('3', 2)).toBe(300n);
    expect(parseUsd('1.50000', 1)).toBe(15n);
    expect(() => parseUsd('0.0000001', 6)).toThrow(PriceError);
    expect(() => parseUsd('-1', 6)).toThrow(PriceError);
    expect(() => parseUsd('1e-6', 6)).toThrow(PriceError);
  });

  it('defaults to AWS us-east-1 x86 list prices, free tier off', () => {
    expect(DEFAULT_PRICE_TABLE).toEqual({
      requestPico: 200_000n,
      gbSecondPico: 16_666_700n,
      freeTier: false,
      provisionedGbSecondPico: 9_722_200n,
    });
    const s = resolveSettings({}, {});
    expect(
      priceTable(s.priceRequests, s.priceGbSecond, s.freeTier, s.priceProvisionedDurationGbSecond),
    ).toEqual(DEFAULT_PRICE_TABLE);
    expect(s.invocationRetentionDays).toBe(30);
  });

  it('prices an invocation on a provisioned instance at the provisioned duration price', () => {
    // 100 ms at 1,024 MB is 0.1 GB-s: $0.00000097222 at $0.0000097222 per GB-s, plus the request.
    expect(meter(100, 1024, false, DEFAULT_PRICE_TABLE, true).costPicoUsd).toBe(200_000 + 972_220);
    expect(meter(100, 1024, false, DEFAULT_PRICE_TABLE).costPicoUsd).toBe(200_000 + 1_666_670);
  });

  it('takes prices and the free tier from the environment and names a bad one', () => {
    const s = resolveSettings({}, { NIMBUS_PRICE_REQUESTS: '0.25', NIMBUS_FREE_TIER: 'on' });
    expect(priceTable(s.priceRequests, s.priceGbSecond, s.freeTier)).toMatchObject({
      requestPico: 250_000n,
      freeTier: true,
    });
    expect(() => resolveSettings({}, { NIMBUS_PRICE_GB_SECOND: 'cheap' })).toThrow(SettingsError);
    expect(() => resolveSettings({}, { NIMBUS_PRICE_GB_SECOND: 'cheap' })).toThrow(/NIMBUS_PRICE_GB_SECOND/);
    expect(() => resolveSettings({}, { NIMBUS_PRICE_REQUESTS: '0.0000001' })).toThrow(/at most 6 decimals/);
  });
});

describe('metering one invocation', () => {
  it('bills init with the duration, rounded up to a whole ms, at least 1', () => {
    expect(billedMs(2.01, null)).toBe(3);
    expect(billedMs(2.01, 150.5)).toBe(153);
    expect(billedMs(0, null)).toBe(1);
    expect(billedMs(3, null)).toBe(3);
  });

  it('prices requests and GB-seconds in picodollars, rounding the compute part half up', () => {
    // 3 ms at 128 MB: 0.000375 GB-s x 16,666,700 = 6,250.0125 -> 6,250; plus the request.
    expect(meter(3, 128, false, DEFAULT_PRICE_TABLE)).toEqual({
      requests: 1,
      gbSeconds: 0.000375,
      costPicoUsd: 206_250,
    });
    // 1 s at 1024 MB is one GB-second.
    expect(meter(1000, 1024, false, DEFAULT_PRICE_TABLE).costPicoUsd).toBe(200_000 + 16_666_700);
    // The largest invocation (900 s at 10,240 MB) stays exact.
    expect(meter(900_000, 10_240, false, DEFAULT_PRICE_TABLE).costPicoUsd).toBe(200_000 + 9000 * 16_666_700);
    expect(meter(0, 128, true, DEFAULT_PRICE_TABLE)).toEqual({ requests: 0, gbSeconds: 0, costPicoUsd: 0 });
  });

  it('formats picodollars as exact USD', () => {
    expect(formatUsd(206_250)).toBe('0.00000020625');
    expect(formatUsd(0)).toBe('0.00');
    expect(formatUsd(1_500_000_000_000n)).toBe('1.50');
    expect(formatUsd(2n ** 60n)).toBe('1152921.504606846976');
  });
});

describe('free tier credit', () => {
  const p = { ...DEFAULT_PRICE_TABLE, freeTier: true };
  const GBS = 1_024_000n;

  it('covers usage up to the allowance, less what the month used before the window', () => {
    const c = freeTierCredit({ requests: 0, mbMs: 0n }, { requests: 10, mbMs: 10n * GBS }, p);
    expect(c).toEqual({ requests: 10, mbMs: 10n * GBS, costPicoUsd: 10n * 200_000n + 10n * 16_666_700n });
    const part = freeTierCredit(
      { requests: 999_990, mbMs: 399_995n * GBS },
      { requests: 20, mbMs: 10n * GBS },
      p,
    );
    expect(part).toMatchObject({ requests: 10, mbMs: 5n * GBS });
    const none = freeTierCredit({ requests: 2_000_000, mbMs: 500_000n * GBS }, { requests: 5, mbMs: GBS }, p);
    expect(none).toEqual({ requests: 0, mbMs: 0n, costPicoUsd: 0n });
  });
});

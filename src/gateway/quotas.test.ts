// Quota counting across nodes without a store round trip per request: two KeyQuotas (two nodes) over one
// counter store never admit more than the limit together, and no admitted request goes uncounted, also when
// a settle fails or a node stops.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import { blockSize, KeyQuotas, periodEnd, periodOf } from './quotas.js';

/** The store's reserve/settle rules, in memory, with a switch to make it fail. */
class MemoryCounters {
  rows = new Map<string, { used: number; reserved: number }>();
  failing = false;
  calls = 0;
  private row(k: string) {
    let r = this.rows.get(k);
    if (!r) this.rows.set(k, (r = { used: 0, reserved: 0 }));
    return r;
  }
  async reserve(project: string, keyId: string, period: string, n: number, limit: number) {
    this.calls++;
    if (this.failing) throw new Error('store down');
    const r = this.row(`${project}/${keyId}/${period}`);
    const g = Math.max(0, Math.min(n, limit - r.used - r.reserved));
    r.reserved += g;
    return g;
  }
  async settle(project: string, keyId: string, period: string, admitted: number, released: number) {
    this.calls++;
    if (this.failing) throw new Error('store down');
    const r = this.row(`${project}/${keyId}/${period}`);
    r.used += admitted;
    r.reserved = Math.max(0, r.reserved - admitted - released);
  }
}

const day = (limit: number) => ({ limit, period: 'DAY' as const });

describe('periods', () => {
  it('are UTC days, ISO weeks from Monday and calendar months', () => {
    const t = Date.UTC(2026, 11, 3, 23, 59, 59); // a Thursday
    expect(periodOf('DAY', t)).toBe('DAY 2026-12-03');
    expect(periodOf('WEEK', t)).toBe('WEEK 2026-11-30');
    expect(periodOf('MONTH', t)).toBe('MONTH 2026-12');
    expect(periodOf('WEEK', Date.UTC(2026, 10, 29, 12))).toBe('WEEK 2026-11-23'); // a Sunday
    expect(periodEnd('DAY', t)).toBe(Date.UTC(2026, 11, 4));
    expect(periodEnd('WEEK', t)).toBe(Date.UTC(2026, 11, 7));
    expect(periodEnd('MONTH', t)).toBe(Date.UTC(2027, 0, 1));
  });

  it('reserve small quotas one at a time and large ones in blocks of at most 100', () => {
    expect(blockSize(3)).toBe(1);
    expect(blockSize(1000)).toBe(50);
    expect(blockSize(1_000_000)).toBe(100);
  });
});

describe('KeyQuotas', () => {
  const errors: unknown[] = [];
  const make = (store: MemoryCounters, clock: ManualClock) =>
    new KeyQuotas({ store, clock, onError: (e) => errors.push(e) });

  it('admits exactly the limit across two nodes, and settles every admitted request', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
    const store = new MemoryCounters();
    const a = make(store, clock);
    const b = make(store, clock);
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => (i % 2 ? a : b).take('p', 'K', day(200))),
    );
    const admitted = results.filter(Boolean).length;
    // Never past the limit; short of it by at most what the other node holds unused.
    expect(admitted).toBeLessThanOrEqual(200);
    expect(admitted).toBeGreaterThanOrEqual(200 - 2 * blockSize(200));
    // Idle for two flushes, a node gives its slots back; then the rest of the quota is there for the other.
    for (let i = 0; i < 2; i++) await Promise.all([a.flush(), b.flush()]);
    clock.advance(1001);
    let more = 0;
    while (await a.take('p', 'K', day(200))) more++;
    expect(admitted + more).toBe(200);
    await a.stop();
    await b.stop();
    expect(store.rows.get('p/K/DAY 2026-01-01')).toEqual({ used: 200, reserved: 0 });
  });

  it('asks the store about once per block, not once per request', async () => {
    const clock = new ManualClock();
    const store = new MemoryCounters();
    const q = make(store, clock);
    for (let i = 0; i < 1000; i++) expect(await q.take('p', 'K', day(10_000))).toBe(true);
    expect(store.calls).toBeLessThanOrEqual(1000 / blockSize(10_000) + 2);
    await q.stop();
  });

  it('keeps counts a failed settle could not write, and writes them at the next flush', async () => {
    const clock = new ManualClock();
    const store = new MemoryCounters();
    const q = make(store, clock);
    for (let i = 0; i < 3; i++) await q.take('p', 'K', day(10));
    store.failing = true;
    await expect(q.flush()).rejects.toThrow('store down');
    store.failing = false;
    await q.flush();
    expect(store.rows.get(`p/K/${periodOf('DAY', clock.now())}`)!.used).toBe(3);
    await q.stop();
    expect(store.rows.get(`p/K/${periodOf('DAY', clock.now())}`)).toEqual({ used: 3, reserved: 0 });
  });

  it('refuses once the period is used up and admits again in the next one', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 23));
    const store = new MemoryCounters();
    const q = make(store, clock);
    for (let i = 0; i < 2; i++) expect(await q.take('p', 'K', day(2))).toBe(true);
    expect(await q.take('p', 'K', day(2))).toBe(false);
    clock.advance(3600_000);
    expect(await q.take('p', 'K', day(2))).toBe(true);
    await q.stop();
    expect(store.rows.get('p/K/DAY 2026-01-01')).toEqual({ used: 2, reserved: 0 });
    expect(store.rows.get('p/K/DAY 2026-01-02')).toEqual({ used: 1, reserved: 0 });
  });

  it('fails a request when the store cannot reserve and nothing is held locally', async () => {
    const store = new MemoryCounters();
    store.failing = true;
    const q = make(store, new ManualClock());
    await expect(q.take('p', 'K', day(5))).rejects.toThrow('store down');
  });
});

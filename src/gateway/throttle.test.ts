import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import { Throttles } from './throttle.js';

describe('Throttles', () => {
  it('admits a burst, then refills at the rate', () => {
    const clock = new ManualClock();
    const t = new Throttles(clock);
    const route = [{ key: 'r', config: { rate: 2, burst: 3 } }];
    expect([t.admit(route), t.admit(route), t.admit(route)]).toEqual([undefined, undefined, undefined]);
    expect(t.admit(route)).toBe(1);
    clock.advance(499);
    expect(t.admit(route)).toBe(1);
    clock.advance(1);
    expect(t.admit(route)).toBeUndefined();
    expect(t.admit(route)).toBe(1);
    // Never more than the burst, however long it was quiet.
    clock.advance(60_000);
    for (let i = 0; i < 3; i++) expect(t.admit(route)).toBeUndefined();
    expect(t.admit(route)).toBe(1);
  });

  it('says how many whole seconds until a slow bucket has a token', () => {
    const t = new Throttles(new ManualClock());
    const slow = [{ key: 's', config: { rate: 0.1, burst: 1 } }];
    expect(t.admit(slow)).toBeUndefined();
    expect(t.admit(slow)).toBe(10);
  });

  it('spends no route token when the service bucket refuses', () => {
    const t = new Throttles(new ManualClock());
    const service = { key: 'svc', config: { rate: 0, burst: 1 } };
    const a = { key: 'a', config: { rate: 0, burst: 1 } };
    const b = { key: 'b', config: { rate: 0, burst: 1 } };
    expect(t.admit([a, service])).toBeUndefined();
    expect(t.admit([b, service])).toBe(1);
    // b's own token is still there once the service allows again (new limits make a new bucket).
    expect(t.admit([b, { key: 'svc', config: { rate: 0, burst: 2 } }])).toBeUndefined();
  });

  it('refuses everything with a burst of 0', () => {
    const t = new Throttles(new ManualClock());
    expect(t.admit([{ key: 'z', config: { rate: 10, burst: 0 } }])).toBe(1);
  });
});

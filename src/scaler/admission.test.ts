import { describe, expect, it } from 'vitest';
import { admit, fixedKeepAlive } from './admission.js';

describe('admission', () => {
  it('admits below both limits', () => {
    expect(admit({ functionInFlight: 1, reserved: 2, globalInFlight: 5, globalLimit: 10 })).toEqual({
      ok: true,
    });
  });
  it('throttles at the reserved concurrency before the global one', () => {
    expect(admit({ functionInFlight: 2, reserved: 2, globalInFlight: 10, globalLimit: 10 })).toEqual({
      ok: false,
      reason: 'ReservedFunctionConcurrentInvocationLimitExceeded',
    });
  });
  it('throttles at the global limit when no reservation applies', () => {
    expect(admit({ functionInFlight: 0, reserved: undefined, globalInFlight: 3, globalLimit: 3 })).toEqual({
      ok: false,
      reason: 'ConcurrentInvocationLimitExceeded',
    });
  });
  it('reserved 0 disables a function', () => {
    expect(admit({ functionInFlight: 0, reserved: 0, globalInFlight: 0, globalLimit: 3 }).ok).toBe(false);
  });
});

describe('fixed keep-alive', () => {
  it('stops exactly when the window has passed', () => {
    const p = fixedKeepAlive(1000);
    expect(p.shouldStop(0, 999)).toBe(false);
    expect(p.shouldStop(0, 1000)).toBe(true);
  });
});

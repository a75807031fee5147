import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import { InvocationRetention } from './retention.js';

const HOUR = 3_600_000;

/** An invocation log holding records by start time: prune deletes the oldest, at most `limit`. */
function fakeLog(starts: number[]) {
  const calls: { before: number; limit: number }[] = [];
  return {
    starts,
    calls,
    prune: async (before: number, limit: number) => {
      calls.push({ before, limit });
      starts.sort((a, b) => a - b);
      let n = 0;
      while (n < limit && starts.length > 0 && starts[0]! < before) {
        starts.shift();
        n++;
      }
      return n;
    },
  };
}

describe('invocation retention', () => {
  it('sweeps at start and hourly on the clock, in batches until a short one', async () => {
    const clock = new ManualClock(100 * HOUR);
    const log = fakeLog([...Array.from({ length: 25 }, (_, i) => i), 99 * HOUR, 100 * HOUR + 1]);
    const r = new InvocationRetention({ log, clock, retentionMs: 2 * HOUR, batch: 10 });
    await r.start();
    await r.idle();
    expect(log.calls).toEqual([
      { before: 98 * HOUR, limit: 10 },
      { before: 98 * HOUR, limit: 10 },
      { before: 98 * HOUR, limit: 10 },
    ]);
    expect(log.starts).toEqual([99 * HOUR, 100 * HOUR + 1]);

    clock.advance(HOUR);
    await r.idle();
    expect(log.calls.at(-1)).toEqual({ before: 99 * HOUR, limit: 10 });
    expect(log.starts).toEqual([99 * HOUR, 100 * HOUR + 1]);
    clock.advance(HOUR + 1);
    await r.idle();
    expect(log.starts).toEqual([100 * HOUR + 1]);
    await r.stop();
    clock.advance(10 * HOUR);
    await r.idle();
    expect(log.starts).toEqual([100 * HOUR + 1]);
  });

  it('runs again with the time then when a sweep falls due while one runs, and survives a failing one', async () => {
    const clock = new ManualClock(10 * HOUR);
    const errors: unknown[] = [];
    let fail = true;
    const log = fakeLog([HOUR, 5 * HOUR]);
    const prune = log.prune;
    log.prune = async (before, limit) => {
      if (fail) {
        fail = false;
        throw new Error('database busy');
      }
      return prune(before, limit);
    };
    const r = new InvocationRetention({
      log,
      clock,
      retentionMs: 6 * HOUR,
      onError: (err) => errors.push(err),
    });
    await r.start();
    // Due while the first (failing) sweep is still in flight: one more sweep runs after it, at 14 h.
    clock.advance(4 * HOUR);
    await r.idle();
    expect(errors).toHaveLength(1);
    expect(log.calls.at(-1)).toEqual({ before: 8 * HOUR, limit: 1000 });
    expect(log.starts).toEqual([]);
    await r.stop();
  });
});

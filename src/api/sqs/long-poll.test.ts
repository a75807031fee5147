// Long polls on a ManualClock: a send wakes a waiting receive at once (no poll interval passes), the store is
// looked at again only when woken, when something becomes visible or after pollMs, and the wait ends empty.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../clock/clock.js';
import { QueueWaiters } from './long-poll.js';

const settle = () => new Promise((r) => setImmediate(r));

describe('QueueWaiters', () => {
  it('answers a waiting receive when the queue is notified, without waiting for a poll', async () => {
    const clock = new ManualClock();
    const w = new QueueWaiters(clock);
    let messages: string[] = [];
    let looks = 0;
    const polling = w.poll(
      'p',
      'q',
      20_000,
      1_000_000,
      async () => (looks++, messages),
      async () => undefined,
    );
    await settle();
    expect(looks).toBe(1);
    messages = ['hi'];
    w.notify('p', 'other');
    await settle();
    expect(looks).toBe(1);
    w.notify('p', 'q');
    expect(await polling).toEqual(['hi']);
    expect(looks).toBe(2);
  });

  it('looks again when a hidden message becomes visible, and ends empty at the deadline', async () => {
    const clock = new ManualClock();
    const w = new QueueWaiters(clock);
    let looks = 0;
    const visibleAt = clock.now() + 3000;
    const polling = w.poll(
      'p',
      'q',
      10_000,
      1_000_000,
      async () => (looks++, [] as string[]),
      async () => (clock.now() < visibleAt ? visibleAt : undefined),
    );
    await settle();
    clock.advance(2999);
    await settle();
    expect(looks).toBe(1);
    clock.advance(1);
    await settle();
    await settle();
    expect(looks).toBe(2);
    clock.advance(7000);
    expect(await polling).toEqual([]);
    expect(looks).toBe(3);
  });

  it('keeps a wake that arrives between a look and the sleep', async () => {
    const clock = new ManualClock();
    const w = new QueueWaiters(clock);
    let looks = 0;
    const polling = w.poll(
      'p',
      'q',
      20_000,
      1_000_000,
      async () => {
        looks++;
        if (looks === 1) w.notify('p', 'q');
        return looks === 2 ? ['late'] : [];
      },
      async () => undefined,
    );
    expect(await polling).toEqual(['late']);
  });

  it('stops, taking nothing, when the client goes away', async () => {
    const clock = new ManualClock();
    const w = new QueueWaiters(clock);
    const gone = new AbortController();
    let looks = 0;
    const polling = w.poll(
      'p',
      'q',
      20_000,
      1_000_000,
      async () => (looks++, [] as string[]),
      async () => undefined,
      gone.signal,
    );
    await settle();
    gone.abort();
    expect(await polling).toEqual([]);
    expect(looks).toBe(1);
    w.notify('p', 'q');
    expect(looks).toBe(1);
  });
});

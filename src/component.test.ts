import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock/clock.js';
import { component, ComponentStartError, Lifecycle } from './component.js';

describe('Lifecycle', () => {
  it('starts in order and stops in reverse', async () => {
    const seen: string[] = [];
    const c = (n: string) =>
      component(
        n,
        () => seen.push(`start ${n}`),
        () => seen.push(`stop ${n}`),
      );
    const l = new Lifecycle();
    await l.startAll([c('a'), c('b'), c('c')]);
    await l.stop();
    expect(seen).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  });

  it('undoes what started when a later start fails, and names the failed component', async () => {
    const seen: string[] = [];
    const l = new Lifecycle();
    await l.start(
      component(
        'a',
        () => seen.push('start a'),
        () => seen.push('stop a'),
      ),
    );
    const err = await l
      .start(
        component(
          'b',
          () => {
            throw new Error('port busy');
          },
          () => seen.push('stop b'),
        ),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ComponentStartError);
    expect(err).toMatchObject({ component: 'b', message: 'port busy' });
    expect(seen).toEqual(['start a', 'stop a']);
    expect(l.names).toEqual([]);
  });

  it('keeps stopping the others when one stop throws, and reports it', async () => {
    const seen: string[] = [];
    const errors: string[] = [];
    const l = new Lifecycle((err, name) => errors.push(`${name}: ${String(err)}`));
    await l.start(
      component(
        'a',
        () => {},
        () => seen.push('stop a'),
      ),
    );
    await l.start(
      component(
        'b',
        () => {},
        () => {
          throw new Error('stuck');
        },
      ),
    );
    await Promise.all([l.stop(), l.stop()]);
    expect(seen).toEqual(['stop a']);
    expect(errors).toEqual(['b: Error: stuck']);
  });
});

describe('ManualClock', () => {
  it('runs due timers in time order as it advances, and never early', () => {
    const clock = new ManualClock(1000);
    const seen: string[] = [];
    clock.setTimeout(() => seen.push(`b@${clock.now()}`), 200);
    clock.setTimeout(() => seen.push(`a@${clock.now()}`), 100);
    const c = clock.setTimeout(() => seen.push('cancelled'), 150);
    c.cancel();
    clock.advance(99);
    expect(seen).toEqual([]);
    clock.advance(150);
    expect(seen).toEqual(['a@1100', 'b@1200']);
    expect(clock.now()).toBe(1249);
  });

  it('runs a timer set from inside a timer if it falls due in the same advance', () => {
    const clock = new ManualClock(0);
    const seen: number[] = [];
    const tick = () => {
      seen.push(clock.now());
      clock.setTimeout(tick, 10);
    };
    clock.setTimeout(tick, 10);
    clock.advance(35);
    expect(seen).toEqual([10, 20, 30]);
  });

  it('runs an already-due timer on the next turn without an advance', async () => {
    const clock = new ManualClock(0);
    let ran = false;
    clock.setTimeout(() => (ran = true), 0);
    expect(ran).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(ran).toBe(true);
  });
});

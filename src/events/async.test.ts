// The async event source against a real (in-memory SQLite) queue and a scripted invoker, in store time.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import type { InvokeOutcome, InvokeRequest, Invoker } from '../invoker/types.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/index.js';
import { AsyncEventSource } from './async.js';

type Script = (req: InvokeRequest) => Partial<InvokeOutcome> | Promise<Partial<InvokeOutcome>>;

class ScriptedInvoker implements Invoker {
  calls: InvokeRequest[] = [];
  running = 0;
  maxRunning = 0;
  constructor(public script: Script = () => ({})) {}
  async invoke(req: InvokeRequest): Promise<InvokeOutcome> {
    this.calls.push(req);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      const over = await this.script(req);
      return {
        requestId: req.requestId ?? 'x',
        project: req.fn.project,
        functionName: req.fn.name,
        version: '1',
        status: 'ok',
        durationMs: 1,
        cold: false,
        logs: '',
        ...over,
      };
    } finally {
      this.running--;
    }
  }
}

describe('AsyncEventSource', () => {
  let clock: ManualClock;
  let store: SqliteStore;
  let invoker: ScriptedInvoker;
  let source: AsyncEventSource;
  const errors: string[] = [];
  const make = (over: Partial<ConstructorParameters<typeof AsyncEventSource>[0]> = {}) =>
    new AsyncEventSource({
      queue: store.events,
      invoker,
      nodeId: 'node-a',
      clock,
      onError: (err) => errors.push(String(err)),
      ...over,
    });
  const ref = { project: 'default', name: 'worker' };

  beforeEach(() => {
    clock = new ManualClock();
    store = openSqliteStore({ path: ':memory:', clock });
    invoker = new ScriptedInvoker();
    source = make();
    errors.length = 0;
  });
  afterEach(async () => {
    await source.stop();
    await store.close();
  });

  it('runs an accepted event once and removes it from the queue', async () => {
    await source.start();
    const id = await source.enqueue(ref, '{"n":1}', 'req-1');
    await source.idle();
    expect(invoker.calls).toEqual([
      { fn: ref, event: { n: 1 }, trigger: 'event', requestId: 'req-1', attempt: 1 },
    ]);
    expect(await store.events.get(id)).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('retries a throttled event when its backoff is over, as attempt 2 of the same request id', async () => {
    invoker.script = (req) =>
      req.attempt === 1 ? { status: 'throttled', throttleReason: 'ConcurrentInvocationLimitExceeded' } : {};
    await source.start();
    await source.enqueue(ref, '{}', 'ev');
    await source.idle();
    expect(invoker.calls).toHaveLength(1);
    const waiting = await store.events.get('ev');
    expect(waiting).toMatchObject({
      state: 'pending',
      lastError: 'throttled: ConcurrentInvocationLimitExceeded',
    });
    clock.advance(waiting!.nextAttemptAt - clock.now());
    await source.idle();
    expect(invoker.calls.map((c) => [c.requestId, c.attempt])).toEqual([
      ['ev', 1],
      ['ev', 2],
    ]);
    expect(await store.events.get('ev')).toBeUndefined();
  });

  it('keeps an event whose function is gone as dead, with the reason', async () => {
    invoker.script = () => ({
      status: 'not_found',
      error: { errorType: 'ResourceNotFoundException', errorMessage: 'Function not found: x', trace: [] },
    });
    await source.start();
    await source.enqueue(ref, '{}', 'lost');
    await source.idle();
    expect(await store.events.get('lost')).toMatchObject({
      state: 'dead',
      lastError: 'Function not found: x',
    });
  });

  it('runs at most `concurrency` events at once and all of them in the end', async () => {
    source = make({ concurrency: 3 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    invoker.script = async () => {
      await gate;
      return {};
    };
    await source.start();
    for (let i = 0; i < 10; i++) await source.enqueue(ref, String(i), `e${i}`);
    await new Promise((r) => setTimeout(r, 20));
    expect(invoker.running).toBe(3);
    release();
    await source.idle();
    expect(invoker.calls).toHaveLength(10);
    expect(invoker.maxRunning).toBe(3);
    expect(await store.events.list({})).toEqual([]);
  });

  it("takes over its own leases at start (a restart after a crash) but waits out another node's", async () => {
    await store.events.enqueue({
      id: 'mine',
      project: 'default',
      functionName: 'worker',
      source: 'invoke',
      payload: '{}',
    });
    await store.events.enqueue({
      id: 'theirs',
      project: 'default',
      functionName: 'worker',
      source: 'invoke',
      payload: '{}',
    });
    await store.events.claim({ owner: 'node-a', leaseMs: 60_000, limit: 1 });
    await store.events.claim({ owner: 'node-b', leaseMs: 60_000, limit: 1 });
    await source.start();
    await source.idle();
    expect(invoker.calls.map((c) => [c.requestId, c.attempt])).toEqual([['mine', 2]]);
    clock.advance(60_000);
    await source.idle();
    expect(invoker.calls.map((c) => [c.requestId, c.attempt])).toEqual([
      ['mine', 2],
      ['theirs', 2],
    ]);
  });

  it('renews the lease of a long event so no other node takes it while it runs', async () => {
    source = make({ leaseMs: 3000 });
    let release!: () => void;
    invoker.script = () => new Promise((r) => (release = () => r({})));
    await source.start();
    await source.enqueue(ref, '{}', 'long');
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await store.events.claim({ owner: 'node-b', leaseMs: 1000, limit: 1 })).toEqual([]);
    release();
    await source.idle();
    expect(await store.events.get('long')).toBeUndefined();
    expect(errors).toEqual([]);
  });

  it('stops taking events but lets running ones finish and stores their completion', async () => {
    let release!: () => void;
    invoker.script = () => new Promise((r) => (release = () => r({})));
    source = make({ concurrency: 1 });
    await source.start();
    await source.enqueue(ref, '{}', 'first');
    await source.enqueue(ref, '{}', 'second');
    await new Promise((r) => setTimeout(r, 20));
    const stopped = source.stop();
    release();
    await stopped;
    expect(await store.events.get('first')).toBeUndefined();
    expect(await store.events.get('second')).toMatchObject({ state: 'pending', attempts: 0 });
    expect(invoker.calls).toHaveLength(1);
  });
});

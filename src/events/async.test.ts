// The async event source against a real (in-memory SQLite) queue and a scripted invoker, in store time.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import type { InvokeOutcome, InvokeRequest, Invoker } from '../invoker/types.js';
import type { AsyncConfig } from '../config/manifest.js';
import { fn } from '../store/conformance/harness.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/index.js';
import type { FunctionVersion } from '../store/types.js';
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
      {
        fn: ref,
        event: { n: 1 },
        trigger: 'event',
        requestId: 'req-1',
        attempt: 1,
        traceId: expect.any(String),
      },
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

  it('leaves the events of a function without room in the queue, uncounted, and runs others meanwhile', async () => {
    let room = 0;
    source = make({ headroom: (r) => (r.name === 'worker' ? room : 1) });
    await source.start();
    await source.enqueue(ref, '{}', 'blocked');
    await source.enqueue({ project: 'default', name: 'other' }, '{}', 'free');
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(invoker.calls.map((c) => c.requestId)).toEqual(['free']);
    expect(await store.events.get('blocked')).toMatchObject({
      state: 'pending',
      attempts: 0,
      leaseOwner: null,
    });
    room = 1;
    clock.advance(50);
    await source.idle();
    expect(invoker.calls.map((c) => [c.requestId, c.attempt])).toEqual([
      ['free', 1],
      ['blocked', 1],
    ]);
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

  it('hands back, uncounted, events it claimed while stopping instead of running them', async () => {
    await store.events.enqueue({
      id: 'late',
      project: 'default',
      functionName: 'worker',
      source: 'invoke',
      payload: '{}',
    });
    // A claim that is still on its way back from the store when stop() is called.
    let answer!: () => void;
    const gate = new Promise<void>((r) => (answer = r));
    const queue = Object.create(store.events) as typeof store.events;
    queue.claim = async (o) => {
      const claimed = await store.events.claim(o);
      await gate;
      return claimed;
    };
    source = make({ queue });
    await source.start();
    const stopping = source.stop();
    answer();
    await stopping;
    expect(invoker.calls).toEqual([]);
    expect(await store.events.get('late')).toMatchObject({ state: 'pending', attempts: 0, leaseOwner: null });
  });

  it('keeps renewing the leases of events still running while it stops', async () => {
    source = make({ leaseMs: 3000 });
    let release!: () => void;
    invoker.script = () => new Promise((r) => (release = () => r({})));
    await source.start();
    await source.enqueue(ref, '{}', 'slow');
    await new Promise((r) => setTimeout(r, 20));
    const stopping = source.stop();
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await store.events.claim({ owner: 'node-b', leaseMs: 1000, limit: 1 })).toEqual([]);
    release();
    await stopping;
    expect(await store.events.get('slow')).toBeUndefined();
  });

  it('replays an event that died of old age as a fresh one', async () => {
    await store.events.enqueue({
      id: 'old',
      project: 'default',
      functionName: 'worker',
      source: 'invoke',
      payload: '{}',
      enqueuedAt: clock.now() - 7 * 3_600_000,
    });
    await source.start();
    await source.idle();
    expect(await store.events.get('old')).toMatchObject({ state: 'dead', lastError: 'EventAgeExceeded' });
    expect(invoker.calls).toEqual([]);
    expect(await source.replay('old', 'default')).toBe('replayed');
    await source.idle();
    expect(invoker.calls.map((c) => c.requestId)).toEqual(['old']);
    expect(await store.events.get('old')).toBeUndefined();
  });

  it('passes a trace on and stops an event chain the 17th time it passes through one function', async () => {
    await source.start();
    await source.enqueue(ref, '{}', 'first');
    await source.idle();
    const header = invoker.calls[0]?.traceId ?? '';
    expect(header).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0;Lineage=[0-9a-f]{8}:1$/);
    // Fifteen more hops through the same function run; the seventeenth does not.
    let trace = header;
    for (let hop = 2; hop <= 16; hop++) {
      await source.enqueue(ref, '{}', `hop-${hop}`, trace);
      await source.idle();
      trace = invoker.calls.at(-1)!.traceId!;
      expect(trace).toMatch(new RegExp(`Lineage=[0-9a-f]{8}:${hop}$`));
    }
    await source.enqueue(ref, '{}', 'hop-17', trace);
    await source.idle();
    expect(invoker.calls).toHaveLength(16);
    expect(await store.events.get('hop-17')).toMatchObject({
      state: 'dead',
      lastError: 'RecursiveInvocationLoop',
    });
    expect(errors.some((e) => /stopped a recursive loop: event hop-17/.test(e))).toBe(true);
    // The same root through another function is not a loop of that one.
    await source.enqueue({ project: 'default', name: 'other' }, '{}', 'elsewhere', trace);
    await source.idle();
    expect(invoker.calls.at(-1)?.fn.name).toBe('other');
  });

  it('deletes failed events past their retention, at start and every hour', async () => {
    source = make({ deadRetentionMs: 2 * 3_600_000 });
    invoker.script = () => ({ status: 'not_found' });
    await source.start();
    await source.enqueue(ref, '{}', 'gone');
    await source.idle();
    expect((await store.events.get('gone'))?.state).toBe('dead');
    clock.advance(2 * 3_600_000);
    expect(await store.events.get('gone')).toBeDefined();
    clock.advance(3_600_000);
    await new Promise((r) => setTimeout(r, 10));
    expect(await store.events.get('gone')).toBeUndefined();
  });

  it('waits for a function deployed through another node instead of calling the event dead', async () => {
    let loaded = false;
    source = make({
      functionExists: async () => true,
      refreshFunctions: async () => {
        loaded = true;
      },
    });
    invoker.script = () => (loaded ? {} : { status: 'not_found' });
    await source.start();
    await source.enqueue(ref, '{}', 'elsewhere');
    await source.idle();
    expect(invoker.calls.map((c) => c.attempt)).toEqual([1, 1]);
    expect(await store.events.get('elsewhere')).toBeUndefined();
  });

  describe('retries and destinations', () => {
    const fail = {
      status: 'error' as const,
      error: { errorType: 'Error', errorMessage: 'boom', trace: ['at x'] },
    };
    const version = (name: string, a?: AsyncConfig): FunctionVersion => ({
      project: 'default',
      name,
      service: 'svc',
      version: 1,
      config: { ...fn(name), ...(a ? { async: a } : {}) },
      codeSha256: '0'.repeat(64),
      codeSize: 1,
      deployedAt: 0,
    });
    const withPolicy = (a: AsyncConfig) => {
      source = make({ retryBaseMs: 1000, random: () => 0 });
      source.sync([version('worker', a), version('audit'), version('failed')]);
    };
    const calls = (name: string) => invoker.calls.filter((c) => c.fn.name === name);
    const runFor = async (ms: number) => {
      clock.advance(ms);
      await source.idle();
    };

    it('retries a function error after the base delay, then twice that, and gives up to onFailure', async () => {
      withPolicy({ onFailure: { function: 'failed' } });
      invoker.script = (req) => (req.fn.name === 'worker' ? fail : {});
      await source.start();
      await source.enqueue(ref, '{"order":7}', 'ev');
      await source.idle();
      expect(calls('worker').map((c) => c.attempt)).toEqual([1]);
      expect(await store.events.get('ev')).toMatchObject({ failures: 1, lastError: 'Error: boom' });
      await runFor(999);
      expect(calls('worker')).toHaveLength(1);
      await runFor(1);
      expect(calls('worker').map((c) => c.attempt)).toEqual([1, 2]);
      await runFor(1999);
      expect(calls('worker')).toHaveLength(2);
      await runFor(1);
      expect(calls('worker').map((c) => [c.requestId, c.attempt])).toEqual([
        ['ev', 1],
        ['ev', 2],
        ['ev', 3],
      ]);
      expect(await store.events.get('ev')).toMatchObject({
        state: 'dead',
        lastError: 'RetriesExhausted: Error: boom',
      });
      const [record] = calls('failed').map((c) => c.event);
      expect(record).toEqual({
        version: '1.0',
        timestamp: new Date(clock.now()).toISOString(),
        requestContext: {
          requestId: 'ev',
          functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:worker:$LATEST',
          condition: 'RetriesExhausted',
          approximateInvokeCount: 3,
        },
        requestPayload: { order: 7 },
        responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
        responsePayload: { errorType: 'Error', errorMessage: 'boom', trace: ['at x'] },
      });
    });

    it('sends a success to onSuccess with the response, once', async () => {
      withPolicy({ onSuccess: { function: 'audit' } });
      invoker.script = (req) => (req.fn.name === 'worker' ? { payload: '{"ok":true}' } : {});
      await source.start();
      await source.enqueue(ref, '{"n":1}', 'good');
      await source.idle();
      expect(calls('audit').map((c) => c.event)).toEqual([
        expect.objectContaining({
          requestContext: expect.objectContaining({ condition: 'Success', approximateInvokeCount: 1 }),
          requestPayload: { n: 1 },
          responseContext: { statusCode: 200, executedVersion: '$LATEST' },
          responsePayload: { ok: true },
        }),
      ]);
      expect(await store.events.list({})).toEqual([]);
    });

    it('does not retry with maximumRetryAttempts 0 and keeps the event dead without a destination', async () => {
      withPolicy({ maximumRetryAttempts: 0 });
      invoker.script = () => fail;
      await source.start();
      await source.enqueue(ref, '{}', 'once');
      await source.idle();
      await runFor(10 * 60_000);
      expect(calls('worker')).toHaveLength(1);
      expect(await store.events.list({ state: 'dead' })).toMatchObject([{ id: 'once', attempts: 1 }]);
    });

    it('never runs an event older than maximumEventAgeInSeconds, and says so to onFailure', async () => {
      withPolicy({ maximumEventAgeInSeconds: 60, onFailure: { function: 'failed' } });
      await store.events.enqueue({
        id: 'stale',
        project: 'default',
        functionName: 'worker',
        source: 'invoke',
        payload: '{"late":true}',
        enqueuedAt: clock.now() - 61_000,
      });
      await source.start();
      await source.idle();
      expect(calls('worker')).toEqual([]);
      const record = calls('failed')[0]?.event as Record<string, unknown>;
      expect(record['requestContext']).toMatchObject({
        condition: 'EventAgeExceeded',
        approximateInvokeCount: 0,
      });
      expect(record['requestPayload']).toEqual({ late: true });
      expect(record).not.toHaveProperty('responsePayload');
      expect(await store.events.get('stale')).toMatchObject({ state: 'dead', lastError: 'EventAgeExceeded' });
    });

    it('gives up when the next retry would fall past the event age, with the last response', async () => {
      source = make({ retryBaseMs: 45_000, random: () => 0 });
      source.sync([
        version('worker', { maximumEventAgeInSeconds: 60, onFailure: { function: 'failed' } }),
        version('failed'),
      ]);
      invoker.script = (req) => (req.fn.name === 'worker' ? fail : {});
      await source.start();
      await source.enqueue(ref, '{}', 'ev');
      await source.idle();
      await runFor(45_000);
      // Attempt 2 failed at 45 s; the next would be at 135 s, past the 60 s age.
      expect(calls('worker')).toHaveLength(2);
      const record = calls('failed')[0]?.event as Record<string, unknown>;
      expect(record['requestContext']).toMatchObject({
        condition: 'EventAgeExceeded',
        approximateInvokeCount: 2,
      });
      expect(record['responsePayload']).toMatchObject({ errorMessage: 'boom' });
    });

    it('does not count throttles as failures', async () => {
      withPolicy({ maximumRetryAttempts: 0 });
      let n = 0;
      invoker.script = () =>
        n++ < 3 ? { status: 'throttled', throttleReason: 'ConcurrentInvocationLimitExceeded' } : {};
      await source.start();
      await source.enqueue(ref, '{}', 'busy');
      await source.idle();
      for (let i = 0; i < 4; i++) await runFor(30_000);
      expect(calls('worker').map((c) => c.attempt)).toEqual([1, 2, 3, 4]);
      expect(await store.events.get('busy')).toBeUndefined();
    });

    it('replays a dead event with its retries anew, only in its own project', async () => {
      withPolicy({ maximumRetryAttempts: 0 });
      let broken = true;
      invoker.script = () => (broken ? fail : {});
      await source.start();
      await source.enqueue(ref, '{}', 'dead-one');
      await source.idle();
      expect((await store.events.get('dead-one'))?.state).toBe('dead');
      expect(await source.replay('dead-one', 'other-project')).toBe('not_found');
      expect(await source.replay('nope', 'default')).toBe('not_found');
      broken = false;
      expect(await source.replay('dead-one', 'default')).toBe('replayed');
      await source.idle();
      expect(calls('worker').map((c) => c.attempt)).toEqual([1, 2]);
      expect(await store.events.get('dead-one')).toBeUndefined();
      expect(await source.replay('dead-one', 'default')).toBe('not_found');
    });
  });
});

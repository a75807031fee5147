// Queue triggers against a real (in-memory SQLite) queue store and a scripted invoker, in store time: the
// fault paths the end-to-end tests cannot time exactly (throttles, malformed responses, loops, no headroom,
// batching windows).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import type { QueueConfig, QueueTrigger } from '../config/manifest.js';
import type { InvokeOutcome, InvokeRequest } from '../invoker/types.js';
import { codeOf, fn } from '../store/conformance/harness.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/index.js';
import { QueueSource } from './queues.js';
import { continueTrace } from './trace.js';

type Script = (req: InvokeRequest) => Partial<InvokeOutcome>;

const queue = (name: string, over: Partial<QueueConfig> = {}): QueueConfig => ({
  name,
  fifo: false,
  contentBasedDeduplication: false,
  visibilityTimeout: 30,
  messageRetentionPeriod: 345_600,
  delaySeconds: 0,
  maximumMessageSize: 262_144,
  ...over,
});

describe('QueueSource', () => {
  let clock: ManualClock;
  let store: SqliteStore;
  let source: QueueSource;
  let calls: InvokeRequest[];
  let script: Script;
  let room: number;
  const errors: string[] = [];
  const records = (req: InvokeRequest) =>
    (req.event as { Records: { messageId: string; body: string }[] }).Records;

  const invoker = {
    invoke: async (req: InvokeRequest): Promise<InvokeOutcome> => {
      calls.push(req);
      return {
        requestId: req.requestId ?? 'x',
        project: req.fn.project,
        functionName: req.fn.name,
        version: '1',
        status: 'ok',
        durationMs: 1,
        cold: false,
        logs: '',
        ...script(req),
      };
    },
    headroom: () => room,
  };

  /** Lets the poller's promises run (store calls are synchronous underneath). */
  const settle = async () => {
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  };

  async function deploy(
    trigger: Partial<QueueTrigger> = {},
    queues = [queue('orders', { deadLetterQueue: 'dlq', maxReceiveCount: 3 }), queue('dlq')],
  ) {
    await store.functions.deploy({
      project: 'default',
      service: 'svc',
      functions: [
        fn('worker', {
          queueTriggers: [{ queue: 'orders', batchSize: 10, maximumBatchingWindow: 0, ...trigger }],
        }),
      ],
      queues,
      code: codeOf('w'),
    });
    source.sync(await store.functions.listFunctions());
  }

  beforeEach(async () => {
    clock = new ManualClock();
    store = openSqliteStore({ path: ':memory:', clock });
    calls = [];
    script = () => ({});
    room = 100;
    errors.length = 0;
    source = new QueueSource({
      queues: store.queues,
      invoker,
      clock,
      onError: (err) => errors.push(String(err)),
    });
  });
  afterEach(async () => {
    await source.stop();
    await store.close();
  });

  it('deletes a successful batch and invokes once for it', async () => {
    await deploy();
    await source.start();
    await store.queues.send('default', 'orders', [{ body: 'a' }, { body: 'b' }]);
    source.notify('default', 'orders');
    await settle();
    await source.idle();
    expect(calls).toHaveLength(1);
    expect(records(calls[0]!).map((r) => r.body)).toEqual(['a', 'b']);
    expect(calls[0]!.trigger).toBe('queue');
    expect((await store.queues.stats('default')).find((s) => s.queue === 'orders')).toMatchObject({
      visible: 0,
      inFlight: 0,
    });
  });

  it('retries the whole batch after the visibility timeout when batchItemFailures is malformed', async () => {
    await deploy();
    script = () => ({ payload: JSON.stringify({ batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] }) });
    await source.start();
    await store.queues.send('default', 'orders', [{ body: 'a' }]);
    source.notify('default', 'orders');
    await settle();
    await source.idle();
    expect(errors.some((e) => /invalid batchItemFailures/.test(e))).toBe(true);
    expect(calls).toHaveLength(1);
    clock.advance(29_000);
    await settle();
    expect(calls).toHaveLength(1);
    clock.advance(1_000);
    await settle();
    await source.idle();
    expect(calls).toHaveLength(2);
    expect((await store.queues.peek('default', 'orders'))[0]?.receiveCount).toBe(2);
  });

  it('hands a throttled batch back after a second, not after the visibility timeout', async () => {
    await deploy();
    let n = 0;
    script = () =>
      n++ === 0 ? { status: 'throttled', throttleReason: 'ConcurrentInvocationLimitExceeded' } : {};
    await source.start();
    await store.queues.send('default', 'orders', [{ body: 'a' }]);
    source.notify('default', 'orders');
    await settle();
    await source.idle();
    expect(calls).toHaveLength(1);
    clock.advance(1_000);
    await settle();
    await source.idle();
    expect(calls).toHaveLength(2);
    expect(await store.queues.peek('default', 'orders')).toEqual([]);
  });

  it('receives nothing while the function has no headroom, and runs once a slot frees', async () => {
    await deploy();
    room = 0;
    await source.start();
    await store.queues.send('default', 'orders', [{ body: 'a' }]);
    source.notify('default', 'orders');
    await settle();
    clock.advance(500);
    await settle();
    expect(calls).toHaveLength(0);
    expect((await store.queues.peek('default', 'orders'))[0]?.receiveCount).toBe(0);
    room = 1;
    clock.advance(100);
    await settle();
    await source.idle();
    expect(calls).toHaveLength(1);
  });

  it('stops a recursive loop: the message goes to the dead-letter queue, not to the function', async () => {
    await deploy();
    let trace: string | null = null;
    for (let i = 0; i < 16; i++) trace = continueTrace(trace, 'default/worker').header;
    await source.start();
    await store.queues.send('default', 'orders', [{ body: 'looping', trace }, { body: 'fine' }]);
    source.notify('default', 'orders');
    await settle();
    await source.idle();
    expect(calls.flatMap((c) => records(c).map((r) => r.body))).toEqual(['fine']);
    expect(errors.some((e) => /stopped a recursive loop.*moved to dlq/.test(e))).toBe(true);
    expect((await store.queues.peek('default', 'dlq')).map((m) => m.body)).toEqual(['looping']);
    expect(await store.queues.peek('default', 'orders')).toEqual([]);
  });

  it('gathers messages for the batching window before invoking', async () => {
    await deploy({ batchSize: 3, maximumBatchingWindow: 5 });
    await source.start();
    await store.queues.send('default', 'orders', [{ body: 'a' }]);
    source.notify('default', 'orders');
    await settle();
    clock.advance(1_000);
    await store.queues.send('default', 'orders', [{ body: 'b' }]);
    await settle();
    clock.advance(1_000);
    await settle();
    expect(calls).toHaveLength(0);
    await store.queues.send('default', 'orders', [{ body: 'c' }]);
    clock.advance(1_000);
    await settle();
    await source.idle();
    // Full at three: invoked before the window's five seconds were up.
    expect(calls).toHaveLength(1);
    expect(records(calls[0]!).map((r) => r.body)).toEqual(['a', 'b', 'c']);
  });

  it('deletes messages that match no filter without invoking', async () => {
    await deploy({ filters: ['{"body": {"kind": ["keep"]}}'] });
    await source.start();
    await store.queues.send('default', 'orders', [
      { body: JSON.stringify({ kind: 'keep' }) },
      { body: JSON.stringify({ kind: 'drop' }) },
      { body: 'not json' },
    ]);
    source.notify('default', 'orders');
    await settle();
    await source.idle();
    expect(calls.flatMap((c) => records(c).map((r) => JSON.parse(r.body).kind))).toEqual(['keep']);
    expect(await store.queues.peek('default', 'orders')).toEqual([]);
  });
});

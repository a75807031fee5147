// The TTL sweeper against a real (in-memory SQLite) table store in store time, and against a scripted one for
// what a real store cannot time exactly (batches, failures, a stop during a sweep).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import { tableDef } from '../store/conformance/tables.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/index.js';
import type { Item } from './types.js';
import { TTL_BATCH, TTL_SWEEP_MS, TtlSweeper } from './ttl.js';

/** Lets the sweeper's promises run (store calls are synchronous underneath). */
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

describe('TtlSweeper on a table store', () => {
  let clock: ManualClock;
  let store: SqliteStore;
  let sweeper: TtlSweeper;
  const errors: unknown[] = [];

  const put = (item: Item) =>
    store.tables.write('default', { table: 't', key: { pk: item.pk!, sk: item.sk! }, decide: () => item });
  const keys = async () =>
    (await store.tables.scan('default', { table: 't' })).items.map((i) => (i.pk as { S: string }).S).sort();

  beforeEach(async () => {
    clock = new ManualClock();
    store = openSqliteStore({ path: ':memory:', clock });
    errors.length = 0;
    sweeper = new TtlSweeper({ tables: store.tables, clock, onError: (err) => errors.push(err) });
    await store.tables.createTable(
      'default',
      tableDef('t', { ttlAttribute: 'exp', stream: { viewType: 'NEW_AND_OLD_IMAGES' } }),
      null,
    );
  });
  afterEach(async () => {
    await sweeper.stop();
    await store.close();
  });

  it('deletes expired items at start and then every 30 s, each with a REMOVE record of the service', async () => {
    const now = clock.now() / 1000;
    await put({ pk: { S: 'past' }, sk: { N: '1' }, exp: { N: String(now - 60) } });
    await put({ pk: { S: 'soon' }, sk: { N: '1' }, exp: { N: String(now + 10) } });
    await put({ pk: { S: 'later' }, sk: { N: '1' }, exp: { N: String(now + 40) } });
    await put({ pk: { S: 'never' }, sk: { N: '1' } });
    const before = (await store.tables.getTable('default', 't'))!.streamSeq;

    await sweeper.start();
    await settle();
    expect(await keys()).toEqual(['later', 'never', 'soon']);

    // Due at +10 s, deleted at the sweep at +30 s, not before.
    clock.advance(TTL_SWEEP_MS - 1);
    await settle();
    expect(await keys()).toEqual(['later', 'never', 'soon']);
    clock.advance(1);
    await settle();
    expect(await keys()).toEqual(['later', 'never']);
    clock.advance(TTL_SWEEP_MS);
    await settle();
    expect(await keys()).toEqual(['never']);

    const removed = await store.tables.streamRecords('default', 't', before, 10);
    expect(removed.map((r) => [r.eventName, (r.keys.pk as { S: string }).S, r.userIdentity])).toEqual([
      ['REMOVE', 'past', { type: 'Service', principalId: 'dynamodb.amazonaws.com' }],
      ['REMOVE', 'soon', { type: 'Service', principalId: 'dynamodb.amazonaws.com' }],
      ['REMOVE', 'later', { type: 'Service', principalId: 'dynamodb.amazonaws.com' }],
    ]);
    expect(removed[0]!.oldImage).toMatchObject({ pk: { S: 'past' } });
    expect(errors).toEqual([]);
  });

  it('clears a backlog larger than one batch in one sweep', async () => {
    const exp = { N: String(clock.now() / 1000 - 1) };
    const n = TTL_BATCH * 2 + 5;
    await Promise.all(Array.from({ length: n }, (_, i) => put({ pk: { S: `i${i}` }, sk: { N: '1' }, exp })));
    await put({ pk: { S: 'keep' }, sk: { N: '1' } });
    expect(await sweeper.sweep()).toBe(n);
    expect(await keys()).toEqual(['keep']);
  });
});

describe('TtlSweeper batches', () => {
  let clock: ManualClock;
  let calls: number[];
  let answers: (number | Error)[];
  let errors: [unknown, string][];
  let sweeper: TtlSweeper;
  let gate: Promise<void> | undefined;

  beforeEach(() => {
    clock = new ManualClock();
    calls = [];
    answers = [];
    errors = [];
    gate = undefined;
    sweeper = new TtlSweeper({
      clock,
      onError: (err, context) => errors.push([err, context]),
      tables: {
        expire: async (nowSeconds, limit) => {
          expect(limit).toBe(TTL_BATCH);
          calls.push(nowSeconds);
          await gate;
          const a = answers.shift() ?? 0;
          if (a instanceof Error) throw a;
          return a;
        },
      },
    });
  });
  afterEach(() => sweeper.stop());

  it('asks again while a batch comes back full, with the clock in seconds', async () => {
    answers = [TTL_BATCH, TTL_BATCH, 7];
    await sweeper.start();
    await settle();
    expect(calls).toEqual([clock.now() / 1000, clock.now() / 1000, clock.now() / 1000]);
    clock.advance(TTL_SWEEP_MS);
    await settle();
    expect(calls).toHaveLength(4);
    expect(calls[3]).toBe(clock.now() / 1000);
  });

  it('reports a failed sweep through onError and sweeps again at the next interval', async () => {
    answers = [new Error('disk full')];
    await sweeper.start();
    await settle();
    expect(errors).toEqual([[new Error('disk full'), 'tables: deleting expired items']]);
    clock.advance(TTL_SWEEP_MS);
    await settle();
    expect(calls).toHaveLength(2);
    expect(errors).toHaveLength(1);
  });

  it('runs one sweep at a time, and a stop waits for the one in flight and starts no more', async () => {
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    answers = [TTL_BATCH, TTL_BATCH];
    await sweeper.start();
    await settle();
    // The sweep is still in its first batch: time passing starts no second one.
    clock.advance(TTL_SWEEP_MS * 3);
    await settle();
    expect(calls).toHaveLength(1);
    let stopped = false;
    const stopping = sweeper.stop().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    open();
    await stopping;
    // The full batch would have asked again, but the sweeper was stopping.
    expect(calls).toHaveLength(1);
    clock.advance(TTL_SWEEP_MS * 3);
    await settle();
    expect(calls).toHaveLength(1);
    expect(clock.pendingTimers).toBe(0);
  });
});

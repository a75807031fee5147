// The schedule source against a real (in-memory SQLite) store, in store time: ticks become events once,
// restarts and second nodes do not fire a tick twice, missed ticks follow the catch-up setting.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import type { ScheduleConfig } from '../config/manifest.js';
import { fn } from '../store/conformance/harness.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/index.js';
import type { FunctionVersion } from '../store/types.js';
import { ScheduleSource } from './schedules.js';

const MIN = 60_000;

describe('ScheduleSource', () => {
  let clock: ManualClock;
  let store: SqliteStore;
  const sources: ScheduleSource[] = [];
  const make = (catchUp: 'skip' | 'once' = 'skip') => {
    const s = new ScheduleSource({ schedules: store.schedules, queue: store.events, clock, catchUp });
    sources.push(s);
    return s;
  };
  const version = (name: string, schedules: ScheduleConfig[]): FunctionVersion => ({
    project: 'default',
    name,
    service: 'svc',
    version: 1,
    config: { ...fn(name), schedules },
    codeSha256: '0'.repeat(64),
    codeSize: 1,
    deployedAt: 0,
  });
  const every5 = version('tick', [{ expression: 'rate(5 minutes)', timezone: 'UTC' }]);
  const events = async () => store.events.list({ limit: 1000 });
  const run = async (ms: number) => {
    clock.advance(ms);
    for (const s of sources) await s.settled();
  };

  beforeEach(() => {
    clock = new ManualClock(Date.UTC(2026, 2, 2, 9, 0, 0));
    store = openSqliteStore({ path: ':memory:', clock });
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    await store.close();
  });

  it('turns each tick of a rate into one EventBridge scheduled event', async () => {
    const s = make();
    s.sync([every5]);
    await s.start();
    await run(5 * MIN - 1);
    expect(await events()).toEqual([]);
    await run(1);
    const [ev] = await events();
    expect(ev).toMatchObject({ project: 'default', functionName: 'tick', source: 'schedule' });
    expect(JSON.parse(ev!.payload)).toEqual({
      version: '0',
      id: ev!.id,
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '000000000000',
      time: '2026-03-02T09:05:00Z',
      region: 'us-east-1',
      resources: [
        expect.stringMatching(/^arn:aws:events:us-east-1:000000000000:rule\/tick-schedule-[0-9a-f]{8}$/),
      ],
      detail: {},
    });
    await run(5 * MIN);
    expect((await events()).map((e) => JSON.parse(e.payload).time)).toEqual([
      '2026-03-02T09:05:00Z',
      '2026-03-02T09:10:00Z',
    ]);
  });

  it('fires each tick once with two nodes on one store, and again once after a restart', async () => {
    const a = make();
    const b = make();
    a.sync([every5]);
    b.sync([every5]);
    await a.start();
    await b.start();
    await run(5 * MIN);
    expect(await events()).toHaveLength(1);
    await a.stop();
    await b.stop();
    sources.length = 0;
    const again = make();
    again.sync([every5]);
    await again.start();
    await run(5 * MIN);
    expect((await events()).map((e) => JSON.parse(e.payload).time)).toEqual([
      '2026-03-02T09:05:00Z',
      '2026-03-02T09:10:00Z',
    ]);
  });

  it('skips ticks missed while down, keeping the grid', async () => {
    const s = make('skip');
    s.sync([every5]);
    await s.start();
    await s.stop();
    sources.length = 0;
    clock.advance(22 * MIN);
    const back = make('skip');
    back.sync([every5]);
    await back.start();
    await back.settled();
    expect(await events()).toEqual([]);
    await run(3 * MIN);
    expect((await events()).map((e) => JSON.parse(e.payload).time)).toEqual(['2026-03-02T09:25:00Z']);
  });

  it('fires one missed tick at once with catch-up "once"', async () => {
    const s = make('once');
    s.sync([every5]);
    await s.start();
    await s.stop();
    sources.length = 0;
    clock.advance(22 * MIN);
    const back = make('once');
    back.sync([every5]);
    await back.start();
    await back.settled();
    expect((await events()).map((e) => JSON.parse(e.payload).time)).toEqual(['2026-03-02T09:05:00Z']);
    await run(3 * MIN);
    expect(await events()).toHaveLength(2);
  });

  it('delivers a constant input instead of the envelope, and follows a cron line in its time zone', async () => {
    const s = make();
    s.sync([
      version('noon', [
        { expression: 'cron(0 12 * * ? *)', timezone: 'Europe/Berlin', input: '{"report":"daily"}' },
      ]),
    ]);
    await s.start();
    // 12:00 in Berlin on 2 March is 11:00 UTC; the clock starts at 09:00 UTC.
    await run(2 * 60 * MIN - 1);
    expect(await events()).toEqual([]);
    await run(1);
    expect((await events()).map((e) => e.payload)).toEqual(['{"report":"daily"}']);
    expect((await store.schedules.list())[0]?.nextFireAt).toBe(Date.UTC(2026, 2, 3, 11, 0, 0));
  });

  it('stores the other schedules when one can no longer fire, and never fires that one', async () => {
    const errors: string[] = [];
    const s = new ScheduleSource({
      schedules: store.schedules,
      queue: store.events,
      clock,
      onError: (err) => errors.push(String(err)),
    });
    sources.push(s);
    s.sync([version('old', [{ expression: 'cron(0 0 1 1 ? 2020)', timezone: 'UTC' }]), every5]);
    await s.start();
    await run(5 * 60_000);
    expect((await events()).map((e) => e.functionName)).toEqual(['tick']);
    expect((await store.schedules.list()).map((x) => x.functionName).sort()).toEqual(['old', 'tick']);
    expect(errors).toEqual([]);
  });

  it('keeps the next tick across an unchanged redeploy and drops schedules that are gone', async () => {
    const s = make();
    s.sync([every5]);
    await s.start();
    await run(2 * MIN);
    s.sync([every5]);
    await s.settled();
    expect((await store.schedules.list())[0]?.nextFireAt).toBe(Date.UTC(2026, 2, 2, 9, 5, 0));
    s.sync([version('tick', [{ expression: 'rate(1 minute)', timezone: 'UTC' }])]);
    await s.settled();
    expect((await store.schedules.list()).map((x) => [x.expression, x.nextFireAt])).toEqual([
      ['rate(1 minute)', Date.UTC(2026, 2, 2, 9, 3, 0)],
    ]);
    s.sync([]);
    await s.settled();
    expect(await store.schedules.list()).toEqual([]);
  });
});

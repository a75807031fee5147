// The scaling engine through the public surface: keep-alive and scale to zero, provisioned instances,
// limits that throttle exactly where they say, eviction under a memory budget, and perInstance overlap.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { FunctionScaling } from '../src/client/index.js';
import { FIXTURES, eventually, startTestNimbus, type TestNimbus } from './helpers.js';

let n: TestNimbus;

beforeAll(async () => {
  // A small budget (five 128 MB instances) makes eviction observable; a 1 s keep-alive makes scale-to-zero so.
  // Queueing off: these tests show the Lambda model (one instance per concurrent invocation); the rule that
  // lets short invocations wait for a warm instance has its own test below.
  n = await startTestNimbus({ keepAliveSec: 1, memoryBudgetMB: 5 * 128, maxConcurrency: 8, queueing: false });
  await n.deploy(join(FIXTURES, 'scaling'));
});
afterAll(async () => {
  await n?.cleanup();
});

const call = async (fn: string, payload: unknown = {}) => {
  const r = await n.client.invoke(fn, JSON.stringify(payload), {});
  return { ...r, value: JSON.parse(r.payload) as any };
};
const scaling = async (fn: string): Promise<FunctionScaling> => (await n.client.get(fn)).scaling!;

describe('provisioned concurrency', () => {
  it('keeps N initialized instances through idleness, serves warm, and replaces one that dies', async () => {
    await eventually(
      async () => (await scaling('prov')).provisioned === 2 && (await scaling('prov')).idle === 2,
    );
    // Longer than the 1 s keep-alive: provisioned instances are not subject to it.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await scaling('prov')).toMatchObject({ provisioned: 2, idle: 2 });
    const r = await call('prov');
    expect(r.value.calls).toBe(1);
    expect(r.value.initType).toBe('provisioned-concurrency');
    const s = await scaling('prov');
    expect(s.cold).toBe(0);
    expect(s.warm).toBe(1);
    const crashed = await call('prov', { exit: true });
    expect(crashed.functionError).toBe('Unhandled');
    await eventually(async () => {
      const now = await scaling('prov');
      return now.provisioned === 2 && now.idle === 2;
    });
  });
});

describe('limits', () => {
  it('throttles at reserved concurrency and not before', async () => {
    const three = await Promise.all([1, 2, 3].map(() => call('sleeper', { ms: 800 })));
    expect(three.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    const running = [1, 2, 3].map(() => call('sleeper', { ms: 800 }));
    await eventually(async () => (await scaling('sleeper')).busy === 3);
    await expect(call('sleeper', { ms: 10 })).rejects.toMatchObject({ status: 429 });
    for (const r of await Promise.all(running)) expect(r.statusCode).toBe(200);
    expect((await scaling('sleeper')).throttled).toBe(1);
  });
});

describe('keep-alive and eviction', () => {
  it('scales to zero after the keep-alive; the next call is cold', async () => {
    await call('a');
    expect((await scaling('a')).idle).toBe(1);
    await eventually(async () => (await scaling('a')).idle === 0, 5000);
    await call('a');
    expect((await scaling('a')).cold).toBe(2);
  });

  it('evicts the least recently used idle instance of another function when the budget is full', async () => {
    // Budget: five instances. Two stay provisioned (prov); a, b and c fill the rest, a the least recent.
    for (const fn of ['a', 'b', 'c', 'sleeper']) {
      await eventually(async () => (await scaling(fn)).idle === 0, 10_000).catch(async () => {
        expect.fail(`${fn} kept idle instances: ${JSON.stringify(await scaling(fn))}`);
      });
    }
    await call('a');
    await call('b');
    await call('c');
    expect((await scaling('a')).idle).toBe(1);
    await call('d');
    expect((await scaling('a')).evicted).toBe(1);
    expect((await scaling('a')).idle).toBe(0);
    expect((await scaling('b')).idle).toBe(1);
    expect((await scaling('c')).idle).toBe(1);
    expect((await scaling('prov')).idle).toBe(2);
  });
});

describe('perInstance concurrency', () => {
  it('lets one instance serve overlapping invocations, each with its own logs', async () => {
    const results = await Promise.all(
      [1, 2, 3, 4].map((i) => n.client.invoke('multi', JSON.stringify({ n: i }), { tail: true })),
    );
    const values = results.map((r) => JSON.parse(r.payload) as { instance: string; maxRunning: number });
    expect(new Set(values.map((v) => v.instance)).size).toBe(1);
    expect(Math.max(...values.map((v) => v.maxRunning))).toBe(4);
    expect((await scaling('multi')).cold).toBe(1);
    results.forEach((r, i) => expect(r.logResult).toContain(`multi ${i + 1}`));
  });
});

describe('waiting for a warm instance (queueing)', () => {
  let q: TestNimbus;
  beforeAll(async () => {
    q = await startTestNimbus({ maxConcurrency: 100 });
    await q.deploy(join(FIXTURES, 'scaling'));
  });
  afterAll(async () => {
    await q?.cleanup();
  });

  it('serves bursts of a short function from the instances it has, waiting rather than cold-starting', async () => {
    const burst = () => Promise.all(Array.from({ length: 30 }, () => q.client.invoke('a', '{}', {})));
    for (const r of await burst()) expect(r.statusCode).toBe(200);
    const coldAfterFirst = (await q.client.get('a')).scaling!.cold;
    for (let round = 0; round < 4; round++) for (const r of await burst()) expect(r.statusCode).toBe(200);
    const s = (await q.client.get('a')).scaling!;
    expect(s.cold).toBe(coldAfterFirst);
    expect(s.queued).toBeGreaterThan(0);
    expect(s.throttled).toBe(0);
  });
});

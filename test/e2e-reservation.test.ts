// Reserved concurrency reserves: on a node limited to 4, a function reserving 2 keeps answering while an
// unreserved neighbour is flooded past the limit, and a deploy that would leave too little unreserved is
// refused and changes nothing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestNimbus, type TestNimbus } from './helpers.js';

const HANDLER =
  'export const sleep = async (e) => { await new Promise((r) => setTimeout(r, e.ms ?? 0)); return { ok: true }; };\n';

function service(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-reservation-'));
  writeFileSync(join(dir, 'nimbus.yaml'), yaml);
  writeFileSync(join(dir, 'handler.js'), HANDLER);
  return dir;
}

let n: TestNimbus;
const dirs: string[] = [];

beforeAll(async () => {
  // Limit 4, b reserves 2: the unreserved pool is 2. Queueing off, so each invocation holds its own slot.
  n = await startTestNimbus({ maxConcurrency: 4, queueing: false });
  const dir = service(
    'service: shared\nfunctions:\n  a: { handler: handler.sleep, timeout: 10 }\n' +
      '  b: { handler: handler.sleep, timeout: 10, concurrency: { reserved: 2 } }\n',
  );
  dirs.push(dir);
  await n.deploy(dir);
});
afterAll(async () => {
  await n?.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const status = (fn: string, ms: number): Promise<number> =>
  n.client.invoke(fn, JSON.stringify({ ms }), {}).then(
    (r) => r.statusCode,
    (e: { status?: number }) => e.status ?? -1,
  );

describe('reserved concurrency', () => {
  it('a reserved function keeps answering 200 while an unreserved one is flooded past the node limit', async () => {
    const flood = Array.from({ length: 8 }, () => status('a', 1500));
    // a holds the whole unreserved pool (2) and the rest of the flood is throttled.
    await eventually(async () => (await n.client.get('a')).scaling?.busy === 2);
    const b = await Promise.all([status('b', 200), status('b', 200)]);
    expect(b).toEqual([200, 200]);
    const a = await Promise.all(flood);
    expect(a.filter((s) => s === 200)).toHaveLength(2);
    expect(a.filter((s) => s === 429)).toHaveLength(6);
    expect((await n.client.get('b')).scaling?.throttled).toBe(0);
    // b is still capped at its reservation: a third call at once gets 429.
    const three = await Promise.all([status('b', 800), status('b', 800), status('b', 800)]);
    expect([...three].sort()).toEqual([200, 200, 429]);
  });

  it('a deploy reserving more than the limit allows is refused with a hint, and changes nothing', async () => {
    const before = (await n.client.list()).functions.map((f) => [f.name, f.version]);
    // 2 (b) + 2 = 4 of 4 would leave nothing unreserved; at least 1 must stay.
    const dir = service(
      'service: greedy\nfunctions:\n  g: { handler: handler.sleep, concurrency: { reserved: 2 } }\n',
    );
    dirs.push(dir);
    const err = (await n.deploy(dir).then(
      () => undefined,
      (e: unknown) => e,
    )) as { status?: number; message: string; hint?: string } | undefined;
    expect(err).toMatchObject({ status: 400 });
    expect(err!.message).toContain('functions.g.concurrency.reserved');
    expect(err!.message).toContain('at least 1');
    expect(err!.hint).toContain('reserve at most 1 for g');
    expect((await n.client.list()).functions.map((f) => [f.name, f.version])).toEqual(before);
    // What fits is accepted: 1 more leaves 1 unreserved.
    const fits = service(
      'service: greedy\nfunctions:\n  g: { handler: handler.sleep, concurrency: { reserved: 1 } }\n',
    );
    dirs.push(fits);
    await n.deploy(fits);
    expect((await n.client.get('g')).reservedConcurrency).toBe(1);
  });
});

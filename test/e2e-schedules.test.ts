// Schedules through a real Nimbus whose clock the test moves: ticks become invocations recorded with trigger
// "schedule", nimbus ls shows the next tick, and a bad expression is refused at deploy.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock/clock.js';
import { BACKENDS, FIXTURES, eventually, startTestNimbus, type TestNimbus } from './helpers.js';

describe.each(BACKENDS)('schedules on %s', (backend) => {
  let n: TestNimbus;
  // 09:00 UTC on a Monday: the rate ticks at 09:05, the Berlin-noon cron at 11:00 UTC.
  const clock = new ManualClock(Date.UTC(2026, 2, 2, 9, 0, 0));
  let dir: string;

  beforeAll(async () => {
    n = await startTestNimbus({ backend, clock });
    await n.deploy(join(FIXTURES, 'cron'));
    dir = mkdtempSync(join(tmpdir(), 'nimbus-cron-'));
  });
  afterAll(async () => {
    await n?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const ticks = async () => {
    const res = await fetch(`${n.apiUrl}/v1/invocations?function=tick&limit=100`, {
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    const { invocations } = (await res.json()) as { invocations: { trigger: string; logs: string }[] };
    return invocations.map((r) => ({
      trigger: r.trigger,
      event: JSON.parse(/EVENT (.*)\n/.exec(r.logs)![1]!),
    }));
  };

  it('shows each schedule with its next tick in the function list', async () => {
    const [f] = (await n.client.list()).functions;
    expect(f?.schedules).toEqual(
      [
        {
          expression: 'cron(0 12 * * ? *)',
          timezone: 'Europe/Berlin',
          nextFireAt: Date.UTC(2026, 2, 2, 11, 0, 0),
        },
        { expression: 'rate(5 minutes)', timezone: 'UTC', nextFireAt: Date.UTC(2026, 2, 2, 9, 5, 0) },
      ]
        .sort((a, b) => (a.expression < b.expression ? -1 : 1))
        .sort(() => 0),
    );
  });

  it('invokes the function at each tick with the EventBridge event, recorded as a schedule trigger', async () => {
    clock.advance(5 * 60_000);
    const [first] = await eventually(async () => ((await ticks()).length === 1 ? ticks() : undefined));
    expect(first).toMatchObject({
      trigger: 'schedule',
      event: {
        source: 'aws.events',
        'detail-type': 'Scheduled Event',
        time: '2026-03-02T09:05:00Z',
        detail: {},
      },
    });
    clock.advance(2 * 60 * 60_000 - 5 * 60_000);
    // 11:00 UTC: the Berlin-noon cron with its constant input, and the rate's tick of 11:00 (missed ones are
    // more than a minute late and skipped, as after a restart).
    const all = await eventually(async () => {
      const t = await ticks();
      return t.some((x) => (x.event as { report?: string }).report === 'daily') ? t : undefined;
    });
    expect(all.map((t) => t.event).filter((e) => (e as { report?: string }).report)).toEqual([
      { report: 'daily' },
    ]);
  });

  it('refuses an invalid schedule at deploy, naming the field and what is accepted', async () => {
    const svc = join(dir, 'bad');
    mkdirSync(svc, { recursive: true });
    writeFileSync(join(svc, 'h.js'), 'exports.f = async () => 1;\n');
    writeFileSync(
      join(svc, 'nimbus.yaml'),
      'service: badcron\nfunctions:\n  f:\n    handler: h.f\n    events:\n      - schedule: cron(0 12 * * *)\n',
    );
    // Refused while packaging, before anything is uploaded (the server checks the same again).
    const err = (await n.deploy(svc).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain('functions.f.events.0.schedule');
    expect(err.message).toMatch(/six fields/);
    expect((await n.client.list()).functions.map((f) => f.name)).toEqual(['tick']);
  });
});

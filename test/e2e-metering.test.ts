// Metering end to end, on each backend: what an invocation is billed (init included), what it costs under the
// price table, the REPORT line of `nimbus logs` and of the Invoke API's log tail, cost reports that add up
// exactly to the records, one project never seeing another's cost, a malformed HTTP response recorded as the
// function's error, and records pruned after the retention on the server's own (manual) clock.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock/clock.js';
import { NimbusClient, type CostReport, type InvocationView } from '../src/client/index.js';
import { packageService } from '../src/build/package.js';
import { formatUsd } from '../src/metering/price.js';
import { BACKENDS, FIXTURES, eventually, runNimbus, startTestNimbus, type TestNimbus } from './helpers.js';

/** The cost the docs state, worked out here on its own: $0.20 per million requests, $0.0000166667 per GB-s. */
function expectedPico(billedMs: number, memoryMB: number): number {
  return 200_000 + Math.round((billedMs * memoryMB * 16_666_700) / 1_024_000);
}

/** The REPORT line's fields by name. */
function reportFields(text: string, requestId: string): Record<string, string> {
  const line = text.split('\n').find((l) => l.startsWith(`REPORT RequestId: ${requestId}`));
  expect(line, `a REPORT line for ${requestId} in:\n${text}`).toBeDefined();
  return Object.fromEntries(
    line!.split('\t').map((f) => {
      const i = f.indexOf(': ');
      return [f.slice(0, i), f.slice(i + 2)];
    }),
  );
}

describe.each(BACKENDS)('metering on %s', (backend) => {
  let n: TestNimbus;
  const api = (path: string, key = n.apiKey) =>
    fetch(n.apiUrl + path, { headers: { authorization: `Bearer ${key}` } });
  const cli = (args: string[], key = n.apiKey) =>
    runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: key }, args);

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'behave'));
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  async function recordOf(requestId: string): Promise<InvocationView> {
    const res = await api(`/v1/invocations/${requestId}`);
    expect(res.status).toBe(200);
    return (await res.json()) as InvocationView;
  }

  it('bills init with the duration on a cold start, keeps both, and prices the record', async () => {
    const cold = await fetch(`${n.gatewayUrl}/echo/one`);
    expect(cold.status).toBe(200);
    const warm = await fetch(`${n.gatewayUrl}/echo/two`);
    expect(warm.status).toBe(200);
    const c = await recordOf(cold.headers.get('x-nimbus-request-id')!);
    const w = await recordOf(warm.headers.get('x-nimbus-request-id')!);

    expect(c.cold).toBe(true);
    expect(c.initMs).toBeGreaterThan(0);
    expect(c.billedMs).toBe(Math.max(1, Math.ceil(c.durationMs + c.initMs!)));
    expect(w.cold).toBe(false);
    expect(w.initMs).toBeNull();
    expect(w.billedMs).toBe(Math.max(1, Math.ceil(w.durationMs)));
    for (const r of [c, w]) {
      expect(r.memoryMB).toBe(128);
      expect(r.requests).toBe(1);
      expect(r.gbSeconds).toBe((r.billedMs * 128) / 1_024_000);
      expect(r.costPicoUsd).toBe(expectedPico(r.billedMs, 128));
    }
  });

  it('records a malformed HTTP response as the function error the gateway answered with 502', async () => {
    const res = await fetch(`${n.gatewayUrl}/respond`, {
      method: 'POST',
      body: JSON.stringify({ statusCode: 'nope' }),
    });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { message: string; requestId: string };
    expect(body.message).toBe('Internal Server Error');
    const rec = await recordOf(res.headers.get('x-nimbus-request-id')!);
    expect(rec).toMatchObject({
      status: 'error',
      errorType: 'Nimbus.MalformedResponse',
      errorMessage: 'statusCode must be an integer from 200 to 599',
      requests: 1,
    });

    const v1 = await fetch(`${n.gatewayUrl}/respond-v1`, { method: 'POST', body: '"just text"' });
    expect(v1.status).toBe(502);
    const rec1 = await recordOf(v1.headers.get('x-nimbus-request-id')!);
    expect(rec1).toMatchObject({
      status: 'error',
      errorType: 'Nimbus.MalformedResponse',
      errorMessage: 'payload format 1.0 needs an object with statusCode',
    });
    // A well-formed answer of the same function stays ok.
    const fine = await fetch(`${n.gatewayUrl}/respond`, {
      method: 'POST',
      body: JSON.stringify({ statusCode: 201, body: 'made' }),
    });
    expect(fine.status).toBe(201);
    expect((await recordOf(fine.headers.get('x-nimbus-request-id')!)).status).toBe('ok');
  });

  it('charges nothing for a throttled invocation', async () => {
    // `single` has a reserved concurrency of 1 and runs 700 ms: of three at once, at least one is refused.
    const answers = await Promise.all([1, 2, 3].map(() => fetch(`${n.gatewayUrl}/single`)));
    const refused = answers.filter((a) => a.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    const throttled = await eventually(async () => {
      const res = await api('/v1/invocations?function=single');
      const { invocations } = (await res.json()) as { invocations: InvocationView[] };
      const t = invocations.filter((r) => r.status === 'throttled');
      return t.length === refused.length ? t : undefined;
    });
    for (const t of throttled) {
      expect(t).toMatchObject({ billedMs: 0, requests: 0, gbSeconds: 0, costPicoUsd: 0 });
    }
  });

  it('prints REPORT lines whose fields are the stored record, in nimbus logs and the Invoke log tail', async () => {
    await n.client.invoke('counter', '{}');
    const tailed = await n.client.invoke('counter', '{}', { tail: true });
    // The client decodes X-Amz-Log-Result's base64.
    const tail = tailed.logResult!;
    const rec = await recordOf(tailed.requestId);
    const check = (f: Record<string, string>, r: InvocationView) => {
      expect(f['Duration']).toBe(`${r.durationMs.toFixed(2)} ms`);
      expect(f['Billed Duration']).toBe(`${r.billedMs} ms`);
      expect(f['Memory Size']).toBe(`${r.memoryMB} MB`);
      if (r.maxRssBytes > 0) expect(f['Max Memory Used']).toBe(`${Math.ceil(r.maxRssBytes / 2 ** 20)} MB`);
      expect(f['Init Duration']).toBe(r.initMs === null ? undefined : `${r.initMs.toFixed(2)} ms`);
      expect(f['Cost']).toBe(`${formatUsd(r.costPicoUsd)} USD`);
      expect(f['Status']).toBe(r.status === 'ok' ? undefined : expect.stringContaining(r.status));
    };
    check(reportFields(tail, tailed.requestId), rec);

    const logs = await cli(['logs', 'counter', '--since', '1h']);
    expect(logs.code).toBe(0);
    const { invocations } = (await (await api('/v1/invocations?function=counter')).json()) as {
      invocations: InvocationView[];
    };
    expect(invocations.length).toBe(2);
    for (const r of invocations) check(reportFields(logs.stdout, r.requestId), r);
    // The cold one (the first) carries its init duration; the status of a failure is on the line too.
    expect(reportFields(logs.stdout, invocations[1]!.requestId)['Init Duration']).toMatch(/^\d+\.\d\d ms$/);
    await fetch(`${n.gatewayUrl}/fail`);
    const failed = await cli(['logs', 'fail', '--since', '1h']);
    expect(failed.stdout).toMatch(/\tStatus: error \(TypeError: the function failed on purpose\)/);
  });

  it('reports usage per group that adds up exactly to the records, in the API and the CLI', async () => {
    const res = await api('/v1/invocations?limit=1000');
    const { invocations } = (await res.json()) as { invocations: InvocationView[] };
    expect(invocations.length).toBeGreaterThan(5);
    const sum = (rs: InvocationView[]) => ({
      invocations: rs.length,
      requests: rs.reduce((s, r) => s + r.requests, 0),
      billedMs: rs.reduce((s, r) => s + r.billedMs, 0),
      costPicoUsd: rs.reduce((s, r) => s + BigInt(r.costPicoUsd), 0n).toString(),
    });
    const since = Math.min(...invocations.map((r) => r.start));

    for (const by of ['function', 'trigger'] as const) {
      const report = (await (await api(`/v1/cost?since=${since}&by=${by}`)).json()) as CostReport;
      expect(report.total).toMatchObject(sum(invocations));
      const groups = new Map<string, InvocationView[]>();
      for (const r of invocations) {
        const k = by === 'function' ? r.functionName : r.trigger;
        groups.set(k, [...(groups.get(k) ?? []), r]);
      }
      expect(report.groups.map((g) => g.group).sort()).toEqual([...groups.keys()].sort());
      for (const g of report.groups) expect(g).toMatchObject(sum(groups.get(g.group)!));
    }

    const json = await cli(['cost', '--since', '1h', '--by', 'function', '--json']);
    expect(json.code).toBe(0);
    const viaCli = JSON.parse(json.stdout) as CostReport;
    expect(viaCli.total).toMatchObject(sum(invocations));
    const text = await cli(['cost', '--since', '1h', '--by', 'function']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^PROJECT\s+FUNCTION\s+INVOCATIONS\s+REQUESTS\s+BILLED MS\s+GB-S\s+COST USD$/m,
    );
    expect(text.stdout).toContain(viaCli.total.costUsd);
    expect(text.stdout).toMatch(new RegExp(`^default\\s+counter\\s+2\\s+2\\s`, 'm'));
  });

  it('refuses bad --since, --until and --by with one line, and the API with 400 JSON', async () => {
    for (const args of [
      ['cost', '--by', 'colour'],
      ['cost', '--since', 'yesterday'],
      ['cost', '--until', 'soon'],
      ['cost', '--since', '1d', '--until', '2d'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stderr.trim().split('\n')[0]).toMatch(/--by|--since|--until/);
    }
    for (const q of ['by=colour', 'since=yesterday', 'until=later', 'since=2000&until=1000', 'all=maybe']) {
      const res = await api(`/v1/cost?${q}`);
      expect(res.status, q).toBe(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('BadRequest');
      expect(body.error.message.length).toBeGreaterThan(0);
    }
  });

  it("never shows one project's cost to another; the operator sees all", async () => {
    const created = await n.client.createProject(`team-${backend === 'sqlite' ? 's' : 'p'}`);
    const b = new NimbusClient({ apiUrl: n.apiUrl, apiKey: created.key.key });
    await b.deploy((await packageService(join(FIXTURES, 'noop'))).archive);
    const ran = await b.invoke('noop', '{}');
    expect(ran.statusCode).toBe(200);

    const bReport = await eventually(async () => {
      const r = await b.cost({ since: 0 });
      return r.total.invocations === 1 ? r : undefined;
    });
    expect(bReport.project).toBe(created.project);
    const byFn = await b.cost({ since: 0, by: 'function' });
    expect(byFn.groups.map((g) => [g.project, g.group])).toEqual([[created.project, 'noop']]);
    // Another project's key may not ask for every project, nor name the default one.
    const all = await fetch(`${n.apiUrl}/v1/cost?all=true`, {
      headers: { authorization: `Bearer ${created.key.key}` },
    });
    expect(all.status).toBe(403);
    expect(((await all.json()) as { error: { code: string } }).error.code).toBe('AccessDenied');
    const named = await fetch(`${n.apiUrl}/v1/cost`, {
      headers: { authorization: `Bearer ${created.key.key}`, 'x-nimbus-project': 'default' },
    });
    expect(named.status).toBe(403);

    const mine = await n.client.cost({ since: 0, by: 'project' });
    expect(mine.groups.map((g) => g.group)).toEqual(['default']);
    const every = await n.client.cost({ since: 0, by: 'project', all: true });
    expect(every.project).toBeNull();
    expect(every.groups.map((g) => g.group).sort()).toEqual(['default', created.project].sort());
    expect(every.groups.find((g) => g.group === created.project)).toMatchObject({
      invocations: 1,
      costPicoUsd: bReport.total.costPicoUsd,
    });
    expect(BigInt(every.total.costPicoUsd)).toBe(
      BigInt(mine.total.costPicoUsd) + BigInt(bReport.total.costPicoUsd),
    );
  });
});

describe.each(BACKENDS)('retention and the free tier on %s', (backend) => {
  let n: TestNimbus;
  // The server's clock starts at real time and moves only when the test says.
  const clock = new ManualClock(Date.now());
  const HOUR = 3_600_000;

  beforeAll(async () => {
    n = await startTestNimbus({ backend, clock, invocationRetentionDays: 1 / 24, freeTier: true });
    await n.deploy(join(FIXTURES, 'behave'));
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  it('prunes records older than the retention on the clock, keeps recent ones, and says so in reports', async () => {
    const t0 = clock.now();
    const old = await n.client.invoke('counter', '{}');
    clock.advance(90 * 60_000);
    const recent = await n.client.invoke('counter', '{}');
    expect((await n.client.invocations()).map((r) => r.requestId).sort()).toEqual(
      [old.requestId, recent.requestId].sort(),
    );
    // The hourly sweep at t0 + 2 h deletes what started before t0 + 1 h.
    clock.advance(35 * 60_000);
    await eventually(async () => (await n.client.invocations()).length === 1);
    expect((await n.client.invocations()).map((r) => r.requestId)).toEqual([recent.requestId]);
    const gone = await fetch(`${n.apiUrl}/v1/invocations/${old.requestId}`, {
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    expect(gone.status).toBe(404);

    const report = await n.client.cost({ since: t0 - HOUR });
    expect(report.complete).toBe(false);
    expect(report.prunedBefore).toBe(clock.now() - HOUR);
    const kept = await n.client.invocations();
    expect(report.oldestRecordAt).toBe(kept[0]!.start);
    expect(report.total.invocations).toBe(1);
    // Within the free tier, the one invocation left costs nothing net.
    expect(report.total.freeTier).toMatchObject({ requests: 1, costPicoUsd: report.total.costPicoUsd });
    expect(report.total.netCostPicoUsd).toBe('0');
    const inside = await n.client.cost({ since: clock.now() - 30 * 60_000 });
    expect(inside.complete).toBe(true);
  });
});

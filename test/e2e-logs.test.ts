// Searching logs: `nimbus logs` and GET /v1/invocations with every filter, on both backends, against real
// invocations through the gateway (so request ids are the gateway's own x-nimbus-request-id).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import {
  BACKENDS,
  BIN,
  FIXTURES,
  eventually,
  exited,
  runNimbus,
  startTestNimbus,
  type TestNimbus,
} from './helpers.js';

describe.each(BACKENDS)('logs search on %s', (backend) => {
  let n: TestNimbus;
  const ids: Record<string, string> = {};
  const cli = (args: string[]) => runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey }, args);
  const api = async (qs: string) => {
    const res = await fetch(`${n.apiUrl}/v1/invocations?${qs}`, {
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const call = async (fn: string, query: string) => {
    const res = await fetch(`${n.gatewayUrl}/${fn}?${query}`);
    await res.arrayBuffer();
    return res.headers.get('x-nimbus-request-id')!;
  };
  /** The request ids a CLI run printed, in order (from its START lines). */
  const printed = (out: string) => [...out.matchAll(/START RequestId: (\S+)/g)].map((m) => m[1]!);

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'logsearch'));
    ids['a1'] = await call('alpha', 'say=user+42+paid');
    ids['a2'] = await call('alpha', 'say=card+declined&fail=1');
    ids['b1'] = await call('beta', 'say=WARN+slow+user+7');
    ids['b2'] = await call('beta', 'say=100%25+done_&hang=1');
    await eventually(async () => {
      const r = await api('limit=10');
      return (r.body['invocations'] as unknown[]).length === 4;
    }, 20_000);
  }, 60_000);
  afterAll(async () => n?.cleanup());

  it('with no function named prints every function, each line naming its function', async () => {
    const r = await cli(['logs']);
    expect(r.code).toBe(0);
    expect(printed(r.stdout)).toEqual([ids['a1'], ids['a2'], ids['b1'], ids['b2']]);
    expect(r.stdout).toMatch(/^alpha \| START RequestId/m);
    expect(r.stdout).toMatch(/^beta \| .*WARN slow user 7/m);
  });

  it('prints one or several named functions', async () => {
    const one = await cli(['logs', 'beta']);
    expect(printed(one.stdout)).toEqual([ids['b1'], ids['b2']]);
    expect(one.stdout).toMatch(/^START RequestId/m);
    const both = await cli(['logs', 'alpha', 'beta', '--json']);
    expect(both.code).toBe(0);
    const json = JSON.parse(both.stdout) as { records: { requestId: string; functionName: string }[] };
    expect(json.records.map((x) => x.requestId)).toEqual([ids['a1'], ids['a2'], ids['b1'], ids['b2']]);
  });

  it('filters by a pattern: terms, phrases, exclusions, any-of, and LIKE characters as text', async () => {
    const f = async (pattern: string, ...rest: string[]) =>
      printed((await cli(['logs', '--filter', pattern, ...rest])).stdout);
    expect(await f('user')).toEqual([ids['a1'], ids['b1']]);
    expect(await f('"user 42"')).toEqual([ids['a1']]);
    expect(await f('user -WARN')).toEqual([ids['a1']]);
    expect(await f('?declined ?WARN')).toEqual([ids['a2'], ids['b1']]);
    expect(await f('100%')).toEqual([ids['b2']]);
    expect(await f('_')).toEqual([ids['b2']]);
    expect(await f('USER')).toEqual([]);
    expect(await f('user', 'beta')).toEqual([ids['b1']]);
  });

  it('filters by status, several at once, and combined with other filters', async () => {
    const s = async (...args: string[]) => printed((await cli(['logs', ...args])).stdout);
    expect(await s('--status', 'error')).toEqual([ids['a2']]);
    expect(await s('--status', 'timeout')).toEqual([ids['b2']]);
    expect(await s('--status', 'error,timeout')).toEqual([ids['a2'], ids['b2']]);
    expect(await s('--status', 'ok', '--filter', 'user')).toEqual([ids['a1'], ids['b1']]);
    expect(await s('alpha', '--status', 'ok,timeout')).toEqual([ids['a1']]);
    const api1 = await api(`status=error&status=timeout&function=beta`);
    expect(api1.status).toBe(200);
    expect((api1.body['invocations'] as { requestId: string }[]).map((x) => x.requestId)).toEqual([
      ids['b2'],
    ]);
  });

  it("finds a gateway response's request id, its record and logs", async () => {
    const r = await cli(['logs', '--request-id', ids['a2']!]);
    expect(r.code).toBe(0);
    expect(printed(r.stdout)).toEqual([ids['a2']]);
    expect(r.stdout).toContain('card declined');
    const none = await cli(['logs', '--request-id', 'no-such-id']);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/No invocations .*no-such-id/);
    const viaApi = await api(`requestId=${ids['b1']}`);
    expect((viaApi.body['invocations'] as { logs: string }[])[0]!.logs).toContain('WARN slow user 7');
  });

  it('limits to the newest n, printed oldest first', async () => {
    expect(printed((await cli(['logs', '--limit', '2'])).stdout)).toEqual([ids['b1'], ids['b2']]);
    expect(printed((await cli(['logs', 'alpha', '--limit', '1'])).stdout)).toEqual([ids['a2']]);
  });

  it('takes --since and --until as durations or ISO dates', async () => {
    const all = await api('order=asc');
    const starts = (all.body['invocations'] as { start: number }[]).map((x) => x.start);
    const mid = new Date(starts[2]!).toISOString();
    expect(printed((await cli(['logs', '--until', mid])).stdout)).toEqual([ids['a1'], ids['a2']]);
    expect(printed((await cli(['logs', '--since', mid])).stdout)).toEqual([ids['b1'], ids['b2']]);
    expect(printed((await cli(['logs', '--since', '7d', '--until', '1d'])).stdout)).toEqual([]);
    expect(printed((await cli(['logs', '--since', '2h'])).stdout)).toHaveLength(4);
    const viaApi = await api(`since=${starts[1]}&until=${starts[3]}&order=asc`);
    expect((viaApi.body['invocations'] as { requestId: string }[]).map((x) => x.requestId)).toEqual([
      ids['a2'],
      ids['b1'],
    ]);
  });

  it('refuses bad input with one line and a non-zero exit', async () => {
    for (const args of [
      ['logs', '--since', 'yesterday'],
      ['logs', '--until', '5x'],
      ['logs', '--since', '1h', '--until', '2h'],
      ['logs', '--status', 'broken'],
      ['logs', '--filter', '"unclosed'],
      ['logs', '--filter', 'a -'],
      ['logs', '--limit', '0'],
      ['logs', 'alpha', 'gamma'],
      ['logs', '--follow', '--until', '1h'],
    ]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^nimbus logs: /);
      expect(r.stdout).toBe('');
    }
    expect((await cli(['logs', '--status', 'eror'])).stderr).toMatch(/did you mean "error"/i);
    expect((await cli(['logs', 'alpah'])).stderr).toMatch(/did you mean "alpha"/i);
  });

  it('answers bad API parameters with a 400 naming the parameter', async () => {
    for (const [qs, param] of [
      ['status=broken', 'status'],
      ['q=%22open', 'q'],
      ['since=yesterday', 'since'],
      ['until=soon', 'until'],
      ['limit=-1', 'limit'],
      ['after=x', 'after'],
      ['order=sideways', 'order'],
      ['since=2h&until=3h', 'since'],
    ] as const) {
      const r = await api(qs);
      expect(r.status, qs).toBe(400);
      expect(JSON.stringify(r.body), qs).toContain(param);
    }
    const logsEndpoint = await fetch(`${n.apiUrl}/v1/functions/alpha/logs?status=nope`, {
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    expect(logsEndpoint.status).toBe(400);
  });

  it('follows with every filter: only matching new records are printed', async () => {
    const follow = spawn(
      process.execPath,
      [BIN, 'logs', 'alpha', 'beta', '--follow', '--filter', 'needle -skip', '--status', 'ok'],
      { env: { ...process.env, NIMBUS_DATA: '', NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey } },
    );
    let out = '';
    follow.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const skipped = [
      await call('alpha', 'say=haystack'),
      await call('beta', 'say=needle+skip'),
      await call('alpha', 'say=needle+failing&fail=1'),
    ];
    const wanted = await call('beta', 'say=needle+found');
    await eventually(async () => out.includes(wanted), 20_000);
    // From here the follower is past its backlog: what follows is new to it, the matching and the rest.
    skipped.push(await call('beta', 'say=needle+skip+again'), await call('alpha', 'say=nothing&fail=1'));
    const last = await call('alpha', 'say=needle+last');
    await eventually(async () => out.includes(last), 20_000);
    follow.kill('SIGINT');
    await exited(follow);
    expect(printed(out)).toEqual([wanted, last]);
    for (const id of skipped) expect(out).not.toContain(id);
    expect(out).toMatch(/^beta \| .*needle found/m);
  });
});

// Lambda's JSON log format per function (logFormat, applicationLogLevel, systemLogLevel), as a user sees it:
// the records' logs through `nimbus logs --json` and GET /v1/invocations, the readable `nimbus logs` output,
// the JSON filter terms, and the environment the function sees. Text functions stay as they were.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { BACKENDS, FIXTURES, eventually, runNimbus, startTestNimbus, type TestNimbus } from './helpers.js';

interface View {
  requestId: string;
  functionName: string;
  status: string;
  logs: string;
  durationMs: number;
  billedMs: number;
  memoryMB: number;
  initMs: number | null;
}

describe.each(BACKENDS)('JSON log format on %s', (backend) => {
  let n: TestNimbus;
  const ids: Record<string, string> = {};
  const bodies: Record<string, unknown> = {};
  const cli = (args: string[]) => runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey }, args);
  const api = async (qs: string) => {
    const res = await fetch(`${n.apiUrl}/v1/invocations?${qs}`, {
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    return { status: res.status, body: (await res.json()) as { invocations: View[]; error?: unknown } };
  };
  const call = async (key: string, path: string) => {
    const res = await fetch(`${n.gatewayUrl}${path}`);
    bodies[key] = await res.json().catch(() => null);
    ids[key] = res.headers.get('x-nimbus-request-id')!;
  };
  const lines = (v: View) =>
    v.logs
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const record = async (key: string) => {
    const r = await cli(['logs', '--request-id', ids[key]!, '--json']);
    expect(r.code).toBe(0);
    return (JSON.parse(r.stdout) as { records: View[] }).records[0]!;
  };

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'logformat'));
    await call('structured', '/structured');
    await call('verbose', '/verbose');
    await call('quiet', '/quiet');
    await call('plain', '/plain');
    await call('failing', '/structured?fail=1');
    await eventually(async () => (await api('limit=10')).body.invocations.length === 5, 20_000);
  }, 60_000);
  afterAll(async () => n?.cleanup());

  it('sets AWS_LAMBDA_LOG_FORMAT and AWS_LAMBDA_LOG_LEVEL for JSON functions only', () => {
    expect(bodies['structured']).toEqual({ format: 'JSON', level: 'WARN' });
    expect(bodies['verbose']).toEqual({ format: 'JSON', level: 'TRACE' });
    expect(bodies['quiet']).toEqual({ format: 'JSON', level: 'INFO' });
    expect(bodies['plain']).toEqual({ format: null, level: null });
  });

  it('writes console lines as JSON records and drops those below applicationLogLevel', async () => {
    const v = await record('structured');
    const all = lines(v);
    expect(all.map((l) => l['type'] ?? l['level'])).toEqual([
      'platform.start',
      'WARN',
      'ERROR',
      'ERROR',
      'platform.report',
    ]);
    const [, warn, lone, mixed] = all as Record<string, unknown>[];
    expect(warn).toEqual({
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT.*Z$/),
      level: 'WARN',
      requestId: ids['structured'],
      message: 'warn line 7',
    });
    // One Error alone keeps its structure (and its own fields) under message.
    expect(lone!['message']).toMatchObject({
      errorType: 'TypeError',
      errorMessage: 'bad input',
      code: 'E_BAD',
      stackTrace: expect.arrayContaining([expect.stringContaining('TypeError: bad input')]),
    });
    // With other arguments the message is formatted text and the error's fields sit beside it.
    expect(mixed).toMatchObject({ level: 'ERROR', errorType: 'TypeError', errorMessage: 'bad input' });
    expect(mixed!['message']).toMatch(/^failed with TypeError: bad input/);
  });

  it('keeps every level at TRACE, and objects keep their structure', async () => {
    const all = lines(await record('verbose'));
    expect(all.map((l) => l['type'] ?? l['level'])).toEqual([
      'platform.start',
      'TRACE',
      'DEBUG',
      'INFO',
      'INFO',
      'WARN',
      'ERROR',
      'ERROR',
      'platform.report',
    ]);
    expect(all[4]!['message']).toEqual({ user: 'u1', items: [1, 2] });
  });

  it('writes platform.start and platform.report with the record’s own metrics', async () => {
    const v = await record('verbose');
    const all = lines(v);
    expect(all[0]).toEqual({
      time: expect.any(String),
      type: 'platform.start',
      record: { requestId: ids['verbose'], version: '1' },
    });
    const report = all.at(-1)!;
    expect(report['type']).toBe('platform.report');
    expect(report['record']).toEqual({
      requestId: ids['verbose'],
      status: 'success',
      metrics: {
        durationMs: v.durationMs,
        billedDurationMs: v.billedMs,
        memorySizeMB: 128,
        ...(v.initMs !== null ? { initDurationMs: v.initMs } : {}),
        maxMemoryUsedMB: expect.any(Number),
      },
    });
  });

  it('reports a handler error as a JSON Invoke Error and an error status', async () => {
    const all = lines(await record('failing'));
    const invokeError = all.find(
      (l) => typeof l['message'] === 'string' && l['message'].startsWith('Invoke Error'),
    );
    expect(invokeError).toMatchObject({
      level: 'ERROR',
      errorType: 'RangeError',
      errorMessage: 'out of range',
    });
    expect(all.at(-1)!['record']).toMatchObject({ status: 'error', errorType: 'RangeError' });
  });

  it('leaves platform records out at systemLogLevel WARN', async () => {
    const all = lines(await record('quiet'));
    expect(all.map((l) => l['type'] ?? l['level'])).toEqual(['INFO', 'INFO', 'WARN', 'ERROR', 'ERROR']);
  });

  it('leaves Text functions as they were', async () => {
    const v = await record('plain');
    expect(v.logs).toMatch(/^\d{4}-\d\d-\d\dT\S+Z\t\S+\tINFO\tinfo line$/m);
    expect(v.logs).not.toContain('{"timestamp"');
    const r = await cli(['logs', 'plain']);
    expect(r.stdout).toMatch(/^START RequestId: \S+ Version: 1/m);
    expect(r.stdout).toMatch(/^REPORT RequestId: /m);
  });

  it('prints JSON records readably in `nimbus logs`', async () => {
    const r = await cli(['logs', 'verbose']);
    expect(r.code).toBe(0);
    const out = r.stdout.trimEnd().split('\n');
    expect(out[0]).toMatch(new RegExp(`^START RequestId: ${ids['verbose']} Version: 1`));
    expect(out.some((l) => new RegExp(`^\\S+Z\\t${ids['verbose']}\\tINFO\\tinfo line$`).test(l))).toBe(true);
    expect(r.stdout).toContain(`\t${ids['verbose']}\tINFO\t{"user":"u1","items":[1,2]}`);
    expect(out.at(-1)).toMatch(new RegExp(`^REPORT RequestId: ${ids['verbose']}\\tDuration: .*Cost: `));
    expect(r.stdout).not.toContain('{"timestamp"');
  });

  it('filters on JSON fields with { $.key = value } terms, in the CLI and the API', async () => {
    const printed = async (pattern: string) =>
      [...(await cli(['logs', '--filter', pattern])).stdout.matchAll(/START RequestId: (\S+)/g)].map(
        (m) => m[1],
      );
    expect(await printed('{ $.level = "TRACE" }')).toEqual([ids['verbose']]);
    expect(await printed('{ $.errorType = "RangeError" }')).toEqual([ids['failing']]);
    expect(await printed('{ $.level = "ERROR" } -{ $.level = "INFO" }')).toEqual([
      ids['structured'],
      ids['failing'],
    ]);
    expect(await printed('{ $.message.user = "u1" } { $.status = "success" }')).toEqual([ids['verbose']]);
    const viaApi = await api(`q=${encodeURIComponent('{ $.level = "DEBUG" }')}`);
    expect(viaApi.status).toBe(200);
    expect(viaApi.body.invocations.map((i) => i.requestId)).toEqual([ids['verbose']]);
    const bad = await api(`q=${encodeURIComponent('{ level = ERROR }')}`);
    expect(bad.status).toBe(400);
    const badCli = await cli(['logs', '--filter', '{ $.level = ERROR }']);
    expect(badCli.code).not.toBe(0);
    expect(badCli.stderr.trim().split('\n')[0]).toMatch(/--filter is not a pattern: .*JSON term|value/);
    expect(badCli.stderr).not.toMatch(/\n\s+at /);
  });
  // Last: it adds a record of structured, which the filter tests above do not expect.
  it("gives the Invoke API's log tail as the JSON records, platform records included", async () => {
    const lambda = new LambdaClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'structured', LogType: 'Tail' }));
    const tail = Buffer.from(out.LogResult!, 'base64').toString('utf8').trimEnd().split('\n');
    const types = tail.map((l) => {
      const rec = JSON.parse(l) as Record<string, unknown>;
      return rec['type'] ?? rec['level'];
    });
    expect(types).toEqual(['platform.start', 'WARN', 'ERROR', 'ERROR', 'platform.report']);
  });
});

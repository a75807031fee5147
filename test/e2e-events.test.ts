// Async invocations through the public surface, on both stores: retries of a failing function, its
// destinations with AWS's record, failed events listed and replayed, and manifests that name bad destinations.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteFunctionEventInvokeConfigCommand,
  GetFunctionEventInvokeConfigCommand,
  LambdaClient,
  PutFunctionEventInvokeConfigCommand,
  UpdateFunctionEventInvokeConfigCommand,
} from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, FIXTURES, eventually, startTestNimbus, type TestNimbus } from './helpers.js';

describe.each(BACKENDS)('async events on %s', (backend) => {
  let n: TestNimbus;

  beforeAll(async () => {
    // Real time here: the first retry waits 200 ms instead of a minute (the spacing itself is unit-tested in
    // store time, src/events/async.test.ts).
    n = await startTestNimbus({ backend, retryBaseMs: 200 });
    await n.deploy(join(FIXTURES, 'retry'));
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${n.apiUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${n.apiKey}`, ...init.headers },
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const records = async (fn: string) =>
    (await api(`/v1/invocations?function=${fn}&limit=1000`)).body.invocations as any[];
  const destinations = async () =>
    (await records('sink')).flatMap((r) =>
      [...String(r.logs).matchAll(/DESTINATION (.*)\n/g)].map((m) => JSON.parse(m[1]!)),
    );

  it('retries a failing function once, sends the AWS failure record to onFailure, and keeps the event as failed', async () => {
    const { requestId } = await n.client.invoke('flaky', JSON.stringify({ fail: true, n: 1 }), {
      async: true,
    });
    const dest = await eventually(async () =>
      (await destinations()).find((d) => d.requestContext.requestId === requestId),
    );
    expect(dest).toMatchObject({
      version: '1.0',
      requestContext: {
        requestId,
        functionArn: expect.stringMatching(/:function:flaky:\$LATEST$/),
        condition: 'RetriesExhausted',
        approximateInvokeCount: 2,
      },
      requestPayload: { fail: true, n: 1 },
      responseContext: { statusCode: 200, functionError: 'Unhandled' },
      responsePayload: { errorType: 'Error', errorMessage: 'boom 1' },
    });
    const attempts = (await records('flaky')).filter((r) => r.requestId === requestId);
    expect(attempts.map((r) => [r.attempt, r.status, r.trigger]).sort()).toEqual([
      [1, 'error', 'event'],
      [2, 'error', 'event'],
    ]);
    const failed = await n.client.events({ function: 'flaky', state: 'dead' });
    expect(failed.map((e) => [e.id, e.attempts, e.lastError])).toEqual([
      [requestId, 2, 'RetriesExhausted: Error: boom 1'],
    ]);
    // The function list counts it too, as nimbus ls shows it.
    expect((await n.client.get('flaky')).events).toMatchObject({ dead: 1, pending: 0, inFlight: 0 });
  });

  it('sends a success to onSuccess with the response', async () => {
    const { requestId } = await n.client.invoke('flaky', JSON.stringify({ n: 2 }), { async: true });
    const dest = await eventually(async () =>
      (await destinations()).find((d) => d.requestContext.requestId === requestId),
    );
    expect(dest).toMatchObject({
      requestContext: { condition: 'Success', approximateInvokeCount: 1 },
      responseContext: { statusCode: 200 },
      responsePayload: { ok: 2 },
    });
    expect(dest.responseContext).not.toHaveProperty('functionError');
  });

  it('replays a failed event: it runs again with its retries anew, as new attempts of the same request', async () => {
    const { requestId } = await n.client.invoke('flaky', JSON.stringify({ fail: true, n: 3 }), {
      async: true,
    });
    await eventually(async () => (await n.client.events({ state: 'dead' })).some((e) => e.id === requestId));
    expect(await n.client.replayEvent(requestId)).toEqual({ replayed: requestId });
    const again = await eventually(async () => {
      const rs = (await records('flaky')).filter((r) => r.requestId === requestId);
      return rs.length === 4 && (await n.client.event(requestId)).state === 'dead' ? rs : undefined;
    });
    expect(again.map((r) => r.attempt).sort()).toEqual([1, 2, 3, 4]);
    // The destination is itself an async invoke of the sink, so its record may land after the event turns
    // dead: wait for both rounds' deliveries.
    const sent = await eventually(async () => {
      const ds = (await destinations()).filter((d) => d.requestContext.requestId === requestId);
      return ds.length >= 2 ? ds : undefined;
    });
    // Each round counts its own invocations: the replay's retries start anew.
    expect(sent.map((d) => d.requestContext.approximateInvokeCount).sort()).toEqual([2, 2]);
  });

  it('takes retries and destinations from PutFunctionEventInvokeConfig through the AWS SDK', async () => {
    const lambda = new LambdaClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
    try {
      const arn = (fn: string) => `arn:aws:lambda:us-east-1:000000000000:function:${fn}`;
      // The manifest's configuration shows until the API sets one.
      const before = await lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'flaky' }));
      expect(before).toMatchObject({
        MaximumRetryAttempts: 1,
        DestinationConfig: { OnFailure: { Destination: arn('sink') } },
      });
      const put = await lambda.send(
        new PutFunctionEventInvokeConfigCommand({
          FunctionName: 'flaky',
          MaximumRetryAttempts: 0,
          DestinationConfig: { OnFailure: { Destination: arn('sink') } },
        }),
      );
      expect(put).toMatchObject({
        FunctionArn: `${arn('flaky')}:$LATEST`,
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: 21600,
      });
      expect(put.LastModified).toBeInstanceOf(Date);
      const updated = await lambda.send(
        new UpdateFunctionEventInvokeConfigCommand({ FunctionName: 'flaky', MaximumEventAgeInSeconds: 600 }),
      );
      expect(updated).toMatchObject({ MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 600 });

      const { requestId } = await n.client.invoke('flaky', JSON.stringify({ fail: true, n: 9 }), {
        async: true,
      });
      await eventually(async () =>
        (await n.client.events({ state: 'dead' })).some((e) => e.id === requestId),
      );
      expect((await records('flaky')).filter((r) => r.requestId === requestId)).toHaveLength(1);

      await expect(
        lambda.send(
          new PutFunctionEventInvokeConfigCommand({ FunctionName: 'flaky', MaximumRetryAttempts: 5 }),
        ),
      ).rejects.toMatchObject({ name: 'InvalidParameterValueException' });
      await expect(
        lambda.send(
          new PutFunctionEventInvokeConfigCommand({
            FunctionName: 'flaky',
            DestinationConfig: { OnFailure: { Destination: 'arn:aws:sqs:us-east-1:000000000000:dlq' } },
          }),
        ),
      ).rejects.toMatchObject({ name: 'InvalidParameterValueException' });
      const raw = await fetch(`${n.apiUrl}/2019-09-25/functions/flaky/event-invoke-config`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${n.apiKey}` },
        body: JSON.stringify({ DestinationConfig: 'x' }),
      });
      expect(raw.status).toBe(400);
      expect(raw.headers.get('x-amzn-errortype')).toBe('InvalidParameterValueException');
      await expect(
        lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'sink' })),
      ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });

      await lambda.send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName: 'flaky' }));
      const after = await lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: 'flaky' }));
      expect(after.MaximumRetryAttempts).toBe(1);
    } finally {
      lambda.destroy();
    }
  });

  it('answers 404 for an unknown event and 409 for replaying one that has not failed', async () => {
    expect((await api('/v1/events/nope')).status).toBe(404);
    const r = await api('/v1/events/nope/replay', { method: 'POST' });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('NotFound');
    expect((await api('/v1/events?state=bogus')).status).toBe(400);
  });
});

describe('async configuration in the manifest', () => {
  let n: TestNimbus;
  let dir: string;
  beforeAll(async () => {
    n = await startTestNimbus();
    dir = mkdtempSync(join(tmpdir(), 'nimbus-async-manifest-'));
  });
  afterAll(async () => {
    await n?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const deployWith = async (asyncBlock: string): Promise<{ status: number; message: string }> => {
    const svc = join(dir, `svc-${Math.random().toString(36).slice(2)}`);
    mkdirSync(svc);
    writeFileSync(join(svc, 'h.js'), 'exports.f = async () => 1;\n');
    writeFileSync(
      join(svc, 'nimbus.yaml'),
      `service: cfg\nfunctions:\n  f:\n    handler: h.f\n    async:\n${asyncBlock}\n`,
    );
    try {
      await n.deploy(svc);
      return { status: 200, message: '' };
    } catch (err) {
      const e = err as { status?: number; message: string };
      return { status: e.status ?? 0, message: e.message };
    }
  };

  it('refuses a destination that does not exist, naming the field, and deploys nothing', async () => {
    const r = await deployWith('      onFailure: { function: nowhere }');
    expect(r.status).toBe(400);
    expect(r.message).toContain('functions.f.async.onFailure.function');
    expect(r.message).toContain('"nowhere"');
    expect((await n.client.list()).functions.map((f) => f.name)).not.toContain('f');
  });

  it('refuses a function that is its own destination, an undeclared queue destination and out-of-range values', async () => {
    expect((await deployWith('      onSuccess: { function: f }')).message).toMatch(
      /names the function itself/,
    );
    expect((await deployWith('      onFailure: { queue: dlq }')).message).toMatch(
      /functions\.f\.async\.onFailure\.queue: names queue "dlq", which is not declared/,
    );
    expect((await deployWith('      maximumRetryAttempts: 3')).message).toMatch(
      /functions\.f\.async\.maximumRetryAttempts: must be at most 2/,
    );
    expect((await deployWith('      maximumEventAgeInSeconds: 30')).message).toMatch(/must be at least 60/);
    expect((await deployWith('      retries: 1')).message).toMatch(/unknown field "retries"/);
  });
});

describe('recursive loops', () => {
  let n: TestNimbus;
  let dir: string;
  beforeAll(async () => {
    n = await startTestNimbus();
    dir = mkdtempSync(join(tmpdir(), 'nimbus-loop-'));
  });
  afterAll(async () => {
    await n?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops a function that keeps invoking itself, passing the trace on as the AWS SDK does', async () => {
    // The function calls Invoke (Event) on itself with X-Amzn-Trace-Id from _X_AMZN_TRACE_ID, which is what
    // the AWS SDK's recursion-detection middleware sends from inside a function.
    writeFileSync(
      join(dir, 'h.js'),
      `exports.loop = async (event) => {
        const res = await fetch(process.env.API_URL + '/2015-03-31/functions/loop/invocations', {
          method: 'POST',
          headers: {
            authorization: 'Bearer ' + process.env.API_KEY,
            'x-amz-invocation-type': 'Event',
            'x-amzn-trace-id': process.env._X_AMZN_TRACE_ID,
          },
          body: JSON.stringify({ n: (event.n || 0) + 1 }),
        });
        console.log('HOP ' + (event.n || 0) + ' ' + res.status);
        return event.n || 0;
      };\n`,
    );
    writeFileSync(
      join(dir, 'nimbus.yaml'),
      `service: loop\nfunctions:\n  loop:\n    handler: h.loop\n    timeout: 10\n    environment:\n      API_URL: "${n.apiUrl}"\n      API_KEY: "${n.apiKey}"\n`,
    );
    await n.deploy(dir);
    await n.client.invoke('loop', '{}', { async: true });
    const dead = await eventually(async () => {
      const d = await n.client.events({ function: 'loop', state: 'dead' });
      return d.length > 0 ? d : undefined;
    }, 30_000);
    expect(dead.map((e) => e.lastError)).toEqual(['RecursiveInvocationLoop']);
    const hops = await eventually(async () => {
      const res = await fetch(`${n.apiUrl}/v1/functions/loop/logs?limit=1000`, {
        headers: { authorization: `Bearer ${n.apiKey}` },
      });
      const { records } = (await res.json()) as { records: { logs: string }[] };
      return records.length >= 16 ? records : undefined;
    });
    expect(hops).toHaveLength(16);
    expect((await n.client.get('loop')).events).toMatchObject({ pending: 0, dead: 1 });
  });
});

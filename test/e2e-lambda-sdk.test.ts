// The official AWS SDK v3 Lambda client, pointed at Nimbus with AWS_ENDPOINT_URL, signing with SigV4.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { BACKENDS, FIXTURES, eventually, startTestNimbus, type TestNimbus } from './helpers.js';

describe.each(BACKENDS)('on %s', (backend) => {
  let n: TestNimbus;
  let lambda: LambdaClient;
  const decode = (b?: Uint8Array) => (b ? JSON.parse(Buffer.from(b).toString('utf8')) : undefined);

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'behave'));
    process.env['AWS_ENDPOINT_URL'] = n.apiUrl;
    lambda = new LambdaClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    delete process.env['AWS_ENDPOINT_URL'];
    lambda?.destroy();
    await n?.cleanup();
  });

  describe('@aws-sdk/client-lambda Invoke', () => {
    it('RequestResponse returns the payload and executed version', async () => {
      const out = await lambda.send(
        new InvokeCommand({ FunctionName: 'counter', Payload: Buffer.from('{}') }),
      );
      expect(out.StatusCode).toBe(200);
      expect(decode(out.Payload).count).toBeGreaterThan(0);
      expect(out.ExecutedVersion).toBe('1');
      expect(out.FunctionError).toBeUndefined();
    });

    it('accepts a full ARN as the function name', async () => {
      const out = await lambda.send(
        new InvokeCommand({ FunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:counter' }),
      );
      expect(out.StatusCode).toBe(200);
    });

    it('Tail returns the last 4 KB of logs, base64', async () => {
      const out = await lambda.send(
        new InvokeCommand({ FunctionName: 'echo', LogType: 'Tail', Payload: Buffer.from('{"a":1}') }),
      );
      const log = Buffer.from(out.LogResult!, 'base64').toString('utf8');
      expect(log).toContain('echo called');
      expect(log).toMatch(/REPORT RequestId: [0-9a-f-]+\tDuration: /);
    });

    it('a function error sets FunctionError and the error payload', async () => {
      const out = await lambda.send(new InvokeCommand({ FunctionName: 'fail' }));
      expect(out.StatusCode).toBe(200);
      expect(out.FunctionError).toBe('Unhandled');
      expect(decode(out.Payload)).toMatchObject({
        errorType: 'TypeError',
        errorMessage: 'the function failed on purpose',
      });
    });

    it('Event is accepted with 202 and runs', async () => {
      const out = await lambda.send(
        new InvokeCommand({
          FunctionName: 'echo',
          InvocationType: 'Event',
          Payload: Buffer.from('{"async":true}'),
        }),
      );
      expect(out.StatusCode).toBe(202);
      const rec = await eventually(async () => {
        const list = (await (
          await fetch(`${n.apiUrl}/v1/invocations?function=echo`, {
            headers: { authorization: `Bearer ${n.apiKey}` },
          })
        ).json()) as { invocations: { trigger: string; status: string }[] };
        return list.invocations.find((i) => i.trigger === 'event');
      });
      expect(rec.status).toBe('ok');
    });

    it('DryRun answers 204 without running', async () => {
      const out = await lambda.send(new InvokeCommand({ FunctionName: 'counter', InvocationType: 'DryRun' }));
      expect(out.StatusCode).toBe(204);
    });

    it('maps errors to the SDK exception types', async () => {
      await expect(lambda.send(new InvokeCommand({ FunctionName: 'nope' }))).rejects.toMatchObject({
        name: 'ResourceNotFoundException',
        $metadata: { httpStatusCode: 404 },
      });
      await expect(
        lambda.send(new InvokeCommand({ FunctionName: 'counter', Payload: Buffer.from('{not json') })),
      ).rejects.toMatchObject({ name: 'InvalidRequestContentException', $metadata: { httpStatusCode: 400 } });
      await expect(
        lambda.send(
          new InvokeCommand({ FunctionName: 'counter', Payload: Buffer.alloc(6 * 1024 * 1024 + 1, 32) }),
        ),
      ).rejects.toMatchObject({ name: 'RequestTooLargeException', $metadata: { httpStatusCode: 413 } });
    });

    it('rejects a wrong secret and changes nothing', async () => {
      const bad = new LambdaClient({
        region: 'us-east-1',
        credentials: { accessKeyId: 'nimbus', secretAccessKey: 'wrong' },
        maxAttempts: 1,
      });
      await expect(bad.send(new InvokeCommand({ FunctionName: 'counter' }))).rejects.toMatchObject({
        $metadata: { httpStatusCode: 403 },
      });
      bad.destroy();
    });
  });

  describe('control API authentication', () => {
    it('answers 401 without a key and changes nothing', async () => {
      const before = (await n.client.list()).functions.length;
      for (const [method, path] of [
        ['GET', '/v1/functions'],
        ['DELETE', '/v1/functions/echo'],
        ['POST', '/v1/deploy'],
        ['POST', '/2015-03-31/functions/counter/invocations'],
      ] as const) {
        const res = await fetch(n.apiUrl + path, { method, body: method === 'POST' ? 'x' : undefined });
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(await res.json()).toBeTypeOf('object');
      }
      const wrong = await fetch(`${n.apiUrl}/v1/functions/echo`, {
        method: 'DELETE',
        headers: { authorization: 'Bearer not-the-key' },
      });
      expect(wrong.status).toBe(401);
      expect((await n.client.list()).functions.length).toBe(before);
    });

    it('binds the control API to 127.0.0.1 by default', () => {
      expect(new URL(n.apiUrl).hostname).toBe('127.0.0.1');
    });
  });
});

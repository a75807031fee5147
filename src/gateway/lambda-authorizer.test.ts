// The authorizer cache in store time: answers expire after resultTtl, failures are never kept. The invoker
// is the seam (a one-method interface); the real one runs in test/e2e-gateway-protection.test.ts.
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import type { InvokeOutcome, InvokeRequest, Invoker } from '../invoker/types.js';
import type { HttpApiEventV2 } from './events.js';
import { LambdaAuthorizers } from './lambda-authorizer.js';

function invoker(
  answer: () => { status?: InvokeOutcome['status']; payload: string },
): Invoker & { calls: InvokeRequest[] } {
  const calls: InvokeRequest[] = [];
  return {
    calls,
    invoke: async (req) => {
      calls.push(req);
      const { status = 'ok', payload } = answer();
      return {
        requestId: 'r',
        project: 'default',
        functionName: 'auth',
        version: '1',
        status,
        payload,
        headers: {},
        body: Buffer.alloc(0),
        durationMs: 1,
        cold: false,
        logs: '',
      };
    },
  };
}

const event = (authorization?: string) =>
  ({
    version: '2.0',
    headers: authorization === undefined ? {} : { authorization },
    requestContext: {},
  }) as unknown as HttpApiEventV2;

const request = (ev: HttpApiEventV2, resultTtl = 60) => ({
  project: 'default',
  service: 's',
  authorizerName: 'custom',
  authorizer: {
    type: 'lambda' as const,
    function: 'auth',
    resultTtl,
    identitySource: ['$request.header.Authorization'],
  },
  event: ev,
  routeArn: 'arn:aws:execute-api:us-east-1:0:nimbus/$default/GET/x',
});

describe('LambdaAuthorizers', () => {
  it('reuses an answer for resultTtl seconds, then asks again', async () => {
    const clock = new ManualClock();
    const inv = invoker(() => ({ payload: '{"isAuthorized":true}' }));
    const a = new LambdaAuthorizers(inv, clock);
    await a.authorize(request(event('t')));
    clock.advance(59_999);
    await a.authorize(request(event('t')));
    expect(inv.calls).toHaveLength(1);
    await a.authorize(request(event('other')));
    expect(inv.calls).toHaveLength(2);
    clock.advance(1);
    expect(await a.authorize(request(event('t')))).toEqual({ ok: true, context: {} });
    expect(inv.calls).toHaveLength(3);
    expect(inv.calls[0]!.trigger).toBe('authorizer');
  });

  it('keeps no failures, and caches nothing with resultTtl 0', async () => {
    let status: InvokeOutcome['status'] = 'error';
    const inv = invoker(() => ({ status, payload: '{"isAuthorized":false}' }));
    const a = new LambdaAuthorizers(inv, new ManualClock());
    expect(await a.authorize(request(event('t')))).toMatchObject({ ok: false, status: 500 });
    status = 'ok';
    expect(await a.authorize(request(event('t')))).toMatchObject({ ok: false, status: 403 });
    expect(await a.authorize(request(event('t')))).toMatchObject({ ok: false, status: 403 });
    expect(inv.calls).toHaveLength(2);
    await a.authorize(request(event('t'), 0));
    await a.authorize(request(event('t'), 0));
    expect(inv.calls).toHaveLength(4);
  });

  it('answers 401 without invoking when the identity source is missing or empty', async () => {
    const inv = invoker(() => ({ payload: '{"isAuthorized":true}' }));
    const a = new LambdaAuthorizers(inv, new ManualClock());
    expect(await a.authorize(request(event()))).toMatchObject({ ok: false, status: 401 });
    expect(await a.authorize(request(event('')))).toMatchObject({ ok: false, status: 401 });
    expect(inv.calls).toHaveLength(0);
  });
});

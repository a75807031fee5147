// Pure decisions: a Lambda authorizer's answer (simple or IAM policy) and which origins CORS admits.
import { describe, expect, it } from 'vitest';
import { decide } from './lambda-authorizer.js';
import { allowedOrigin } from './cors.js';

const arn = 'arn:aws:execute-api:us-east-1:000000000000:nimbus/$default/GET/items/1';
const policy = (...Statement: unknown[]) => ({ principalId: 'u', policyDocument: { Statement } });

describe('decide', () => {
  it('reads the simple form', () => {
    expect(decide({ isAuthorized: true, context: { a: 1 } }, arn)).toEqual({ ok: true, context: { a: 1 } });
    expect(decide({ isAuthorized: false }, arn)).toMatchObject({ ok: false, status: 403 });
  });

  it('allows by policy with wildcards, and a matching Deny wins', () => {
    const allow = {
      Effect: 'Allow',
      Action: 'execute-api:Invoke',
      Resource: ['arn:aws:execute-api:*:*:nimbus/*/GET/*'],
    };
    expect(decide(policy(allow), arn)).toEqual({ ok: true, context: { principalId: 'u' } });
    const deny = { Effect: 'Deny', Action: 'execute-api:*', Resource: arn };
    expect(decide(policy(allow, deny), arn)).toMatchObject({ ok: false, status: 403 });
    const elsewhere = { ...allow, Resource: 'arn:aws:execute-api:*:*:nimbus/*/POST/*' };
    expect(decide(policy(elsewhere), arn)).toMatchObject({ ok: false, status: 403 });
  });

  it('calls anything else a failure (500)', () => {
    for (const r of [null, 'yes', [], { isAuthorized: 'true' }, { policyDocument: {} }]) {
      expect(decide(r, arn)).toMatchObject({ ok: false, status: 500 });
    }
  });
});

describe('allowedOrigin', () => {
  const cors = (...allowOrigins: string[]) => ({
    allowOrigins,
    allowMethods: ['*'],
    allowHeaders: [],
    exposeHeaders: [],
    allowCredentials: false,
  });
  it('matches exactly, by subdomain wildcard, or anything with "*"', () => {
    const c = cors('https://app.example', 'https://*.tenant.example');
    expect(allowedOrigin(c, 'https://APP.example')).toBe('https://APP.example');
    expect(allowedOrigin(c, 'https://a.b.tenant.example')).toBe('https://a.b.tenant.example');
    expect(allowedOrigin(c, 'https://tenant.example')).toBeUndefined();
    expect(allowedOrigin(c, 'http://app.example')).toBeUndefined();
    expect(allowedOrigin(c, 'https://eviltenant.example')).toBeUndefined();
    expect(allowedOrigin(c, undefined)).toBeUndefined();
    expect(allowedOrigin(cors('*'), 'https://x.example')).toBe('*');
  });
});

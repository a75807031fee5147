// Run with `node --test`. Node 22.6 and later run TypeScript (by default from 23.6, with
// --experimental-strip-types before that), so there the handler is called directly with sample events;
// older Node skips that test. With NIMBUS_URL set to the gateway (e.g. http://localhost:8080) it also
// calls the deployed API, on any Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';

const canRunTs = Boolean(process.features.typescript);

test(
  'greeting greets by name, and refuses a long one',
  { skip: !canRunTs && 'this Node cannot import .ts' },
  async () => {
    const { greeting } = await import('../src/handler.ts');
    const ok = await greeting({ rawPath: '/greeting', queryStringParameters: { name: 'Ada' } });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(JSON.parse(ok.body), { greeting: 'Hello, Ada!' });
    const long = await greeting({ rawPath: '/greeting', queryStringParameters: { name: 'x'.repeat(101) } });
    assert.equal(long.statusCode, 400);
  },
);

test('the deployed API answers (when NIMBUS_URL is set)', { skip: !process.env.NIMBUS_URL }, async () => {
  const res = await fetch(`${process.env.NIMBUS_URL}/greeting?name=Ada`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { greeting: 'Hello, Ada!' });
  assert.equal((await fetch(`${process.env.NIMBUS_URL}/greeting?name=${'x'.repeat(101)}`)).status, 400);
});

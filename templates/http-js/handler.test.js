// Run with `node --test`: calls the handlers directly with sample events, no server needed.
// With NIMBUS_URL set to the gateway (e.g. http://localhost:8080) it also calls the deployed API.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { hello, echo } = require('./handler.js');

const get = (query) => ({ requestContext: { http: { method: 'GET' } }, queryStringParameters: query });
const post = (body) => ({ requestContext: { http: { method: 'POST' } }, body, isBase64Encoded: false });

test('hello greets by name, or the world', async () => {
  assert.deepEqual(JSON.parse((await hello(get({ name: 'Ada' }))).body), { message: 'Hello, Ada!' });
  assert.deepEqual(JSON.parse((await hello(get(undefined))).body), { message: 'Hello, world!' });
});

test('echo returns the JSON body, and 400 for anything else', async () => {
  const ok = await echo(post('{"hi":1}'));
  assert.equal(ok.statusCode, 200);
  assert.deepEqual(JSON.parse(ok.body), { received: { hi: 1 } });
  assert.equal((await echo(post('not json'))).statusCode, 400);
});

test('the deployed API answers (when NIMBUS_URL is set)', { skip: !process.env.NIMBUS_URL }, async () => {
  const res = await fetch(`${process.env.NIMBUS_URL}/hello?name=Ada`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { message: 'Hello, Ada!' });
});

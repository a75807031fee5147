// Run with `node --test`: calls the job directly with the event a schedule delivers and with none.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { tick } = require('./handler.js');

test('a scheduled run reports the time it was scheduled for', async () => {
  const event = {
    version: '0',
    id: '0f8c3bd2-6c43-4a7b-9d0a-1e5f7f1b2c3d',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    time: '2026-01-01T12:00:00Z',
    resources: [],
    detail: {},
  };
  assert.deepEqual(await tick(event), { job: 'tick', trigger: 'schedule', at: '2026-01-01T12:00:00Z' });
});

test('a manual run (nimbus invoke tick) works too', async () => {
  const result = await tick({});
  assert.equal(result.trigger, 'manual');
  assert.ok(!Number.isNaN(Date.parse(result.at)));
});

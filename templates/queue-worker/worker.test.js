// Run with `node --test`: calls the worker directly with a sample SQS event, and checks the job rules the
// POST /jobs route applies. (enqueue.js itself needs the AWS SDK Nimbus provides; try it with curl.)
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { handler } = require('./worker.js');
const { parseJob } = require('./job.js');

const record = (messageId, body) => ({
  messageId,
  receiptHandle: `rh-${messageId}`,
  body,
  attributes: { ApproximateReceiveCount: '1' },
  messageAttributes: {},
  eventSource: 'aws:sqs',
  eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:jobs',
});

test('the worker does each job and reports only the bad ones', async () => {
  const result = await handler({
    Records: [record('m1', '{"task":"resize"}'), record('m2', 'not json'), record('m3', '{"task":"mail"}')],
  });
  assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: 'm2' }] });
});

test('a job needs a task', () => {
  assert.deepEqual(parseJob('{"task":"resize","size":2}'), { task: 'resize', size: 2 });
  assert.throws(() => parseJob('{}'), /needs a "task"/);
  assert.throws(() => parseJob('nope'), /is JSON/);
});

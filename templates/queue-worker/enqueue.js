// POST /jobs: checks the job and sends it to queue "jobs" with the AWS SDK v3 client, which Nimbus provides
// to every function (nothing to install) and points at itself through the environment it gives the function.
const { SQSClient, GetQueueUrlCommand, SendMessageCommand } = require('@aws-sdk/client-sqs');
const { parseJob } = require('./job.js');

const sqs = new SQSClient({});
let queueUrl;

exports.handler = async (event) => {
  const raw = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString() : event.body;
  let job;
  try {
    job = parseJob(raw);
  } catch (err) {
    return json(400, { error: err.message });
  }
  queueUrl ??= (await sqs.send(new GetQueueUrlCommand({ QueueName: 'jobs' }))).QueueUrl;
  const sent = await sqs.send(
    new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(job) }),
  );
  return json(202, { queued: sent.MessageId });
};

function json(statusCode, value) {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

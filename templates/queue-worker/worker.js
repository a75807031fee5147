// Invoked by queue "jobs" with a batch of messages (an SQS event). A message it cannot handle is reported
// in batchItemFailures, so only that one is delivered again (and after 3 tries lands in jobs-dlq).
const { parseJob, runJob } = require('./job.js');

exports.handler = async (event) => {
  const batchItemFailures = [];
  for (const record of event.Records) {
    try {
      const result = await runJob(parseJob(record.body));
      console.log(`job ${record.messageId}: ${result}`);
    } catch (err) {
      console.log(`job ${record.messageId} failed: ${err.message}`);
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
};

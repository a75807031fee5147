// local-aws-sqs (npm, pure JavaScript, in memory, both SQS protocols) on a free port, for bench/sqs.mjs:
// prints {"port": N} once it listens.
import { createSqsServer } from 'local-aws-sqs';

const server = await createSqsServer({
  port: 0,
  hostname: '127.0.0.1',
  emulateQueueCreationLifecycle: false,
});
const address = server.address();
console.log(JSON.stringify({ port: typeof address === 'object' && address ? address.port : null }));

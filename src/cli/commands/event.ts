import { UsageError, defineCommand, type OptionSpec } from '../command.js';
import { table } from '../format.js';
import { FIELD_NAMES, SOURCES, generateEvent, type Fields } from '../samples.js';

const FIELD_HELP: Record<string, string> = {
  method: 'http: the request method',
  path: 'http: the request path',
  route: 'http: the route it matched, e.g. /items/{id} (default: the path)',
  query: 'http: the query string, e.g. "a=1&b=2"',
  body: 'http, sqs: the request or message body',
  headers: 'http: extra headers as a JSON object',
  queue: 'sqs: the queue name (".fifo" for a FIFO queue)',
  attributes: 'sqs: message attributes as JSON, e.g. {"type":"order"}',
  group: 'sqs: the message group id (FIFO)',
  bucket: 's3: the bucket',
  key: 's3: the object key',
  size: 's3: the object size in bytes',
  name: 's3: ObjectCreated:Put, ObjectRemoved:Delete...; dynamodb: INSERT, MODIFY or REMOVE',
  table: 'dynamodb: the table',
  keys: "dynamodb: the item's key in DynamoDB JSON",
  'new-image': 'dynamodb: the item after the write, in DynamoDB JSON',
  'old-image': 'dynamodb: the item before the write (default: the new image)',
  rule: 'schedule: the rule name in resources',
  from: 'email: the sender',
  to: 'email: the recipient',
  subject: 'email: the subject',
  text: 'email: the plain-text body',
};

const options: Record<string, OptionSpec> = Object.fromEntries(
  FIELD_NAMES.map((n) => [n, { type: 'string', description: FIELD_HELP[n] ?? n, placeholder: 'value' }]),
);

export default defineCommand({
  name: 'event',
  summary: 'Print a sample event of a trigger (http, sqs, s3, schedule, dynamodb, email) to invoke with',
  description:
    'Prints the event a trigger would deliver, built by the code that builds the live ones, to edit and\ninvoke with: `nimbus event generate sqs --body hi > ev.json; nimbus invoke fn -f ev.json`, or at once\n`nimbus invoke fn --event sqs`. `nimbus event sources` lists the sources and their fields.',
  args: [
    { name: 'action', description: 'generate or sources', required: true },
    { name: 'source', description: Object.keys(SOURCES).join(', ') },
  ],
  options,
  examples: [
    'nimbus event sources',
    'nimbus event generate http --method POST --path /todos --body \'{"title":"x"}\'',
    'nimbus event generate sqs --body hello --queue orders',
    'nimbus event generate s3 --bucket uploads --key a.txt | nimbus invoke thumbnail -f -',
  ],
  async run(ctx) {
    const action = ctx.args['action']!;
    if (action === 'sources') {
      if (ctx.json) {
        ctx.printJson({
          sources: Object.entries(SOURCES).map(([name, s]) => ({
            name,
            aliases: s.aliases,
            fields: s.fields,
          })),
        });
        return;
      }
      ctx.out(
        table(
          ['source', 'aliases', 'fields', 'what'],
          Object.entries(SOURCES).map(([name, s]) => [
            name,
            s.aliases.join(', ') || '-',
            Object.keys(s.fields)
              .map((f) => `--${f}`)
              .join(' '),
            s.summary,
          ]),
        ),
      );
      return;
    }
    if (action !== 'generate') {
      throw new UsageError(`"${action}" is not an event action`, 'use generate or sources');
    }
    const source = ctx.args['source'];
    if (!source) {
      throw new UsageError('missing <source>', `choose one of ${Object.keys(SOURCES).join(', ')}`);
    }
    const fields: Fields = {};
    for (const n of FIELD_NAMES) fields[n] = ctx.options[n] as string | undefined;
    // Pretty in both modes: it is there to be read and edited.
    ctx.printJson(generateEvent(source, fields));
  },
});

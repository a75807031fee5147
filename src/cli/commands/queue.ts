import type { SendMessageInput } from '../../client/index.js';
import { defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';

const ACTIONS = ['ls', 'send', 'peek', 'purge'] as const;

export default defineCommand({
  name: 'queue',
  aliases: ['queues'],
  summary: 'List queues, send a message, look at what waits, or purge',
  description:
    'Queues are declared under "queues:" in a nimbus.yaml; functions consume them with a queue event.\n' +
    '  nimbus queue ls                       every queue with its depth, in flight, oldest age, dead letters\n' +
    '  nimbus queue send <queue> --body TEXT sends one message\n' +
    '  nimbus queue peek <queue>             shows waiting messages without receiving them\n' +
    '  nimbus queue purge <queue>            deletes every message of the queue',
  args: [
    { name: 'action', description: 'ls, send, peek or purge', required: true },
    { name: 'queue', description: 'The queue (send, peek, purge)' },
  ],
  options: {
    body: { type: 'string', description: 'The message body (send)', placeholder: 'text' },
    attributes: {
      type: 'string',
      description:
        'Message attributes as JSON: {"type":"order"} or SQS\'s {"type":{"DataType":"String","StringValue":"order"}}',
      placeholder: 'json',
    },
    group: { type: 'string', description: 'Message group id (FIFO queues: required)', placeholder: 'id' },
    'dedup-id': {
      type: 'string',
      description: 'Deduplication id (FIFO queues without content-based deduplication)',
      placeholder: 'id',
    },
    delay: {
      type: 'number',
      description: 'Seconds before the message can be received (0..900)',
      placeholder: 's',
    },
    limit: { type: 'number', description: 'Messages peek shows (default 20)', placeholder: 'n' },
  },
  examples: [
    'nimbus queue send orders --body \'{"id": 42}\' --attributes \'{"type":"order"}\'',
    'nimbus queue send orders.fifo --body hello --group customer-7',
    'nimbus queue ls',
  ],
  async run(ctx) {
    const action = ctx.args['action']!;
    const queue = ctx.args['queue'];
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not a queue action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    if (action === 'ls') {
      const queues = await ctx.client().queues();
      if (ctx.json) return ctx.printJson({ queues });
      if (queues.length === 0) {
        ctx.out('No queues yet. Declare one under "queues:" in a nimbus.yaml and deploy it.');
        return;
      }
      const now = Date.now();
      ctx.out(
        table(
          ['queue', 'type', 'waiting', 'in flight', 'delayed', 'oldest', 'dead letters'],
          queues.map((q) => [
            q.name,
            q.fifo ? 'fifo' : 'standard',
            String(q.visible),
            String(q.inFlight),
            String(q.delayed),
            q.oldestSentAt === null ? '-' : `${Math.max(0, Math.round((now - q.oldestSentAt) / 1000))} s`,
            q.deadLetters === null ? '-' : `${q.deadLetters} (${q.deadLetterQueue})`,
          ]),
        ),
      );
      return;
    }
    if (!queue) throw new UsageError(`nimbus queue ${action} needs a queue name`, 'see `nimbus queue ls`');
    if (action === 'send') {
      const body = ctx.options.body;
      if (body === undefined)
        throw new UsageError('nimbus queue send needs --body TEXT', 'for example --body \'{"id": 42}\'');
      const msg: SendMessageInput = { body };
      if (ctx.options.attributes !== undefined) msg.attributes = parseAttributes(ctx.options.attributes);
      if (ctx.options.group !== undefined) msg.groupId = ctx.options.group;
      if (ctx.options['dedup-id'] !== undefined) msg.deduplicationId = ctx.options['dedup-id'];
      if (ctx.options.delay !== undefined) msg.delaySeconds = ctx.options.delay;
      const [sent] = await ctx.client().sendMessages(queue, [msg]);
      if (ctx.json) return ctx.printJson(sent);
      ctx.out(
        sent!.duplicate
          ? `Duplicate of ${sent!.messageId} (same deduplication id within 5 minutes): not sent again.`
          : `Sent ${sent!.messageId} to ${queue}${sent!.sequenceNumber ? ` (sequence ${sent!.sequenceNumber})` : ''}.`,
      );
      return;
    }
    if (action === 'peek') {
      const messages = await ctx.client().peekMessages(queue, ctx.options.limit ?? 20);
      if (ctx.json) return ctx.printJson({ messages });
      if (messages.length === 0) {
        ctx.out(`${queue} is empty.`);
        return;
      }
      ctx.out(
        table(
          ['message', 'sent', 'receives', 'group', 'body'],
          messages.map((m) => [
            m.messageId,
            new Date(m.sentAt).toISOString(),
            String(m.receiveCount),
            m.groupId ?? '-',
            oneLine(m.body),
          ]),
        ),
      );
      return;
    }
    const r = await ctx.client().purgeQueue(queue);
    if (ctx.json) return ctx.printJson(r);
    ctx.out(`Purged ${queue}: ${r.purged} message${r.purged === 1 ? '' : 's'} deleted.`);
  },
});

function parseAttributes(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UsageError('--attributes is not valid JSON', 'for example --attributes \'{"type":"order"}\'');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new UsageError(
      '--attributes must be a JSON object',
      'for example --attributes \'{"type":"order"}\'',
    );
  }
  return v as Record<string, unknown>;
}

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ');
  return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

import { defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';

const ACTIONS = ['failed', 'show', 'replay'] as const;

export default defineCommand({
  name: 'events',
  summary: 'List failed async events, show one, or replay it',
  description:
    'Async (Event) invocations that ran out of retries or grew too old stay in the store as failed.\n' +
    '  nimbus events failed [fn]   lists them (every function when fn is left out)\n' +
    '  nimbus events show <id>     prints one, payload and last error included\n' +
    '  nimbus events replay <id>   runs it again, with its retries anew',
  args: [
    { name: 'action', description: 'failed, show or replay', required: true },
    { name: 'target', description: 'A function name (failed) or an event id (show, replay)' },
  ],
  options: {},
  examples: ['nimbus events failed orders', 'nimbus events replay 4d0c0f0e-5a43-4a4e-9d6c-2f1f5f0c9a11'],
  async run(ctx) {
    const action = ctx.args['action']!;
    const target = ctx.args['target'];
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not an events action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    if (action === 'failed') {
      const events = await ctx.client().events({
        state: 'dead',
        limit: 1000,
        ...(target ? { function: target } : {}),
      });
      if (ctx.json) return ctx.printJson({ events });
      if (events.length === 0) {
        ctx.out(target ? `No failed events for ${target}.` : 'No failed events.');
        return;
      }
      ctx.out(
        table(
          ['id', 'function', 'enqueued', 'attempts', 'last error'],
          events.map((e) => [
            e.id,
            e.functionName,
            new Date(e.enqueuedAt).toISOString(),
            String(e.attempts),
            oneLine(e.lastError ?? '-'),
          ]),
        ),
      );
      return;
    }
    if (!target)
      throw new UsageError(`nimbus events ${action} needs an event id`, 'see `nimbus events failed`');
    if (action === 'show') {
      const e = await ctx.client().event(target);
      if (ctx.json) return ctx.printJson(e);
      ctx.out(
        [
          `Event      ${e.id}`,
          `Function   ${e.functionName}`,
          `State      ${e.state === 'dead' ? 'failed' : 'pending'}`,
          `Enqueued   ${new Date(e.enqueuedAt).toISOString()}`,
          `Attempts   ${e.attempts} (${e.failures} failed)`,
          ...(e.nextAttemptAt !== null ? [`Next try   ${new Date(e.nextAttemptAt).toISOString()}`] : []),
          `Last error ${e.lastError ?? '-'}`,
          `Payload    ${e.payload}`,
        ].join('\n'),
      );
      return;
    }
    const r = await ctx.client().replayEvent(target);
    if (ctx.json) return ctx.printJson(r);
    ctx.out(`Replaying ${r.replayed}: it runs again now; see \`nimbus logs\` for its records.`);
  },
});

function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ');
  return line.length > 100 ? `${line.slice(0, 99)}…` : line;
}

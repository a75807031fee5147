// nimbus audit: who changed what and when in the project (deploys, removals, keys, credentials, secrets,
// projects), newest first. An admin key's.
import { defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';

export default defineCommand({
  name: 'audit',
  summary: 'Show the audit log: who deployed, removed or changed keys, secrets and projects',
  description:
    'Every control action that changes something is written to the audit log with the key that did it.\n' +
    'Newest first. Takes an admin key of the project.',
  args: [],
  options: {
    since: {
      type: 'string',
      description: 'Only entries this recent: a duration (30m, 24h, 7d) or an ISO time',
      placeholder: 'when',
    },
    action: {
      type: 'string',
      description: 'Only this action (e.g. deploy, key.create)',
      placeholder: 'action',
    },
    limit: { type: 'number', description: 'At most this many entries', default: 50 },
  },
  examples: ['nimbus audit', 'nimbus audit --since 24h --action deploy'],
  async run(ctx) {
    const since = ctx.options.since === undefined ? undefined : sinceMs(ctx.options.since);
    const limit = ctx.options.limit;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new UsageError('--limit must be a whole number from 1 to 1000', 'for example --limit 50');
    }
    const entries = await ctx.client().audit({
      ...(since !== undefined ? { since } : {}),
      ...(ctx.options.action ? { action: ctx.options.action } : {}),
      limit,
    });
    if (ctx.json) return ctx.printJson({ entries });
    if (entries.length === 0) {
      ctx.out('No audit entries yet.');
      return;
    }
    ctx.out(
      table(
        ['time', 'key', 'action', 'target', 'detail'],
        entries.map((e) => [
          new Date(e.at).toISOString(),
          e.actor,
          e.action,
          e.target ?? '-',
          e.detail === null ? '' : JSON.stringify(e.detail),
        ]),
      ),
    );
  },
});

function sinceMs(v: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(v.trim());
  if (m) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
    return Date.now() - Number(m[1]) * unit;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) {
    throw new UsageError(
      `--since "${v}" is not a duration or a time`,
      'for example --since 24h or --since 2026-12-01',
    );
  }
  return t;
}

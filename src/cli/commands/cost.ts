// nimbus cost: requests, billed duration, GB-seconds and cost per function, project, day or trigger, summed by
// the store from each invocation's recorded cost.
import type { CostAmounts, CostReport } from '../../client/index.js';
import { defineCommand, UsageError } from '../command.js';
import { parseSince, table } from '../format.js';

const GROUPS = ['function', 'project', 'day', 'trigger', 'service'];

export default defineCommand({
  name: 'cost',
  summary: 'Show usage and cost: requests, billed duration, GB-seconds and USD',
  description:
    'Sums what each invocation was metered at when it ran (see docs/concepts.md, "Metering and pricing"),\n' +
    'then the data services (DynamoDB, S3, SQS requests), stored GB-months and provisioned concurrency.\n' +
    'With the free tier on (NIMBUS_FREE_TIER=1) the total shows what it covers and the net cost.',
  args: [],
  options: {
    since: {
      type: 'string',
      placeholder: 'when',
      default: '30d',
      description: 'From 30s, 10m, 2h, 7d ago or from an ISO date',
    },
    until: {
      type: 'string',
      placeholder: 'when',
      description: 'Up to (not including) 2h, 1d ago or an ISO date (default now)',
    },
    by: {
      type: 'string',
      placeholder: 'group',
      description:
        'One row per function, project, day, trigger or service (Lambda, DynamoDB, S3, SQS, storage)',
    },
    all: { type: 'boolean', description: 'Every project (an admin key of "default" only)' },
  },
  examples: [
    'nimbus cost',
    'nimbus cost --since 7d --by function',
    'nimbus cost --by service',
    'nimbus cost --by day --json',
  ],
  async run(ctx) {
    const now = Date.now();
    const since = parseSince(ctx.options.since, now);
    const until = ctx.options.until === undefined ? undefined : parseSince(ctx.options.until, now, '--until');
    const by = ctx.options.by;
    if (by !== undefined && !GROUPS.includes(by)) {
      throw new UsageError(`--by "${by}" is not a grouping`, `use one of ${GROUPS.join(', ')}`);
    }
    if (until !== undefined && until <= since) {
      throw new UsageError('--until must be after --since', 'for example --since 7d --until 1d');
    }
    const report = await ctx.client().cost({
      since,
      ...(until !== undefined ? { until } : {}),
      ...(by !== undefined ? { by } : {}),
      ...(ctx.options.all ? { all: true } : {}),
    });
    if (ctx.json) return ctx.printJson(report);
    ctx.out(render(report));
  },
});

function render(r: CostReport): string {
  if (r.by === 'service') return renderServices(r);
  const head = r.by === 'function' ? ['project', 'function'] : r.by ? [r.by] : [];
  const rows = r.groups.map((g) => [
    ...(r.by === 'function' ? [g.project ?? ''] : []),
    ...(r.by ? [g.group] : []),
    ...figures(g),
  ]);
  const totalRow = [...head.map((_, i) => (i === 0 ? 'total' : '')), ...figures(r.total)];
  const lines = [
    `${r.project === null ? 'All projects' : `Project ${r.project}`}, ${iso(r.since)} to ${iso(r.until)}`,
    table([...head, 'invocations', 'requests', 'billed ms', 'GB-s', 'cost USD'], [...rows, totalRow]),
  ];
  if (r.total.freeTier && r.total.netCostUsd !== undefined) {
    lines.push(
      `Free tier: ${r.total.freeTier.requests} requests and ${r.total.freeTier.gbSeconds} GB-s, ` +
        `${r.total.freeTier.costUsd} USD; net cost ${r.total.netCostUsd} USD`,
    );
  }
  const usage = r.usage?.lines ?? [];
  if (usage.length > 0) {
    const all = usage.some((u) => u.project !== undefined);
    lines.push(
      '',
      'Data services, storage and provisioned concurrency:',
      table(
        [...(all ? ['project'] : []), 'service', 'resource', 'kind', 'amount', 'cost USD'],
        [
          ...usage.map((u) => [
            ...(all ? [u.project ?? ''] : []),
            u.service,
            u.resource === '' ? '-' : u.resource,
            u.kind,
            amount(u.amount, u.unit),
            u.costUsd,
          ]),
          [...(all ? ['total'] : []), all ? '' : 'total', '', '', '', r.usage.total.costUsd],
        ],
      ),
      `Total cost: ${r.grandTotal.costUsd} USD`,
    );
  }
  if (!r.complete) {
    const oldest =
      r.oldestRecordAt === null ? 'none are left' : `the oldest kept is from ${iso(r.oldestRecordAt)}`;
    lines.push(
      `(Records are kept ${r.retentionDays} days: those before ${iso(r.prunedBefore)} were pruned and are not in this report; ${oldest}.)`,
    );
  }
  return lines.join('\n');
}

function renderServices(r: CostReport): string {
  const rows = r.groups.map((g) => [g.group, String(g.requests), g.costUsd]);
  return [
    `${r.project === null ? 'All projects' : `Project ${r.project}`}, ${iso(r.since)} to ${iso(r.until)}`,
    table(['service', 'requests', 'cost USD'], [...rows, ['total', '', r.grandTotal.costUsd]]),
  ].join('\n');
}

function amount(n: number, unit: string): string {
  return unit === 'requests' ? `${n} requests` : `${Number(n.toPrecision(6))} ${unit}`;
}

function figures(a: CostAmounts): string[] {
  return [String(a.invocations), String(a.requests), String(a.billedMs), a.gbSeconds.toFixed(6), a.costUsd];
}

function iso(t: number): string {
  return new Date(t).toISOString();
}

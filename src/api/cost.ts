// GET /v1/cost: requests, billed ms, GB-seconds and cost per group and in total, summed by the store from the
// cost each record was stamped with when it ran. The free tier, when on, is a credit worked out here per
// project and calendar month (UTC), since it belongs to a month's usage rather than to any one invocation.
import type { Clock } from '../clock/clock.js';
import {
  DEFAULT_PRICE_TABLE,
  formatUsd,
  freeTierCredit,
  MB_MS_PER_GB_SECOND,
  type PriceTable,
  type UsageTotals,
} from '../metering/price.js';
import {
  HOUR_MS,
  USAGE_GROUPS,
  type InvocationLog,
  type UsageEntry,
  type UsageGroupBy,
  type UsageRow,
  type UsageStore,
} from '../store/types.js';
import { BYTE_SECONDS_PER_GB_MONTH } from '../metering/usage-meter.js';
import { isOperator } from './auth.js';
import type { ControlRequest } from './control.js';
import { ApiError, badRequest } from './errors.js';

export interface CostDeps {
  store: {
    invocations: Pick<InvocationLog, 'flush' | 'usage' | 'oldestStart'>;
    usage?: Pick<UsageStore, 'list'>;
  };
  /** The usage meter, flushed before a report so it includes the caller's own requests. */
  usageMeter?: { flush(): Promise<void> };
  metering?: {
    prices: PriceTable;
    /** Records older than this are pruned: a report cannot reach further back. */
    retentionMs: number;
  };
  clock?: Clock;
}

const DAY_MS = 86_400_000;
const DEFAULT_RETENTION_MS = 30 * DAY_MS;
const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };

export async function costReport(d: CostDeps, c: ControlRequest): Promise<unknown> {
  const now = d.clock?.now() ?? Date.now();
  const prices = d.metering?.prices ?? DEFAULT_PRICE_TABLE;
  const retentionMs = d.metering?.retentionMs ?? DEFAULT_RETENTION_MS;
  const q = c.url.searchParams;
  const since = when(q.get('since'), 'since', now) ?? now - 30 * DAY_MS;
  const until = when(q.get('until'), 'until', now) ?? now;
  if (until <= since) {
    throw badRequest('until must be after since', `got since ${iso(since)}, until ${iso(until)}`);
  }
  const byParam = q.get('by');
  const byService = byParam === 'service';
  const by = byParam === null || byParam === '' || byService ? undefined : (byParam as UsageGroupBy);
  if (by !== undefined && !USAGE_GROUPS.includes(by)) {
    throw badRequest(
      `query parameter by must be one of ${[...USAGE_GROUPS, 'service'].join(', ')}`,
      `got "${byParam}"`,
    );
  }
  const all = q.get('all');
  if (all !== null && all !== 'true' && all !== 'false') {
    throw badRequest('query parameter all must be true or false', `got "${all}"`);
  }
  // Every project's usage is the operator's to see (an admin key of "default"); anyone else sees their own.
  if (all === 'true' && !isOperator(c.principal)) {
    throw new ApiError(
      403,
      'AccessDenied',
      `key ${c.principal.keyId} of project ${c.principal.project} cannot see other projects' cost`,
      'leave out --all: only an admin key of "default" sees every project',
    );
  }
  const project = all === 'true' ? undefined : c.principal.project;

  await d.store.invocations.flush();
  await d.usageMeter?.flush();
  const log = d.store.invocations;
  const scope = project !== undefined ? { project } : {};
  const rows = await log.usage({ ...scope, since, until, ...(by ? { by } : {}) });
  const groups = rows.map((r) => ({ ...(by ? groupKey(r, by) : {}), ...amounts(r) }));
  const total = amounts(sum(rows));
  // Usage rows are per UTC hour: the window takes the hours that start in it, and the one since falls in.
  const entries = (await d.store.usage?.list({ ...scope, since: since - (since % HOUR_MS), until })) ?? [];
  const usage = usageLines(entries, project === undefined);
  const usageTotal = entries.reduce((t, e) => t + BigInt(e.costPicoUsd), 0n);
  const grand = sum(rows).costPicoUsd + usageTotal;
  const report: Record<string, unknown> = {
    since,
    until,
    by: byService ? 'service' : (by ?? null),
    project: project ?? null,
    prices: {
      requestsPerMillionUsd: formatUsd(prices.requestPico * 1_000_000n),
      gbSecondUsd: formatUsd(prices.gbSecondPico),
      freeTier: prices.freeTier,
    },
    groups: byService ? serviceGroups(sum(rows), entries) : groups,
    total,
    usage: { lines: usage, total: money(usageTotal) },
    grandTotal: money(grand),
    ...(await coverage(log, project, since, now, retentionMs)),
  };
  if (prices.freeTier) {
    const credits = await freeTier(log, project, since, until, prices);
    const overall = [...credits.values()].reduce(addCredit, zeroCredit());
    report['total'] = { ...total, ...credited(sum(rows).costPicoUsd, overall) };
    if (by === 'project') {
      report['groups'] = rows.map((r) => ({
        group: r.group,
        ...amounts(r),
        ...credited(r.costPicoUsd, credits.get(r.group) ?? zeroCredit()),
      }));
    }
  }
  return report;
}

function money(pico: bigint): { costPicoUsd: string; costUsd: string } {
  return { costPicoUsd: pico.toString(), costUsd: formatUsd(pico) };
}

/** Usage rows summed per (project when every project is shown, service, resource, kind), with a readable amount. */
function usageLines(entries: UsageEntry[], withProject: boolean): Record<string, unknown>[] {
  const byKey = new Map<string, { e: UsageEntry; quantity: bigint; cost: bigint }>();
  for (const e of entries) {
    const key = JSON.stringify([withProject ? e.project : '', e.service, e.resource, e.kind]);
    const t = byKey.get(key) ?? { e, quantity: 0n, cost: 0n };
    t.quantity += BigInt(e.quantity);
    t.cost += BigInt(e.costPicoUsd);
    byKey.set(key, t);
  }
  return [...byKey.values()]
    .sort((a, b) => order(a.e, withProject).localeCompare(order(b.e, withProject)))
    .map(({ e, quantity, cost }) => ({
      ...(withProject ? { project: e.project } : {}),
      service: e.service,
      resource: e.resource,
      kind: e.kind,
      quantity: quantity.toString(),
      ...readable(e.kind, quantity),
      ...money(cost),
    }));
}

function order(e: UsageEntry, withProject: boolean): string {
  return `${withProject ? e.project : ''}\u0000${e.service}\u0000${e.resource}\u0000${e.kind}`;
}

/** What a quantity means in the unit it is priced in. */
function readable(kind: string, q: bigint): { amount: number; unit: string } {
  if (kind === 'byte-seconds')
    return { amount: Number(q) / Number(BYTE_SECONDS_PER_GB_MONTH), unit: 'GB-months' };
  if (kind === 'provisioned-mb-ms') return { amount: Number(q) / MB_MS_PER_GB_SECOND, unit: 'GB-seconds' };
  return { amount: Number(q), unit: 'requests' };
}

/**
 * --by service: Lambda (its invocations and its provisioned concurrency) and each data service, one group
 * each; the groups add up to grandTotal. requests counts each service's own requests.
 */
function serviceGroups(
  inv: Omit<UsageRow, 'group' | 'project'>,
  entries: UsageEntry[],
): Record<string, unknown>[] {
  const per = new Map<string, { requests: number; cost: bigint }>();
  per.set('lambda', { requests: inv.requests, cost: inv.costPicoUsd });
  for (const e of entries) {
    const t = per.get(e.service) ?? { requests: 0, cost: 0n };
    if (e.kind !== 'byte-seconds' && e.kind !== 'provisioned-mb-ms') t.requests += e.quantity;
    t.cost += BigInt(e.costPicoUsd);
    per.set(e.service, t);
  }
  return [...per.entries()].map(([service, t]) => ({
    group: service,
    ...(service === 'lambda'
      ? {
          invocations: inv.invocations,
          billedMs: inv.billedMs,
          gbSeconds: Number(inv.mbMs) / MB_MS_PER_GB_SECOND,
        }
      : { invocations: 0, billedMs: 0, gbSeconds: 0 }),
    requests: t.requests,
    ...money(t.cost),
  }));
}

/** An epoch ms, an ISO date, or a duration before now (30s, 10m, 2h, 7d); undefined when not given. */
export function when(v: string | null, name: string, now: number): number | undefined {
  if (v === null || v === '') return undefined;
  const rel = /^(\d+)\s*([smhd])$/.exec(v.trim());
  if (rel) return now - Number(rel[1]) * UNITS[rel[2]!]!;
  if (/^\d+$/.test(v)) return Number(v);
  if (/^\d{4}-\d{2}-\d{2}/.test(v)) {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  throw badRequest(
    `query parameter ${name} must be a time`,
    `got "${v}"; use epoch ms, an ISO date like 2026-05-01T00:00:00Z, or 30s, 10m, 2h, 7d before now`,
  );
}

function groupKey(r: UsageRow, by: UsageGroupBy): Record<string, unknown> {
  return by === 'function' ? { group: r.group, project: r.project } : { group: r.group };
}

/** A row's figures as JSON: exact integers as decimal strings where they may pass 2^53. */
function amounts(r: Omit<UsageRow, 'group' | 'project'>): Record<string, unknown> {
  return {
    invocations: r.invocations,
    requests: r.requests,
    billedMs: r.billedMs,
    gbSeconds: Number(r.mbMs) / MB_MS_PER_GB_SECOND,
    costPicoUsd: r.costPicoUsd.toString(),
    costUsd: formatUsd(r.costPicoUsd),
  };
}

function sum(rows: UsageRow[]): Omit<UsageRow, 'group' | 'project'> {
  return rows.reduce(
    (t, r) => ({
      invocations: t.invocations + r.invocations,
      requests: t.requests + r.requests,
      billedMs: t.billedMs + r.billedMs,
      mbMs: t.mbMs + r.mbMs,
      costPicoUsd: t.costPicoUsd + r.costPicoUsd,
    }),
    { invocations: 0, requests: 0, billedMs: 0, mbMs: 0n, costPicoUsd: 0n },
  );
}

/** How far back the data reaches: records before prunedBefore are gone, so a report cannot include them. */
async function coverage(
  log: Pick<InvocationLog, 'oldestStart'>,
  project: string | undefined,
  since: number,
  now: number,
  retentionMs: number,
): Promise<Record<string, unknown>> {
  const oldest = await log.oldestStart(project);
  const prunedBefore = now - retentionMs;
  return {
    oldestRecordAt: oldest,
    retentionDays: retentionMs / DAY_MS,
    prunedBefore,
    complete: since >= prunedBefore,
  };
}

interface Credit {
  requests: number;
  mbMs: bigint;
  costPicoUsd: bigint;
}

const zeroCredit = (): Credit => ({ requests: 0, mbMs: 0n, costPicoUsd: 0n });
const addCredit = (a: Credit, b: Credit): Credit => ({
  requests: a.requests + b.requests,
  mbMs: a.mbMs + b.mbMs,
  costPicoUsd: a.costPicoUsd + b.costPicoUsd,
});

function credited(gross: bigint, c: Credit): Record<string, unknown> {
  const net = gross > c.costPicoUsd ? gross - c.costPicoUsd : 0n;
  return {
    freeTier: {
      requests: c.requests,
      gbSeconds: Number(c.mbMs) / MB_MS_PER_GB_SECOND,
      costPicoUsd: c.costPicoUsd.toString(),
      costUsd: formatUsd(c.costPicoUsd),
    },
    netCostPicoUsd: net.toString(),
    netCostUsd: formatUsd(net),
  };
}

/**
 * The free tier's credit per project over [since, until): for each UTC calendar month the window touches,
 * what the free allowance covers of the window's usage once the month's earlier usage has taken its part.
 */
async function freeTier(
  log: Pick<InvocationLog, 'usage'>,
  project: string | undefined,
  since: number,
  until: number,
  prices: PriceTable,
): Promise<Map<string, Credit>> {
  const credits = new Map<string, Credit>();
  const scope = project !== undefined ? { project } : {};
  for (let m = monthStart(since); m < until; m = nextMonth(m)) {
    const from = Math.max(m, since);
    const to = Math.min(nextMonth(m), until);
    const before = m < from ? await log.usage({ ...scope, since: m, until: from, by: 'project' }) : [];
    const within = await log.usage({ ...scope, since: from, until: to, by: 'project' });
    for (const w of within) {
      const b = before.find((r) => r.group === w.group);
      const c = freeTierCredit(totals(b), totals(w), prices);
      credits.set(w.group, addCredit(credits.get(w.group) ?? zeroCredit(), c));
    }
  }
  return credits;
}

function totals(r: UsageRow | undefined): UsageTotals {
  return { requests: r?.requests ?? 0, mbMs: r?.mbMs ?? 0n };
}

function monthStart(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

function nextMonth(t: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

function iso(t: number): string {
  return Number.isFinite(t) ? new Date(t).toISOString() : String(t);
}

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
import { USAGE_GROUPS, type InvocationLog, type UsageGroupBy, type UsageRow } from '../store/types.js';
import { isOperator } from './auth.js';
import type { ControlRequest } from './control.js';
import { ApiError, badRequest } from './errors.js';

export interface CostDeps {
  store: { invocations: Pick<InvocationLog, 'flush' | 'usage' | 'oldestStart'> };
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
  const by = byParam === null || byParam === '' ? undefined : (byParam as UsageGroupBy);
  if (by !== undefined && !USAGE_GROUPS.includes(by)) {
    throw badRequest(`query parameter by must be one of ${USAGE_GROUPS.join(', ')}`, `got "${byParam}"`);
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
  const log = d.store.invocations;
  const scope = project !== undefined ? { project } : {};
  const rows = await log.usage({ ...scope, since, until, ...(by ? { by } : {}) });
  const groups = rows.map((r) => ({ ...(by ? groupKey(r, by) : {}), ...amounts(r) }));
  const total = amounts(sum(rows));
  const report: Record<string, unknown> = {
    since,
    until,
    by: by ?? null,
    project: project ?? null,
    prices: {
      requestsPerMillionUsd: formatUsd(prices.requestPico * 1_000_000n),
      gbSecondUsd: formatUsd(prices.gbSecondPico),
      freeTier: prices.freeTier,
    },
    groups,
    total,
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

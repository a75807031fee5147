// GET /v1/invocations/stats: the console's charts. Counts, errors, throttles, cold starts, p50/p99 duration
// and cost per time bucket (and per function), computed by the store in SQL on either backend, never by
// reading the records here.
import { formatUsd } from '../metering/price.js';
import { MAX_BUCKETS } from '../store/invocation-stats.js';
import type { Store } from '../store/types.js';
import type { ControlRequest } from './control.js';
import { when } from './cost.js';
import { badRequest } from './errors.js';

export interface StatsDeps {
  store: Pick<Store, 'invocations'>;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export async function invocationStats(d: StatsDeps, c: ControlRequest): Promise<unknown> {
  const p = c.url.searchParams;
  const now = Date.now();
  const since = when(p.get('since'), 'since', now) ?? now - 3_600_000;
  const until = when(p.get('until'), 'until', now) ?? now;
  if (since >= until) {
    throw badRequest('query parameter since must be before until', `got since=${since} until=${until}`);
  }
  const bucketMs = bucketOf(p.get('bucket'));
  if (bucketMs !== undefined && (until - since) / bucketMs > MAX_BUCKETS) {
    throw badRequest(
      `that range holds more than ${MAX_BUCKETS} buckets`,
      'ask for a wider bucket or a shorter range',
    );
  }
  const by = p.get('by');
  if (by !== null && by !== 'function')
    throw badRequest('query parameter by must be "function"', `got "${by}"`);
  const fn = p.get('function');
  const rows = await d.store.invocations.stats({
    project: c.principal.project,
    since,
    until,
    ...(bucketMs !== undefined ? { bucketMs } : {}),
    ...(fn ? { functionName: fn } : {}),
    ...(by === 'function' ? { byFunction: true } : {}),
  });
  return {
    since,
    until,
    bucketMs: bucketMs ?? null,
    buckets: rows.map((r) => ({
      start: r.bucketStart,
      ...(by === 'function' ? { functionName: r.functionName } : {}),
      invocations: r.invocations,
      errors: r.errors,
      throttles: r.throttles,
      cold: r.cold,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      // Exact as a decimal string, as in /v1/cost; costUsd for display.
      costPicoUsd: r.costPicoUsd.toString(),
      costUsd: formatUsd(r.costPicoUsd),
    })),
  };
}

function bucketOf(v: string | null): number | undefined {
  if (v === null || v === '') return undefined;
  const m = /^(\d+)\s*(ms|s|m|h|d)?$/.exec(v.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] ?? 'ms']! : NaN;
  if (!Number.isSafeInteger(ms) || ms < 1000) {
    throw badRequest(
      'query parameter bucket must be a duration of at least 1s',
      `got "${v}"; e.g. 60s, 5m, 1h`,
    );
  }
  return ms;
}

// Overview: the last hour of the project, by the minute, and the latest invocations as they arrive.
import { get } from '../api.js';
import { usd } from '../format.js';
import { usePoll } from '../hooks.js';
import type { Invocation, Stats } from '../types.js';
import { Failure, InvocationTable, StatsCharts, totals } from './common.js';

export function Overview() {
  const stats = usePoll(() => get<Stats>('/v1/invocations/stats?since=1h&bucket=60s'), 5000, 'overview');
  const recent = usePoll(
    () => get<{ invocations: Invocation[] }>('/v1/invocations?limit=15'),
    2000,
    'overview-recent',
  );
  const t = totals(stats.data);
  return (
    <section>
      <h1>Overview</h1>
      <p class="muted">The last hour, by the minute.</p>
      <Failure error={stats.error ?? recent.error} />
      <div class="tiles">
        <Tile label="Invocations" value={String(t.invocations)} />
        <Tile label="Errors" value={String(t.errors)} warn={t.errors > 0} />
        <Tile label="Throttles" value={String(t.throttles)} warn={t.throttles > 0} />
        <Tile label="Cold starts" value={String(t.cold)} />
        <Tile label="Cost" value={usd(t.cost)} />
      </div>
      {stats.data && <StatsCharts stats={stats.data} />}
      <h2>Latest invocations</h2>
      {recent.data && <InvocationTable rows={recent.data.invocations} />}
    </section>
  );
}

export function Tile({ label, value, warn = false }: { label: string; value: string; warn?: boolean }) {
  return (
    <div class={`tile${warn ? ' warn' : ''}`}>
      <span>{label}</span>
      <strong>{value}</strong>
    </div>
  );
}

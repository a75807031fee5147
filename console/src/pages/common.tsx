// Pieces several pages share: the live invocation table, the charts of a stats series, error lines.
import { Chart } from '../chart.js';
import { ago, ms, usd } from '../format.js';
import type { Invocation, Stats } from '../types.js';

export function Failure({ error }: { error: Error | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.message}
    </p>
  );
}

export function Status({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{status}</span>;
}

/** A record's cost in USD from picodollars. */
export function costOf(r: Invocation): string {
  return usd(r.costPicoUsd / 1e12);
}

export function InvocationTable({
  rows,
  showFunction = true,
}: {
  rows: Invocation[];
  showFunction?: boolean;
}) {
  if (rows.length === 0) return <p class="muted">No invocations yet.</p>;
  return (
    <div class="scroll">
      <table class="invocations">
        <thead>
          <tr>
            <th>When</th>
            {showFunction && <th>Function</th>}
            <th>Status</th>
            <th>Trigger</th>
            <th class="num">Duration</th>
            <th>Start</th>
            <th class="num">Cost</th>
            <th>Request id</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={`${r.requestId}:${r.attempt}`} data-request-id={r.requestId}>
              <td title={new Date(r.start).toISOString()}>{ago(r.start)}</td>
              {showFunction && (
                <td>
                  <a href={`#/functions/${encodeURIComponent(r.functionName)}`}>{r.functionName}</a>
                </td>
              )}
              <td>
                <Status status={r.status} />
              </td>
              <td>{r.trigger}</td>
              <td class="num">{ms(r.durationMs)}</td>
              <td>{r.cold ? 'cold' : 'warm'}</td>
              <td class="num">{costOf(r)}</td>
              <td>
                <a class="mono" href={`#/invocations/${encodeURIComponent(r.requestId)}`}>
                  {r.requestId}
                </a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Invocations and errors, p50 and p99 duration, and cost per bucket. */
export function StatsCharts({ stats, cost = true }: { stats: Stats; cost?: boolean }) {
  const b = stats.buckets;
  // Buckets without records are absent from the answer: zero counts there, gaps in the durations.
  const step = stats.bucketMs ?? 60_000;
  const times: number[] = [];
  for (let t = stats.since; t < stats.until; t += step) times.push(t);
  const at = new Map(b.map((x) => [x.start, x]));
  const col = (f: (x: (typeof b)[number]) => number | null, empty: number | null) =>
    times.map((t) => {
      const x = at.get(t);
      return x ? f(x) : empty;
    });
  return (
    <div class="charts">
      <Chart
        title="Invocations and errors"
        times={times}
        series={[
          { label: 'invocations', color: '#4ea1ff', values: col((x) => x.invocations, 0) },
          { label: 'errors', color: '#ff6b6b', values: col((x) => x.errors, 0) },
          { label: 'throttles', color: '#f5a524', values: col((x) => x.throttles, 0) },
        ]}
      />
      <Chart
        title="Duration p50 / p99"
        times={times}
        series={[
          { label: 'p50', color: '#42d392', values: col((x) => x.p50Ms, null), unit: 'ms' },
          { label: 'p99', color: '#c084fc', values: col((x) => x.p99Ms, null), unit: 'ms' },
        ]}
      />
      {cost && (
        <Chart
          title="Cost (USD)"
          times={times}
          series={[{ label: 'cost', color: '#f5a524', values: col((x) => Number(x.costUsd), 0), unit: '$' }]}
        />
      )}
    </div>
  );
}

export function totals(stats: Stats | undefined) {
  const b = stats?.buckets ?? [];
  const sum = (f: (x: (typeof b)[number]) => number) => b.reduce((n, x) => n + f(x), 0);
  return {
    invocations: sum((x) => x.invocations),
    errors: sum((x) => x.errors),
    throttles: sum((x) => x.throttles),
    cold: sum((x) => x.cold),
    cost: sum((x) => Number(x.costUsd)),
  };
}

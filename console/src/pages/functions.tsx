// Functions: every function with its instances, cold and warm starts, throttles, errors and cost; and one
// function's configuration, version, routes, charts, latest invocations and a live tail of its logs.
import { useEffect, useRef, useState } from 'preact/hooks';
import { enc, get } from '../api.js';
import { ago, bytes, time, usd } from '../format.js';
import { usePoll } from '../hooks.js';
import type { CostReport, FunctionView, Invocation, Stats } from '../types.js';
import { Failure, InvocationTable, StatsCharts, totals } from './common.js';
import { Tile } from './overview.js';

export function Functions() {
  const fns = usePoll(
    () => get<{ functions: FunctionView[]; gatewayUrl?: string }>('/v1/functions'),
    3000,
    'fns',
  );
  const stats = usePoll(() => get<Stats>('/v1/invocations/stats?since=24h&by=function'), 5000, 'fn-stats');
  const cost = usePoll(() => get<CostReport>('/v1/cost?since=24h&by=function'), 10000, 'fn-cost');
  const byFn = new Map((stats.data?.buckets ?? []).map((b) => [b.functionName ?? '', b]));
  const costOf = new Map((cost.data?.groups ?? []).map((g) => [g.group, g.costUsd]));
  const list = fns.data?.functions ?? [];
  return (
    <section>
      <h1>Functions</h1>
      <p class="muted">
        Instances now; starts and throttles since this node started; errors, invocations and cost over 24
        hours.
        {fns.data?.gatewayUrl && (
          <>
            {' '}
            Gateway: <span class="mono">{fns.data.gatewayUrl}</span>
          </>
        )}
      </p>
      <Failure error={fns.error ?? stats.error ?? cost.error} />
      {fns.data && list.length === 0 && <p class="muted">No functions deployed. Try `nimbus deploy`.</p>}
      {list.length > 0 && (
        <div class="scroll">
          <table class="functions">
            <thead>
              <tr>
                <th>Function</th>
                <th class="num">Version</th>
                <th class="num">Busy</th>
                <th class="num">Idle</th>
                <th class="num">Cold</th>
                <th class="num">Warm</th>
                <th class="num">Throttled</th>
                <th class="num">Invocations 24h</th>
                <th class="num">Errors 24h</th>
                <th class="num">Cost 24h</th>
              </tr>
            </thead>
            <tbody>
              {list.map((f) => {
                const s = byFn.get(f.name);
                return (
                  <tr key={f.name} data-function={f.name}>
                    <td>
                      <a href={`#/functions/${enc(f.name)}`}>{f.name}</a>
                    </td>
                    <td class="num">{f.version}</td>
                    <td class="num">{f.scaling['busy']}</td>
                    <td class="num">{f.scaling['idle']}</td>
                    <td class="num">{f.scaling['cold']}</td>
                    <td class="num">{f.scaling['warm']}</td>
                    <td class="num">{f.scaling['throttled']}</td>
                    <td class="num">{s?.invocations ?? 0}</td>
                    <td class={`num${(s?.errors ?? 0) > 0 ? ' bad' : ''}`}>{s?.errors ?? 0}</td>
                    <td class="num">{usd(costOf.get(f.name) ?? '0')}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function FunctionPage({ name }: { name: string }) {
  const fn = usePoll(() => get<FunctionView>(`/v1/functions/${enc(name)}`), 2000, `fn:${name}`);
  const stats = usePoll(
    () => get<Stats>(`/v1/invocations/stats?since=1h&bucket=60s&function=${enc(name)}`),
    2000,
    `fn-stats:${name}`,
  );
  const recent = usePoll(
    () => get<{ invocations: Invocation[] }>(`/v1/invocations?function=${enc(name)}&limit=10`),
    2000,
    `fn-recent:${name}`,
  );
  const cost = usePoll(() => get<CostReport>('/v1/cost?since=30d&by=function'), 10000, 'fn-cost30');
  const f = fn.data;
  const t = totals(stats.data);
  const versions = [...new Set((recent.data?.invocations ?? []).map((r) => r.version))];
  return (
    <section>
      <p class="crumbs">
        <a href="#/functions">Functions</a> /
      </p>
      <h1>{name}</h1>
      <Failure error={fn.error} />
      {f && (
        <>
          <div class="tiles">
            <Tile label="Invocations 1h" value={String(t.invocations)} />
            <Tile label="Errors 1h" value={String(t.errors)} warn={t.errors > 0} />
            <Tile label="Instances" value={`${f.scaling['busy']} busy · ${f.scaling['idle']} idle`} />
            <Tile label="Cold / warm" value={`${f.scaling['cold']} / ${f.scaling['warm']}`} />
            <Tile
              label="Cost 30 days"
              value={usd(cost.data?.groups.find((g) => g.group === name)?.costUsd ?? '0')}
            />
          </div>
          <div class="grid2">
            <div class="card">
              <h2>Configuration</h2>
              <dl>
                <dt>Service</dt>
                <dd>{f.service}</dd>
                <dt>Handler</dt>
                <dd class="mono">{f.handler}</dd>
                <dt>Runtime</dt>
                <dd>{f.runtime}</dd>
                <dt>Memory</dt>
                <dd>{f.memory} MB</dd>
                <dt>Timeout</dt>
                <dd>{f.timeout} s</dd>
                <dt>Network</dt>
                <dd>{f.network}</dd>
                <dt>Reserved concurrency</dt>
                <dd>{f.reservedConcurrency ?? 'none'}</dd>
                <dt>Keep-alive</dt>
                <dd>{f.scaling['keepAlive']}</dd>
                <dt>Environment</dt>
                <dd class="mono">{Object.keys(f.environment).join(', ') || 'none'}</dd>
              </dl>
            </div>
            <div class="card">
              <h2>Version</h2>
              <dl>
                <dt>Deployed</dt>
                <dd>
                  {f.version} · {time(f.deployedAt)} ({ago(f.deployedAt)})
                </dd>
                <dt>Code</dt>
                <dd class="mono">
                  {bytes(f.codeSize)} · {f.codeSha256.slice(0, 12)}
                </dd>
                <dt>Versions in recent invocations</dt>
                <dd>{versions.join(', ') || '–'}</dd>
              </dl>
              <h2>Routes</h2>
              {f.routes.length === 0 ? (
                <p class="muted">No HTTP routes.</p>
              ) : (
                <ul class="mono">
                  {f.routes.map((r) => (
                    <li key={r}>{r}</li>
                  ))}
                </ul>
              )}
              {f.schedules.length > 0 && (
                <>
                  <h2>Schedules</h2>
                  <ul>
                    {f.schedules.map((s) => (
                      <li key={s.expression} class="mono">
                        {s.expression} → {s.nextFireAt === null ? 'never again' : time(s.nextFireAt)}
                      </li>
                    ))}
                  </ul>
                </>
              )}
            </div>
          </div>
        </>
      )}
      {stats.data && <StatsCharts stats={stats.data} cost={false} />}
      <h2>Latest invocations</h2>
      {recent.data && <InvocationTable rows={recent.data.invocations} showFunction={false} />}
      <h2>Live logs</h2>
      <LogTail name={name} />
    </section>
  );
}

interface LogRecord {
  seq: number;
  requestId: string;
  logs: string;
  start: number;
}

/** Follows the function's logs: the last 15 minutes, then every record after the cursor every 2 s. */
function LogTail({ name }: { name: string }) {
  const [lines, setLines] = useState<{ key: string; text: string }[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    let live = true;
    let cursor: number | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    setLines([]);
    const poll = async (): Promise<void> => {
      try {
        const q = cursor === undefined ? 'since=15m&limit=200' : `after=${cursor}&limit=200`;
        const r = await get<{ records: LogRecord[]; cursor: number }>(`/v1/functions/${enc(name)}/logs?${q}`);
        if (!live) return;
        cursor = r.cursor;
        setError(undefined);
        if (r.records.length > 0) {
          const add = r.records.flatMap((rec) =>
            rec.logs
              .split('\n')
              .filter((l) => l !== '')
              .map((text, i) => ({ key: `${rec.seq}:${i}`, text })),
          );
          setLines((old) => [...old, ...add].slice(-500));
        }
      } catch (e) {
        if (live) setError(e instanceof Error ? e.message : String(e));
      } finally {
        if (live) timer = setTimeout(() => void poll(), 2000);
      }
    };
    void poll();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [name]);
  useEffect(() => {
    const el = pre.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines.length]);
  return (
    <>
      {error && <p class="error">{error}</p>}
      <pre class="logs" ref={pre} tabIndex={0} aria-label="Live logs" aria-live="polite">
        {lines.length === 0 ? 'Waiting for logs…' : lines.map((l) => l.text).join('\n')}
      </pre>
    </>
  );
}

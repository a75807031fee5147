// One invocation: its record (result, duration, cost), its event where one was stored (async invocations:
// the event queue keeps the payload under the request id), its logs, and its trace as a waterfall.
import { ApiFailure, enc, get } from '../api.js';
import { bytes, ms, time, usd } from '../format.js';
import { usePoll } from '../hooks.js';
import type { EventView, Invocation } from '../types.js';
import { layoutWaterfall, type Trace } from '../waterfall.js';
import { Failure, Status } from './common.js';

type Maybe<T> = { found: true; value: T } | { found: false };

/** 404 is an answer here (no event stored, no trace recorded), not a failure. */
async function maybe<T>(path: string): Promise<Maybe<T>> {
  try {
    return { found: true, value: await get<T>(path) };
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 404) return { found: false };
    throw err;
  }
}

export function InvocationPage({ id }: { id: string }) {
  const rec = usePoll(() => get<Invocation>(`/v1/invocations/${enc(id)}`), 0, `inv:${id}`);
  const ev = usePoll(() => maybe<EventView>(`/v1/events/${enc(id)}`), 0, `inv-ev:${id}`);
  const trace = usePoll(() => maybe<Trace>(`/v1/invocations/${enc(id)}/trace`), 0, `inv-tr:${id}`);
  const r = rec.data;
  return (
    <section>
      <p class="crumbs">
        {r ? <a href={`#/functions/${enc(r.functionName)}`}>{r.functionName}</a> : 'Invocation'} /
      </p>
      <h1 class="mono wrap">{id}</h1>
      <Failure error={rec.error} />
      {r && (
        <div class="grid2">
          <div class="card">
            <h2>Result</h2>
            <dl>
              <dt>Status</dt>
              <dd>
                <Status status={r.status} />
              </dd>
              {r.errorType && (
                <>
                  <dt>Error</dt>
                  <dd class="mono wrap">
                    {r.errorType}: {r.errorMessage}
                  </dd>
                </>
              )}
              <dt>Started</dt>
              <dd>{time(r.start)}</dd>
              <dt>Trigger</dt>
              <dd>
                {r.trigger} · attempt {r.attempt}
              </dd>
              <dt>Version</dt>
              <dd>{r.version}</dd>
              <dt>Duration</dt>
              <dd>
                {ms(r.durationMs)} · billed {r.billedMs} ms
                {r.cold ? ` · cold, init ${ms(r.initMs)}` : ' · warm'}
              </dd>
              <dt>Memory</dt>
              <dd>
                {r.memoryMB} MB · max used {bytes(r.maxRssBytes)}
              </dd>
            </dl>
          </div>
          <div class="card">
            <h2>Cost</h2>
            <dl>
              <dt>Cost</dt>
              <dd>{usd(r.costPicoUsd / 1e12)}</dd>
              <dt>Exact</dt>
              <dd class="mono">{r.costPicoUsd} picodollars</dd>
              <dt>GB-seconds</dt>
              <dd>{r.gbSeconds}</dd>
            </dl>
            <h2>Event</h2>
            {ev.data?.found ? (
              <>
                <p class="muted">
                  {ev.data.value.source} · {ev.data.value.state} · {ev.data.value.attempts} attempt(s)
                </p>
                <pre class="payload">{pretty(ev.data.value.payload ?? '')}</pre>
              </>
            ) : (
              <p class="muted">
                {ev.data ? 'Only asynchronous invocations keep their event (until it is done).' : 'Loading…'}
              </p>
            )}
          </div>
        </div>
      )}
      <h2>Logs</h2>
      <pre class="logs" tabIndex={0}>
        {r ? r.logs || '(no output)' : ''}
      </pre>
      <h2>Trace</h2>
      <Failure error={trace.error} />
      {trace.data && !trace.data.found && <p class="muted">No trace recorded.</p>}
      {trace.data?.found && <TraceWaterfall trace={trace.data.value} />}
    </section>
  );
}

function TraceWaterfall({ trace }: { trace: Trace }) {
  const w = layoutWaterfall(trace.spans);
  return (
    <div class="waterfall" role="table" aria-label={`Trace ${trace.traceId}`}>
      <p class="muted mono">
        trace {trace.traceId} · {w.rows.length} spans · {ms(w.totalMs)}
      </p>
      {w.rows.map((row) => (
        <div class="span-row" role="row" key={row.span.spanId}>
          <div class="span-name" role="cell" title={row.span.status.message ?? row.span.name}>
            <span class="indent" ref={(el) => indent(el, row.depth)} />
            {row.span.name}
          </div>
          <div class="span-track" role="cell">
            <div
              class={`span-bar${row.error ? ' error' : ''}`}
              aria-label={`${row.span.name} ${ms(row.span.durationMs)}`}
              ref={(el) => place(el, row.offset, row.width)}
            />
          </div>
          <div class="span-ms num" role="cell">
            {ms(row.span.durationMs)}
          </div>
        </div>
      ))}
    </div>
  );
}

/** Bars are placed through the CSSOM (allowed by the CSP), not with style attributes (which it forbids). */
function place(el: HTMLElement | null, offset: number, width: number): void {
  if (!el) return;
  el.style.marginLeft = `${(offset * 100).toFixed(3)}%`;
  el.style.width = `${(width * 100).toFixed(3)}%`;
}

function indent(el: HTMLElement | null, depth: number): void {
  if (el) el.style.width = `${Math.min(depth, 8) * 0.9}em`;
}

function pretty(payload: string): string {
  try {
    return JSON.stringify(JSON.parse(payload), null, 2);
  } catch {
    return payload;
  }
}

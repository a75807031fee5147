// Async events (waiting and dead letters, with replay) and schedules with their next fire times.
import { useState } from 'preact/hooks';
import { ApiFailure, enc, get, post } from '../api.js';
import { ago, time, until } from '../format.js';
import { usePoll } from '../hooks.js';
import type { EventView, FunctionView } from '../types.js';
import { Failure } from './common.js';

export function Events() {
  const dead = usePoll(() => get<{ events: EventView[] }>('/v1/events?state=dead&limit=100'), 3000, 'dead');
  const pending = usePoll(
    () => get<{ events: EventView[] }>('/v1/events?state=pending&limit=100'),
    3000,
    'pending',
  );
  const [note, setNote] = useState<{ ok: boolean; text: string } | undefined>(undefined);
  const replay = async (id: string): Promise<void> => {
    try {
      await post(`/v1/events/${enc(id)}/replay`);
      setNote({ ok: true, text: `Event ${id} replayed: it is waiting to run again.` });
    } catch (err) {
      setNote({ ok: false, text: err instanceof ApiFailure ? err.message : String(err) });
    }
    dead.reload();
    pending.reload();
  };
  return (
    <section>
      <h1>Async events</h1>
      <Failure error={dead.error ?? pending.error} />
      {note && (
        <p class={note.ok ? 'ok' : 'error'} role="status">
          {note.text}
        </p>
      )}
      <h2>Dead letters</h2>
      <EventTable rows={dead.data?.events} empty="No dead letters." onReplay={replay} />
      <h2>Waiting</h2>
      <EventTable rows={pending.data?.events} empty="Nothing waiting." />
    </section>
  );
}

function EventTable({
  rows,
  empty,
  onReplay,
}: {
  rows: EventView[] | undefined;
  empty: string;
  onReplay?: (id: string) => void;
}) {
  if (!rows) return <p class="muted">Loading…</p>;
  if (rows.length === 0) return <p class="muted">{empty}</p>;
  return (
    <div class="scroll">
      <table class="events">
        <thead>
          <tr>
            <th>Event</th>
            <th>Function</th>
            <th>Source</th>
            <th>Enqueued</th>
            <th class="num">Attempts</th>
            <th>{onReplay ? 'Last error' : 'Next attempt'}</th>
            {onReplay && <th />}
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <tr key={e.id} data-event-id={e.id} data-state={e.state}>
              <td>
                <a class="mono" href={`#/invocations/${enc(e.id)}`}>
                  {e.id}
                </a>
              </td>
              <td>
                <a href={`#/functions/${enc(e.functionName)}`}>{e.functionName}</a>
              </td>
              <td>{e.source}</td>
              <td title={time(e.enqueuedAt)}>{ago(e.enqueuedAt)}</td>
              <td class="num">{e.attempts}</td>
              <td class="wrap">
                {onReplay ? (e.lastError ?? '–') : e.nextAttemptAt ? time(e.nextAttemptAt) : '–'}
              </td>
              {onReplay && (
                <td>
                  <button onClick={() => onReplay(e.id)} aria-label={`Replay event ${e.id}`}>
                    Replay
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Schedules() {
  const fns = usePoll(() => get<{ functions: FunctionView[] }>('/v1/functions'), 5000, 'sched');
  const rows = (fns.data?.functions ?? []).flatMap((f) => f.schedules.map((s) => ({ fn: f.name, ...s })));
  rows.sort((a, b) => (a.nextFireAt ?? Infinity) - (b.nextFireAt ?? Infinity));
  return (
    <section>
      <h1>Schedules</h1>
      <Failure error={fns.error} />
      {fns.data && rows.length === 0 && (
        <p class="muted">No schedules. Add `schedule:` to a function in nimbus.yaml.</p>
      )}
      {rows.length > 0 && (
        <div class="scroll">
          <table class="schedules">
            <thead>
              <tr>
                <th>Function</th>
                <th>Expression</th>
                <th>Time zone</th>
                <th>Next fire time</th>
                <th>In</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <tr key={`${s.fn}:${s.expression}`}>
                  <td>
                    <a href={`#/functions/${enc(s.fn)}`}>{s.fn}</a>
                  </td>
                  <td class="mono">{s.expression}</td>
                  <td>{s.timezone ?? 'UTC'}</td>
                  <td>{s.nextFireAt === null ? 'never again' : time(s.nextFireAt)}</td>
                  <td>{s.nextFireAt === null ? '–' : until(s.nextFireAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

// The control API's view of the async event queue: list events (the failed ones above all), show one, and
// replay a dead one. Every handler acts in the caller's project; another project's event is as absent as
// one that never existed.
import type { EventState, QueuedEvent, Store } from '../store/types.js';
import type { ControlRequest } from './control.js';
import { ApiError, badRequest, notFound } from './errors.js';

export interface EventDeps {
  store: Pick<Store, 'events'>;
  events: { replay(id: string, project: string): Promise<'replayed' | 'not_found' | 'not_dead'> };
}

const STATES: Record<string, EventState> = { dead: 'dead', failed: 'dead', pending: 'pending' };

export async function listEvents(d: EventDeps, c: ControlRequest): Promise<unknown> {
  const fn = c.url.searchParams.get('function') ?? undefined;
  const stateParam = c.url.searchParams.get('state') ?? undefined;
  const state = stateParam === undefined ? undefined : STATES[stateParam];
  if (stateParam !== undefined && !state) {
    throw badRequest(`query parameter state must be "pending" or "dead"`, `got "${stateParam}"`);
  }
  const limitParam = c.url.searchParams.get('limit');
  const limit = limitParam === null ? undefined : Number(limitParam);
  if (limit !== undefined && !Number.isFinite(limit)) {
    throw badRequest('query parameter limit must be a number', `got "${limitParam}"`);
  }
  const events = await d.store.events.list({
    project: c.principal.project,
    ...(fn !== undefined ? { functionName: fn } : {}),
    ...(state ? { state } : {}),
    ...(limit !== undefined ? { limit } : {}),
  });
  // The list leaves payloads out (up to 1 MB each); GET /v1/events/{id} has it.
  return { events: events.map((e) => ({ ...eventView(e), payload: undefined })) };
}

export async function getEvent(d: EventDeps, c: ControlRequest): Promise<unknown> {
  const ev = await d.store.events.get(c.params['id']!);
  if (!ev || ev.project !== c.principal.project) throw notFound(`event ${c.params['id']}`);
  return eventView(ev);
}

export async function replayEvent(d: EventDeps, c: ControlRequest): Promise<unknown> {
  const id = c.params['id']!;
  const r = await d.events.replay(id, c.principal.project);
  if (r === 'not_found') throw notFound(`event ${id}`, 'list failed events with `nimbus events failed <fn>`');
  if (r === 'not_dead') {
    throw new ApiError(409, 'EventNotFailed', `event ${id} has not failed; it is still waiting to run`);
  }
  return { replayed: id };
}

/** What a person needs to judge a failed event; the lease is the platform's business. */
function eventView(e: QueuedEvent): Record<string, unknown> {
  return {
    id: e.id,
    functionName: e.functionName,
    source: e.source,
    state: e.state,
    enqueuedAt: e.enqueuedAt,
    attempts: e.attempts,
    failures: e.failures,
    nextAttemptAt: e.state === 'pending' ? e.nextAttemptAt : null,
    lastError: e.lastError,
    payload: e.payload,
  };
}

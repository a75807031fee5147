// The control API's view of the local span store: one trace by its id, or the trace of an invocation by its
// request id, as the console's waterfall and `nimbus trace` read it. Both act in the caller's project: another
// project's spans (even of the same trace id, which any client may choose) are never shown.
import type { InvocationLog, SpanStore, StoredSpan } from '../store/types.js';
import type { ControlRequest } from './control.js';
import { badRequest, notFound } from './errors.js';

export interface TraceDeps {
  store: { spans: Pick<SpanStore, 'trace'>; invocations: Pick<InvocationLog, 'get' | 'flush'> };
  /** Writes the spans that ended so far, so a trace read right after its request is whole. */
  traces?: { flushLocal(): Promise<void> };
}

/** A span as the API answers it (OTLP's names; times as decimal strings of nanoseconds, exact). */
export interface SpanView {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  durationMs: number;
  status: { code: 'OK' | 'ERROR' | 'UNSET'; message?: string };
  attributes: Record<string, unknown>;
}

export interface TraceView {
  traceId: string;
  spans: SpanView[];
}

const TRACE_ID = /^[0-9a-f]{32}$/;

export async function getTrace(d: TraceDeps, c: ControlRequest): Promise<TraceView> {
  const traceId = c.params['traceId']!.toLowerCase();
  if (!TRACE_ID.test(traceId) || /^0+$/.test(traceId)) {
    throw badRequest('a trace id is 32 hexadecimal digits, not all zero', `got "${c.params['traceId']}"`);
  }
  return read(d, c.principal.project, traceId, `trace ${traceId}`);
}

export async function getInvocationTrace(d: TraceDeps, c: ControlRequest): Promise<TraceView> {
  const id = c.params['requestId']!;
  await d.store.invocations.flush();
  const rec = await d.store.invocations.get(id);
  if (!rec || rec.project !== c.principal.project) throw notFound(`invocation ${id}`);
  if (!rec.traceId) {
    throw notFound(`trace of invocation ${id}`, 'it ran while tracing was off (NIMBUS_TRACES=off)');
  }
  return read(d, rec.project, rec.traceId, `trace ${rec.traceId} of invocation ${id}`);
}

async function read(d: TraceDeps, project: string, traceId: string, what: string): Promise<TraceView> {
  await d.traces?.flushLocal();
  const spans = await d.store.spans.trace(project, traceId);
  if (spans.length === 0) {
    throw notFound(what, 'it was not sampled (OTEL_TRACES_SAMPLER), or is past the invocation retention');
  }
  return { traceId, spans: spans.map(spanView) };
}

export function spanView(s: StoredSpan): SpanView {
  return {
    traceId: s.traceId,
    spanId: s.spanId,
    parentSpanId: s.parentSpanId,
    name: s.name,
    kind: s.kind,
    startTimeUnixNano: s.startNs.toString(),
    endTimeUnixNano: s.endNs.toString(),
    // Microsecond precision is all a waterfall needs, and stays exact in a double.
    durationMs: Number((s.endNs - s.startNs) / 1000n) / 1000,
    status: s.statusMessage !== null ? { code: s.status, message: s.statusMessage } : { code: s.status },
    attributes: s.attributes,
  };
}

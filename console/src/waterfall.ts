// The trace waterfall's layout, pure: spans (as GET /v1/invocations/{id}/trace answers them) become rows
// in tree order, each with its depth and its bar's offset and width as fractions of the trace's span of time.
// Times are nanosecond strings, so they are compared as BigInt; only the fractions are floating point.

export interface TraceSpan {
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

export interface Trace {
  traceId: string;
  spans: TraceSpan[];
}

export interface WaterfallRow {
  span: TraceSpan;
  depth: number;
  /** Where the bar begins, 0..1 of the trace's duration. */
  offset: number;
  /** How long the bar is, 0..1 (at least a sliver, so an instant span still shows). */
  width: number;
  error: boolean;
}

export interface Waterfall {
  rows: WaterfallRow[];
  /** From the earliest start to the latest end, ms. */
  totalMs: number;
}

const MIN_WIDTH = 0.002;

/**
 * Depth-first from the roots, children by start time (then name, for a stable order). A span whose parent
 * is not in the list (the client's own span, or one dropped) is a root: nothing is left out.
 */
export function layoutWaterfall(spans: readonly TraceSpan[]): Waterfall {
  if (spans.length === 0) return { rows: [], totalMs: 0 };
  const start = (s: TraceSpan) => BigInt(s.startTimeUnixNano);
  const end = (s: TraceSpan) => BigInt(s.endTimeUnixNano);
  let t0 = start(spans[0]!);
  let t1 = end(spans[0]!);
  for (const s of spans) {
    if (start(s) < t0) t0 = start(s);
    if (end(s) > t1) t1 = end(s);
  }
  const total = t1 - t0;
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string | null, TraceSpan[]>();
  for (const s of spans) {
    const parent = s.parentSpanId !== null && ids.has(s.parentSpanId) ? s.parentSpanId : null;
    const list = children.get(parent) ?? [];
    list.push(s);
    children.set(parent, list);
  }
  const byStart = (a: TraceSpan, b: TraceSpan): number => {
    const d = start(a) - start(b);
    return d < 0n ? -1 : d > 0n ? 1 : a.name.localeCompare(b.name);
  };
  const frac = (ns: bigint): number => (total === 0n ? 0 : Number((ns * 1_000_000n) / total) / 1_000_000);
  const rows: WaterfallRow[] = [];
  const seen = new Set<string>();
  const visit = (s: TraceSpan, depth: number): void => {
    // A cycle in bad data must not hang the page.
    if (seen.has(s.spanId)) return;
    seen.add(s.spanId);
    const width = Math.min(1, Math.max(MIN_WIDTH, frac(end(s) - start(s))));
    // An instant span at the very end is drawn just before it, not as a bar of width 0 past the edge.
    const offset = Math.min(frac(start(s) - t0), 1 - width);
    rows.push({ span: s, depth, offset, width, error: s.status.code === 'ERROR' });
    for (const c of (children.get(s.spanId) ?? []).sort(byStart)) visit(c, depth + 1);
  };
  for (const r of (children.get(null) ?? []).sort(byStart)) visit(r, 0);
  // Spans in a parent cycle (bad data) reach no root: shown as roots rather than lost.
  for (const s of [...spans].sort(byStart)) visit(s, 0);
  return { rows, totalMs: Number(total) / 1e6 };
}

import { describe, expect, it } from 'vitest';
import { layoutWaterfall, type TraceSpan } from './waterfall.js';

const T0 = 1_764_720_000_000_000_000n;

function span(
  id: string,
  parent: string | null,
  startMs: number,
  endMs: number,
  over: Partial<TraceSpan> = {},
) {
  const ns = (m: number) => (T0 + BigInt(Math.round(m * 1e6))).toString();
  return {
    traceId: 't1',
    spanId: id,
    parentSpanId: parent,
    name: id,
    kind: 'INTERNAL',
    startTimeUnixNano: ns(startMs),
    endTimeUnixNano: ns(endMs),
    durationMs: endMs - startMs,
    status: { code: 'OK' },
    attributes: {},
    ...over,
  } satisfies TraceSpan;
}

describe('layoutWaterfall', () => {
  it('orders spans depth-first by start, with offsets and widths as fractions of the trace', () => {
    // Given out of order, as a store might answer them.
    const spans = [
      span('invoke', 'gateway', 20, 90),
      span('init', 'cold', 5, 18),
      span('gateway', null, 0, 100),
      span('cold', 'gateway', 2, 20),
      span('pool.take', 'cold', 2, 5, { status: { code: 'ERROR', message: 'no stem cell' } }),
    ];
    const w = layoutWaterfall(spans);
    expect(w.totalMs).toBe(100);
    expect(w.rows.map((r) => [r.span.spanId, r.depth, r.offset, r.width, r.error])).toEqual([
      ['gateway', 0, 0, 1, false],
      ['cold', 1, 0.02, 0.18, false],
      ['pool.take', 2, 0.02, 0.03, true],
      ['init', 2, 0.05, 0.13, false],
      ['invoke', 1, 0.2, 0.7, false],
    ]);
  });

  it('treats a span whose parent is missing as a root, and gives an instant span a sliver', () => {
    const w = layoutWaterfall([span('child', 'client-span', 0, 10), span('mark', 'child', 10, 10)]);
    expect(w.rows.map((r) => [r.span.spanId, r.depth])).toEqual([
      ['child', 0],
      ['mark', 1],
    ]);
    expect(w.rows[1]!.width).toBeGreaterThan(0);
    expect(w.rows[1]!.offset + w.rows[1]!.width).toBeLessThanOrEqual(1);
  });

  it('lays out nothing for no spans, and survives a parent cycle', () => {
    expect(layoutWaterfall([])).toEqual({ rows: [], totalMs: 0 });
    const w = layoutWaterfall([span('a', 'b', 0, 1), span('b', 'a', 0, 2), span('r', null, 0, 3)]);
    expect(w.rows.map((r) => [r.span.spanId, r.depth])).toEqual([
      ['r', 0],
      ['a', 0],
      ['b', 1],
    ]);
  });
});

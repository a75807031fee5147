// SpanStore conformance: a trace's spans come back exactly as written (nanoseconds past 2^53, attributes,
// status), ordered by start, only to their own project; a span written twice stays one; pruning takes the
// oldest first in bounded batches; and an invocation record keeps its trace id.
import { describe, expect, it } from 'vitest';
import type { StoredSpan } from '../types.js';
import { record, useHarness, type HarnessFactory } from './harness.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const OTHER = '0af7651916cd43dd8448eb211c80319c';
/** 2026-12-03T12:00:00Z in ns, with a nanosecond part a double would round away. */
const T0 = 1_796_299_200_000_000_001n;

function span(over: Partial<StoredSpan> = {}): StoredSpan {
  return {
    project: 'default',
    traceId: TRACE,
    spanId: '00f067aa0ba902b7',
    parentSpanId: null,
    name: 'GET /items/{id}',
    kind: 'SERVER',
    startNs: T0,
    endNs: T0 + 1_500_000n,
    status: 'UNSET',
    statusMessage: null,
    attributes: { 'http.route': '/items/{id}', 'http.response.status_code': 200, 'faas.coldstart': false },
    ...over,
  };
}

export function spanStoreConformance(name: string, make: HarnessFactory): void {
  describe(`SpanStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const s = () => ctx.store.spans;

    it('gives back a trace as written, ordered by start time', async () => {
      const root = span();
      const child = span({
        spanId: '53995c3f42cd8ad8',
        parentSpanId: root.spanId,
        name: 'handler',
        kind: 'INTERNAL',
        startNs: T0 + 200_000n,
        endNs: T0 + 1_000_000n,
        status: 'ERROR',
        statusMessage: 'Error: boom',
        attributes: { 'nimbus.request_id': 'r-1', list: ['a', 'b'], ratio: 0.25 },
      });
      const admission = span({
        spanId: '1111111111111111',
        parentSpanId: root.spanId,
        name: 'admission',
        kind: 'INTERNAL',
        startNs: T0 + 100_000n,
        endNs: T0 + 100_001n,
        attributes: {},
      });
      await s().write([child, root]);
      await s().write([admission]);
      expect(await s().trace('default', TRACE)).toStrictEqual([root, admission, child]);
      expect(await s().trace('default', OTHER)).toStrictEqual([]);
    });

    it('answers a project only with its own spans of a trace', async () => {
      await ctx.store.projects.ensure('team-b');
      await s().write([span(), span({ project: 'team-b', spanId: '2222222222222222', name: 'b' })]);
      expect((await s().trace('default', TRACE)).map((x) => x.name)).toEqual(['GET /items/{id}']);
      expect((await s().trace('team-b', TRACE)).map((x) => x.name)).toEqual(['b']);
      expect(await s().trace('nowhere', TRACE)).toStrictEqual([]);
    });

    it('keeps a span written twice once, as first written', async () => {
      await s().write([span()]);
      await s().write([span({ name: 'again' }), span({ spanId: '3333333333333333', name: 'new' })]);
      expect((await s().trace('default', TRACE)).map((x) => x.name)).toEqual(['GET /items/{id}', 'new']);
      await s().write([]);
    });

    it('prunes spans that started before a time, oldest first, at most a batch per call', async () => {
      const ms = Number(T0 / 1_000_000n);
      const spans = [0, 1, 2, 3, 4].map((i) =>
        span({
          spanId: `${i}`.repeat(16),
          startNs: T0 + BigInt(i) * 1_000_000_000n,
          endNs: T0 + BigInt(i) * 1_000_000_000n + 1n,
        }),
      );
      await s().write(spans);
      // Started before ms + 3 s: the first three, two per call.
      expect(await s().prune(ms + 3000, 2)).toBe(2);
      expect((await s().trace('default', TRACE)).map((x) => x.spanId)).toEqual(
        ['2', '3', '4'].map((c) => c.repeat(16)),
      );
      expect(await s().prune(ms + 3000, 2)).toBe(1);
      expect(await s().prune(ms + 3000, 2)).toBe(0);
      expect(await s().trace('default', TRACE)).toHaveLength(2);
    });

    it('keeps the trace id of an invocation record, and null without one', async () => {
      const traced = record({ traceId: TRACE });
      const plain = record();
      ctx.store.invocations.write(traced);
      ctx.store.invocations.write(plain);
      await ctx.store.invocations.flush();
      expect((await ctx.store.invocations.get(traced.requestId))?.traceId).toBe(TRACE);
      expect((await ctx.store.invocations.get(plain.requestId))?.traceId).toBeNull();
      const found = await ctx.store.invocations.query({ requestId: traced.requestId });
      expect(found[0]?.traceId).toBe(TRACE);
    });
  });
}

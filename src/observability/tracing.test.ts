import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { continueTrace } from '../events/trace.js';
import { Tracing, xraySpanContext } from './tracing.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const XRAY_ROOT = `1-${TRACE.slice(0, 8)}-${TRACE.slice(8)}`;

describe('X-Ray headers', () => {
  it('reads a Root and Parent as a span context, and nothing from a header without a Parent', () => {
    expect(xraySpanContext(`Root=${XRAY_ROOT};Parent=00f067aa0ba902b7;Sampled=1`)).toMatchObject({
      traceId: TRACE,
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
    });
    expect(xraySpanContext(`Root=${XRAY_ROOT};Parent=00f067aa0ba902b7;Sampled=0`)?.traceFlags).toBe(0);
    expect(xraySpanContext(`Root=${XRAY_ROOT};Sampled=0;Lineage=abcdef01:1`)).toBeUndefined();
    expect(xraySpanContext(`Root=1-00000000-${'0'.repeat(24)};Parent=00f067aa0ba902b7`)).toBeUndefined();
    expect(xraySpanContext('Root=garbage;Parent=xyz')).toBeUndefined();
    expect(xraySpanContext(undefined)).toBeUndefined();
  });

  it("keeps the caller's Parent and Sampled along an async chain, and names none for a new trace", () => {
    const first = continueTrace(undefined, 'default/a');
    expect(first.header).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0;Lineage=[0-9a-f]{8}:1$/);
    const next = continueTrace(`Root=${XRAY_ROOT};Parent=00f067aa0ba902b7;Sampled=1`, 'default/b');
    expect(next.header).toMatch(
      new RegExp(`^Root=${XRAY_ROOT};Parent=00f067aa0ba902b7;Sampled=1;Lineage=[0-9a-f]{8}:1$`),
    );
  });
});

describe('Tracing', () => {
  const saved = process.env['OTEL_TRACES_SAMPLER'];
  afterEach(() => {
    if (saved === undefined) delete process.env['OTEL_TRACES_SAMPLER'];
    else process.env['OTEL_TRACES_SAMPLER'] = saved;
  });

  function make(ratio?: number) {
    const exporter = new InMemorySpanExporter();
    const t = new Tracing({
      otlp: false,
      processors: [new SimpleSpanProcessor(exporter)],
      ...(ratio !== undefined ? { defaultRatio: ratio } : {}),
    });
    return { t, exporter };
  }
  const request = (t: Tracing, traceparent?: string) =>
    t.request(traceparent ? { traceparent } : {}, 'GET', '/x', '127.0.0.1');

  it('samples by the default ratio without OTEL_TRACES_SAMPLER, and always follows a sampled client', () => {
    delete process.env['OTEL_TRACES_SAMPLER'];
    const none = make(0);
    expect(request(none.t).parent.sampled).toBe(false);
    const followed = request(none.t, `00-${TRACE}-00f067aa0ba902b7-01`);
    expect(followed.parent).toMatchObject({ traceId: TRACE, sampled: true });
    expect(request(make(1).t).parent.sampled).toBe(true);
  });

  it('leaves sampling to OTEL_TRACES_SAMPLER when it is set', () => {
    process.env['OTEL_TRACES_SAMPLER'] = 'always_on';
    expect(request(make(0).t).parent.sampled).toBe(true);
    process.env['OTEL_TRACES_SAMPLER'] = 'always_off';
    expect(request(make(1).t, `00-${TRACE}-00f067aa0ba902b7-01`).parent.sampled).toBe(false);
  });

  it('gives an unsampled invocation ids to pass on and records nothing', () => {
    process.env['OTEL_TRACES_SAMPLER'] = 'always_off';
    const { t, exporter } = make();
    const inv = t.invocation({ fn: { project: 'p', name: 'f' }, event: {}, trigger: 'event' }, 'r1');
    expect(inv.header).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$/);
    expect(inv.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    inv.admitted('cold', performance.now());
    expect(inv.coldTimes()).toBeUndefined();
    inv.end({
      requestId: 'r1',
      project: 'p',
      functionName: 'f',
      version: '1',
      status: 'ok',
      durationMs: 1,
      cold: true,
      logs: '',
    });
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});

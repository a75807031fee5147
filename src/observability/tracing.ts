// OpenTelemetry traces: a span per gateway request, per invocation (with its admission and, on a cold start,
// the pool take, code link and init under one "cold start" span) and per call a function makes to Nimbus's
// AWS APIs. The SDK's BasicTracerProvider reads the standard OTEL_* variables (sampler, limits, batch sizes),
// the OTLP exporter its endpoint and headers; spans also go to the store's SpanStore for the console and the
// control API. No context manager is installed: parents are passed explicitly, so the warm path pays for no
// AsyncLocalStorage. Off (no OTLP endpoint and no local store), nothing here is built and callers hold
// `undefined`, so a request pays one property test.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
  type Attributes,
  type Context,
  type HrTime,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { ExportResultCode, parseTraceParent, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import type { IncomingHttpHeaders } from 'node:http';
import type { Component } from '../component.js';
import type {
  ColdTimes,
  InvocationTrace,
  InvokeOutcome,
  InvokeRequest,
  InvokeTracer,
  TraceParent,
} from '../invoker/types.js';
import type { SpanKindName, SpanStatusName, SpanStore, StoredSpan, Trigger } from '../store/types.js';

// Incubating semantic conventions, copied rather than imported from the package's unstable entry point, as
// its authors advise.
const ATTR_FAAS_NAME = 'faas.name';
const ATTR_FAAS_VERSION = 'faas.version';
const ATTR_FAAS_TRIGGER = 'faas.trigger';
const ATTR_FAAS_INVOCATION_ID = 'faas.invocation_id';
const ATTR_FAAS_COLDSTART = 'faas.coldstart';
const ATTR_FAAS_MAX_MEMORY = 'faas.max_memory';
const ATTR_RPC_SYSTEM = 'rpc.system';
const ATTR_RPC_SERVICE = 'rpc.service';
const ATTR_RPC_METHOD = 'rpc.method';
const ATTR_AWS_REQUEST_ID = 'aws.request_id';

/** Nimbus's own attributes: the project keeps a span to its owner in the local store. */
export const ATTR_PROJECT = 'nimbus.project';
export const ATTR_REQUEST_ID = 'nimbus.request_id';
const ATTR_TRIGGER = 'nimbus.trigger';
const ATTR_STATUS = 'nimbus.status';
const ATTR_ADMISSION = 'nimbus.admission';
const ATTR_THROTTLE_REASON = 'nimbus.throttle_reason';
const ATTR_ATTEMPT = 'nimbus.attempt';
const ATTR_BILLED_MS = 'nimbus.billed_ms';

/**
 * Every span's times on one clock: epoch ms from performance.now(). The SDK corrects a performance
 * timestamp by an offset it measures per span, which moved children past their parents' ends.
 */
function epochMs(perf: number): number {
  return performance.timeOrigin + perf;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}
export const DEFAULT_SAMPLE_RATIO = 0.1;

/** OpenTelemetry's faas.trigger for each of Nimbus's triggers. */
const FAAS_TRIGGER: Record<Trigger, string> = {
  http: 'http',
  authorizer: 'http',
  invoke: 'other',
  event: 'other',
  schedule: 'timer',
  queue: 'pubsub',
  stream: 'datasource',
  storage: 'datasource',
};

export interface TracingOptions {
  /** Export over OTLP/HTTP (JSON) to the endpoint the standard OTEL_EXPORTER_OTLP_* variables name. */
  otlp: boolean;
  /** Keep spans in the store for the console and GET /v1/traces. */
  store?: Pick<SpanStore, 'write'>;
  /** service.version of the resource. */
  version?: string;
  /** Told when spans could not be written locally (never thrown). */
  onError?: (err: unknown, context: string) => void;
  /** For tests: extra processors (an in-memory exporter). */
  processors?: SpanProcessor[];
  /** The share of new traces sampled when OTEL_TRACES_SAMPLER is unset (parent-based). Default 0.1. */
  defaultRatio?: number;
}

/**
 * Nimbus's sampler when OTEL_TRACES_SAMPLER is unset: one new trace in ten, a client's decision followed.
 * The SDK's own default (every trace) costs a warm request about half again its CPU once spans are stored
 * (bench/tracing.mjs); set OTEL_TRACES_SAMPLER=parentbased_always_on to keep every trace.
 */
function defaultSampler(ratio: number, env: NodeJS.ProcessEnv): Sampler | undefined {
  if ((env['OTEL_TRACES_SAMPLER'] ?? '').trim() !== '') return undefined;
  return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
}

/** Whether the environment asks for OTLP export: an endpoint is named and the exporter is not switched off. */
export function otlpRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env['OTEL_SDK_DISABLED'] ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = (env['OTEL_TRACES_EXPORTER'] ?? 'otlp').split(',').map((s) => s.trim().toLowerCase());
  if (!exporters.includes('otlp')) return false;
  return Boolean(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_ENDPOINT']);
}

/** The trace of one gateway request, from its first byte to its answer. */
export interface RequestTrace {
  /** The parent the invocation's span takes. */
  readonly parent: TraceParent;
  readonly traceId: string;
  end(project: string, route: { routeKey: string; functionName: string } | undefined, status: number): void;
}

/** What the gateway asks of tracing; absent when tracing is off. */
export interface GatewayTracer {
  request(headers: IncomingHttpHeaders, method: string, path: string, clientIp: string): RequestTrace;
}

/** A call a function made to an AWS API of Nimbus's, under the function's trace. */
export interface AwsCallTrace {
  end(status: number): void;
}

/** What the API listener asks of tracing; absent when tracing is off. */
export interface ApiTracer {
  /** A span for the call when it carries a trace context (a function's SDK sends X-Amzn-Trace-Id), else none. */
  awsCall(
    headers: IncomingHttpHeaders,
    service: string,
    operation: string,
    project: string,
    requestId: string,
  ): AwsCallTrace | undefined;
}

export class Tracing implements InvokeTracer, GatewayTracer, ApiTracer, Component {
  readonly name = 'tracing';
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  private readonly local: SpanProcessor | undefined;

  constructor(o: TracingOptions) {
    const processors: SpanProcessor[] = [...(o.processors ?? [])];
    // OTEL_BSP_* tune the export batches; the exporter reads its endpoint, headers, timeout and compression.
    if (o.otlp) processors.push(new BatchSpanProcessor(new OTLPTraceExporter()));
    if (o.store) {
      // Short delay: a user opening a trace right after the request should find it (reads flush first anyway).
      this.local = new BatchSpanProcessor(new StoreSpanExporter(o.store, o.onError), {
        scheduledDelayMillis: 200,
        maxQueueSize: 8192,
        maxExportBatchSize: 512,
      });
      processors.push(this.local);
    }
    const resource = defaultResource()
      .merge(
        resourceFromAttributes({
          [ATTR_SERVICE_NAME]: 'nimbus',
          ...(o.version ? { 'service.version': o.version } : {}),
        }),
      )
      // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the defaults.
      .merge(detectResources({ detectors: [envDetector] }));
    const sampler = defaultSampler(o.defaultRatio ?? DEFAULT_SAMPLE_RATIO, process.env);
    this.provider = new BasicTracerProvider({
      resource,
      spanProcessors: processors,
      ...(sampler ? { sampler } : {}),
    });
    this.tracer = this.provider.getTracer('nimbus');
  }

  async start(): Promise<void> {}

  /** Exports what is queued and stops: the last requests' spans are not lost at a clean stop. */
  async stop(): Promise<void> {
    await this.provider.shutdown();
  }

  /** Writes the spans that ended so far to the local store (before a read of it). */
  async flushLocal(): Promise<void> {
    await this.local?.forceFlush();
  }

  request(headers: IncomingHttpHeaders, method: string, path: string, clientIp: string): RequestTrace {
    const ctx = extractW3c(headers);
    // Attributes only on a recording span: the SDK copies and checks any given at start, sampled or not.
    const span = this.tracer.startSpan(method, { kind: SpanKind.SERVER, startTime: now() }, ctx);
    if (span.isRecording()) {
      span.setAttribute(ATTR_HTTP_REQUEST_METHOD, method);
      span.setAttribute(ATTR_URL_PATH, path);
      span.setAttribute(ATTR_CLIENT_ADDRESS, clientIp);
    }
    const sc = span.spanContext();
    const parent: TraceParent = {
      traceId: sc.traceId,
      spanId: sc.spanId,
      sampled: (sc.traceFlags & TraceFlags.SAMPLED) !== 0,
      ...(typeof headers.tracestate === 'string' ? { traceState: headers.tracestate } : {}),
    };
    return {
      parent,
      traceId: sc.traceId,
      end(project, route, status) {
        if (!span.isRecording()) return span.end();
        const end = now();
        span.setAttribute(ATTR_PROJECT, project);
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
        if (route) {
          // "GET /items/{id}": the route's template, as semantic conventions name a server span.
          const space = route.routeKey.indexOf(' ');
          const template = space === -1 ? route.routeKey : route.routeKey.slice(space + 1);
          span.setAttribute(ATTR_HTTP_ROUTE, template);
          span.setAttribute(ATTR_FAAS_NAME, route.functionName);
          span.updateName(`${method} ${template}`);
        }
        // Server spans: 5xx is the server's error, 4xx the client's (left unset).
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end(end);
      },
    };
  }

  invocation(req: InvokeRequest, requestId: string): InvocationTrace {
    return new Invocation(this.tracer, req, requestId);
  }

  awsCall(
    headers: IncomingHttpHeaders,
    service: string,
    operation: string,
    project: string,
    requestId: string,
  ): AwsCallTrace | undefined {
    const parent = parentOfAwsCall(headers);
    if (!parent) return undefined;
    const span = this.tracer.startSpan(
      `${service}.${operation}`,
      {
        kind: SpanKind.SERVER,
        startTime: now(),
        attributes: {
          [ATTR_RPC_SYSTEM]: 'aws-api',
          [ATTR_RPC_SERVICE]: service,
          [ATTR_RPC_METHOD]: operation,
          [ATTR_AWS_REQUEST_ID]: requestId,
          [ATTR_PROJECT]: project,
        },
      },
      parent,
    );
    return {
      end(status) {
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end(now());
      },
    };
  }
}

class Invocation implements InvocationTrace {
  readonly traceId: string;
  readonly header: string;
  readonly traceparent: string;
  private readonly span: Span;
  /** The invocation span as a parent, made when a child span needs it. */
  private ctxOf: Context | undefined;
  private readonly project: string;
  private cold: ColdTimes | undefined;

  constructor(
    private readonly tracer: Tracer,
    req: InvokeRequest,
    requestId: string,
  ) {
    const parent = req.parent ? contextOf(req.parent) : parentOfXray(req.traceId);
    this.project = req.fn.project;
    const span = (this.span = tracer.startSpan(
      req.fn.name,
      { kind: SpanKind.SERVER, startTime: now() },
      parent,
    ));
    if (span.isRecording()) {
      span.setAttributes({
        [ATTR_FAAS_NAME]: req.fn.name,
        [ATTR_FAAS_TRIGGER]: FAAS_TRIGGER[req.trigger],
        [ATTR_FAAS_INVOCATION_ID]: requestId,
        [ATTR_PROJECT]: req.fn.project,
        [ATTR_REQUEST_ID]: requestId,
        [ATTR_TRIGGER]: req.trigger,
        [ATTR_ATTEMPT]: req.attempt ?? 1,
      });
    }
    const sc = this.span.spanContext();
    const sampled = (sc.traceFlags & TraceFlags.SAMPLED) !== 0;
    this.traceId = sc.traceId;
    this.traceparent = `00-${sc.traceId}-${sc.spanId}-${sampled ? '01' : '00'}`;
    // X-Ray's form of the same ids, with the Lineage that counts loops of async chains kept.
    const lineage = req.traceId && /(?:^|;)\s*Lineage=([^;]*)/.exec(req.traceId)?.[1];
    this.header =
      `Root=1-${sc.traceId.slice(0, 8)}-${sc.traceId.slice(8)};Parent=${sc.spanId};Sampled=${sampled ? 1 : 0}` +
      (lineage ? `;Lineage=${lineage}` : '');
  }

  admitted(kind: 'warm' | 'cold' | 'throttle', at: number, reason?: string): void {
    if (!this.span.isRecording()) return;
    // A warm admission says nothing a span would add: it is an attribute of the invocation's span.
    if (kind === 'warm') {
      this.span.setAttribute(ATTR_ADMISSION, kind);
      return;
    }
    const s = this.tracer.startSpan(
      'admission',
      {
        startTime: epochMs(at),
        attributes: {
          [ATTR_PROJECT]: this.project,
          [ATTR_ADMISSION]: kind,
          ...(reason ? { [ATTR_THROTTLE_REASON]: reason } : {}),
        },
      },
      this.ctx(),
    );
    if (reason) s.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    s.end(epochMs(at));
    if (kind === 'cold') this.cold = { start: at };
  }

  private ctx(): Context {
    return (this.ctxOf ??= trace.setSpan(ROOT_CONTEXT, this.span));
  }

  coldTimes(): ColdTimes | undefined {
    return this.cold;
  }

  end(o: InvokeOutcome): void {
    const span = this.span;
    if (!span.isRecording()) return span.end();
    const end = now();
    const rec = o.record;
    if (this.cold && o.cold) this.coldSpans(this.cold, rec?.initMs ?? null);
    span.setAttribute(ATTR_FAAS_COLDSTART, o.cold);
    span.setAttribute(ATTR_STATUS, o.status);
    span.setAttribute(ATTR_FAAS_VERSION, o.version);
    if (rec) {
      span.setAttribute(ATTR_FAAS_MAX_MEMORY, rec.memoryMB * 1024 * 1024);
      span.setAttribute(ATTR_BILLED_MS, rec.billedMs);
    }
    if (o.status !== 'ok') {
      const e = o.error;
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: e ? `${e.errorType}: ${e.errorMessage}`.slice(0, 1024) : o.status,
      });
    }
    span.end(end);
  }

  private coldSpans(t: ColdTimes, initMs: number | null): void {
    const initEnd = t.sent !== undefined && initMs !== null ? t.sent + initMs : undefined;
    const end = initEnd ?? t.sent ?? t.linkEnd ?? t.poolEnd ?? t.start;
    // Every span names its project: a batch may hold a child without its parent.
    const attributes = { [ATTR_PROJECT]: this.project };
    const cold = this.tracer.startSpan('cold start', { startTime: epochMs(t.start), attributes }, this.ctx());
    const under = trace.setSpan(ROOT_CONTEXT, cold);
    const step = (name: string, from: number | undefined, to: number | undefined): void => {
      if (from === undefined || to === undefined) return;
      this.tracer.startSpan(name, { startTime: epochMs(from), attributes }, under).end(epochMs(to));
    };
    step('pool take', t.poolStart, t.poolEnd);
    step('code link', t.linkStart, t.linkEnd);
    step('init', t.sent, initEnd);
    cold.end(epochMs(end));
  }
}

/** The client's traceparent (and tracestate), or the root context when it has none or a malformed one. */
function extractW3c(headers: IncomingHttpHeaders): Context {
  const tp = headers.traceparent;
  if (typeof tp !== 'string') return ROOT_CONTEXT;
  const sc = parseTraceParent(tp);
  if (!sc || !valid(sc)) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, { ...sc, isRemote: true });
}

function contextOf(p: TraceParent): Context {
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: p.traceId,
    spanId: p.spanId,
    traceFlags: p.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: false,
  });
}

/**
 * The parent an X-Ray header names (Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0|1), or the root
 * context: a header with a Root but no Parent starts a new trace.
 */
export function parentOfXray(header: string | undefined): Context {
  const sc = xraySpanContext(header);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

export function xraySpanContext(header: string | undefined): SpanContext | undefined {
  if (!header) return undefined;
  const root = /(?:^|;)\s*Root=1-([0-9a-f]{8})-([0-9a-f]{24})\s*(?:;|$)/.exec(header);
  const parent = /(?:^|;)\s*Parent=([0-9a-f]{16})\s*(?:;|$)/.exec(header);
  if (!root || !parent) return undefined;
  const sampled = /(?:^|;)\s*Sampled=1\s*(?:;|$)/.test(header);
  const sc: SpanContext = {
    traceId: root[1]! + root[2]!,
    spanId: parent[1]!,
    traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  };
  return valid(sc) ? sc : undefined;
}

/** A call's parent: the SDK's X-Amzn-Trace-Id, or a traceparent; undefined when it carries neither. */
function parentOfAwsCall(headers: IncomingHttpHeaders): Context | undefined {
  const x = headers['x-amzn-trace-id'];
  const sc = typeof x === 'string' ? xraySpanContext(x) : undefined;
  if (sc) return trace.setSpanContext(ROOT_CONTEXT, sc);
  const w3c = extractW3c(headers);
  return w3c === ROOT_CONTEXT ? undefined : w3c;
}

const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

function valid(sc: SpanContext): boolean {
  return sc.traceId !== ZERO_TRACE && sc.spanId !== ZERO_SPAN;
}

const KINDS: Record<SpanKind, SpanKindName> = {
  [SpanKind.INTERNAL]: 'INTERNAL',
  [SpanKind.SERVER]: 'SERVER',
  [SpanKind.CLIENT]: 'CLIENT',
  [SpanKind.PRODUCER]: 'PRODUCER',
  [SpanKind.CONSUMER]: 'CONSUMER',
};

const STATUSES: Record<SpanStatusCode, SpanStatusName> = {
  [SpanStatusCode.UNSET]: 'UNSET',
  [SpanStatusCode.OK]: 'OK',
  [SpanStatusCode.ERROR]: 'ERROR',
};

/** A finished span as the store keeps it, or undefined for one that belongs to no project. */
export function toStoredSpan(s: ReadableSpan): StoredSpan | undefined {
  const p = s.attributes[ATTR_PROJECT];
  if (typeof p !== 'string') return undefined;
  const sc = s.spanContext();
  return {
    project: p,
    traceId: sc.traceId,
    spanId: sc.spanId,
    parentSpanId: s.parentSpanContext?.spanId ?? null,
    name: s.name,
    kind: KINDS[s.kind],
    startNs: nanos(s.startTime),
    endNs: nanos(s.endTime),
    status: STATUSES[s.status.code],
    statusMessage: s.status.message ?? null,
    attributes: plainAttributes(s.attributes),
  };
}

/** Exact, as OTLP sends it: hrTimeToNanoseconds gives a double, which rounds past 2^53. */
function nanos(t: HrTime): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}

function plainAttributes(a: Attributes): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a)) if (v !== undefined) out[k] = v;
  return out;
}

/** The local store as an OpenTelemetry exporter: the batch processor calls it off the hot path. */
class StoreSpanExporter implements SpanExporter {
  private stopped = false;

  constructor(
    private readonly store: Pick<SpanStore, 'write'>,
    private readonly onError?: (err: unknown, context: string) => void,
  ) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (this.stopped) return done({ code: ExportResultCode.FAILED });
    const rows: StoredSpan[] = [];
    for (const s of spans) {
      const row = toStoredSpan(s);
      if (row) rows.push(row);
    }
    this.store.write(rows).then(
      () => done({ code: ExportResultCode.SUCCESS }),
      (err: unknown) => {
        this.onError?.(err, 'writing spans to the store');
        done({ code: ExportResultCode.FAILED });
      },
    );
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
  }

  async forceFlush(): Promise<void> {}
}

// The single entry for every invocation. Gateway, Invoke API and every trigger source call only this, and
// every finished invocation leaves through the InvocationSinks (the invocation log first; metrics and
// metering later).
import type { HandlerShape, SerializedError } from '../protocol/messages.js';
import type { TimedResult } from '../sandbox/instance.js';
import type { ThrottleReason } from '../scaler/scaler.js';
import type { FunctionRef, InvocationRecord, InvocationStatus, Trigger } from '../store/types.js';

export type { ThrottleReason };

/** A function as a caller names it; a qualifier is "$LATEST" or a version number. */
export interface InvokeTarget extends FunctionRef {
  qualifier?: string;
}

export interface InvokeRequest {
  fn: InvokeTarget;
  event: unknown;
  trigger: Trigger;
  /** Generated when absent. */
  requestId?: string;
  /** 1 unless this is a retry of an event. */
  attempt?: number;
  /** The X-Ray trace header the function sees as _X_AMZN_TRACE_ID (with tracing on, its Root, Parent and
   *  Sampled are the invocation span's, and a Parent here is that span's parent when `parent` is absent). */
  traceId?: string;
  /** The span the invocation's span is a child of (the gateway request's), when tracing is on. */
  parent?: TraceParent;
  /** Told the invocation's W3C traceparent before the event is sent, to put it into the event (HTTP). */
  propagate?: (traceparent: string) => void;
  clientContext?: unknown;
  /** Why the caller cannot use an ok answer's payload (the gateway: a malformed HTTP response), or
   *  undefined. A reason turns the invocation into an error of type Nimbus.MalformedResponse. */
  checkPayload?: (payload: string) => string | undefined;
}

export interface InvokeOutcome {
  requestId: string;
  project: string;
  functionName: string;
  /** The version that ran (or would have run). */
  version: string;
  status: InvocationStatus | 'not_found';
  /** Why, when status is 'throttled'. */
  throttleReason?: ThrottleReason;
  /** JSON text returned by the handler when status is 'ok'. */
  payload?: string;
  /** For error, unhandled, timeout, oom, throttled, not_found. */
  error?: SerializedError;
  durationMs: number;
  cold: boolean;
  /** The invocation's captured log lines (Lambda format). */
  logs: string;
  /** The record it ended in, with its metered usage (absent when no function was found). */
  record?: InvocationRecord;
}

/** The error type of an answer the caller could not use (see InvokeRequest.checkPayload). */
export const MALFORMED_RESPONSE = 'Nimbus.MalformedResponse';

export interface Invoker {
  invoke(req: InvokeRequest): Promise<InvokeOutcome>;
}

/** A span context as plain data, so the invoker needs no OpenTelemetry types. */
export interface TraceParent {
  /** 32 lower-case hex digits. */
  traceId: string;
  /** 16 lower-case hex digits. */
  spanId: string;
  sampled: boolean;
  /** The client's tracestate, passed on untouched. */
  traceState?: string;
}

/** Tracing as the invoker reports to it (observability/tracing.ts); absent when tracing is off. */
export interface InvokeTracer {
  invocation(req: InvokeRequest, requestId: string): InvocationTrace;
}

/** Timestamps the invoker takes on a cold start, performance.now() ms. */
export interface ColdTimes {
  start: number;
  poolStart?: number;
  poolEnd?: number;
  linkStart?: number;
  linkEnd?: number;
  /** When the first invocation (carrying init) was sent to the process. */
  sent?: number;
}

/** One invocation's span (recording or not: an unsampled one still has ids to pass on). */
export interface InvocationTrace {
  readonly traceId: string;
  /** What the function sees as _X_AMZN_TRACE_ID. */
  readonly header: string;
  /** The W3C form of the invocation span, for the event's traceparent header. */
  readonly traceparent: string;
  /** The scaler's answer, at performance.now() `at`; a cold one starts the cold start's timing. */
  admitted(kind: 'warm' | 'cold' | 'throttle', at: number, reason?: string): void;
  /** The cold start's timing to fill in, after admitted('cold') of a recorded span; else undefined. */
  coldTimes(): ColdTimes | undefined;
  end(outcome: InvokeOutcome): void;
}

/** Receives every invocation record, on the hot path: it must not throw and must not block. */
export interface InvocationSink {
  write(rec: InvocationRecord): void;
}

/**
 * What loading a version in a sandbox showed (`DefaultInvoker.checkLoad`): loaded, or the result of the
 * failed load with the code folder as the process saw it (paths in errors start with it), or an environment
 * that could not be had (a secret gone).
 */
export type LoadCheck =
  | { ok: true; handler?: HandlerShape }
  | { ok: false; result: Exclude<TimedResult, { kind: 'ok' }>; codeDir: string }
  | { ok: false; environment: string };

/** The function `nimbus dev --inspect` debugs, as the host's inspector bridge sees it. */
export interface InspectTarget {
  /** The newest live instance's inspector socket on the host, if an instance has started. */
  socket(): string | undefined;
  /** A debugger attached (true) or gone (false): the instances' timeouts are suspended meanwhile. */
  attached(on: boolean): void;
  /** Ends inspection: the inspectable instances are retired. */
  close(): void;
}

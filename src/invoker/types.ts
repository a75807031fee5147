// The single entry for every invocation. Gateway, Invoke API and (later) event sources call only this.
import type { SerializedError } from '../protocol/messages.js';
import type { InvocationStatus, Trigger } from '../store/types.js';

export interface InvokeRequest {
  functionName: string;
  event: unknown;
  trigger: Trigger;
  /** Generated when absent. */
  requestId?: string;
  /** Sync callers get 429 at once when no capacity; async (Event) invocations are queued instead. */
  clientContext?: unknown;
}

export interface InvokeOutcome {
  requestId: string;
  functionName: string;
  /** The version that ran (or would have run). */
  version: string;
  status: InvocationStatus | 'not_found';
  /** JSON text returned by the handler when status is 'ok'. */
  payload?: string;
  /** For error, unhandled, timeout, oom, throttled, not_found. */
  error?: SerializedError;
  durationMs: number;
  cold: boolean;
  /** The invocation's captured log lines (Lambda format). */
  logs: string;
}

export interface Invoker {
  invoke(req: InvokeRequest): Promise<InvokeOutcome>;
}

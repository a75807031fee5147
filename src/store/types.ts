// State behind interfaces. The invoker, api and events know only these types; server.ts picks the
// implementation (SQLite today, PostgreSQL for cluster mode), and one conformance suite runs against each.
import type { FunctionConfig } from '../config/manifest.js';

/** One deployed, immutable version of a function. */
export interface FunctionVersion {
  name: string;
  service: string;
  /** 1, 2, 3 ... per function; each deploy that changes anything creates a new one. */
  version: number;
  config: FunctionConfig;
  /** sha256 (hex) of the code archive this version runs. */
  codeSha256: string;
  codeSize: number;
  deployedAt: number;
}

export type InvocationStatus = 'ok' | 'error' | 'unhandled' | 'timeout' | 'oom' | 'throttled';
export type Trigger = 'http' | 'invoke' | 'event';

/** One record per invocation: the wide event every trigger ends in. */
export interface InvocationRecord {
  requestId: string;
  functionName: string;
  /** "0" when no version ran (throttled before an instance was chosen is still recorded with the version). */
  version: string;
  trigger: Trigger;
  /** Epoch ms when the invoker accepted the invocation. */
  start: number;
  durationMs: number;
  /** Duration rounded up to the next whole millisecond (at least 1). */
  billedMs: number;
  memoryMB: number;
  /** Peak resident set size of the instance seen during the invocation, bytes (0 if unknown). */
  maxRssBytes: number;
  cold: boolean;
  /** Module init time when this invocation was a cold start. */
  initMs: number | null;
  status: InvocationStatus;
  errorType: string | null;
  errorMessage: string | null;
  logs: string;
}

export interface StoredInvocation extends InvocationRecord {
  /** Monotonic position in the store; use it as a cursor for "what came after". */
  seq: number;
}

export interface InvocationQuery {
  functionName?: string;
  /** Only records whose start is >= this epoch ms. */
  since?: number;
  /** Only records with seq > after (for following). */
  after?: number;
  /** Newest first when omitted/false; oldest first with ascending (used by follow). */
  ascending?: boolean;
  limit?: number;
}

/** An accepted asynchronous (Event) invocation, stored before it is acknowledged. */
export interface QueuedEvent {
  id: string;
  functionName: string;
  payload: string;
  enqueuedAt: number;
  attempts: number;
}

export interface DeployInput {
  service: string;
  functions: FunctionConfig[];
  code: { sha256: string; archive: Buffer };
}

export interface DeployResult {
  functions: { name: string; version: number; changed: boolean }[];
  /** Functions of the same service that the new manifest no longer declares, now removed. */
  removed: string[];
}

export interface Store {
  // --- functions, versions, code ---
  /** Atomically records a service deploy: new versions where config or code changed; none half-written. */
  deploy(input: DeployInput): Promise<DeployResult>;
  /** The latest version of a function, or undefined. */
  getFunction(name: string): Promise<FunctionVersion | undefined>;
  getVersion(name: string, version: number): Promise<FunctionVersion | undefined>;
  listFunctions(): Promise<FunctionVersion[]>;
  /** Removes a function and its versions; false when it did not exist. */
  removeFunction(name: string): Promise<boolean>;
  getCode(sha256: string): Promise<Buffer | undefined>;

  // --- async events (durable before 202) ---
  enqueueEvent(ev: QueuedEvent): Promise<void>;
  /** Events not yet completed, oldest first (replayed at start). */
  pendingEvents(limit: number): Promise<QueuedEvent[]>;
  completeEvent(id: string): Promise<void>;
  /** Durably counts a delivery attempt before it starts, so retry limits hold across restarts.
   *  Returns the new count (0 when the event is unknown or completed). */
  recordEventAttempt(id: string): Promise<number>;

  // --- invocation records (written off the hot path, batched) ---
  /** Buffers the record; it is written within a short interval or on flush(). Never throws. */
  appendInvocation(rec: InvocationRecord): void;
  queryInvocations(q: InvocationQuery): Promise<StoredInvocation[]>;
  getInvocation(requestId: string): Promise<StoredInvocation | undefined>;

  /** Writes every buffered record now. */
  flush(): Promise<void>;
  /** Flushes and closes; the store is unusable afterwards. */
  close(): Promise<void>;
}

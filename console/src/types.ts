// The shapes of the control API answers the console reads (docs/api.md), as far as it reads them.

export interface StatsBucket {
  start: number;
  functionName?: string | null;
  invocations: number;
  errors: number;
  throttles: number;
  cold: number;
  p50Ms: number | null;
  p99Ms: number | null;
  costPicoUsd: string;
  costUsd: string;
}

export interface Stats {
  since: number;
  until: number;
  bucketMs: number | null;
  buckets: StatsBucket[];
}

export interface Invocation {
  seq: number;
  requestId: string;
  functionName: string;
  version: string;
  trigger: string;
  attempt: number;
  start: number;
  durationMs: number;
  billedMs: number;
  memoryMB: number;
  maxRssBytes: number;
  initMs: number | null;
  cold: boolean;
  status: string;
  errorType: string | null;
  errorMessage: string | null;
  logs: string;
  costPicoUsd: number;
  gbSeconds: number;
}

export interface FunctionView {
  name: string;
  service: string;
  version: number;
  handler: string;
  runtime: string;
  memory: number;
  ephemeralStorage: number;
  network: string;
  timeout: number;
  environment: Record<string, string>;
  reservedConcurrency: number | null;
  routes: string[];
  codeSize: number;
  codeSha256: string;
  deployedAt: number;
  scaling: Record<string, number | string>;
  events: { pending: number; inFlight: number; dead: number; oldestPendingAt: number | null };
  schedules: { expression: string; timezone: string | null; nextFireAt: number | null }[];
}

export interface EventView {
  id: string;
  functionName: string;
  source: string;
  state: 'pending' | 'dead';
  enqueuedAt: number;
  attempts: number;
  failures: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  payload?: string;
}

export interface CostReport {
  groups: { group: string; invocations: number; costUsd: string }[];
  total: { invocations: number; costUsd: string };
}

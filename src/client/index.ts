// Typed client for the Nimbus control API, shared by the CLI and the tests. Every failure, including an
// unreachable server or a missing configuration, surfaces as one error carrying a code and a hint to act on.
import { sigV4CredentialsOf } from '../security/api-keys.js';
import type { SpanView, TraceView } from '../api/traces.js';
import { DiscoveryError, locateServer } from './discovery.js';
import { formatBytes } from './format.js';

export { formatBytes } from './format.js';

export interface FunctionSummary {
  name: string;
  service: string;
  version: number;
  handler: string;
  runtime: string;
  memory: number;
  /** MB of /tmp. */
  ephemeralStorage: number;
  /** "outbound" or "none" (docs/manifest.md#network). */
  network: 'outbound' | 'none';
  timeout: number;
  reservedConcurrency: number | null;
  /** Lambda's LoggingConfig: levels only with the JSON format (docs/manifest.md#logging). */
  logging?: { logFormat: 'Text' | 'JSON'; applicationLogLevel?: string; systemLogLevel?: string };
  routes: string[];
  codeSize: number;
  codeSha256?: string;
  /** Epoch ms. */
  deployedAt: number;
  /** As deployed: a secret appears as its reference (${secret:NAME}), never its value. */
  environment?: Record<string, string>;
  /** Live instance counts and counters on the node that answered. */
  scaling?: FunctionScaling;
  /** Its async events: waiting (running ones included), running, failed, and when the oldest waiting came. */
  events?: { pending: number; inFlight: number; dead: number; oldestPendingAt: number | null };
  /** The function's schedules and when each fires next (epoch ms). */
  schedules?: { expression: string; timezone: string; nextFireAt: number | null }[];
}

/** A declared queue with how it stands now. */
export interface QueueView {
  name: string;
  service: string | null;
  fifo: boolean;
  contentBasedDeduplication: boolean;
  visibilityTimeout: number;
  messageRetentionPeriod: number;
  delaySeconds: number;
  maximumMessageSize: number;
  deadLetterQueue: string | null;
  maxReceiveCount: number | null;
  /** Waiting: receivable now or delayed (not the in-flight ones). */
  depth: number;
  visible: number;
  inFlight: number;
  delayed: number;
  oldestSentAt: number | null;
  /** Messages in its dead-letter queue, or null when it has none. */
  deadLetters: number | null;
  createdAt: number;
}

export interface TableView {
  name: string;
  service: string | null;
  key: { partition: { name: string; type: string }; sort?: { name: string; type: string } };
  indexes: { name: string; kind: string }[];
  stream: string | null;
  ttlAttribute: string | null;
  itemCount: number;
  sizeBytes: number;
  createdAt: number;
}

export interface SendMessageInput {
  body: string;
  attributes?: Record<string, unknown>;
  groupId?: string;
  deduplicationId?: string;
  delaySeconds?: number;
}

export interface SentMessageView {
  messageId: string;
  md5OfBody: string;
  md5OfMessageAttributes: string | null;
  sequenceNumber: string | null;
  duplicate: boolean;
}

export interface QueuedMessageView {
  messageId: string;
  body: string;
  md5OfBody: string;
  attributes: Record<string, unknown>;
  groupId: string | null;
  deduplicationId: string | null;
  sequenceNumber: string | null;
  sentAt: number;
  receiveCount: number;
  deadLetterSource: string | null;
}

export interface FunctionScaling {
  busy: number;
  idle: number;
  starting: number;
  provisioned: number;
  cold: number;
  warm: number;
  /** Invocations that waited for a busy warm instance rather than a cold start. */
  queued: number;
  throttled: number;
  evicted: number;
  keepAlive: string;
}

export interface StemCellStats {
  memoryMB: number;
  tmpMB?: number;
  ready: number;
  starting: number;
  target: number;
}

export interface DeployedFunction {
  name: string;
  version: number;
  changed: boolean;
  routes: string[];
}

export interface DeployResponse {
  service: string;
  functions: DeployedFunction[];
  removed: string[];
  /** The service's queues: created, changed, unchanged, and removed (with their messages). */
  queues?: { created: string[]; updated: string[]; unchanged: string[]; removed: string[] };
  /** The service's tables: created, changed, unchanged (a table left out of the manifest keeps its data). */
  tables?: { created: string[]; updated: string[]; unchanged: string[] };
  /** The service's buckets: created, or there already (a bucket left out of the manifest keeps its objects). */
  buckets?: { created: string[]; unchanged: string[] };
  /** Where the gateway serves the project's routes. */
  gatewayUrl?: string;
  /** Likely mistakes the deploy went ahead despite. */
  warnings?: string[];
}

export interface InvokeOptions {
  /** Event invocation type: queued, answered with 202 and no payload. */
  async?: boolean;
  /** Ask for the last 4 KB of the invocation's log (X-Amz-Log-Type: Tail). */
  tail?: boolean;
}

export interface InvokeResult {
  statusCode: number;
  payload: string;
  /** "Handled" or "Unhandled" when the function failed; the payload is then the error. */
  functionError?: string;
  logResult?: string;
  requestId: string;
  executedVersion: string;
}

export interface LogRecord {
  seq: number;
  requestId: string;
  trigger: string;
  attempt: number;
  start: number;
  /** The handler's run time; a cold start's init is initMs. */
  durationMs: number;
  /** Duration plus init, rounded up to a whole ms. */
  billedMs: number;
  memoryMB: number;
  /** 0 when unknown. */
  maxRssBytes: number;
  initMs: number | null;
  /** 1, or 0 when throttled. */
  requests: number;
  gbSeconds: number;
  /** Picodollars (1e-12 USD), priced when the invocation ran. */
  costPicoUsd: number;
  status: string;
  cold: boolean;
  logs: string;
  errorType: string | null;
  errorMessage: string | null;
  version: string;
}

/** A trace as GET /v1/traces/{traceId} answers it (see docs/api.md): the API's own types. */
export type { SpanView, TraceView };

/** A full invocation record as /v1/invocations shows it. */
export interface InvocationView extends LogRecord {
  project: string;
  functionName: string;
}

/** GET /v1/invocations: every filter is optional and they combine (AND). */
export interface InvocationSearch {
  /** Any of these functions; none given = every function of the project. */
  functions?: string[];
  /** Any of these statuses (ok, error, unhandled, timeout, oom, throttled). */
  statuses?: string[];
  /** A log filter pattern (docs/cli.md). */
  q?: string;
  requestId?: string;
  /** Epoch ms, an ISO date or a duration before now (15m), as the server parses them. */
  since?: number | string;
  until?: number | string;
  after?: number;
  before?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

export interface InvocationPage {
  invocations: InvocationView[];
  /** The last record's seq (pass as after with order asc, as before with desc); null when none. */
  cursor: number | null;
}

export interface CostQuery {
  since?: number;
  until?: number;
  by?: string;
  /** Every project (an admin key of "default" only). */
  all?: boolean;
}

/** One line of metered usage besides invocations. */
export interface UsageLine {
  project?: string;
  service: string;
  /** Table, bucket, queue or function; '' for a project's storage. */
  resource: string;
  kind: string;
  /** Exact, as a decimal string. */
  quantity: string;
  /** quantity in unit: requests, GB-months or GB-seconds. */
  amount: number;
  unit: string;
  costPicoUsd: string;
  costUsd: string;
}

/** One group's (or the total's) usage; picodollar amounts are exact decimal strings. */
export interface CostAmounts {
  invocations: number;
  requests: number;
  billedMs: number;
  gbSeconds: number;
  costPicoUsd: string;
  costUsd: string;
  /** With the free tier on: what it covers, and the cost after it. */
  freeTier?: { requests: number; gbSeconds: number; costPicoUsd: string; costUsd: string };
  netCostPicoUsd?: string;
  netCostUsd?: string;
}

export interface CostReport {
  since: number;
  until: number;
  by: string | null;
  /** null when the report covers every project. */
  project: string | null;
  prices: { requestsPerMillionUsd: string; gbSecondUsd: string; freeTier: boolean };
  groups: (CostAmounts & { group: string; project?: string })[];
  /** The invocations'. */
  total: CostAmounts;
  /** Data service requests, stored GB-months and provisioned concurrency, per service, resource and kind. */
  usage: { lines: UsageLine[]; total: { costPicoUsd: string; costUsd: string } };
  /** total plus usage.total. */
  grandTotal: { costPicoUsd: string; costUsd: string };
  /** The earliest record kept (of the project, or of all), null when none. */
  oldestRecordAt: number | null;
  retentionDays: number;
  /** Records that started before this were pruned. */
  prunedBefore: number;
  /** False when since is before prunedBefore: the report cannot include what was pruned. */
  complete: boolean;
}

/** An async event as the control API shows it. */
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
  /** Only when one event is asked for. */
  payload?: string;
}

export interface LogsQuery {
  /** Epoch ms: only records that started at or after this. */
  since?: number;
  /** Sequence cursor: only records after this one. */
  after?: number;
  limit?: number;
}

export interface LogsResponse {
  /** Oldest first. */
  records: LogRecord[];
  /** Pass back as `after` to get what came next. */
  cursor: number;
}

/** An access key as the control API lists it: never with its secret. */
export interface CredentialView {
  accessKeyId: string;
  name: string;
  /** user: issued by `nimbus credentials create`; function: a function's own key. */
  kind: 'user' | 'function';
  functionName: string | null;
  /** The tables it may use; null: everything in its project. */
  permissions: { tables: string[]; buckets?: string[] } | null;
  createdAt: number;
}

/** A new access key: the only answer that carries its secret. */
export interface CreatedCredential extends CredentialView {
  secretAccessKey: string;
}

export interface CreateCredentialInput {
  name: string;
  /** Left out, with buckets: every table and bucket of the project. */
  tables?: string[];
  /** The buckets whose objects it may read and write. */
  buckets?: string[];
}

/** A secret as the control API lists it: its name and dates, never its value. */
export interface SecretView {
  name: string;
  createdAt: number;
  updatedAt: number;
  /** The deployed functions whose environment references it (listings only). */
  usedBy?: string[];
}

/** Something the user can fix; the CLI prints the message and the hint on one line. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly requestId?: string,
    /** The body's `error.details`, when the API sent any (a refused deploy's failed functions). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface ApiKeyView {
  id: string;
  name: string;
  role: string;
  createdAt: number | null;
  rotatedAt: number | null;
}

export interface CreatedApiKey extends ApiKeyView {
  /** The key itself: shown once, never stored in the clear. */
  key: string;
}

/** A key of the gateway (x-api-key) under a usage plan, with this period's usage. */
export interface GatewayKeyView {
  id: string;
  name: string;
  plan: string;
  createdAt: number;
  throttle: { rate: number; burst: number } | null;
  quota: { limit: number; period: string; used: number; reserved: number } | null;
  /** False when no deployed service declares the plan any more (the key is then refused). */
  planDeclared: boolean;
}

export interface CreatedGatewayKey extends GatewayKeyView {
  /** The key itself: shown once, never stored in the clear. */
  key: string;
}

export interface AuditEntryView {
  seq: number;
  at: number;
  project: string;
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown> | null;
}

export interface ClientConfig {
  apiUrl: string;
  apiKey: string;
  /** The project to act in when not the key's own (admin keys of `default` only). */
  project?: string;
  /** Where the URL was found (a flag, a variable, a record's file), named when the API does not answer. */
  foundIn?: string;
  /** How long a request may take before it fails (default 30 s); deploys and invokes get longer. */
  timeoutMs?: number;
  /** Retries of idempotent requests (GET, PUT, DELETE) after a connection error (default 2). */
  retries?: number;
}

/** Per request: a deploy uploads and unpacks a whole service, an invoke runs a function (900 s at most). */
const DEFAULT_TIMEOUT_MS = 30_000;
const DEPLOY_TIMEOUT_MS = 600_000;
const INVOKE_TIMEOUT_MS = 900_000;
const RETRY_BASE_MS = 200;
/** Failures where the request never got an answer because the connection failed: safe to repeat when the
 *  request is idempotent. A timeout is not one of them: waiting again would only double the wait. */
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

const START_HINT = 'start Nimbus with `nimbus up` or set NIMBUS_API_URL';

/** A project's quotas (null: no limit) and what it uses: concurrency and memory on the answering node. */
export interface ProjectQuotaView {
  quota: { concurrency: number | null; memoryMB: number | null; storageBytes: number | null };
  usage: { concurrency: number; memoryMB: number; storageBytes: number };
}

export class NimbusClient {
  readonly apiUrl: string;
  readonly #apiKey: string;
  readonly #project: string | undefined;
  readonly #foundIn: string | undefined;
  readonly #timeoutMs: number;
  readonly #retries: number;

  constructor(opts: ClientConfig) {
    let url: URL;
    try {
      url = new URL(opts.apiUrl);
    } catch {
      throw new ApiError(
        0,
        'BadApiUrl',
        `"${opts.apiUrl}" is not a valid API URL`,
        'set NIMBUS_API_URL to e.g. http://127.0.0.1:8081',
      );
    }
    this.apiUrl = url.href.replace(/\/+$/, '');
    this.#apiKey = opts.apiKey;
    this.#project = opts.project;
    this.#foundIn = opts.foundIn;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#retries = opts.retries ?? 2;
  }

  /** The key's SigV4 credentials: a project key's id and derived secret, or "nimbus" and the data dir's key. */
  sigV4Credentials(): { accessKeyId: string; secretAccessKey: string } {
    return sigV4CredentialsOf(this.#apiKey) ?? { accessKeyId: 'nimbus', secretAccessKey: this.#apiKey };
  }

  /** Creates a project; the answer holds its first admin key, shown this once. */
  async createProject(name: string): Promise<{ project: string; key: CreatedApiKey }> {
    return this.#json('POST', '/v1/projects', { name });
  }

  async projects(): Promise<(ProjectQuotaView & { name: string; createdAt: number })[]> {
    type Listed = ProjectQuotaView & { name: string; createdAt: number };
    return (await this.#json<{ projects: Listed[] }>('GET', '/v1/projects')).projects;
  }

  async projectQuota(name: string): Promise<ProjectQuotaView & { project: string }> {
    return this.#json('GET', `/v1/projects/${encodeURIComponent(name)}/quota`);
  }

  /** Sets the given fields (null: no limit), keeps the others. Only the operator may. */
  async setProjectQuota(
    name: string,
    patch: Partial<ProjectQuotaView['quota']>,
  ): Promise<ProjectQuotaView & { project: string }> {
    return this.#json('PUT', `/v1/projects/${encodeURIComponent(name)}/quota`, patch);
  }

  async removeProject(name: string): Promise<{ removed: string }> {
    return this.#json('DELETE', `/v1/projects/${encodeURIComponent(name)}`);
  }

  async createKey(role: string, name?: string): Promise<CreatedApiKey> {
    return this.#json('POST', '/v1/keys', { role, ...(name ? { name } : {}) });
  }

  async keys(): Promise<ApiKeyView[]> {
    return (await this.#json<{ keys: ApiKeyView[] }>('GET', '/v1/keys')).keys;
  }

  async revokeKey(id: string): Promise<{ revoked: string }> {
    return this.#json('DELETE', `/v1/keys/${encodeURIComponent(id)}`);
  }

  async rotateKey(id: string): Promise<CreatedApiKey> {
    return this.#json('POST', `/v1/keys/${encodeURIComponent(id)}/rotate`);
  }

  /** Usage and cost summed per group (GET /v1/cost); times are epoch ms. */
  async cost(q: CostQuery = {}): Promise<CostReport> {
    const p = new URLSearchParams();
    if (q.since !== undefined) p.set('since', String(q.since));
    if (q.until !== undefined) p.set('until', String(q.until));
    if (q.by !== undefined) p.set('by', q.by);
    if (q.all) p.set('all', 'true');
    const qs = p.size > 0 ? `?${p}` : '';
    return this.#json<CostReport>('GET', `/v1/cost${qs}`);
  }

  /** A trace's spans by start time: by trace id (32 hex digits), or of the invocation with this request id. */
  async trace(id: string): Promise<TraceView> {
    const path = /^[0-9a-fA-F]{32}$/.test(id)
      ? `/v1/traces/${id}`
      : `/v1/invocations/${encodeURIComponent(id)}/trace`;
    return this.#json<TraceView>('GET', path);
  }

  /** The project's invocation records, newest first (GET /v1/invocations). */
  async invocations(
    q: { function?: string; since?: number; limit?: number } = {},
  ): Promise<InvocationView[]> {
    const p = new URLSearchParams();
    if (q.function !== undefined) p.set('function', q.function);
    if (q.since !== undefined) p.set('since', String(q.since));
    if (q.limit !== undefined) p.set('limit', String(q.limit));
    const qs = p.size > 0 ? `?${p}` : '';
    return (await this.#json<{ invocations: InvocationView[] }>('GET', `/v1/invocations${qs}`)).invocations;
  }

  /** GET /v1/invocations with every filter it takes, and the cursor to continue from. */
  async searchInvocations(q: InvocationSearch = {}): Promise<InvocationPage> {
    const p = new URLSearchParams();
    for (const f of q.functions ?? []) p.append('function', f);
    for (const s of q.statuses ?? []) p.append('status', s);
    if (q.q !== undefined) p.set('q', q.q);
    if (q.requestId !== undefined) p.set('requestId', q.requestId);
    for (const k of ['since', 'until', 'after', 'before', 'limit', 'order'] as const) {
      if (q[k] !== undefined) p.set(k, String(q[k]));
    }
    const qs = p.size > 0 ? `?${p}` : '';
    return this.#json<InvocationPage>('GET', `/v1/invocations${qs}`);
  }

  async createGatewayKey(plan: string, name?: string): Promise<CreatedGatewayKey> {
    return this.#json('POST', '/v1/api-keys', { plan, ...(name ? { name } : {}) });
  }

  async gatewayKeys(): Promise<GatewayKeyView[]> {
    return (await this.#json<{ apiKeys: GatewayKeyView[] }>('GET', '/v1/api-keys')).apiKeys;
  }

  async removeGatewayKey(id: string): Promise<{ revoked: string }> {
    return this.#json('DELETE', `/v1/api-keys/${encodeURIComponent(id)}`);
  }

  async audit(q: { since?: number; action?: string; limit?: number } = {}): Promise<AuditEntryView[]> {
    const p = new URLSearchParams();
    if (q.since !== undefined) p.set('since', String(q.since));
    if (q.action) p.set('action', q.action);
    if (q.limit !== undefined) p.set('limit', String(q.limit));
    const qs = p.size > 0 ? `?${p}` : '';
    return (await this.#json<{ entries: AuditEntryView[] }>('GET', `/v1/audit${qs}`)).entries;
  }

  async #json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.#request(
      method,
      path,
      body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } },
    );
    return (await readJson(res)) as T;
  }

  async deploy(
    archive: Buffer,
    onProgress?: (step: string) => void,
    opts: {
      verify?: boolean;
      progress?: (sent: number, total: number) => void;
      /** Functions that keep this deployed version although the archive is new (`nimbus dev`). */
      keep?: Readonly<Record<string, number>>;
    } = {},
  ): Promise<DeployResponse> {
    if (!opts.progress) onProgress?.(`Uploading ${formatBytes(archive.length)}…`);
    const qs = new URLSearchParams();
    if (opts.verify === false) qs.set('verify', 'false');
    const keep = Object.entries(opts.keep ?? {});
    if (keep.length > 0) qs.set('keep', keep.map(([n, v]) => `${n}:${v}`).join(','));
    const query = qs.size > 0 ? `?${qs.toString()}` : '';
    const res = await this.#request('POST', `/v1/deploy${query}`, {
      body: opts.progress ? counted(archive, opts.progress) : archive,
      headers: { 'content-type': 'application/gzip' },
      timeoutMs: Math.max(DEPLOY_TIMEOUT_MS, this.#timeoutMs),
    });
    return (await readJson(res)) as DeployResponse;
  }

  /** The server's own facts: its gateway URL, sandbox level, store and node. */
  async health(): Promise<{
    status: string;
    gatewayUrl?: string;
    sandbox?: string;
    store?: string;
    node?: string;
  }> {
    return this.#json('GET', '/v1/health');
  }

  async list(): Promise<{ functions: FunctionSummary[]; stemCells?: StemCellStats[]; gatewayUrl?: string }> {
    const res = await this.#request('GET', '/v1/functions');
    return (await readJson(res)) as {
      functions: FunctionSummary[];
      stemCells?: StemCellStats[];
      gatewayUrl?: string;
    };
  }

  async get(name: string): Promise<FunctionSummary> {
    const res = await this.#request('GET', `/v1/functions/${encodeURIComponent(name)}`);
    const body = (await readJson(res)) as FunctionSummary | { function: FunctionSummary };
    // Tolerates both a bare summary and one wrapped in { function }.
    return 'function' in body ? body.function : body;
  }

  /** Opens (or renews, within its 30 s lease) the inspector of a function on the server's 127.0.0.1. */
  async inspect(
    name: string,
    port?: number,
  ): Promise<{ function: string; port: number; address: string; leaseSec: number }> {
    const qs = port === undefined ? '' : `?port=${port}`;
    return this.#json('POST', `/v1/functions/${encodeURIComponent(name)}/inspect${qs}`);
  }

  async stopInspect(name: string): Promise<{ closed: boolean }> {
    return this.#json('DELETE', `/v1/functions/${encodeURIComponent(name)}/inspect`);
  }

  async remove(name: string): Promise<{ removed: string }> {
    const res = await this.#request('DELETE', `/v1/functions/${encodeURIComponent(name)}`);
    return (await readJson(res)) as { removed: string };
  }

  async invoke(name: string, payload: string, opts: InvokeOptions = {}): Promise<InvokeResult> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-amz-invocation-type': opts.async ? 'Event' : 'RequestResponse',
    };
    if (opts.tail) headers['x-amz-log-type'] = 'Tail';
    const res = await this.#request('POST', `/2015-03-31/functions/${encodeURIComponent(name)}/invocations`, {
      body: payload,
      headers,
      // A synchronous invoke waits for the function, which may run up to 900 s.
      timeoutMs: (opts.async ? 0 : INVOKE_TIMEOUT_MS) + this.#timeoutMs,
    });
    const logHeader = res.headers.get('x-amz-log-result');
    const result: InvokeResult = {
      statusCode: res.status,
      payload: await res.text(),
      requestId: res.headers.get('x-amzn-requestid') ?? '',
      executedVersion: res.headers.get('x-amz-executed-version') ?? '$LATEST',
    };
    const functionError = res.headers.get('x-amz-function-error');
    if (functionError) result.functionError = functionError;
    if (logHeader) result.logResult = Buffer.from(logHeader, 'base64').toString('utf8');
    return result;
  }

  async logs(name: string, q: LogsQuery = {}): Promise<LogsResponse> {
    const params = new URLSearchParams();
    if (q.since !== undefined) params.set('since', String(q.since));
    if (q.after !== undefined) params.set('after', String(q.after));
    if (q.limit !== undefined) params.set('limit', String(q.limit));
    const qs = params.size > 0 ? `?${params.toString()}` : '';
    const res = await this.#request('GET', `/v1/functions/${encodeURIComponent(name)}/logs${qs}`);
    return (await readJson(res)) as LogsResponse;
  }

  /** Async events of the caller's project; state "dead" lists the ones that failed for good. */
  async events(
    q: { function?: string; state?: 'pending' | 'dead'; limit?: number } = {},
  ): Promise<EventView[]> {
    const params = new URLSearchParams();
    if (q.function !== undefined) params.set('function', q.function);
    if (q.state !== undefined) params.set('state', q.state);
    if (q.limit !== undefined) params.set('limit', String(q.limit));
    const qs = params.size > 0 ? `?${params.toString()}` : '';
    const res = await this.#request('GET', `/v1/events${qs}`);
    return ((await readJson(res)) as { events: EventView[] }).events;
  }

  async event(id: string): Promise<EventView> {
    const res = await this.#request('GET', `/v1/events/${encodeURIComponent(id)}`);
    return (await readJson(res)) as EventView;
  }

  async replayEvent(id: string): Promise<{ replayed: string }> {
    const res = await this.#request('POST', `/v1/events/${encodeURIComponent(id)}/replay`);
    return (await readJson(res)) as { replayed: string };
  }

  async queues(): Promise<QueueView[]> {
    const res = await this.#request('GET', '/v1/queues');
    return ((await readJson(res)) as { queues: QueueView[] }).queues;
  }

  async queue(name: string): Promise<QueueView> {
    const res = await this.#request('GET', `/v1/queues/${encodeURIComponent(name)}`);
    return (await readJson(res)) as QueueView;
  }

  async sendMessages(queue: string, messages: SendMessageInput[]): Promise<SentMessageView[]> {
    const res = await this.#request('POST', `/v1/queues/${encodeURIComponent(queue)}/messages`, {
      body: JSON.stringify(messages.length === 1 ? messages[0] : { messages }),
      headers: { 'content-type': 'application/json' },
    });
    return ((await readJson(res)) as { messages: SentMessageView[] }).messages;
  }

  async peekMessages(queue: string, limit?: number): Promise<QueuedMessageView[]> {
    const qs = limit === undefined ? '' : `?limit=${limit}`;
    const res = await this.#request('GET', `/v1/queues/${encodeURIComponent(queue)}/messages${qs}`);
    return ((await readJson(res)) as { messages: QueuedMessageView[] }).messages;
  }

  async purgeQueue(queue: string): Promise<{ purged: number }> {
    const res = await this.#request('DELETE', `/v1/queues/${encodeURIComponent(queue)}/messages`);
    return (await readJson(res)) as { purged: number };
  }

  async tables(): Promise<TableView[]> {
    const res = await this.#request('GET', '/v1/tables');
    return ((await readJson(res)) as { tables: TableView[] }).tables;
  }

  /** Items in DynamoDB's JSON. */
  async scanTable(
    name: string,
    limit?: number,
  ): Promise<{ items: Record<string, unknown>[]; lastKey?: unknown }> {
    const qs = limit === undefined ? '' : `?limit=${limit}`;
    const res = await this.#request('GET', `/v1/tables/${encodeURIComponent(name)}/items${qs}`);
    return (await readJson(res)) as { items: Record<string, unknown>[]; lastKey?: unknown };
  }

  async getTableItem(name: string, key: unknown): Promise<Record<string, unknown>> {
    const qs = `?key=${encodeURIComponent(JSON.stringify(key))}`;
    const res = await this.#request('GET', `/v1/tables/${encodeURIComponent(name)}/item${qs}`);
    return ((await readJson(res)) as { item: Record<string, unknown> }).item;
  }

  async dropTable(name: string): Promise<{ removed: string }> {
    const res = await this.#request('DELETE', `/v1/tables/${encodeURIComponent(name)}`);
    return (await readJson(res)) as { removed: string };
  }

  /** Issues an access key (SigV4); its secret is in this answer and nowhere else, ever. */
  async createCredential(input: CreateCredentialInput): Promise<CreatedCredential> {
    const res = await this.#request('POST', '/v1/credentials', {
      body: JSON.stringify(input),
      headers: { 'content-type': 'application/json' },
    });
    return (await readJson(res)) as CreatedCredential;
  }

  async credentials(): Promise<CredentialView[]> {
    const res = await this.#request('GET', '/v1/credentials');
    return ((await readJson(res)) as { credentials: CredentialView[] }).credentials;
  }

  async removeCredential(accessKeyId: string): Promise<{ removed: string }> {
    const res = await this.#request('DELETE', `/v1/credentials/${encodeURIComponent(accessKeyId)}`);
    return (await readJson(res)) as { removed: string };
  }

  /** Creates or replaces a secret; the value is the body, and is never answered back. */
  async setSecret(
    name: string,
    value: Buffer,
  ): Promise<SecretView & { created: boolean; restarted: string[] }> {
    const res = await this.#request('PUT', `/v1/secrets/${encodeURIComponent(name)}`, {
      body: value,
      headers: { 'content-type': 'application/octet-stream' },
    });
    return (await readJson(res)) as SecretView & { created: boolean; restarted: string[] };
  }

  async secrets(): Promise<Required<SecretView>[]> {
    const res = await this.#request('GET', '/v1/secrets');
    return ((await readJson(res)) as { secrets: Required<SecretView>[] }).secrets;
  }

  async removeSecret(name: string): Promise<{ removed: string }> {
    const res = await this.#request('DELETE', `/v1/secrets/${encodeURIComponent(name)}`);
    return (await readJson(res)) as { removed: string };
  }

  async #request(
    method: string,
    path: string,
    init: {
      body?: Buffer | string | ReadableStream;
      headers?: Record<string, string>;
      timeoutMs?: number;
    } = {},
  ): Promise<Response> {
    const url = this.apiUrl + path;
    const timeoutMs = init.timeoutMs ?? this.#timeoutMs;
    const idempotent = method === 'GET' || method === 'PUT' || method === 'DELETE';
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      let text: string;
      try {
        // One deadline for the answer and its body: a server that accepts and never answers, or stops
        // halfway, must not hang the CLI.
        const signal = AbortSignal.timeout(timeoutMs);
        res = await fetch(url, {
          method,
          headers: {
            authorization: `Bearer ${this.#apiKey}`,
            ...(this.#project ? { 'x-nimbus-project': this.#project } : {}),
            ...init.headers,
          },
          body: init.body,
          signal,
          // A streamed body (an upload with progress) is sent as it is read, before the answer comes.
          ...(init.body instanceof ReadableStream ? { duplex: 'half' } : {}),
        } as RequestInit);
        text = await res.text();
      } catch (e) {
        if (isTimeout(e)) throw this.#timedOut(timeoutMs);
        const code = errorCode((e as { cause?: unknown }).cause ?? e);
        if (idempotent && code && RETRYABLE.has(code) && attempt < this.#retries) {
          // Exponential backoff with jitter: 200 ms, 400 ms, ... so a server that is just starting is met.
          await new Promise((r) => setTimeout(r, RETRY_BASE_MS * 2 ** attempt * (0.5 + Math.random())));
          continue;
        }
        throw unreachable(this.apiUrl, e, this.#foundIn);
      }
      // Rebuilt around the text already read, so callers read it without another deadline to mind.
      const bodyless = res.status === 204 || res.status === 205 || res.status === 304;
      const copy = new Response(bodyless ? null : text, { status: res.status, headers: res.headers });
      if (res.status >= 200 && res.status < 300) return copy;
      throw await toApiError(copy);
    }
  }

  #timedOut(ms: number): ApiError {
    const secs = ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
    return new ApiError(
      0,
      'Timeout',
      `the Nimbus API at ${this.apiUrl} did not answer within ${secs}${this.#foundIn ? ` (found through ${this.#foundIn})` : ''}`,
      'check that it is the Nimbus API and that it is not stuck (restart it with `nimbus up`); NIMBUS_REQUEST_TIMEOUT=<seconds> waits longer',
    );
  }
}

function isTimeout(e: unknown): boolean {
  return e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
}

/** The archive as a stream of 64 kB chunks, telling how much has been handed to the connection. */
function counted(archive: Buffer, progress: (sent: number, total: number) => void): ReadableStream {
  const CHUNK = 64 * 1024;
  let sent = 0;
  progress(0, archive.length);
  return new ReadableStream({
    pull(controller) {
      if (sent >= archive.length) {
        controller.close();
        return;
      }
      const chunk = archive.subarray(sent, sent + CHUNK);
      sent += chunk.length;
      controller.enqueue(new Uint8Array(chunk));
      progress(sent, archive.length);
    },
  });
}

function unreachable(apiUrl: string, e: unknown, foundIn?: string): ApiError {
  const cause = (e as { cause?: unknown }).cause ?? e;
  const code = errorCode(cause);
  if (code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return new ApiError(
      0,
      'Unreachable',
      `cannot reach the Nimbus API at ${apiUrl} (its TLS certificate is not trusted: ${code})`,
      'trust the certificate (or its CA) with NODE_EXTRA_CA_CERTS=/path/to/ca.pem',
    );
  }
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND'
        ? 'host not found'
        : code
          ? code
          : cause instanceof Error
            ? cause.message
            : String(cause);
  const via = foundIn ? `, found through ${foundIn}` : '';
  return new ApiError(
    0,
    'Unreachable',
    `cannot reach the Nimbus API at ${apiUrl} (${why}${via})`,
    START_HINT,
  );
}

function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const o = e as { code?: unknown; errors?: unknown };
  if (typeof o.code === 'string') return o.code;
  // Happy-eyeballs connects fail with an AggregateError holding one error per address.
  if (Array.isArray(o.errors)) return errorCode(o.errors[0]);
  return undefined;
}

async function readJson(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiError(
      res.status,
      'BadResponse',
      `the API answered ${res.status} with a body that is not JSON`,
      'check that NIMBUS_API_URL points at the Nimbus API port, not the gateway',
    );
  }
}

async function toApiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const headerRequestId = res.headers.get('x-amzn-requestid') ?? undefined;
  const o = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const err = o['error'];
  if (typeof err === 'object' && err !== null) {
    const e = err as Record<string, unknown>;
    return new ApiError(
      res.status,
      typeof e['code'] === 'string' ? e['code'] : `Http${res.status}`,
      typeof e['message'] === 'string' ? e['message'] : res.statusText,
      typeof e['hint'] === 'string' ? e['hint'] : undefined,
      typeof o['requestId'] === 'string' ? o['requestId'] : headerRequestId,
      typeof e['details'] === 'object' && e['details'] !== null
        ? (e['details'] as Record<string, unknown>)
        : undefined,
    );
  }
  // Lambda-style: the code travels in x-amzn-errortype ("Code:extra" in some services), the text in message.
  const typeHeader = res.headers.get('x-amzn-errortype')?.split(':')[0];
  const message = o['message'] ?? o['Message'];
  const awsType = typeof o['__type'] === 'string' ? o['__type'].split('#').pop() : undefined;
  const code = typeHeader || awsType || `Http${res.status}`;
  return new ApiError(
    res.status,
    code,
    typeof message === 'string' && message
      ? message
      : text.trim().slice(0, 200) || `the API answered ${res.status} ${res.statusText}`,
    AWS_HINTS[code] ??
      (res.status === 401 || res.status === 403
        ? 'check NIMBUS_API_KEY (or the api-key file in the Nimbus data folder)'
        : undefined),
    headerRequestId,
  );
}

// AWS-shaped bodies carry no hint; these are the errors a CLI user meets most.
const AWS_HINTS: Record<string, string> = {
  ResourceNotFoundException: 'check the name with `nimbus ls`',
  TooManyRequestsException:
    'the function is at its concurrency limit; retry, or raise concurrency.reserved in nimbus.yaml',
  InvalidRequestContentException: 'the event must be valid JSON',
  RequestTooLargeException: 'send a smaller event (6 MB sync, 1 MB async)',
};

/**
 * Where the CLI finds the API and its key (see discovery.ts for the order); every failure is an ApiError
 * with a hint. `flagUrl` is the --api-url flag.
 */
export function resolveClientConfig(
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
  flagUrl?: string,
): ClientConfig {
  try {
    const { apiUrl, apiKey, foundIn } = locateServer(env, cwd, flagUrl);
    return { apiUrl, apiKey, foundIn, ...requestSettings(env) };
  } catch (e) {
    if (e instanceof DiscoveryError) throw new ApiError(0, e.failure.code, e.message, e.failure.hint);
    throw e;
  }
}

/** NIMBUS_REQUEST_TIMEOUT (seconds) and NIMBUS_RETRIES, when set and valid. */
function requestSettings(env: NodeJS.ProcessEnv): Pick<ClientConfig, 'timeoutMs' | 'retries'> {
  const out: Pick<ClientConfig, 'timeoutMs' | 'retries'> = {};
  const t = env['NIMBUS_REQUEST_TIMEOUT']?.trim();
  if (t) {
    const n = Number(t);
    if (!Number.isFinite(n) || n <= 0) {
      throw new ApiError(
        0,
        'BadSetting',
        `NIMBUS_REQUEST_TIMEOUT must be a number of seconds above 0 (got "${t}")`,
        'for example NIMBUS_REQUEST_TIMEOUT=30',
      );
    }
    out.timeoutMs = n * 1000;
  }
  const r = env['NIMBUS_RETRIES']?.trim();
  if (r) {
    const n = Number(r);
    if (!Number.isInteger(n) || n < 0 || n > 10) {
      throw new ApiError(
        0,
        'BadSetting',
        `NIMBUS_RETRIES must be a whole number from 0 to 10 (got "${r}")`,
        'for example NIMBUS_RETRIES=2',
      );
    }
    out.retries = n;
  }
  return out;
}

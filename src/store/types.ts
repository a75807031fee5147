// State behind interfaces, in parts with one responsibility each. The invoker, api and events know only these
// types; server.ts picks the backend (SQLite on one machine, PostgreSQL for many), and every part has one
// conformance suite (src/store/conformance/) that runs against each backend.
//
// Every stored entity belongs to a project; `default` exists from the first migration on, so a single-tenant
// setup never names one. Time comes from the store's injected Clock wherever it decides something (event due
// times, leases, heartbeats, deployedAt), so tests move time instead of sleeping.
import type { AsyncConfig, FunctionConfig, QueueConfig } from '../config/manifest.js';
import type { AttributeValue, Item, TableDef } from '../tables/types.js';

export const DEFAULT_PROJECT = 'default';

/** Names one function: the project it belongs to and its name there. */
export interface FunctionRef {
  project: string;
  name: string;
}

/** One deployed, immutable version of a function. */
export interface FunctionVersion {
  project: string;
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

export interface DeployInput {
  project: string;
  service: string;
  functions: FunctionConfig[];
  /** The queues the service declares: created or updated with the functions, in the same transaction. The
   *  service's queues it no longer declares are removed, with their messages. Left out: none. */
  queues?: QueueConfig[];
  code: { sha256: string; archive: Buffer };
  /** Functions that keep their deployed version (and so their warm instances and their archive) although
   *  the archive is new, by name with the version the caller saw: kept only while that is still the latest
   *  and its config is unchanged (`nimbus dev` sends the functions whose files it saw unchanged). */
  keep?: Readonly<Record<string, number>>;
}

export interface DeployResult {
  functions: { name: string; version: number; changed: boolean }[];
  /** Functions of the same service (and project) that the new manifest no longer declares, now removed. */
  removed: string[];
  /** What became of the service's queues: created, changed, unchanged, and removed (with their messages). */
  queues: { created: string[]; updated: string[]; unchanged: string[]; removed: string[] };
}

/** Functions, their versions and their code archives. */
export interface FunctionStore {
  /** Atomically records a service deploy: new versions where config or code changed; none half-written. */
  deploy(input: DeployInput): Promise<DeployResult>;
  /** The latest version of a function, or undefined. */
  getFunction(ref: FunctionRef): Promise<FunctionVersion | undefined>;
  getVersion(ref: FunctionRef, version: number): Promise<FunctionVersion | undefined>;
  /** The latest version of every function, ordered by project then name; one project's when given. */
  listFunctions(project?: string): Promise<FunctionVersion[]>;
  /** Removes a function and its versions; false when it did not exist. */
  removeFunction(ref: FunctionRef): Promise<boolean>;
  /** Archives are content-addressed and shared by every version (of any project) that has the same bytes. */
  getCode(sha256: string): Promise<Buffer | undefined>;
  /**
   * Deletes every version that is not its function's latest (only the latest is ever served), then every
   * archive no remaining version uses. Answers the sha256 of each archive deleted. Version numbers go on
   * from the latest, as before.
   */
  pruneVersions(): Promise<string[]>;
  /** Sets (or with null removes) the async configuration set through the API (Lambda's
   *  PutFunctionEventInvokeConfig), which applies instead of the manifest's until removed. False when the
   *  function does not exist. Removing the function removes it. */
  setAsyncConfig(ref: FunctionRef, config: AsyncConfig | null): Promise<boolean>;
  /** Every async configuration set through the API, by project and name. */
  listAsyncConfigs(project?: string): Promise<StoredAsyncConfig[]>;
}

export interface StoredAsyncConfig {
  project: string;
  name: string;
  config: AsyncConfig;
  updatedAt: number;
}

import type { LogPattern } from './log-pattern.js';

export type InvocationStatus = 'ok' | 'error' | 'unhandled' | 'timeout' | 'oom' | 'throttled';
export const TRIGGERS: readonly Trigger[] = [
  'http',
  'authorizer',
  'invoke',
  'event',
  'schedule',
  'queue',
  'stream',
  'storage',
];
export const INVOCATION_STATUSES: readonly InvocationStatus[] = [
  'ok',
  'error',
  'unhandled',
  'timeout',
  'oom',
  'throttled',
];
export type Trigger =
  'http' | 'authorizer' | 'invoke' | 'event' | 'schedule' | 'queue' | 'stream' | 'storage';

/** One record per invocation: the wide event every trigger ends in. */
export interface InvocationRecord {
  /** With attempt, the record's key: every attempt of one event shares the event's request id. */
  requestId: string;
  project: string;
  functionName: string;
  /** "0" when no version ran (throttled before an instance was chosen is still recorded with the version). */
  version: string;
  trigger: Trigger;
  /** 1 for the first delivery of an invocation; retries of an event count up from there. */
  attempt: number;
  /** Epoch ms when the invoker accepted the invocation. */
  start: number;
  /** How long the handler ran, ms; a cold start's init is in initMs, not here (as Lambda's Duration). */
  durationMs: number;
  /** Duration plus a cold start's init, rounded up to the next whole millisecond (at least 1); 0 when
   *  throttled. Lambda bills init since August 2025. */
  billedMs: number;
  memoryMB: number;
  /** Billed requests: 1, or 0 when throttled (a throttled invocation is not billed). */
  requests: number;
  /** billedMs x memoryMB / 1024 / 1000 (derived, not stored). */
  gbSeconds: number;
  /** The invocation's cost in picodollars (1e-12 USD) under the price table in force when it ran. */
  costPicoUsd: number;
  /** Peak resident set size of the instance seen during the invocation, bytes (0 if unknown). */
  maxRssBytes: number;
  cold: boolean;
  /** Module init time when this invocation was a cold start. */
  initMs: number | null;
  status: InvocationStatus;
  errorType: string | null;
  errorMessage: string | null;
  logs: string;
  /** The W3C trace id (32 hex) of the invocation's span when tracing is on, else null or absent. */
  traceId?: string | null;
}

export interface StoredInvocation extends InvocationRecord {
  /** Increasing position in the log; use it as a cursor for "what came after". */
  seq: number;
}

export interface InvocationQuery {
  project?: string;
  functionName?: string;
  /** Any of these functions (an empty list matches nothing); combines with functionName as AND. */
  functionNames?: readonly string[];
  requestId?: string;
  /** A parsed log filter pattern (store/log-pattern.ts), matched against the log text in the query. */
  pattern?: LogPattern;
  /** Any of these statuses. */
  status?: readonly InvocationStatus[];
  /** Only records whose start is >= this epoch ms. */
  since?: number;
  /** Only records whose start is < this epoch ms. */
  until?: number;
  /** Only records with seq > after (for following, oldest first). */
  after?: number;
  /** Only records with seq < before (for paging back, newest first). */
  before?: number;
  /** Newest first when omitted/false; oldest first with ascending (used by follow). */
  ascending?: boolean;
  /** Default 100, at most 1000. */
  limit?: number;
}

export const DEFAULT_QUERY_LIMIT = 100;
export const MAX_QUERY_LIMIT = 1000;

/** The invocation records. Written off the hot path in batches; read by logs, metrics and cost reports. */
export interface InvocationLog {
  /** Buffers the record; it is written within a short interval or on flush(). Never throws. */
  write(rec: InvocationRecord): void;
  query(q: InvocationQuery): Promise<StoredInvocation[]>;
  /** The latest attempt of a request (retries of an event keep its request id, as on Lambda). */
  get(requestId: string): Promise<StoredInvocation | undefined>;
  /** Writes every buffered record now. */
  flush(): Promise<void>;
  /** Usage and cost summed in the database (never by reading the records), one row per group. */
  usage(q: UsageQuery): Promise<UsageRow[]>;
  /** The earliest start among the records in scope (a project, or all), or null when there are none. */
  oldestStart(project?: string): Promise<number | null>;
  /** Counts, duration percentiles and cost per time bucket (and function), computed in the database. */
  stats(q: InvocationStatsQuery): Promise<InvocationStatsRow[]>;
  /** Deletes at most `limit` records (their logs with them) that started before `before`; returns how many.
   *  One short statement per call: callers loop over batches so no lock is held for long. */
  prune(before: number, limit: number): Promise<number>;
}

export type SpanKindName = 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';
export type SpanStatusName = 'UNSET' | 'OK' | 'ERROR';

/** A finished OpenTelemetry span as the local trace store keeps it. */
export interface StoredSpan {
  project: string;
  /** 32 lower-case hex digits. */
  traceId: string;
  /** 16 lower-case hex digits; unique within its trace. */
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: SpanKindName;
  /** Epoch nanoseconds (exact: past 2^53). */
  startNs: bigint;
  endNs: bigint;
  status: SpanStatusName;
  statusMessage: string | null;
  /** JSON values: strings, numbers, booleans and arrays of them. */
  attributes: Record<string, unknown>;
}

/** Spans kept for the console and GET /v1/traces, pruned with the invocation records. */
export interface SpanStore {
  /** Stores a batch in one transaction; a span already stored (trace id, span id) is kept as it was. */
  write(spans: readonly StoredSpan[]): Promise<void>;
  /** A project's spans of one trace, by start time (then span id); [] when it has none. */
  trace(project: string, traceId: string): Promise<StoredSpan[]>;
  /** Deletes at most `limit` spans that started before `before` (epoch ms); returns how many. */
  prune(before: number, limit: number): Promise<number>;
}

export interface InvocationStatsQuery {
  project: string;
  /** Records whose start is >= since and < until (epoch ms). */
  since: number;
  until: number;
  functionName?: string;
  /** Bucket width in ms: one row per bucket holding records; left out, the whole range is one bucket. */
  bucketMs?: number;
  /** One row per function (within each bucket). */
  byFunction?: boolean;
}

export interface InvocationStatsRow {
  /** since + k x bucketMs: where the bucket begins (since when not bucketed). */
  bucketStart: number;
  /** The function, with byFunction; else null. */
  functionName: string | null;
  invocations: number;
  /** Invocations that ended in error, unhandled, timeout or oom. */
  errors: number;
  throttles: number;
  cold: number;
  /** Nearest-rank percentiles of the duration of the invocations that ran (throttled ones left out);
   *  null when none ran. The same rank on both backends: the smallest duration d with at least p% <= d. */
  p50Ms: number | null;
  p99Ms: number | null;
  costPicoUsd: bigint;
}

export type UsageGroupBy = 'function' | 'project' | 'day' | 'trigger';
export const USAGE_GROUPS: readonly UsageGroupBy[] = ['function', 'project', 'day', 'trigger'];

export interface UsageQuery {
  /** One project; every project when left out. */
  project?: string;
  /** Records whose start is >= since and < until (epoch ms). */
  since: number;
  until: number;
  /** One row per group; a single row for everything when left out. */
  by?: UsageGroupBy;
}

export interface UsageRow {
  /** The function name, project, UTC day (YYYY-MM-DD) or trigger; "" for the single ungrouped row. */
  group: string;
  /** The project of a function (by: function), else null. */
  project: string | null;
  invocations: number;
  requests: number;
  billedMs: number;
  /** Sum of billed ms x memory MB: GB-seconds x 1,024,000, exact. */
  mbMs: bigint;
  costPicoUsd: bigint;
}

export type EventState = 'pending' | 'dead';

/** An accepted asynchronous invocation, stored before it is acknowledged. */
export interface QueuedEvent {
  id: string;
  project: string;
  functionName: string;
  /** The version the caller named ("$LATEST" or a number), or null for the latest. */
  qualifier: string | null;
  /** Which trigger produced it ("invoke" for Invoke API Event calls). */
  source: string;
  payload: string;
  /** The trace header it came with (its Lineage counts the functions the chain passed through), or null. */
  trace: string | null;
  enqueuedAt: number;
  /** Deliveries started so far (counted when claimed, so a crash mid-run still counts). */
  attempts: number;
  /** Attempts the function failed (fail()); retry limits count these, not throttles or crashes. */
  failures: number;
  /** Earliest time the next delivery may start. */
  nextAttemptAt: number;
  state: EventState;
  lastError: string | null;
  /** The node running it now, while its lease lasts. */
  leaseOwner: string | null;
  leaseUntil: number | null;
}

export interface NewEvent {
  id: string;
  project: string;
  functionName: string;
  qualifier?: string | null;
  source: string;
  payload: string;
  trace?: string | null;
  /** Defaults to the store clock's now. */
  enqueuedAt?: number;
  /** Defaults to enqueuedAt: due at once. */
  nextAttemptAt?: number;
}

export interface ClaimOptions {
  /** Who runs the claimed events (a node id). */
  owner: string;
  /** How long the claim holds before another owner may take the event. */
  leaseMs: number;
  limit: number;
  /** Functions whose events are left where they are (they have no room to run now), so the claim takes the
   *  next events of other functions instead of leasing what could only wait. */
  skip?: readonly FunctionRef[];
}

export interface EventListQuery {
  project?: string;
  functionName?: string;
  state?: EventState;
  /** Only events whose next attempt is due at or before this time. */
  dueBy?: number;
  limit?: number;
}

/**
 * Durable queue of events. Delivery is at least once: claim() leases due events to one owner (two nodes never
 * hold one event at once), and every lease-holder call names its owner, so a node whose lease ran out (and
 * whose event another node took) cannot complete or fail it any more: those calls answer false.
 */
/** How the queue stands for one function: for back-pressure and for people. */
export interface EventQueueStats {
  project: string;
  functionName: string;
  /** Waiting to run, including those running now. */
  pending: number;
  /** Leased to a node whose lease has not run out. */
  inFlight: number;
  dead: number;
  /** When the oldest pending event was enqueued, or null. */
  oldestPendingAt: number | null;
}

export interface EventQueue {
  /** Stores the event; false (and no change) when its id exists already, so a retried enqueue is harmless. */
  enqueue(ev: NewEvent): Promise<boolean>;
  /** Leases up to limit pending events that are due and not leased by anyone else, oldest due first. */
  claim(opts: ClaimOptions): Promise<QueuedEvent[]>;
  /** Lengthens a lease still held. */
  extend(id: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Done: the event leaves the queue. */
  complete(id: string, owner: string): Promise<boolean>;
  /** The function failed this attempt: failures counts it, the lease ends, and it is due again at nextAttemptAt. */
  fail(id: string, owner: string, f: { nextAttemptAt: number; error: string }): Promise<boolean>;
  /** The attempt could not run through no fault of the function (throttled): due again at nextAttemptAt,
   *  no failure counted. */
  postpone(id: string, owner: string, p: { nextAttemptAt: number; error: string }): Promise<boolean>;
  /** The attempt never started (the node is stopping): the lease ends and the attempt is not counted. */
  release(id: string, owner: string): Promise<boolean>;
  /** No more attempts: kept as dead for a person to inspect or replay. `failed` counts this attempt as a
   *  failure of the function (the last retry failed), as fail() would. */
  deadLetter(id: string, owner: string, error: string, failed?: boolean): Promise<boolean>;
  /** A dead event becomes pending again, due now, with no failures counted and its age counted from now
   *  (a person replays it: it is accepted anew). False unless it is dead. */
  revive(id: string): Promise<boolean>;
  /** Ends every lease an owner holds (a node restarting under the same id runs nothing yet). */
  releaseOwner(owner: string): Promise<number>;
  /** When the earliest pending event becomes claimable (due, and its lease over), or undefined if none. */
  nextDueAt(): Promise<number | undefined>;
  get(id: string): Promise<QueuedEvent | undefined>;
  /** Oldest due first. */
  list(q: EventListQuery): Promise<QueuedEvent[]>;
  /** Per function with any event, by project then function name; one project's when given. */
  stats(project?: string): Promise<EventQueueStats[]>;
  /** Deletes dead events accepted (or last replayed) before this time; returns how many. */
  purgeDead(acceptedBefore: number): Promise<number>;
}

export interface Project {
  name: string;
  createdAt: number;
}

/** Projects: the namespace of every stored entity. `default` always exists. */
export interface ProjectStore {
  /** Creates the project if missing; returns it either way. */
  ensure(name: string): Promise<Project>;
  get(name: string): Promise<Project | undefined>;
  list(): Promise<Project[]>;
  /** Removes an empty project; throws ProjectNotEmptyError while it holds functions; `default` stays. */
  remove(name: string): Promise<boolean>;
}

/**
 * What one project may use; null is no limit. Concurrency and memory are enforced per node by the scaler;
 * storage across the store, in the write's own transaction.
 */
export interface ProjectQuota {
  /** Concurrent executions across the project's functions on one node. */
  concurrency: number | null;
  /** Sum of configured memory (MB) of the project's live instances on one node. */
  memoryMB: number | null;
  /** Bytes the project stores: objects and upload parts, table items, queue messages. */
  storageBytes: number | null;
}

export const NO_QUOTA: ProjectQuota = Object.freeze({
  concurrency: null,
  memoryMB: null,
  storageBytes: null,
});

/** A project's quota and the store's exact count of what it stores. */
export interface ProjectQuotaUsage {
  project: string;
  quota: ProjectQuota;
  storageBytes: number;
}

/**
 * Per-project quotas and storage usage. Usage is kept by the database itself (triggers on the objects,
 * upload parts, table items and queue messages), in the same transaction as each write, and a write that
 * would take the project past its storage quota fails with StorageQuotaExceededError and writes nothing.
 */
export interface QuotaStore {
  /** Throws ProjectNotFoundError for an unknown project. */
  get(project: string): Promise<ProjectQuotaUsage>;
  /** Every project, by name. */
  list(): Promise<ProjectQuotaUsage[]>;
  /** Sets the given fields (null clears one), keeps the others; throws ProjectNotFoundError. */
  set(project: string, patch: Partial<ProjectQuota>): Promise<ProjectQuotaUsage>;
}

export interface NodeInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  heartbeatAt: number;
  /** Where the node serves, for operators and (later) for dispatch between nodes. */
  gatewayUrl: string | null;
  apiUrl: string | null;
}

/** The Nimbus processes that share this store, each renewing its heartbeat. */
export interface NodeRegistry {
  /** Registers or re-registers a node (same id: the row is replaced, startedAt and heartbeat now). */
  register(node: Omit<NodeInfo, 'startedAt' | 'heartbeatAt'>): Promise<NodeInfo>;
  /** Renews the heartbeat; false when the node is not registered (it was removed as dead). */
  heartbeat(id: string): Promise<boolean>;
  /** Every node, or with aliveWithinMs only those whose heartbeat is that recent. Ordered by id. */
  list(opts?: { aliveWithinMs?: number }): Promise<NodeInfo[]>;
  remove(id: string): Promise<boolean>;
}

/** One schedule of one function, as deployed. Its id is derived from everything below, so a redeploy that
 *  leaves a schedule as it was keeps its next fire time. */
export interface ScheduleDef {
  id: string;
  project: string;
  functionName: string;
  expression: string;
  timezone: string;
  /** The JSON the function receives instead of the EventBridge event, or null. */
  input: string | null;
}

export interface StoredSchedule extends ScheduleDef {
  /** The tick due next (epoch ms). */
  nextFireAt: number;
  createdAt: number;
}

/** The schedules of deployed functions and when each fires next. Firing is claimed by moving nextFireAt
 *  from the tick it was to the next one (compare-and-set), so one tick fires once across nodes. */
export interface ScheduleStore {
  /** Makes the stored schedules exactly these: new ones start at firstFireAt, unchanged ones keep their next
   *  fire time, the rest are removed. */
  sync(defs: readonly (ScheduleDef & { firstFireAt: number })[]): Promise<void>;
  /** Every schedule (one project's when given), by function name then id. */
  list(project?: string): Promise<StoredSchedule[]>;
  /** Schedules whose next tick is at or before now (the store clock's), earliest first. */
  due(limit: number): Promise<StoredSchedule[]>;
  /** Moves a schedule from the tick `from` to `to` and, in the same transaction, enqueues the tick's event
   *  (when given); false, with no change and no event, when the schedule is no longer at `from` because
   *  another node fired that tick or it was removed. So a tick's event is enqueued once, ever. */
  advance(id: string, from: number, to: number, event?: NewEvent): Promise<boolean>;
  /** The earliest next tick of any schedule, or undefined. */
  nextFireAt(): Promise<number | undefined>;
}

/** A declared queue, as stored. */
export interface StoredQueue extends QueueConfig {
  project: string;
  /** The service whose manifest declares it (null for one created through the API). */
  service: string | null;
  createdAt: number;
  updatedAt: number;
}

/** SQS's message attribute: DataType "String", "Number" or "Binary", optionally with a ".label" suffix. */
export interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  /** Base64. */
  BinaryValue?: string;
}

export interface NewMessage {
  body: string;
  /** Message attributes, by name. */
  attributes?: Record<string, MessageAttributeValue>;
  /** Standard queues only: overrides the queue's delaySeconds for this message (0..900). */
  delaySeconds?: number;
  /** FIFO only, required there: messages of one group are received in the order sent, one batch at a time. */
  groupId?: string;
  /** FIFO only: a second message with this id within 5 minutes is accepted but not stored. Required unless
   *  the queue has contentBasedDeduplication. */
  deduplicationId?: string;
  /** The X-Ray header (SQS's AWSTraceHeader system attribute), which carries the chain's lineage. */
  trace?: string | null;
}

export interface SentMessage {
  id: string;
  md5OfBody: string;
  /** FIFO only: 20 digits, increasing per queue. */
  sequenceNumber: string | null;
  /** A FIFO duplicate within the deduplication window: id and sequenceNumber are the original's. */
  duplicate: boolean;
}

export interface QueueMessage {
  id: string;
  project: string;
  queue: string;
  body: string;
  md5OfBody: string;
  attributes: Record<string, MessageAttributeValue>;
  groupId: string | null;
  deduplicationId: string | null;
  sequenceNumber: string | null;
  trace: string | null;
  sentAt: number;
  /** When it was first received, or null. */
  firstReceivedAt: number | null;
  /** Receives so far, this one included. */
  receiveCount: number;
  /** The handle of the latest receive: delete() and changeVisibility() need it; null until received. */
  receiptHandle: string | null;
  /** Where it came from when it was moved here as a dead letter, or null. */
  deadLetterSource: string | null;
}

export interface ReceiveOptions {
  /** At most this many (1..10000; the SQS API asks for at most 10). */
  max: number;
  /** Seconds the received messages stay hidden; the queue's visibilityTimeout when left out. */
  visibilityTimeout?: number;
}

export interface QueueStats {
  project: string;
  queue: string;
  /** Receivable now. */
  visible: number;
  /** Received and still hidden by their visibility timeout. */
  inFlight: number;
  /** Sent with a delay that has not passed. */
  delayed: number;
  /** When the oldest message still in the queue was sent, or null when it is empty. */
  oldestSentAt: number | null;
}

/**
 * Queues and their messages: SQS's model, which the manifest's queues, queue triggers, the control API and
 * the SQS-compatible API all use. A message is stored before send() resolves; receive() hides what it returns
 * for the visibility timeout and gives each receive a new receipt handle, so a receiver whose timeout ran out
 * (and whose message another receiver took) can no longer delete it. Messages go to the dead-letter queue at
 * the receive after their maxReceiveCount-th, and expire messageRetentionPeriod after they were first sent.
 */
export interface QueueStore {
  getQueue(project: string, name: string): Promise<StoredQueue | undefined>;
  /** By project then name; one project's when given. */
  listQueues(project?: string): Promise<StoredQueue[]>;
  /** Stores the messages in one transaction, in order; throws QueueNotFoundError, or QueueInputError for a
   *  message the queue refuses (too big, a FIFO message without a group, ...), storing none of them. */
  send(project: string, queue: string, messages: readonly NewMessage[]): Promise<SentMessage[]>;
  /** Receivable messages, oldest first; on a FIFO queue only from groups with nothing in flight, in order. */
  receive(project: string, queue: string, opts: ReceiveOptions): Promise<QueueMessage[]>;
  /** Deletes the message this handle received; false when the handle is not the message's latest. */
  delete(project: string, queue: string, receiptHandle: string): Promise<boolean>;
  /** delete() for many handles in one transaction (one commit): whether each one deleted its message. */
  deleteBatch(project: string, queue: string, receiptHandles: readonly string[]): Promise<boolean[]>;
  /** Hides the received message for this many seconds from now (0: visible at once); false as for delete. */
  changeVisibility(project: string, queue: string, receiptHandle: string, seconds: number): Promise<boolean>;
  /** Deletes every message of the queue; returns how many. */
  purge(project: string, queue: string): Promise<number>;
  /** The queue's messages as they stand, oldest first, without receiving them (for people and tests). */
  peek(project: string, queue: string, limit?: number): Promise<QueueMessage[]>;
  /** Per queue, by project then name (every declared queue, empty ones too). */
  stats(project?: string): Promise<QueueStats[]>;
  /** When the earliest hidden message of the queue becomes receivable, or undefined when none is hidden. */
  nextVisibleAt(project: string, queue: string): Promise<number | undefined>;
  /** Deletes messages past their queue's retention and expired deduplication ids; returns messages deleted. */
  expire(): Promise<number>;
  /** A queue of no manifest (service null), as SQS's CreateQueue makes one: no deploy removes or changes it.
   *  Throws QueueExistsError when the project has the name already, QueueInputError for a config SQS refuses. */
  createQueue(project: string, config: QueueConfig, tags?: Record<string, string>): Promise<StoredQueue>;
  /** Replaces a queue's config (SetQueueAttributes); the messages stay. A manifest's queue takes its declared
   *  config again at its service's next deploy. Throws QueueNotFoundError or QueueInputError. */
  updateQueue(project: string, config: QueueConfig): Promise<StoredQueue>;
  /** Deletes a queue with its messages and deduplication ids, whoever declared it; false when it did not exist. */
  deleteQueue(project: string, name: string): Promise<boolean>;
  /** The queue's tags (SQS's cost allocation tags); throws QueueNotFoundError. */
  queueTags(project: string, name: string): Promise<Record<string, string>>;
  /** Adds or replaces these tags, and removes the keys in `remove`, in one write; throws QueueNotFoundError. */
  tagQueue(
    project: string,
    name: string,
    tags: Record<string, string>,
    remove?: readonly string[],
  ): Promise<Record<string, string>>;
}

/** A table as stored. */
export interface StoredTable extends TableDef {
  project: string;
  /** The service whose manifest declares it (null: created through the DynamoDB API). */
  service: string | null;
  createdAt: number;
  /** Items and their total size (approximate is fine), for DescribeTable. */
  itemCount: number;
  sizeBytes: number;
  /** Set when stream is: its label (an ISO timestamp, as DynamoDB's StreamLabel) and ARN suffix. It names
   *  one stream: turning the stream on, or changing its view type, starts a new one with a new label, and the
   *  records of the stream before are dropped. */
  streamLabel: string | null;
  /** The sequence number of the table's latest stream record (0 before the first): the next gets one more. */
  streamSeq: number;
}

/** What a write decides, given the item as it is: the new item, null to delete it, or undefined to leave it. */
export type WriteDecision = Item | null | undefined;

export interface ItemWrite {
  table: string;
  /** The item's primary key attributes (and nothing else). */
  key: Item;
  /** Called inside the transaction with the current item; may throw to abort (the error is rethrown). */
  decide: (current: Item | undefined) => WriteDecision;
}

export interface WriteResult {
  old: Item | undefined;
  new: Item | undefined;
  /** On a table with a local secondary index: the size in bytes of the item's collection after the write
   *  (its partition's items and their local index entries), for ItemCollectionMetrics. */
  collectionBytes?: number;
}

export type SortCondition =
  | { op: '=' | '<' | '<=' | '>' | '>='; value: AttributeValue }
  | { op: 'between'; low: AttributeValue; high: AttributeValue }
  | { op: 'begins_with'; prefix: AttributeValue };

export interface ItemQuery {
  table: string;
  /** Query an index instead of the table (its key schema applies). */
  index?: string;
  partition: AttributeValue;
  sort?: SortCondition;
  /** Ascending sort key order unless false. */
  forward?: boolean;
  /** At most this many items (default and cap 10000; the API applies DynamoDB's 1 MB page itself). */
  limit?: number;
  /** Continue after this key (the table's key, plus the index's key attributes when querying an index). */
  exclusiveStartKey?: Item;
}

export interface ItemScan {
  table: string;
  index?: string;
  /** Parallel scan: this segment of totalSegments (each item is in exactly one). */
  segment?: number;
  totalSegments?: number;
  limit?: number;
  exclusiveStartKey?: Item;
}

export interface ItemPage {
  items: Item[];
  /** The items as stored: the JSON text of each, in the same order, so an answer can be built without
   *  parsing and re-serializing them (items is parsed from these on first read). */
  texts: string[];
  /** Present when more items may follow: pass as exclusiveStartKey. */
  lastKey?: Item;
}

/** One change of a table with a stream, as DynamoDB Streams records it. */
export interface StreamRecord {
  /** Increasing per table: DynamoDB's SequenceNumber. */
  seq: number;
  table: string;
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  keys: Item;
  newImage?: Item;
  oldImage?: Item;
  /** Epoch ms of the write. */
  at: number;
  /** Set for deletions by TTL: { type: 'Service', principalId: 'dynamodb.amazonaws.com' }. */
  userIdentity?: { type: string; principalId: string };
  sizeBytes: number;
}

/**
 * DynamoDB tables: definitions, items, secondary index entries and stream records, on both backends. Items are
 * stored under an order-preserving encoding of their key (DynamoDB's order: numbers by value, strings and
 * binaries by bytes), so Query on a partition and a sort-key range is an index range scan in the database.
 * Every item write updates its index entries and appends its stream record in the same transaction.
 */
export interface TableStore {
  /** Throws TableExistsError when the name is taken in the project. */
  createTable(project: string, def: TableDef, service: string | null): Promise<StoredTable>;
  getTable(project: string, name: string): Promise<StoredTable | undefined>;
  /** The definition alone (no counts), what item requests are checked against; answered from memory where
   *  the backend can keep it current (docs/storage.md, "Table definitions in memory"). Treat it as frozen. */
  definition(project: string, name: string): Promise<TableDef | undefined>;
  /** By name; one project's. */
  listTables(project: string): Promise<StoredTable[]>;
  /** Replaces the definition (new indexes are filled from the existing items; dropped ones are deleted). */
  updateTable(project: string, def: TableDef): Promise<StoredTable>;
  /** Deletes the table with its items, index entries and stream; false when it did not exist. */
  deleteTable(project: string, name: string): Promise<boolean>;
  getItem(project: string, table: string, key: Item): Promise<Item | undefined>;
  /** Atomic read-modify-write of one item (throws TableNotFoundError). */
  write(project: string, w: ItemWrite): Promise<WriteResult>;
  /** All or nothing: every decide runs against the items as they are, then everything is written, or a
   *  decide throws and nothing is (TransactWriteItems). */
  transact(project: string, writes: readonly ItemWrite[]): Promise<WriteResult[]>;
  /** Items of one partition in sort key order (of the table or an index). */
  query(project: string, q: ItemQuery): Promise<ItemPage>;
  /** Items in key order (within a segment), for Scan. */
  scan(project: string, s: ItemScan): Promise<ItemPage>;
  /** Stream records of a table after `afterSeq`, oldest first. */
  streamRecords(project: string, table: string, afterSeq: number, limit: number): Promise<StreamRecord[]>;
  /** Where a consumer of the table's stream (a table trigger) has read up to, or undefined if it never has. */
  streamCursor(project: string, table: string, consumer: string): Promise<number | undefined>;
  /** Records that the consumer has handled every record up to afterSeq (kept until the table goes). */
  setStreamCursor(project: string, table: string, consumer: string, afterSeq: number): Promise<void>;
  /** Deletes up to `limit` items whose TTL attribute (epoch seconds) is at or before nowSeconds, across all
   *  tables, each with a REMOVE stream record marked as the service's; returns how many. TTL values more
   *  than five years before nowSeconds are ignored, as DynamoDB ignores them. Also drops stream records
   *  older than 24 hours (the store clock's), DynamoDB Streams' retention. */
  expire(nowSeconds: number, limit: number): Promise<number>;
}

/** What a credential may touch in its project. null: everything (an operator's key). */
export interface Permissions {
  /** Table names it may read and write. */
  tables: string[];
  /** Queue names it may send to, receive from and manage; missing (a key stored before queues were
   *  granted): none. */
  queues?: string[];
  /** Bucket names it may read and write (objects only: creating or deleting buckets needs a full key). */
  buckets?: string[];
}

/** An access key Nimbus issued (SigV4 access key id and secret). The secret is stored encrypted. */
export interface StoredCredential {
  accessKeyId: string;
  project: string;
  /** A person's label ("ci", "alice"), or for a function's own key "function:<name>". */
  name: string;
  /** A function's key is made at deploy and removed with the function; a user's by `nimbus credentials`. */
  kind: 'user' | 'function';
  /** The function a 'function' key belongs to. */
  functionName: string | null;
  permissions: Permissions | null;
  createdAt: number;
}

export interface NewCredential extends Omit<StoredCredential, 'createdAt'> {
  /** The secret, encrypted by the caller (the store never sees it in the clear). */
  secretCiphertext: string;
}

/** What a bearer API key may do in its project, each role including the ones after it:
 *  admin (keys, credentials, secrets) > deploy (deploy, remove, drop) > invoke (invoke, send, replay) > read. */
export type KeyRole = 'admin' | 'deploy' | 'invoke' | 'read';
export const KEY_ROLES: readonly KeyRole[] = ['admin', 'deploy', 'invoke', 'read'];

/** A bearer API key of a project. The key itself is never stored: only its SHA-256 (for bearer checks) and,
 *  encrypted under the master key, the SigV4 secret derived from it (HMAC needs that secret itself). */
export interface StoredApiKey {
  id: string;
  project: string;
  name: string;
  role: KeyRole;
  keyHash: string;
  sigv4Ciphertext: string;
  createdAt: number;
  /** When its secret was last replaced, or null. */
  rotatedAt: number | null;
}

export type NewApiKey = Omit<StoredApiKey, 'createdAt' | 'rotatedAt'>;

/** The API keys of every project. */
export interface ApiKeyStore {
  /** Throws if the id exists or the project does not. */
  create(k: NewApiKey): Promise<StoredApiKey>;
  get(id: string): Promise<StoredApiKey | undefined>;
  /** One project's, oldest first. */
  list(project: string): Promise<StoredApiKey[]>;
  remove(project: string, id: string): Promise<boolean>;
  /** Replaces the key's secret (the old one stops working); undefined when it is not the project's. */
  rotate(
    project: string,
    id: string,
    keyHash: string,
    sigv4Ciphertext: string,
  ): Promise<StoredApiKey | undefined>;
}

/** A key callers of the gateway send in x-api-key (API Gateway's API keys), issued under a usage plan of its
 *  project. Only its secret's SHA-256 is stored. */
export interface StoredGatewayKey {
  id: string;
  project: string;
  name: string;
  /** A usage plan name, declared under http.usagePlans by a service of the project. */
  plan: string;
  keyHash: string;
  createdAt: number;
}

export type NewGatewayKey = Omit<StoredGatewayKey, 'createdAt'>;

/** A key's quota counter for one period ("DAY 2026-12-03", "WEEK 2026-11-30", "MONTH 2026-12"). */
export interface GatewayKeyUsage {
  keyId: string;
  period: string;
  /** Requests admitted and reported by the nodes. */
  used: number;
  /** Requests set aside by nodes and not reported yet (used or not): never given to another node. */
  reserved: number;
}

/**
 * Gateway API keys and their quota counters, shared by every node. Nodes count locally: they reserve a
 * block of a key's quota (used + reserved never passes the limit), admit requests from it, and settle what
 * they used and what they give back. A node that dies keeps its reservation: the quota is never passed,
 * at worst under-used by that block until the period ends.
 */
export interface GatewayKeyStore {
  /** Throws if the id exists or the project does not. */
  create(k: NewGatewayKey): Promise<StoredGatewayKey>;
  get(id: string): Promise<StoredGatewayKey | undefined>;
  /** One project's, oldest first. */
  list(project: string): Promise<StoredGatewayKey[]>;
  /** Deletes the key with its counters; false when it is not the project's. */
  remove(project: string, id: string): Promise<boolean>;
  /** Sets aside up to n requests of the period's quota, atomically; answers how many (0 when the quota is
   *  used up, or the key is gone). */
  reserve(project: string, keyId: string, period: string, n: number, limit: number): Promise<number>;
  /** used += admitted; reserved -= admitted + released. */
  settle(project: string, keyId: string, period: string, admitted: number, released: number): Promise<void>;
  /** The project's counters (every period kept), or one key's. */
  usage(project: string, keyId?: string): Promise<GatewayKeyUsage[]>;
}

/** One control action, as the audit log keeps it. */
export interface AuditEntry {
  /** Increasing in the order written. */
  seq: number;
  at: number;
  project: string;
  /** The key that acted: an API key id, "nimbus" for the data dir's key, or "system". */
  actor: string;
  /** For example deploy, function.remove, key.create, secret.set, project.create. */
  action: string;
  /** What it acted on (a function, key id, secret name), or null. */
  target: string | null;
  /** A few facts about the action, never a secret. */
  detail: Record<string, unknown> | null;
}

export interface AuditQuery {
  /** Every project's when left out. */
  project?: string;
  /** Entries at or after this time. */
  since?: number;
  action?: string;
  /** Newest first, at most this many (default 100). */
  limit?: number;
}

/** Append-only: nothing updates or deletes an entry. */
export interface AuditLog {
  append(e: Omit<AuditEntry, 'seq' | 'at'>): Promise<AuditEntry>;
  list(q: AuditQuery): Promise<AuditEntry[]>;
}

/** Issued access keys. */
export interface CredentialStore {
  /** Throws if the access key id exists already. */
  create(c: NewCredential): Promise<StoredCredential>;
  /** With the encrypted secret, for signature checks. */
  get(accessKeyId: string): Promise<(StoredCredential & { secretCiphertext: string }) | undefined>;
  /** One project's, by name then access key id. */
  list(project: string): Promise<StoredCredential[]>;
  /** False when it did not exist in that project. */
  remove(project: string, accessKeyId: string): Promise<boolean>;
  /** The key of a function, if it has one. */
  forFunction(
    project: string,
    functionName: string,
  ): Promise<(StoredCredential & { secretCiphertext: string }) | undefined>;
  /** Replaces a function's permissions (at deploy). False when it has no key. */
  setPermissions(accessKeyId: string, permissions: Permissions | null): Promise<boolean>;
}

/** A secret as listed: its name and dates, never its value. */
export interface StoredSecret {
  project: string;
  /** 1 to 128 of A-Z a-z 0-9 _ . - / (SECRET_NAME). */
  name: string;
  createdAt: number;
  /** When its value was last set (createdAt until then). */
  updatedAt: number;
}

/** Secrets (`nimbus secret`): values encrypted by the caller, bound to their project and name. */
export interface SecretStore {
  /** Creates or replaces the value; createdAt stays, updatedAt is now. `created`: it did not exist. */
  put(project: string, name: string, ciphertext: string): Promise<{ secret: StoredSecret; created: boolean }>;
  /** With the ciphertext, for an instance start. */
  get(project: string, name: string): Promise<(StoredSecret & { ciphertext: string }) | undefined>;
  /** One project's, by name. */
  list(project: string): Promise<StoredSecret[]>;
  /** False when it did not exist in that project. */
  remove(project: string, name: string): Promise<boolean>;
}

/** A bucket as stored. Names are unique per project (S3's are global; a project is Nimbus's account). */
export interface StoredBucket {
  project: string;
  name: string;
  /** The service whose manifest declares it (null: created through the S3 API). */
  service: string | null;
  createdAt: number;
}

/** The standard headers S3 stores with an object and returns on GET and HEAD. */
export interface ObjectHeaders {
  contentType?: string;
  cacheControl?: string;
  contentDisposition?: string;
  contentEncoding?: string;
  contentLanguage?: string;
  expires?: string;
}

/** Full-object checksums, base64 as S3 sends them (x-amz-checksum-*). */
export interface ObjectChecksums {
  crc32?: string;
  crc32c?: string;
  sha1?: string;
  sha256?: string;
}

/** What a PutObject or CopyObject records, once its bytes are in the ByteStore. */
export interface NewObject {
  bucket: string;
  /** Up to 1,024 bytes of UTF-8; just a string here: it never names a file. */
  key: string;
  /** Where the bytes are (ByteStore's ref). Each object owns its ref; a multipart upload composes its
   *  parts' refs into one at completion, so an object is always one ref. */
  ref: string;
  size: number;
  /** Hex MD5 of the bytes (without the quotes S3 adds on the wire). */
  etag: string;
  headers: ObjectHeaders;
  /** x-amz-meta-* without the prefix, names lower-case. */
  userMetadata: Record<string, string>;
  checksums: ObjectChecksums;
  tags: Record<string, string>;
}

export interface StoredObject extends NewObject {
  project: string;
  lastModified: number;
  /** Increases with every write to the bucket (S3's event sequencer), so change events can be ordered. */
  sequencer: number;
}

export interface ObjectListQuery {
  prefix?: string;
  /** Keys whose rest after the prefix holds it are rolled up into one common prefix each. */
  delimiter?: string;
  /** Start after this key or common prefix (StartAfter, Marker, or a continuation token's position). */
  after?: string;
  /** Keys plus common prefixes returned at most (MaxKeys). */
  limit: number;
}

export interface ObjectPage {
  objects: StoredObject[];
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned: the next page's `after`. */
  last?: string;
}

/** S3's event names for what a write did to an object. */
export type ObjectEventName =
  | 'ObjectCreated:Put'
  | 'ObjectCreated:Copy'
  | 'ObjectCreated:CompleteMultipartUpload'
  | 'ObjectRemoved:Delete';

/** Who made a change, for the event records (S3's userIdentity, requestParameters, responseElements) and
 *  the trace its caller passed on (a function's own write carries its trace: loops are caught by it). */
export interface ChangeContext {
  /** Created objects only; a write without one is a plain Put. */
  event?: 'ObjectCreated:Put' | 'ObjectCreated:Copy' | 'ObjectCreated:CompleteMultipartUpload';
  requestId?: string;
  principalId?: string;
  sourceIp?: string;
  trace?: string;
}

/** One entry of the object change log: written in the transaction of the change it describes, read by the
 *  storage trigger source and forgotten once it has been turned into events. */
export interface ObjectChange {
  /** Increases across the whole log (all projects and buckets), in commit order per bucket. */
  seq: number;
  project: string;
  bucket: string;
  key: string;
  event: ObjectEventName;
  /** The object's size and ETag (hex); for a removal, those of the object removed. */
  size: number;
  etag: string;
  /** The bucket's sequencer at the change (S3's object.sequencer). */
  sequencer: number;
  at: number;
  requestId: string | null;
  principalId: string | null;
  sourceIp: string | null;
  trace: string | null;
}

/** A multipart upload in progress: what CreateMultipartUpload was told, kept until Complete or Abort. */
export interface NewUpload {
  bucket: string;
  key: string;
  /** Drawn at random by the caller; unique within the bucket. */
  uploadId: string;
  headers: ObjectHeaders;
  userMetadata: Record<string, string>;
  tags: Record<string, string>;
}

export interface StoredUpload extends NewUpload {
  project: string;
  initiated: number;
}

/** One part of an upload: its own ByteStore ref until completion composes the parts into one. */
export interface UploadPart {
  partNumber: number;
  ref: string;
  size: number;
  /** Hex MD5 of the part's bytes. */
  etag: string;
}

export interface StoredPart extends UploadPart {
  lastModified: number;
}

export interface UploadListQuery {
  prefix?: string;
  /** Start after this key (KeyMarker), and within it after this upload id (UploadIdMarker). */
  afterKey?: string;
  afterUploadId?: string;
  limit: number;
}

/** One CORS rule of a bucket (PutBucketCors), as S3 models it. */
export interface CorsRule {
  id?: string;
  allowedMethods: string[];
  allowedOrigins: string[];
  allowedHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
}

/**
 * Buckets and object metadata. The bytes live in a ByteStore (src/objects/); a row holds its ref. Keys are
 * stored as UTF-8 bytes, so the primary key orders them as S3 lists them (binary UTF-8), and a listing is a
 * range scan of that index. A write returns the ref it replaced: the caller deletes those bytes once the
 * metadata is committed (a crash in between leaves an orphan, swept at start, never a dangling ref).
 */
export interface ObjectStore {
  /** False when the project has the bucket already. */
  createBucket(project: string, name: string, service: string | null): Promise<boolean>;
  getBucket(project: string, name: string): Promise<StoredBucket | undefined>;
  /** By name; one project's. */
  listBuckets(project: string): Promise<StoredBucket[]>;
  /** False when there was none; throws BucketNotEmptyError when it still holds objects. */
  deleteBucket(project: string, name: string): Promise<boolean>;
  /** Creates or replaces the object (throws BucketNotFoundError); `replaced` is the old object's ref. The
   *  change log gets its ObjectCreated entry in the same transaction. */
  putObject(
    project: string,
    o: NewObject,
    change?: ChangeContext,
  ): Promise<{ object: StoredObject; replaced: string | null }>;
  getObject(project: string, bucket: string, key: string): Promise<StoredObject | undefined>;
  /** The deleted objects (their refs are the caller's to delete); missing keys are skipped, as in S3. Each
   *  deleted object gets an ObjectRemoved:Delete entry in the change log, in the same transaction. */
  deleteObjects(
    project: string,
    bucket: string,
    keys: readonly string[],
    change?: ChangeContext,
  ): Promise<StoredObject[]>;
  /** The oldest entries of the change log, in seq order. */
  changes(limit: number): Promise<ObjectChange[]>;
  /** Removes these entries (their events are enqueued); unknown ones are ignored. */
  forgetChanges(seqs: readonly number[]): Promise<void>;
  /** Throws BucketNotFoundError. */
  listObjects(project: string, bucket: string, q: ObjectListQuery): Promise<ObjectPage>;
  /** Which of these refs an object or an upload's part holds (the orphan sweep asks before deleting bytes). */
  referenced(refs: readonly string[]): Promise<Set<string>>;
  /** Replaces an object's tags alone (PutObjectTagging); false when there is no such object. */
  setObjectTags(project: string, bucket: string, key: string, tags: Record<string, string>): Promise<boolean>;
  /** The bucket's CORS rules; null when it has none, undefined when there is no such bucket. */
  getBucketCors(project: string, bucket: string): Promise<CorsRule[] | null | undefined>;
  /** Replaces (null: deletes) the bucket's CORS rules; false when there is no such bucket. */
  setBucketCors(project: string, bucket: string, rules: CorsRule[] | null): Promise<boolean>;

  /** Throws BucketNotFoundError. */
  createUpload(project: string, u: NewUpload): Promise<StoredUpload>;
  getUpload(project: string, bucket: string, uploadId: string): Promise<StoredUpload | undefined>;
  /** By key, then initiation order (upload id breaks ties); throws BucketNotFoundError. */
  listUploads(project: string, bucket: string, q: UploadListQuery): Promise<StoredUpload[]>;
  /** Adds or replaces a part; `replaced` is the old part's ref. Throws UploadNotFoundError. */
  putPart(
    project: string,
    bucket: string,
    uploadId: string,
    p: UploadPart,
  ): Promise<{ replaced: string | null }>;
  /** By part number; throws UploadNotFoundError. */
  listParts(project: string, bucket: string, uploadId: string): Promise<StoredPart[]>;
  /**
   * In one transaction: the upload and its parts go, the object is created or replaced. `parts` are the
   * refs of every part the upload held (the caller deletes their bytes once this resolves), `replaced` the
   * old object's ref. Throws UploadNotFoundError (nothing changes) or BucketNotFoundError.
   */
  completeUpload(
    project: string,
    uploadId: string,
    o: NewObject,
    /** Logged as ObjectCreated:CompleteMultipartUpload, whatever its event says. */
    change?: ChangeContext,
  ): Promise<{ object: StoredObject; replaced: string | null; parts: string[] }>;
  /** The refs of the parts of the upload it deleted; undefined when there was no such upload. */
  abortUpload(project: string, bucket: string, uploadId: string): Promise<string[] | undefined>;
}

/**
 * A web console session (docs/console.md): only the SHA-256 of its random id is kept, so a copy of the
 * database holds nothing a browser could present. It names the API key it was opened with.
 */
export interface StoredSession {
  idHash: string;
  project: string;
  keyId: string;
  /** A digest of the key's secret at sign-in: once the key is rotated it no longer matches. */
  keyFingerprint: string;
  createdAt: number;
  lastSeenAt: number;
  /** The absolute expiry, whatever the activity. */
  expiresAt: number;
}

/** The store's clock sets createdAt and lastSeenAt. */
export type NewSession = Omit<StoredSession, 'createdAt' | 'lastSeenAt'>;

/** Console sessions: server-side state, so signing out or revoking a key ends a session everywhere. */
export interface SessionStore {
  /** Throws if the id hash exists or the project does not. */
  create(s: NewSession): Promise<StoredSession>;
  /** The session when it exists, its absolute expiry has not passed and it was last seen at or after
   *  `idleSince`; an expired one is as absent as one that never existed. */
  get(idHash: string, idleSince: number): Promise<StoredSession | undefined>;
  /** Sets lastSeenAt to now; false when there is no such session. */
  touch(idHash: string): Promise<boolean>;
  remove(idHash: string): Promise<boolean>;
  /** Ends every session opened with the key (revoked or rotated); how many there were. */
  removeForKey(keyId: string): Promise<number>;
  /** Deletes the sessions past their absolute expiry or last seen before `idleSince`; how many. */
  prune(idleSince: number): Promise<number>;
}

export type StoreBackend = 'sqlite' | 'postgresql';

/** The whole store: its parts, and one lifecycle. */
/** The services metered by something other than an invocation record. */
export const USAGE_SERVICES = ['dynamodb', 's3', 'sqs', 'storage', 'lambda'] as const;
export type UsageService = (typeof USAGE_SERVICES)[number];

/**
 * Metered usage that is not an invocation, summed per UTC hour: data service requests, stored bytes over
 * time, provisioned concurrency kept. Priced when counted, like an invocation record, so a later price change
 * never rewrites history.
 */
export interface UsageEntry {
  project: string;
  service: UsageService;
  /** The table, bucket, queue or function; '' for what belongs to the project as a whole (its storage). */
  resource: string;
  /** What is counted: "read", "write" (DynamoDB); "tier1", "tier2" (S3); "request" (SQS); "byte-seconds"
   *  (storage); "provisioned-mb-ms" (Lambda provisioned concurrency). */
  kind: string;
  /** Start of the UTC hour (epoch ms, a multiple of 3,600,000). */
  hour: number;
  /** How much of kind: a whole number, at most 2^53 - 1 per row. */
  quantity: number;
  /** Its cost in picodollars, a whole number. */
  costPicoUsd: number;
}

export interface UsageEntryQuery {
  project?: string;
  /** Rows whose hour is at or after this (epoch ms). */
  since?: number;
  /** Rows whose hour is before this (epoch ms). */
  until?: number;
}

/** Usage counters, added to in batches (never one write per counted request: see metering/usage-meter.ts). */
export interface UsageStore {
  /** Adds each entry's quantity and cost to its row (project, hour, service, resource, kind), all or none. */
  add(entries: readonly UsageEntry[]): Promise<void>;
  /** Rows in the window, ordered by hour, project, service, resource, kind. */
  list(q?: UsageEntryQuery): Promise<UsageEntry[]>;
}

export const HOUR_MS = 3_600_000;

export interface Store {
  readonly backend: StoreBackend;
  /** Where it lives, for the start banner (a file path or a URL without its password). */
  readonly location: string;
  readonly functions: FunctionStore;
  readonly invocations: InvocationLog;
  readonly spans: SpanStore;
  readonly events: EventQueue;
  readonly projects: ProjectStore;
  readonly quotas: QuotaStore;
  readonly nodes: NodeRegistry;
  readonly schedules: ScheduleStore;
  readonly queues: QueueStore;
  readonly tables: TableStore;
  readonly credentials: CredentialStore;
  readonly apiKeys: ApiKeyStore;
  readonly gatewayKeys: GatewayKeyStore;
  readonly audit: AuditLog;
  readonly secrets: SecretStore;
  readonly objects: ObjectStore;
  readonly sessions: SessionStore;
  readonly usage: UsageStore;
  /** Flushes buffered invocation records and closes; every part is unusable afterwards. */
  close(): Promise<void>;
}

// Rows as both backends read them (the column names are the same on SQLite and PostgreSQL), and the one
// mapping from a row to what the parts return. SQLite has no boolean, so `cold` is 0/1 there.
import type { QueueConfig } from '../config/manifest.js';
import type { Item, TableDef } from '../tables/types.js';
import { parseConfig } from './canonical-json.js';
import { gbSeconds } from '../metering/price.js';
import { receiptHandle, sequenceNumber } from './queue-rules.js';
import type {
  AuditEntry,
  SpanKindName,
  SpanStatusName,
  StoredSpan,
  ChangeContext,
  KeyRole,
  StoredApiKey,
  StoredSession,
  StoredGatewayKey,
  GatewayKeyUsage,
  EventState,
  FunctionVersion,
  InvocationRecord,
  InvocationStatus,
  MessageAttributeValue,
  NewObject,
  NewUpload,
  NodeInfo,
  ObjectChange,
  ObjectEventName,
  ObjectChecksums,
  ObjectHeaders,
  Project,
  QueuedEvent,
  QueueMessage,
  StoredBucket,
  StoredObject,
  StoredPart,
  StoredUpload,
  StoredQueue,
  StoredInvocation,
  UsageGroupBy,
  UsageRow,
  StoredSchedule,
  StoredCredential,
  StoredSecret,
  StoredTable,
  StreamRecord,
  Trigger,
  ProjectQuota,
  ProjectQuotaUsage,
} from './types.js';
import { PROJECT_NAME } from './validate.js';

export interface VersionRow {
  project: string;
  name: string;
  version: number;
  service: string;
  config: string;
  code_sha256: string;
  code_size: number;
  deployed_at: number;
}

export interface InvocationRow {
  seq: number;
  request_id: string;
  project: string;
  function_name: string;
  version: string;
  trigger: string;
  attempt: number;
  start: number;
  duration_ms: number;
  billed_ms: number;
  memory_mb: number;
  max_rss: number;
  cold: number | boolean;
  init_ms: number | null;
  status: string;
  error_type: string | null;
  error_message: string | null;
  logs: string;
  requests: number;
  /** A number on both backends (PostgreSQL's int8 parser); Number() keeps a string safe too. */
  cost_pico_usd: number | string;
  trace_id: string | null;
}

export interface EventRow {
  id: string;
  project: string;
  function_name: string;
  qualifier: string | null;
  source: string;
  payload: string;
  trace: string | null;
  enqueued_at: number;
  attempts: number;
  failures: number;
  next_attempt_at: number;
  state: string;
  last_error: string | null;
  lease_owner: string | null;
  lease_until: number | null;
}

export interface ProjectRow {
  name: string;
  created_at: number;
}

export interface QuotaRow {
  project: string;
  concurrency: number | null;
  memory_mb: number | null;
  storage_quota: number | null;
  storage_bytes: number | null;
}

export interface NodeRow {
  id: string;
  host: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
  gateway_url: string | null;
  api_url: string | null;
}

export interface ScheduleRow {
  id: string;
  project: string;
  function_name: string;
  expression: string;
  timezone: string;
  input: string | null;
  next_fire_at: number;
  created_at: number;
}

export function toSchedule(r: ScheduleRow): StoredSchedule {
  return {
    id: r.id,
    project: r.project,
    functionName: r.function_name,
    expression: r.expression,
    timezone: r.timezone,
    input: r.input,
    nextFireAt: r.next_fire_at,
    createdAt: r.created_at,
  };
}

export interface QueueRow {
  project: string;
  name: string;
  service: string | null;
  config: string;
  created_at: number;
  updated_at: number;
  /** JSON object; read by queueTags(), not part of StoredQueue. */
  tags: string;
}

export function toQueue(r: QueueRow): StoredQueue {
  return {
    ...(JSON.parse(r.config) as QueueConfig),
    project: r.project,
    service: r.service,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface QueueMessageRow {
  seq: number;
  project: string;
  queue: string;
  id: string;
  body: string;
  md5: string;
  attributes: string;
  group_id: string | null;
  dedup_id: string | null;
  trace: string | null;
  sent_at: number;
  visible_at: number;
  first_received_at: number | null;
  receive_count: number;
  receipt: string | null;
  dead_letter_source: string | null;
}

/** Only FIFO messages have a group, so the group says whether the seq is shown as a sequence number. */
export function toQueueMessage(r: QueueMessageRow): QueueMessage {
  return {
    id: r.id,
    project: r.project,
    queue: r.queue,
    body: r.body,
    md5OfBody: r.md5,
    attributes: JSON.parse(r.attributes) as Record<string, MessageAttributeValue>,
    groupId: r.group_id,
    deduplicationId: r.dedup_id,
    sequenceNumber: r.group_id === null ? null : sequenceNumber(r.seq),
    trace: r.trace,
    sentAt: r.sent_at,
    firstReceivedAt: r.first_received_at,
    receiveCount: r.receive_count,
    receiptHandle: r.receipt === null ? null : receiptHandle(r.id, r.receipt),
    deadLetterSource: r.dead_letter_source,
  };
}

/** A table with its counters (PostgreSQL sums them from its shards into these two columns). */
export interface TableRow {
  project: string;
  name: string;
  service: string | null;
  def: string;
  created_at: number;
  stream_label: string | null;
  stream_seq: number;
  item_count: number;
  size_bytes: number;
}

export function toTable(r: TableRow): StoredTable {
  return {
    ...(JSON.parse(r.def) as TableDef),
    project: r.project,
    service: r.service,
    createdAt: r.created_at,
    itemCount: r.item_count,
    sizeBytes: r.size_bytes,
    streamLabel: r.stream_label,
    streamSeq: r.stream_seq,
  };
}

export interface StreamRow {
  seq: number;
  table_name: string;
  event_name: string;
  keys: string;
  new_image: string | null;
  old_image: string | null;
  at: number;
  user_identity: string | null;
  size: number;
}

/** The images and identity are left out, not undefined, when the record has none. */
export function toStreamRecord(r: StreamRow): StreamRecord {
  return {
    seq: r.seq,
    table: r.table_name,
    eventName: r.event_name as StreamRecord['eventName'],
    keys: JSON.parse(r.keys) as Item,
    ...(r.new_image === null ? {} : { newImage: JSON.parse(r.new_image) as Item }),
    ...(r.old_image === null ? {} : { oldImage: JSON.parse(r.old_image) as Item }),
    at: r.at,
    ...(r.user_identity === null
      ? {}
      : { userIdentity: JSON.parse(r.user_identity) as NonNullable<StreamRecord['userIdentity']> }),
    sizeBytes: r.size,
  };
}

export interface CredentialRow {
  access_key_id: string;
  project: string;
  name: string;
  kind: string;
  function_name: string | null;
  permissions: string | null;
  secret_ciphertext: string;
  created_at: number;
}

export function toCredential(r: CredentialRow): StoredCredential {
  return {
    accessKeyId: r.access_key_id,
    project: r.project,
    name: r.name,
    kind: r.kind as StoredCredential['kind'],
    functionName: r.function_name,
    permissions:
      r.permissions === null ? null : (JSON.parse(r.permissions) as StoredCredential['permissions']),
    createdAt: r.created_at,
  };
}

export function toSecretCredential(r: CredentialRow): StoredCredential & { secretCiphertext: string } {
  return { ...toCredential(r), secretCiphertext: r.secret_ciphertext };
}

export interface ApiKeyRow {
  id: string;
  project: string;
  name: string;
  role: string;
  key_hash: string;
  sigv4_ciphertext: string;
  created_at: number;
  rotated_at: number | null;
}

export function toApiKey(r: ApiKeyRow): StoredApiKey {
  return {
    id: r.id,
    project: r.project,
    name: r.name,
    role: r.role as KeyRole,
    keyHash: r.key_hash,
    sigv4Ciphertext: r.sigv4_ciphertext,
    createdAt: Number(r.created_at),
    rotatedAt: r.rotated_at === null ? null : Number(r.rotated_at),
  };
}

export interface SessionRow {
  id_hash: string;
  project: string;
  key_id: string;
  key_fingerprint: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

export function toSession(r: SessionRow): StoredSession {
  return {
    idHash: r.id_hash,
    project: r.project,
    keyId: r.key_id,
    keyFingerprint: r.key_fingerprint,
    createdAt: Number(r.created_at),
    lastSeenAt: Number(r.last_seen_at),
    expiresAt: Number(r.expires_at),
  };
}

export interface GatewayKeyRow {
  id: string;
  project: string;
  name: string;
  plan: string;
  key_hash: string;
  created_at: number;
}

export function toGatewayKey(r: GatewayKeyRow): StoredGatewayKey {
  return {
    id: r.id,
    project: r.project,
    name: r.name,
    plan: r.plan,
    keyHash: r.key_hash,
    createdAt: Number(r.created_at),
  };
}

export interface GatewayKeyUsageRow {
  key_id: string;
  period: string;
  used: number | string;
  reserved: number | string;
}

export function toGatewayKeyUsage(r: GatewayKeyUsageRow): GatewayKeyUsage {
  return { keyId: r.key_id, period: r.period, used: Number(r.used), reserved: Number(r.reserved) };
}

export interface AuditRow {
  seq: number | string;
  at: number;
  project: string;
  actor: string;
  action: string;
  target: string | null;
  detail: string | null;
}

export function toAudit(r: AuditRow): AuditEntry {
  return {
    seq: Number(r.seq),
    at: Number(r.at),
    project: r.project,
    actor: r.actor,
    action: r.action,
    target: r.target,
    detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
  };
}

/** The invocations columns both backends write, in the order invocationValues() gives them. */
export const INVOCATION_COLUMNS = [
  'request_id',
  'project',
  'function_name',
  'version',
  'trigger',
  'attempt',
  'start',
  'duration_ms',
  'billed_ms',
  'memory_mb',
  'max_rss',
  'cold',
  'init_ms',
  'status',
  'error_type',
  'error_message',
  'logs',
  'requests',
  'cost_pico_usd',
  'trace_id',
] as const;

/** A record as the values of INVOCATION_COLUMNS; `cold` stays a boolean (SQLite's writer makes it 0/1). */
export function invocationValues(r: InvocationRecord): (string | number | boolean | null)[] {
  return [
    r.requestId,
    r.project,
    r.functionName,
    r.version,
    r.trigger,
    r.attempt,
    r.start,
    r.durationMs,
    r.billedMs,
    r.memoryMB,
    r.maxRssBytes,
    r.cold,
    r.initMs ?? null,
    r.status,
    r.errorType ?? null,
    r.errorMessage ?? null,
    r.logs,
    r.requests,
    r.costPicoUsd,
    r.traceId ?? null,
  ];
}

export function toVersion(r: VersionRow): FunctionVersion {
  return {
    project: r.project,
    name: r.name,
    service: r.service,
    version: r.version,
    config: parseConfig(r.config),
    codeSha256: r.code_sha256,
    codeSize: r.code_size,
    deployedAt: r.deployed_at,
  };
}

export function toInvocation(r: InvocationRow): StoredInvocation {
  return {
    seq: r.seq,
    requestId: r.request_id,
    project: r.project,
    functionName: r.function_name,
    version: r.version,
    trigger: r.trigger as Trigger,
    attempt: r.attempt,
    start: r.start,
    durationMs: r.duration_ms,
    billedMs: r.billed_ms,
    memoryMB: r.memory_mb,
    maxRssBytes: r.max_rss,
    cold: r.cold === true || r.cold === 1,
    initMs: r.init_ms,
    status: r.status as InvocationStatus,
    errorType: r.error_type,
    errorMessage: r.error_message,
    logs: r.logs,
    requests: r.requests,
    gbSeconds: gbSeconds(r.billed_ms, r.memory_mb),
    costPicoUsd: Number(r.cost_pico_usd),
    traceId: r.trace_id,
  };
}

export function toEvent(r: EventRow): QueuedEvent {
  return {
    id: r.id,
    project: r.project,
    functionName: r.function_name,
    qualifier: r.qualifier,
    source: r.source,
    payload: r.payload,
    trace: r.trace,
    enqueuedAt: r.enqueued_at,
    attempts: r.attempts,
    failures: r.failures,
    nextAttemptAt: r.next_attempt_at,
    state: r.state as EventState,
    lastError: r.last_error,
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
  };
}

export function toProject(r: ProjectRow): Project {
  return { name: r.name, createdAt: r.created_at };
}

export function toQuotaUsage(r: QuotaRow): ProjectQuotaUsage {
  return {
    project: r.project,
    quota: { concurrency: r.concurrency, memoryMB: r.memory_mb, storageBytes: r.storage_quota },
    storageBytes: r.storage_bytes ?? 0,
  };
}

/** A quota's fields are whole numbers of at least 1, or null (no limit); anything else is refused. */
export function checkQuotaPatch(patch: Partial<ProjectQuota>): void {
  for (const [field, v] of Object.entries(patch)) {
    if (!['concurrency', 'memoryMB', 'storageBytes'].includes(field))
      throw new Error(`unknown quota field ${field}`);
    if (v !== null && (!Number.isSafeInteger(v) || (v as number) < 1))
      throw new Error(`quota ${field} must be a whole number of at least 1, or null for none`);
  }
}

export function toNode(r: NodeRow): NodeInfo {
  return {
    id: r.id,
    host: r.host,
    pid: r.pid,
    startedAt: r.started_at,
    heartbeatAt: r.heartbeat_at,
    gatewayUrl: r.gateway_url,
    apiUrl: r.api_url,
  };
}

export function checkProjectName(name: string): void {
  if (!PROJECT_NAME.test(name)) {
    throw new Error(
      `project name "${name}" is not valid: use 1 to 63 lowercase letters, digits and dashes, starting with a letter`,
    );
  }
}

export interface BucketRow {
  project: string;
  name: string;
  service: string | null;
  created_at: number;
}

export function toBucket(r: BucketRow): StoredBucket {
  return { project: r.project, name: r.name, service: r.service, createdAt: Number(r.created_at) };
}

/** An object's row: the key as UTF-8 bytes (its order is S3's), everything but the ref and size as JSON. */
export interface ObjectRow {
  project: string;
  bucket: string;
  key: Buffer;
  byte_ref: string;
  size: number;
  etag: string;
  meta: string;
  last_modified: number;
  seq: number;
}

interface ObjectMetaJson {
  headers: ObjectHeaders;
  userMetadata: Record<string, string>;
  checksums: ObjectChecksums;
  tags: Record<string, string>;
}

export function objectMetaJson(o: NewObject): string {
  const meta: ObjectMetaJson = {
    headers: o.headers,
    userMetadata: o.userMetadata,
    checksums: o.checksums,
    tags: o.tags,
  };
  return JSON.stringify(meta);
}

export function toObject(r: ObjectRow): StoredObject {
  const meta = JSON.parse(r.meta) as ObjectMetaJson;
  return {
    project: r.project,
    bucket: r.bucket,
    key: r.key.toString('utf8'),
    ref: r.byte_ref,
    size: Number(r.size),
    etag: r.etag,
    ...meta,
    lastModified: Number(r.last_modified),
    sequencer: Number(r.seq),
  };
}

/** A change log entry's row: who and why as one JSON column, since only the event records read them. */
export interface ObjectChangeRow {
  seq: number;
  project: string;
  bucket: string;
  key: string;
  event: string;
  size: number;
  etag: string;
  sequencer: number;
  at: number;
  context: string;
}

/** The JSON of a change's context column (what the events say of the request that made it). */
export function changeContextJson(c: ChangeContext | undefined): string {
  return JSON.stringify({
    requestId: c?.requestId ?? null,
    principalId: c?.principalId ?? null,
    sourceIp: c?.sourceIp ?? null,
    trace: c?.trace ?? null,
  });
}

export function toObjectChange(r: ObjectChangeRow): ObjectChange {
  const c = JSON.parse(r.context) as Pick<ObjectChange, 'requestId' | 'principalId' | 'sourceIp' | 'trace'>;
  return {
    seq: Number(r.seq),
    project: r.project,
    bucket: r.bucket,
    key: r.key,
    event: r.event as ObjectEventName,
    size: Number(r.size),
    etag: r.etag,
    sequencer: Number(r.sequencer),
    at: Number(r.at),
    requestId: c.requestId,
    principalId: c.principalId,
    sourceIp: c.sourceIp,
    trace: c.trace,
  };
}

/** A multipart upload's row: the key as UTF-8 bytes, what the object will get as JSON. */
export interface UploadRow {
  project: string;
  bucket: string;
  upload_id: string;
  key: Buffer;
  meta: string;
  initiated: number;
}

export function uploadMetaJson(u: NewUpload): string {
  return JSON.stringify({ headers: u.headers, userMetadata: u.userMetadata, tags: u.tags });
}

export function toUpload(r: UploadRow): StoredUpload {
  const meta = JSON.parse(r.meta) as Pick<NewUpload, 'headers' | 'userMetadata' | 'tags'>;
  return {
    project: r.project,
    bucket: r.bucket,
    key: r.key.toString('utf8'),
    uploadId: r.upload_id,
    ...meta,
    initiated: Number(r.initiated),
  };
}

export interface PartRow {
  part_number: number;
  byte_ref: string;
  size: number;
  etag: string;
  last_modified: number;
}

export function toPart(r: PartRow): StoredPart {
  return {
    partNumber: Number(r.part_number),
    ref: r.byte_ref,
    size: Number(r.size),
    etag: r.etag,
    lastModified: Number(r.last_modified),
  };
}

/** An object's meta JSON with its tags replaced (PutObjectTagging leaves everything else as it was). */
export function withTags(meta: string, tags: Record<string, string>): string {
  return JSON.stringify({ ...(JSON.parse(meta) as ObjectMetaJson), tags });
}

/** The request ids of records that could not be written, for the platform's log (at most 20 named). */
export function requestIds(recs: readonly InvocationRecord[]): string {
  const named = recs
    .slice(0, 20)
    .map((r) => `request ${String((r as Partial<InvocationRecord> | null)?.requestId)}`);
  return recs.length > 20 ? `${named.join(', ')} and ${recs.length - 20} more` : named.join(', ');
}

export interface SecretRow {
  project: string;
  name: string;
  ciphertext: string;
  created_at: number;
  updated_at: number;
}

export function toSecret(r: SecretRow): StoredSecret {
  return { project: r.project, name: r.name, createdAt: r.created_at, updatedAt: r.updated_at };
}

export function toSecretWithCiphertext(r: SecretRow): StoredSecret & { ciphertext: string } {
  return { ...toSecret(r), ciphertext: r.ciphertext };
}

/** A usage row as both backends' aggregate queries return it (integers as bigint, string or number). */
export interface UsageRowRaw {
  g: string | number | bigint | null;
  p: string | null;
  invocations: number | bigint | string;
  requests: number | bigint | string | null;
  billed_ms: number | bigint | string | null;
  mb_ms: number | bigint | string | null;
  cost: number | bigint | string | null;
}

const big = (v: number | bigint | string | null): bigint => (v === null ? 0n : BigInt(v));

/** Rows of an aggregate query as UsageRows, in code-point order of (project, group) whatever the
 *  database's collation: a day's group is its UTC date. */
export function toUsageRows(rows: UsageRowRaw[], by: UsageGroupBy | undefined): UsageRow[] {
  const out = rows
    .filter((r) => big(r.invocations) > 0n)
    .map((r) => ({
      group:
        r.g === null
          ? ''
          : by === 'day'
            ? new Date(Number(r.g) * 86_400_000).toISOString().slice(0, 10)
            : String(r.g),
      project: by === 'function' ? r.p : null,
      invocations: Number(r.invocations),
      requests: Number(big(r.requests)),
      billedMs: Number(big(r.billed_ms)),
      mbMs: big(r.mb_ms),
      costPicoUsd: big(r.cost),
    }));
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return out.sort((a, b) => cmp(a.project ?? '', b.project ?? '') || cmp(a.group, b.group));
}

/** A span as both backends read it: times cast to text in the query, so nanoseconds stay exact. */
export interface SpanRow {
  project: string;
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  kind: string;
  start_ns: string;
  end_ns: string;
  status_code: string;
  status_message: string | null;
  attributes: string;
}

/** The columns a span is written with, in the order spanValues() gives them. */
export const SPAN_COLUMNS = [
  'project',
  'trace_id',
  'span_id',
  'parent_span_id',
  'name',
  'kind',
  'start_ns',
  'end_ns',
  'status_code',
  'status_message',
  'attributes',
] as const;

/** The SELECT list both backends read spans with (their times as decimal text). */
export const SPAN_SELECT =
  'project, trace_id, span_id, parent_span_id, name, kind, CAST(start_ns AS TEXT) AS start_ns, ' +
  'CAST(end_ns AS TEXT) AS end_ns, status_code, status_message, attributes';

export function spanValues(s: StoredSpan): (string | bigint | null)[] {
  return [
    s.project,
    s.traceId,
    s.spanId,
    s.parentSpanId,
    s.name,
    s.kind,
    s.startNs,
    s.endNs,
    s.status,
    s.statusMessage,
    JSON.stringify(s.attributes),
  ];
}

export function toSpan(r: SpanRow): StoredSpan {
  return {
    project: r.project,
    traceId: r.trace_id,
    spanId: r.span_id,
    parentSpanId: r.parent_span_id,
    name: r.name,
    kind: r.kind as SpanKindName,
    startNs: BigInt(r.start_ns),
    endNs: BigInt(r.end_ns),
    status: r.status_code as SpanStatusName,
    statusMessage: r.status_message,
    attributes: JSON.parse(r.attributes) as Record<string, unknown>,
  };
}

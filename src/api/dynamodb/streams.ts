// DynamoDB Streams: ListStreams, DescribeStream, GetShardIterator and GetRecords over the TableStore's stream
// records. @aws-sdk/client-dynamodb-streams signs for the service "dynamodb" and sends
// X-Amz-Target "DynamoDBStreams_20120810.<Operation>", so the DynamoDB service answers these too.
//
// A table's stream is one shard that never splits or closes; its sequence numbers are the store's record
// numbers (increasing per table), shown as 21 digits. A stream is named by its table and label: turning the
// stream off ends it, and turning it on again starts another with a new label, so an ARN or an iterator of
// the stream before finds nothing (ResourceNotFoundException). A shard iterator is a position, not a cursor
// held here: project, table, label and "after this sequence number", with an expiry 15 minutes out as on
// AWS, signed with an HMAC so that no caller can make one for a table (or a project) it was not given.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { StoredTable, StreamRecord } from '../../store/types.js';
import { ApiError } from '../errors.js';
import { constraint, notFound, validation } from './protocol.js';
import { keySchemaOut, streamArn, tableArn, tableName, type TableOpsDeps } from './tables.js';
import { sequenceNumber, streamRecordView } from '../../tables/stream-records.js';

export interface StreamOpsDeps extends TableOpsDeps {
  clock?: { now(): number };
  /** The key shard iterators are signed with. Nodes that share a store must share it (server.ts derives it
   *  from the master key); when left out, a random key per process (iterators end with the process). */
  iteratorKey?: Buffer;
}

type Input = Record<string, unknown>;
type Op = (project: string, input: Input) => Promise<unknown>;

export interface StreamOperations {
  ops: Record<string, Op>;
  /** The tables a request names through its StreamArn or ShardIterator (for the permission check; an
   *  unreadable one names none, and the operation refuses it). */
  tablesOf(input: Input): string[];
}

/** AWS's lifetime of a shard iterator. */
export const ITERATOR_TTL_MS = 15 * 60_000;
/** GetRecords' largest Limit, and its default. */
const MAX_RECORDS = 1000;
/** GetRecords answers at most 1 MB of records. */
const PAGE_BYTES = 1024 * 1024;
const MAX_LIST = 100;
const ITERATOR_TYPES = ['TRIM_HORIZON', 'LATEST', 'AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER'] as const;
type IteratorType = (typeof ITERATOR_TYPES)[number];
const STREAM_ARN = /^arn:aws:dynamodb:([^:]*):([^:]*):table\/([^/]+)\/stream\/(.+)$/;

/** Where an iterator points: after `after` in the stream `label` of a table (created at `created`). */
interface Position {
  project: string;
  table: string;
  label: string;
  created: number;
  after: number;
}

export function streamOperations(d: StreamOpsDeps): StreamOperations {
  const key = d.iteratorKey ?? randomBytes(32);
  const now = () => d.clock?.now() ?? Date.now();
  const iterators = iteratorCodec(key);
  return {
    ops: {
      ListStreams: (p, i) => listStreams(d, p, i),
      DescribeStream: (p, i) => describeStream(d, p, i),
      GetShardIterator: (p, i) => getShardIterator(d, p, i, (pos) => iterators.encode(pos, now())),
      GetRecords: (p, i) => getRecords(d, p, i, iterators, now()),
    },
    tablesOf: (input) => {
      const out: string[] = [];
      const arn = typeof input['StreamArn'] === 'string' ? STREAM_ARN.exec(input['StreamArn']) : null;
      if (arn) out.push(arn[3]!);
      const it = input['ShardIterator'];
      const pos = typeof it === 'string' ? iterators.read(it) : undefined;
      if (pos) out.push(pos.table);
      return out;
    },
  };
}

// --- the operations ---

async function listStreams(d: StreamOpsDeps, project: string, input: Input): Promise<unknown> {
  const limit = listLimit(input['Limit']);
  const start = input['ExclusiveStartStreamArn'];
  if (start !== undefined && typeof start !== 'string') {
    throw constraint(start, 'exclusiveStartStreamArn', 'Member must have length greater than or equal to 37');
  }
  let tables: StoredTable[];
  if (input['TableName'] !== undefined) {
    const name = tableName(input);
    const t = await d.store.tables.getTable(project, name);
    if (!t) throw notFound(`Requested resource not found: Table: ${name} not found`);
    tables = [t];
  } else {
    tables = await d.store.tables.listTables(project);
  }
  const streams = tables
    .filter((t) => t.stream && t.streamLabel !== null)
    .map((t) => ({ StreamArn: streamArn(d, t), TableName: t.name, StreamLabel: t.streamLabel! }))
    .sort((a, b) => (a.StreamArn < b.StreamArn ? -1 : a.StreamArn > b.StreamArn ? 1 : 0))
    .filter((s) => start === undefined || s.StreamArn > start);
  const page = streams.slice(0, limit);
  return {
    Streams: page,
    ...(streams.length > limit ? { LastEvaluatedStreamArn: page[page.length - 1]!.StreamArn } : {}),
  };
}

async function describeStream(d: StreamOpsDeps, project: string, input: Input): Promise<unknown> {
  const t = await stream(d, project, input['StreamArn']);
  listLimit(input['Limit']);
  const after = input['ExclusiveStartShardId'];
  if (after !== undefined && typeof after !== 'string') {
    throw constraint(after, 'exclusiveStartShardId', 'Member must have length greater than or equal to 28');
  }
  const filter = input['ShardFilter'] as Input | undefined;
  if (filter !== undefined && (typeof filter !== 'object' || filter === null)) {
    throw validation('ShardFilter must be a structure');
  }
  if (filter?.['Type'] !== undefined && filter['Type'] !== 'CHILD_SHARDS') {
    throw constraint(
      filter['Type'],
      'shardFilter.type',
      'Member must satisfy enum value set: [CHILD_SHARDS]',
    );
  }
  // The one shard has no children, and nothing comes after it.
  const none = after === shardId(t) || filter?.['Type'] === 'CHILD_SHARDS';
  const first = (await d.store.tables.streamRecords(project, t.name, 0, 1))[0];
  return {
    StreamDescription: {
      StreamArn: streamArn(d, t),
      StreamLabel: t.streamLabel,
      StreamStatus: 'ENABLED',
      StreamViewType: t.stream!.viewType,
      CreationRequestDateTime: labelTime(t.streamLabel!) / 1000,
      TableName: t.name,
      KeySchema: keySchemaOut(t.key),
      Shards: none
        ? []
        : [
            {
              ShardId: shardId(t),
              // The oldest record kept, or (none yet) the number the next one gets.
              SequenceNumberRange: { StartingSequenceNumber: sequenceNumber(first?.seq ?? t.streamSeq + 1) },
            },
          ],
    },
  };
}

async function getShardIterator(
  d: StreamOpsDeps,
  project: string,
  input: Input,
  encode: (pos: Position) => string,
): Promise<unknown> {
  const t = await stream(d, project, input['StreamArn']);
  const shard = input['ShardId'];
  if (typeof shard !== 'string') throw constraint(shard, 'shardId', 'Member must not be null');
  if (shard.length < 28 || shard.length > 65) {
    throw constraint(
      shard,
      'shardId',
      `Member must have length ${shard.length < 28 ? 'greater than or equal to 28' : 'less than or equal to 65'}`,
    );
  }
  if (shard !== shardId(t)) throw notFound('Requested resource not found: Shard does not exist');
  const type = input['ShardIteratorType'];
  if (!ITERATOR_TYPES.includes(type as IteratorType)) {
    throw constraint(
      type,
      'shardIteratorType',
      `Member must satisfy enum value set: [${ITERATOR_TYPES.join(', ')}]`,
    );
  }
  const first = (await d.store.tables.streamRecords(project, t.name, 0, 1))[0];
  /** The oldest sequence number one can still read: the oldest record kept, or the next to come. */
  const oldest = first?.seq ?? t.streamSeq + 1;
  let after: number;
  if (type === 'TRIM_HORIZON') after = oldest - 1;
  else if (type === 'LATEST') after = t.streamSeq;
  else {
    const n = parseSequenceNumber(input['SequenceNumber'], type as IteratorType);
    after = type === 'AT_SEQUENCE_NUMBER' ? n - 1 : n;
    if (n < 1 || after > t.streamSeq) {
      throw validation(`Invalid SequenceNumber ${sequenceNumber(n)} for shard ${shardId(t)}`);
    }
    if (after < oldest - 1) throw trimmed();
  }
  return {
    ShardIterator: encode({ project, table: t.name, label: t.streamLabel!, created: t.createdAt, after }),
  };
}

async function getRecords(
  d: StreamOpsDeps,
  project: string,
  input: Input,
  iterators: ReturnType<typeof iteratorCodec>,
  now: number,
): Promise<unknown> {
  const text = input['ShardIterator'];
  if (typeof text !== 'string') throw constraint(text, 'shardIterator', 'Member must not be null');
  if (text.length < 1 || text.length > 2048) {
    throw constraint(
      text,
      'shardIterator',
      `Member must have length ${text.length < 1 ? 'greater than or equal to 1' : 'less than or equal to 2048'}`,
    );
  }
  const limit = input['Limit'];
  if (
    limit !== undefined &&
    (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_RECORDS)
  ) {
    throw constraint(
      limit,
      'limit',
      typeof limit === 'number' && limit < 1
        ? 'Member must have value greater than or equal to 1'
        : `Member must have value less than or equal to ${MAX_RECORDS}`,
    );
  }
  const pos = iterators.decode(text, now);
  // Signed for another project: it names nothing here.
  if (pos.project !== project) throw invalidIterator();
  const t = await d.store.tables.getTable(project, pos.table);
  if (!t || t.streamLabel !== pos.label || t.createdAt !== pos.created) {
    throw notFound(
      `Requested resource not found: Stream: ${tableArn(d, pos.table)}/stream/${pos.label} not found`,
    );
  }
  const found = await d.store.tables.streamRecords(
    project,
    t.name,
    pos.after,
    typeof limit === 'number' ? limit : MAX_RECORDS,
  );
  // Records between the iterator and the oldest one kept are gone: DynamoDB says so rather than skip them.
  if (found[0] && found[0].seq > pos.after + 1) throw trimmed();
  const records: unknown[] = [];
  let bytes = 0;
  let last = pos.after;
  for (const r of found) {
    if (records.length > 0 && bytes + r.sizeBytes > PAGE_BYTES) break;
    records.push(recordOut(d, t, r));
    bytes += r.sizeBytes;
    last = r.seq;
  }
  return { Records: records, NextShardIterator: iterators.encode({ ...pos, after: last }, now) };
}

// --- shapes ---

/** One record as DynamoDB Streams shows it (the Lambda event's record has the same shape). */
function recordOut(d: StreamOpsDeps, t: StoredTable, r: StreamRecord): Record<string, unknown> {
  return {
    ...streamRecordView(r, d.region, t.stream!.viewType),
    ...(r.userIdentity
      ? { userIdentity: { PrincipalId: r.userIdentity.principalId, Type: r.userIdentity.type } }
      : {}),
  };
}

/** The one shard of a table's stream, named after the stream's label. */
export function shardId(t: StoredTable): string {
  return `shardId-00000001-${(t.streamLabel ?? '').replace(/\D/g, '')}`;
}

function labelTime(label: string): number {
  return Date.parse(`${label}Z`);
}

// --- input ---

/** The table of an ARN of its current stream, or ResourceNotFoundException. */
async function stream(d: StreamOpsDeps, project: string, arn: unknown): Promise<StoredTable> {
  if (typeof arn !== 'string') throw constraint(arn, 'streamArn', 'Member must not be null');
  if (arn.length < 37 || arn.length > 1024) {
    throw constraint(
      arn,
      'streamArn',
      `Member must have length ${arn.length < 37 ? 'greater than or equal to 37' : 'less than or equal to 1024'}`,
    );
  }
  const m = STREAM_ARN.exec(arn);
  if (!m) throw validation(`Invalid StreamArn: ${arn}`);
  const [, region, account, table, label] = m;
  const t =
    region === d.region && account === d.accountId
      ? await d.store.tables.getTable(project, table!)
      : undefined;
  if (!t || !t.stream || t.streamLabel !== label) {
    throw notFound(`Requested resource not found: Stream: ${arn} not found`);
  }
  return t;
}

function listLimit(limit: unknown): number {
  if (limit === undefined) return MAX_LIST;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) {
    throw constraint(
      limit,
      'limit',
      typeof limit === 'number' && limit < 1
        ? 'Member must have value greater than or equal to 1'
        : `Member must have value less than or equal to ${MAX_LIST}`,
    );
  }
  return limit;
}

function parseSequenceNumber(v: unknown, type: IteratorType): number {
  if (v === undefined) {
    throw validation(`SequenceNumber must be provided for ShardIteratorType ${type}`);
  }
  if (typeof v !== 'string' || !/^\d+$/.test(v) || v.length < 21 || v.length > 40) {
    throw constraint(
      v,
      'sequenceNumber',
      typeof v === 'string' && v.length > 40
        ? 'Member must have length less than or equal to 40'
        : 'Member must have length greater than or equal to 21',
    );
  }
  const n = BigInt(v);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw validation(`Invalid SequenceNumber ${v}`);
  return Number(n);
}

// --- shard iterators ---

/** base64url(JSON position and expiry) "." base64url(HMAC-SHA256 of it). */
function iteratorCodec(key: Buffer) {
  const mac = (body: string) =>
    createHmac('sha256', key).update(`nimbus shard iterator v1\n${body}`).digest();
  /** The position and expiry of an iterator this key signed, or undefined. */
  const read = (text: string): (Position & { expires: number }) | undefined => {
    const dot = text.indexOf('.');
    if (dot <= 0) return undefined;
    const body = text.slice(0, dot);
    const given = Buffer.from(text.slice(dot + 1), 'base64url');
    const want = mac(body);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    if (!Array.isArray(v) || v.length !== 7 || v[0] !== 1) return undefined;
    const [, project, table, label, created, after, expires] = v as unknown[];
    if (
      typeof project !== 'string' ||
      typeof table !== 'string' ||
      typeof label !== 'string' ||
      typeof created !== 'number' ||
      typeof after !== 'number' ||
      typeof expires !== 'number'
    ) {
      return undefined;
    }
    return { project, table, label, created, after, expires };
  };
  return {
    read,
    encode(pos: Position, now: number): string {
      const body = Buffer.from(
        JSON.stringify([1, pos.project, pos.table, pos.label, pos.created, pos.after, now + ITERATOR_TTL_MS]),
      ).toString('base64url');
      return `${body}.${mac(body).toString('base64url')}`;
    },
    /** The position, or what DynamoDB Streams answers for an iterator that is not one, or is too old. */
    decode(text: string, now: number): Position {
      const pos = read(text);
      if (!pos) throw invalidIterator();
      if (pos.expires <= now) {
        throw new ApiError(400, 'ExpiredIteratorException', 'Shard iterator has expired');
      }
      return {
        project: pos.project,
        table: pos.table,
        label: pos.label,
        created: pos.created,
        after: pos.after,
      };
    },
  };
}

const invalidIterator = (): ApiError => validation('Invalid ShardIterator');

const trimmed = (): ApiError =>
  new ApiError(
    400,
    'TrimmedDataAccessException',
    'The operation attempted to read past the oldest stream record in a shard.',
  );

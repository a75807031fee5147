// The DynamoDB API as an AwsService: what @aws-sdk/client-dynamodb, lib-dynamodb's DocumentClient and
// aws-sdk v2 send, and DynamoDB Streams (@aws-sdk/client-dynamodb-streams signs for "dynamodb" too, and names
// its operations with another X-Amz-Target prefix). One operation table per API; every operation acts in the
// caller's project and checks that the caller's credentials may use the tables it names, a stream's table
// included (by its StreamArn or ShardIterator).
import { accessDenied, readOnly, type Principal } from '../auth.js';
import type { UsageCounter } from '../../metering/usage-meter.js';
import { StorageQuotaExceededError } from '../../store/errors.js';
import type { AwsRequest, AwsResponse, AwsService } from '../aws.js';
import { ApiError } from '../errors.js';
import type { BodyLimit } from '../limits.js';
import { DynamoValidationError } from '../../tables/expr/index.js';
import { answer, dynamoError, operationOf, parseBody, validation } from './protocol.js';
import {
  createTable,
  deleteTable,
  describeTable,
  describeTimeToLive,
  listTables,
  updateTable,
  updateTimeToLive,
  type TableOpsDeps,
} from './tables.js';
import { itemOperations, type ItemOpsDeps } from './items.js';
import { partiqlOperations } from './partiql.js';
import { streamOperations, type StreamOpsDeps } from './streams.js';

export type DynamoDeps = TableOpsDeps &
  ItemOpsDeps &
  StreamOpsDeps & {
    /** Told of each request that reached an operation (metering; in memory). */
    usage?: UsageCounter;
  };

type Input = Record<string, unknown>;
type Operation = (project: string, input: Input, principal: Principal) => Promise<unknown>;

/** DynamoDB takes requests up to 16 MB (a full BatchWriteItem of 400 KB items is ~10 MB). */
const DYNAMODB_BODY: BodyLimit = { maxBytes: 16 * 1024 * 1024, statedBytes: 16 * 1024 * 1024 };

export function createDynamoService(d: DynamoDeps): AwsService {
  const ops: Record<string, Operation> = {
    CreateTable: (p, i) => createTable(d, p, i),
    DescribeTable: (p, i) => describeTable(d, p, i),
    ListTables: (p, i) => listTables(d, p, i),
    DeleteTable: (p, i) => deleteTable(d, p, i),
    UpdateTable: (p, i) => updateTable(d, p, i),
    UpdateTimeToLive: (p, i) => updateTimeToLive(d, p, i),
    DescribeTimeToLive: (p, i) => describeTimeToLive(d, p, i),
    ...itemOperations(d),
    // A statement names its table in its text: these check access once they have parsed it.
    ...partiqlOperations(d, (principal, action, table) => checkTables(d, principal, action, [table])),
  };
  const streams = streamOperations(d);
  /** What a read key may call: nothing that writes (ExecuteStatement and batches of statements may). */
  const READS = /^(GetItem|BatchGetItem|Query|Scan|TransactGetItems|Describe[A-Za-z]+|List[A-Za-z]+)$/;
  /** Operations on the table set itself: only keys that may touch every table of the project. */
  const management = new Set(['CreateTable', 'DeleteTable', 'UpdateTable', 'UpdateTimeToLive', 'ListTables']);
  return {
    service: 'dynamodb',
    title: 'DynamoDB',
    body: DYNAMODB_BODY,
    async handle(req: AwsRequest, principal: Principal): Promise<AwsResponse> {
      if (req.method !== 'POST') {
        throw new ApiError(400, 'UnknownOperationException', 'An unknown operation was requested.');
      }
      const { api, name } = operationOf(req.headers['x-amz-target']);
      const table = api === 'streams' ? streams.ops : ops;
      const op = Object.hasOwn(table, name) ? table[name] : undefined;
      if (!op) throw new ApiError(400, 'UnknownOperationException', 'An unknown operation was requested.');
      const input = parseBody(req.body);
      // A read key reads: it gets, queries, scans, describes and lists, and changes nothing.
      if (readOnly(principal) && api !== 'streams' && !READS.test(name)) {
        throw accessDenied(principal, `dynamodb:${name}`);
      }
      if (api === 'streams') {
        // Every stream of the project is a list of its tables; a key for some tables lists theirs by name.
        if (name === 'ListStreams' && input['TableName'] === undefined) {
          requireAllTables(d, principal, name, input);
        } else {
          checkTables(d, principal, name, [...tablesOf(input), ...streams.tablesOf(input)], '/stream/*');
        }
      } else if (management.has(name)) requireAllTables(d, principal, name, input);
      else checkTables(d, principal, name, tablesOf(input));
      // One request, a read or a write, charged to the first table it names (not capacity units).
      const kind = api === 'streams' || READS.test(name) ? 'read' : 'write';
      d.usage?.count(principal.project, 'dynamodb', tablesOf(input)[0] ?? '', kind);
      try {
        return answer(await op(principal.project, input, principal), req.requestId);
      } catch (err) {
        // The expression engine and the value checks speak DynamoDB's words already.
        if (err instanceof DynamoValidationError) throw validation(err.message);
        // DynamoDB's own error for a limit of the account, which SDKs do not retry.
        if (err instanceof StorageQuotaExceededError)
          throw new ApiError(400, 'LimitExceededException', err.message);
        throw err;
      }
    },
    error: dynamoError,
  };
}

/** The tables a request names (TableName, RequestItems keys, TransactItems entries). */
export function tablesOf(input: Input): string[] {
  const out = new Set<string>();
  if (typeof input['TableName'] === 'string') out.add(input['TableName']);
  const ri = input['RequestItems'];
  if (ri && typeof ri === 'object') for (const t of Object.keys(ri)) out.add(t);
  const ti = input['TransactItems'];
  if (Array.isArray(ti)) {
    for (const entry of ti as Input[]) {
      for (const v of Object.values(entry ?? {})) {
        const t = (v as Input | null)?.['TableName'];
        if (typeof t === 'string') out.add(t);
      }
    }
  }
  return [...out];
}

function denied(
  d: DynamoDeps,
  principal: Principal,
  action: string,
  table: string | undefined,
  suffix = '',
): ApiError {
  const resource =
    table === undefined
      ? `arn:aws:dynamodb:${d.region}:${d.accountId}:table/*`
      : `arn:aws:dynamodb:${d.region}:${d.accountId}:table/${table}${suffix}`;
  return new ApiError(
    400,
    'AccessDeniedException',
    `User: arn:aws:iam::${d.accountId}:user/${principal.keyId} is not authorized to perform: dynamodb:${action} on resource: ${resource}`,
  );
}

function requireAllTables(d: DynamoDeps, principal: Principal, action: string, input: Input): void {
  if (principal.permissions === null || principal.permissions === undefined) return;
  const t = typeof input['TableName'] === 'string' ? input['TableName'] : undefined;
  throw denied(d, principal, action, t);
}

function checkTables(
  d: DynamoDeps,
  principal: Principal,
  action: string,
  tables: readonly string[],
  suffix = '',
): void {
  const allowed = principal.permissions?.tables;
  if (principal.permissions === null || principal.permissions === undefined || allowed === undefined) return;
  for (const t of tables) if (!allowed.includes(t)) throw denied(d, principal, action, t, suffix);
}

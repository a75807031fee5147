// All the expression parameters of one request, checked and compiled in the order DynamoDB checks them:
// expression and legacy parameters are not mixed, ExpressionAttributeNames/Values are well formed, each
// expression parses (UpdateExpression, ConditionExpression, KeyConditionExpression, FilterExpression,
// ProjectionExpression), every placeholder was used, legacy parameters convert, and key conditions fit the key
// schema.

import type { AttributeValue, KeySchema } from '../types.js';
import { validateAttributeValue } from '../values.js';
import type { Condition, DocumentPath, KeyCondition, UpdateAst } from './ast.js';
import { ExpressionContext } from './context.js';
import { DynamoValidationError } from './errors.js';
import { keyConditionEntries, checkKeyConditions } from './key-condition.js';
import {
  attributesToGetToPaths,
  attributeUpdatesToUpdate,
  expectedToCondition,
  filterToCondition,
  keyConditionsToKeyCondition,
  type AttributeValueUpdate,
  type ExpectedAttributeValue,
  type LegacyCondition,
} from './legacy.js';
import { parseConditionExpression, parseProjectionExpression, parseUpdateExpression } from './parser.js';
import { conditionPaths } from './paths.js';
import { assertKeyNotUpdated, updatedPaths } from './update.js';

export type ExpressionOperation =
  | 'GetItem'
  | 'BatchGetItem'
  | 'TransactGetItem'
  | 'PutItem'
  | 'DeleteItem'
  | 'UpdateItem'
  | 'ConditionCheck'
  | 'Query'
  | 'Scan';

/** The expression-related members of a request, as the SDK sends them. */
export interface ExpressionRequest {
  ConditionExpression?: string;
  FilterExpression?: string;
  KeyConditionExpression?: string;
  ProjectionExpression?: string;
  UpdateExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, AttributeValue>;
  Expected?: Record<string, ExpectedAttributeValue>;
  ConditionalOperator?: string;
  QueryFilter?: Record<string, LegacyCondition>;
  ScanFilter?: Record<string, LegacyCondition>;
  KeyConditions?: Record<string, LegacyCondition>;
  AttributesToGet?: string[];
  AttributeUpdates?: Record<string, AttributeValueUpdate>;
}

export interface CompileOptions {
  /**
   * The key schema of what the request addresses: the table, or for a Query the index queried. Needed to check a
   * Query's key condition; also used to refuse updates of key attributes and filters on a Query's keys.
   */
  keySchema?: KeySchema;
  /** The table's key schema when `keySchema` is an index's (updates and projections check the table's keys). */
  tableKeySchema?: KeySchema;
}

export interface CompiledExpressions {
  /** ConditionExpression or Expected: what the existing item must satisfy. */
  condition?: Condition;
  /** FilterExpression, QueryFilter or ScanFilter. */
  filter?: Condition;
  /** KeyConditionExpression or KeyConditions (only when options.keySchema was given). */
  keyCondition?: KeyCondition;
  /** The parsed key condition before the schema check, when no keySchema was given. */
  keyConditionUnchecked?: Condition;
  /** ProjectionExpression or AttributesToGet. */
  projection?: DocumentPath[];
  /** UpdateExpression or AttributeUpdates. */
  update?: UpdateAst;
}

type ExpressionParam =
  | 'UpdateExpression'
  | 'ConditionExpression'
  | 'KeyConditionExpression'
  | 'FilterExpression'
  | 'ProjectionExpression';
type LegacyParam =
  | 'AttributeUpdates'
  | 'Expected'
  | 'ConditionalOperator'
  | 'QueryFilter'
  | 'ScanFilter'
  | 'KeyConditions'
  | 'AttributesToGet';

// The parameters each operation takes, in the order DynamoDB lists them in its "can not use both" message.
const PARAMS: Record<ExpressionOperation, { expressions: ExpressionParam[]; legacy: LegacyParam[] }> = {
  GetItem: { expressions: ['ProjectionExpression'], legacy: ['AttributesToGet'] },
  BatchGetItem: { expressions: ['ProjectionExpression'], legacy: ['AttributesToGet'] },
  TransactGetItem: { expressions: ['ProjectionExpression'], legacy: [] },
  PutItem: { expressions: ['ConditionExpression'], legacy: ['Expected', 'ConditionalOperator'] },
  DeleteItem: { expressions: ['ConditionExpression'], legacy: ['Expected', 'ConditionalOperator'] },
  UpdateItem: {
    expressions: ['UpdateExpression', 'ConditionExpression'],
    legacy: ['AttributeUpdates', 'Expected', 'ConditionalOperator'],
  },
  ConditionCheck: { expressions: ['ConditionExpression'], legacy: [] },
  Query: {
    expressions: ['ProjectionExpression', 'FilterExpression', 'KeyConditionExpression'],
    legacy: ['AttributesToGet', 'QueryFilter', 'ConditionalOperator', 'KeyConditions'],
  },
  Scan: {
    expressions: ['ProjectionExpression', 'FilterExpression'],
    legacy: ['AttributesToGet', 'ScanFilter', 'ConditionalOperator'],
  },
};

function fail(message: string): never {
  throw new DynamoValidationError(message);
}

function present(request: ExpressionRequest, key: keyof ExpressionRequest): boolean {
  return request[key] !== undefined && request[key] !== null;
}

function checkParameterMix(operation: ExpressionOperation, request: ExpressionRequest): void {
  const { expressions, legacy } = PARAMS[operation];
  const usedExpressions = expressions.filter((p) => present(request, p));
  if (usedExpressions.length) {
    // KeyConditions may go with the other expressions as long as there is no KeyConditionExpression.
    const usedLegacy = legacy.filter(
      (p) => present(request, p) && !(p === 'KeyConditions' && !present(request, 'KeyConditionExpression')),
    );
    if (usedLegacy.length) {
      fail(
        `Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {${usedLegacy.join(', ')}} Expression parameters: {${usedExpressions.join(', ')}}`,
      );
    }
  }
  if (present(request, 'ExpressionAttributeNames') && !usedExpressions.length) {
    fail('ExpressionAttributeNames can only be specified when using expressions');
  }
  const valueExpressions = expressions.filter((p) => p !== 'ProjectionExpression');
  if (
    present(request, 'ExpressionAttributeValues') &&
    valueExpressions.length &&
    valueExpressions.every((p) => !present(request, p))
  ) {
    fail(
      `ExpressionAttributeValues can only be specified when using expressions: ${valueExpressions.join(' and ')} ${valueExpressions.length > 1 ? 'are' : 'is'} null`,
    );
  }
}

/** Checks ExpressionAttributeNames and ExpressionAttributeValues themselves (not yet whether they are used). */
export function validateExpressionAttributes(
  names: Readonly<Record<string, string>> | undefined,
  values: Readonly<Record<string, AttributeValue>> | undefined,
): void {
  const validKey = (key: string, sigil: string) => {
    if (key.length < 2 || key[0] !== sigil) return false;
    for (const c of key.slice(1)) {
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_'))
        return false;
    }
    return true;
  };
  if (names) {
    if (Object.keys(names).length === 0) fail('ExpressionAttributeNames must not be empty');
    for (const key of Object.keys(names)) {
      if (!validKey(key, '#'))
        fail(`ExpressionAttributeNames contains invalid key: Syntax error; key: "${key}"`);
    }
  }
  if (values) {
    if (Object.keys(values).length === 0) fail('ExpressionAttributeValues must not be empty');
    for (const key of Object.keys(values)) {
      if (!validKey(key, ':'))
        fail(`ExpressionAttributeValues contains invalid key: Syntax error; key: "${key}"`);
    }
    for (const [key, value] of Object.entries(values)) {
      try {
        validateAttributeValue(value);
      } catch (err) {
        if (!(err instanceof DynamoValidationError)) throw err;
        fail(`ExpressionAttributeValues contains invalid value: ${err.message} for key ${key}`);
      }
    }
  }
}

function topLevelNames(paths: readonly DocumentPath[]): Set<string> {
  return new Set(paths.map((p) => p[0] as string));
}

function nestedHeads(paths: readonly DocumentPath[]): Set<string> {
  return new Set(paths.filter((p) => p.length > 1).map((p) => p[0] as string));
}

function keyNames(schema: KeySchema | undefined): string[] {
  return schema ? [schema.partition.name, ...(schema.sort ? [schema.sort.name] : [])] : [];
}

/** Refuses nested paths (a.b, a[0]) into key attributes, as DynamoDB does in updates, projections and filters. */
function checkKeyPaths(paths: readonly DocumentPath[], schema: KeySchema | undefined): void {
  const nested = nestedHeads(paths);
  for (const key of keyNames(schema)) {
    if (nested.has(key)) {
      fail(
        `Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: ${key}`,
      );
    }
  }
}

/**
 * Checks and compiles the expression parameters of a request. Throws DynamoValidationError with DynamoDB's
 * message for the first problem DynamoDB would report.
 */
export function compileRequestExpressions(
  operation: ExpressionOperation,
  request: ExpressionRequest,
  options: CompileOptions = {},
): CompiledExpressions {
  checkParameterMix(operation, request);
  const result: CompiledExpressions = {};
  const { expressions } = PARAMS[operation];
  const uses = (p: ExpressionParam) => expressions.includes(p) && present(request, p);

  // Legacy parameters.
  if (operation === 'Query' && request.QueryFilter) {
    result.filter = filterToCondition(request.QueryFilter, request.ConditionalOperator, 'QueryFilter');
  }
  if (operation === 'Scan' && request.ScanFilter) {
    result.filter = filterToCondition(request.ScanFilter, request.ConditionalOperator, 'ScanFilter');
  }
  if (request.AttributesToGet && PARAMS[operation].legacy.includes('AttributesToGet')) {
    result.projection = attributesToGetToPaths(request.AttributesToGet);
  }
  if (operation === 'UpdateItem' && request.AttributeUpdates) {
    result.update = attributeUpdatesToUpdate(request.AttributeUpdates);
  }
  if (request.Expected && PARAMS[operation].legacy.includes('Expected')) {
    result.condition = expectedToCondition(request.Expected, request.ConditionalOperator);
  }
  if (
    operation === 'Query' &&
    !present(request, 'KeyConditions') &&
    !present(request, 'KeyConditionExpression')
  ) {
    fail('Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.');
  }

  // Expressions.
  validateExpressionAttributes(request.ExpressionAttributeNames, request.ExpressionAttributeValues);
  const context = new ExpressionContext(request.ExpressionAttributeNames, request.ExpressionAttributeValues);
  if (uses('UpdateExpression'))
    result.update = parseUpdateExpression(request.UpdateExpression as string, context);
  if (uses('ConditionExpression')) {
    result.condition = parseConditionExpression(
      request.ConditionExpression as string,
      context,
      'ConditionExpression',
    );
  }
  let keyConditionAst: Condition | undefined;
  if (uses('KeyConditionExpression')) {
    keyConditionAst = parseConditionExpression(
      request.KeyConditionExpression as string,
      context,
      'KeyConditionExpression',
    );
  }
  if (uses('FilterExpression')) {
    result.filter = parseConditionExpression(request.FilterExpression as string, context, 'FilterExpression');
  }
  if (uses('ProjectionExpression')) {
    result.projection = parseProjectionExpression(request.ProjectionExpression as string, context);
  }
  context.assertAllUsed();

  // Key conditions.
  const keySchema = options.keySchema;
  if (keyConditionAst) {
    const entries = keyConditionEntries(keyConditionAst);
    if (keySchema) result.keyCondition = checkKeyConditions(entries, keySchema);
    else result.keyConditionUnchecked = keyConditionAst;
  } else if (operation === 'Query' && request.KeyConditions && keySchema) {
    result.keyCondition = keyConditionsToKeyCondition(request.KeyConditions, keySchema);
  }

  // Key attributes.
  const tableSchema = options.tableKeySchema ?? keySchema;
  if (result.update && tableSchema) {
    assertKeyNotUpdated(result.update, keyNames(tableSchema));
    checkKeyPaths(updatedPaths(result.update), tableSchema);
  }
  if (result.projection && keySchema) checkKeyPaths(result.projection, keySchema);
  if (operation === 'Query' && result.filter && keySchema) {
    const paths = conditionPaths(result.filter);
    const heads = topLevelNames(paths);
    for (const key of keyNames(keySchema)) {
      if (heads.has(key)) {
        fail(
          `${request.QueryFilter ? 'QueryFilter' : 'Filter Expression'} can only contain non-primary key attributes: Primary key attribute: ${key}`,
        );
      }
    }
    checkKeyPaths(paths, keySchema);
  }
  return result;
}

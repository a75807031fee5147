// The expression engine's one entry point: DynamoDB's condition, filter, key condition, update and projection
// expressions (and the legacy parameters they replaced) parsed with a hand-written tokenizer and
// recursive-descent parser, evaluated against items with DynamoDB's semantics. Every refusal is a
// DynamoValidationError whose message is DynamoDB's own, for the API to return as a ValidationException.
//
// Typical use by the API:
//   const compiled = compileRequestExpressions('UpdateItem', request, { keySchema: table.key });
//   if (compiled.condition && !evaluateCondition(compiled.condition, oldItem)) → ConditionalCheckFailedException
//   const newItem = applyUpdate(compiled.update, oldItem, keyAttributeNames(table.key));
//   const returned = compiled.projection ? project(item, compiled.projection) : item;

export { DynamoValidationError } from './errors.js';
export type {
  Comparator,
  Condition,
  DocumentPath,
  KeyCondition,
  Operand,
  PathElement,
  SetAction,
  SetValue,
  SortKeyOperator,
  UpdateAst,
  AddAction,
  DeleteAction,
} from './ast.js';
export { formatPath } from './ast.js';
export { ExpressionContext } from './context.js';
export type { ExpressionAttributeNames, ExpressionAttributeValues } from './context.js';
export {
  parseConditionExpression,
  parseProjectionExpression,
  parseUpdateExpression,
  MAX_EXPRESSION_BYTES,
  MAX_IN_OPERANDS,
  MAX_OPERATORS,
  type ExpressionKind,
} from './parser.js';
export {
  parseKeyConditionExpression,
  keyConditionEntries,
  checkKeyConditions,
  matchesSortKey,
  evaluateKeyCondition,
  validateKey,
  type KeyConditionEntry,
} from './key-condition.js';
export { evaluateCondition, operandValue, sizeOf } from './evaluate.js';
export {
  applyUpdate,
  assertKeyNotUpdated,
  computeSetValue,
  updatedPaths,
  INCORRECT_OPERAND_TYPE,
  INVALID_PATH_FOR_UPDATE,
  LEGACY_TYPE_MISMATCH,
  MISSING_ATTRIBUTE,
} from './update.js';
export { project } from './projection.js';
export { getPath, conditionPaths, setValuePaths } from './paths.js';
export {
  attributesToGetToPaths,
  attributeUpdatesToUpdate,
  expectedToCondition,
  filterToCondition,
  keyConditionsToKeyCondition,
  type AttributeValueUpdate,
  type ComparisonOperator,
  type ExpectedAttributeValue,
  type LegacyCondition,
} from './legacy.js';
export {
  compileRequestExpressions,
  validateExpressionAttributes,
  type CompileOptions,
  type CompiledExpressions,
  type ExpressionOperation,
  type ExpressionRequest,
} from './request.js';
export { isReservedWord, RESERVED_WORD_COUNT } from './reserved-words.js';

import type { KeySchema } from '../types.js';

/** The attribute names of a key schema: the partition key, then the sort key if any. */
export function keyAttributeNames(schema: KeySchema): string[] {
  return schema.sort ? [schema.partition.name, schema.sort.name] : [schema.partition.name];
}

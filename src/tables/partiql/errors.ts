// PartiQL's refusals, in DynamoDB's words. A statement that does not parse is "not well formed"; one that parses
// but asks for something DynamoDB refuses has its own message. Both are ValidationExceptions, so they are
// DynamoValidationErrors like the expression engine's, and the API sends them back unchanged.

import { DynamoValidationError } from '../expr/errors.js';

const NOT_WELL_FORMED = "Statement wasn't well formed, can't be processed: ";

/** A syntax error at an offset of the statement; the position is given as line and column, from 1. */
export function syntaxError(detail: string, source: string, offset: number): DynamoValidationError {
  const before = source.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - before.lastIndexOf('\n');
  return new DynamoValidationError(`${NOT_WELL_FORMED}${detail} at line ${line}, column ${column}`);
}

/** A statement that parses but that DynamoDB does not run. */
export function invalid(message: string): DynamoValidationError {
  return new DynamoValidationError(message);
}

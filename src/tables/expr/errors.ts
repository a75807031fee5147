// The one error the expression engine (and the number module) throws: a request DynamoDB would refuse with a
// ValidationException. The message is DynamoDB's own wording, so the API can send it back unchanged.

export class DynamoValidationError extends Error {
  override name = 'DynamoValidationError';
  /** The error type DynamoDB's JSON protocol reports (`__type` is `com.amazon.coral.validate#ValidationException`). */
  readonly code = 'ValidationException' as const;
  constructor(message: string) {
    super(message);
  }
}

/** Throws a ValidationException with DynamoDB's text. */
export function fail(message: string): never {
  throw new DynamoValidationError(message);
}

// Errors that know their HTTP face. Control endpoints answer {error:{code,message,hint}}; the Lambda-compatible
// endpoints answer as AWS does (x-amzn-errortype header, {Type, message} body) so the AWS SDK maps them.

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
    /** Extra fields for AWS-shaped bodies (e.g. Reason for throttles). */
    readonly extra?: Record<string, string>,
  ) {
    super(message);
  }
}

export const notFound = (what: string, hint?: string): ApiError =>
  new ApiError(404, 'NotFound', `${what} not found`, hint);
export const badRequest = (message: string, hint?: string): ApiError =>
  new ApiError(400, 'BadRequest', message, hint);

// S3's errors on the wire: an XML <Error> document with S3's code and message, x-amz-request-id and -id-2;
// a HEAD answer has no body, so there only the status tells. Errors the listener raises in other services'
// words (a bad signature, an unknown key) are translated here into S3's.
import { ApiError } from '../errors.js';
import type { AwsResponse } from '../aws.js';
import { xmlDocument } from './xml.js';

/** The listener's and the store's codes, in S3's words. */
const TRANSLATED: Record<string, [number, string, string?]> = {
  UnrecognizedClientException: [
    403,
    'InvalidAccessKeyId',
    'The AWS Access Key Id you provided does not exist in our records.',
  ],
  InvalidSignatureException: [403, 'SignatureDoesNotMatch'],
  SignatureExpired: [
    403,
    'RequestTimeTooSkewed',
    'The difference between the request time and the current time is too large.',
  ],
  RequestExpired: [403, 'AccessDenied', 'Request has expired'],
  MissingAuthenticationToken: [403, 'AccessDenied', 'Access Denied'],
  AccessDeniedException: [403, 'AccessDenied', 'Access Denied'],
  InternalError: [500, 'InternalError', 'We encountered an internal error. Please try again.'],
};

export function s3Error(err: ApiError, requestId: string): AwsResponse {
  const t = TRANSLATED[err.code];
  const status = t?.[0] ?? err.status;
  const code = t?.[1] ?? err.code;
  const message = t?.[2] ?? err.message;
  return {
    status,
    headers: {
      ...err.headers,
      'content-type': 'application/xml',
      'x-amz-request-id': requestId,
      'x-amz-id-2': requestId,
    },
    body: xmlDocument(
      'Error',
      { Code: code, Message: message, ...err.extra, RequestId: requestId, HostId: requestId },
      false,
    ),
  };
}

export const noSuchBucket = (bucket: string): ApiError =>
  new ApiError(404, 'NoSuchBucket', 'The specified bucket does not exist', undefined, { BucketName: bucket });

export const noSuchKey = (key: string): ApiError =>
  new ApiError(404, 'NoSuchKey', 'The specified key does not exist.', undefined, { Key: key });

export const invalidArgument = (message: string, name?: string, value?: string): ApiError =>
  new ApiError(
    400,
    'InvalidArgument',
    message,
    undefined,
    name === undefined ? undefined : { ArgumentName: name, ArgumentValue: value ?? '' },
  );

export const invalidRequest = (message: string): ApiError => new ApiError(400, 'InvalidRequest', message);

export const accessDenied = (): ApiError => new ApiError(403, 'AccessDenied', 'Access Denied');

export const notImplemented = (what: string): ApiError =>
  new ApiError(
    501,
    'NotImplemented',
    `A header or query you provided implies functionality that is not implemented: ${what}`,
  );

export const preconditionFailed = (condition: string): ApiError =>
  new ApiError(
    412,
    'PreconditionFailed',
    'At least one of the pre-conditions you specified did not hold',
    undefined,
    {
      Condition: condition,
    },
  );

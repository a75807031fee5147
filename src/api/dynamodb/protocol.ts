// DynamoDB's wire protocol (AWS JSON 1.0): POST / with X-Amz-Target "DynamoDB_20120810.<Operation>" (or
// "DynamoDBStreams_20120810.<Operation>" for DynamoDB Streams, which signs for the same service), a JSON
// body, and a JSON answer with x-amz-crc32 (the SDKs verify it). Errors carry DynamoDB's __type and message.
import { crc32 } from 'node:zlib';
import type { AwsResponse } from '../aws.js';
import { ApiError } from '../errors.js';

export const TARGET_PREFIX = 'DynamoDB_20120810.';
export const STREAMS_TARGET_PREFIX = 'DynamoDBStreams_20120810.';
const ERROR_PREFIX = 'com.amazonaws.dynamodb.v20120810#';

/** The request's API (DynamoDB's or DynamoDB Streams') and operation name, or an UnknownOperationException. */
export function operationOf(target: string | string[] | undefined): {
  api: 'dynamodb' | 'streams';
  name: string;
} {
  const t = Array.isArray(target) ? target[0] : target;
  if (t?.startsWith(TARGET_PREFIX)) return { api: 'dynamodb', name: t.slice(TARGET_PREFIX.length) };
  if (t?.startsWith(STREAMS_TARGET_PREFIX)) {
    return { api: 'streams', name: t.slice(STREAMS_TARGET_PREFIX.length) };
  }
  throw new ApiError(400, 'UnknownOperationException', 'An unknown operation was requested.');
}

/** The JSON object of the body; what DynamoDB answers for anything else. */
export function parseBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError(400, 'SerializationException', 'Start of structure or map found where not expected.');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ApiError(400, 'SerializationException', 'Start of structure or map found where not expected.');
  }
  return v as Record<string, unknown>;
}

/** An answer already serialized (a Query's items spliced in as they are stored), sent as it is. */
export class JsonText {
  constructor(readonly text: string) {}
}

export function answer(body: unknown, requestId: string): AwsResponse {
  const text = body instanceof JsonText ? body.text : JSON.stringify(body);
  return {
    status: 200,
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': requestId,
      'x-amz-crc32': String(crc32(text)),
    },
    body: text,
  };
}

export function dynamoError(e: ApiError, requestId: string): AwsResponse {
  const body: Record<string, unknown> = { __type: `${ERROR_PREFIX}${e.code}`, message: e.message };
  if (e.extra) Object.assign(body, e.extra);
  const text = JSON.stringify(body);
  return {
    status: e.status,
    headers: {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': requestId,
      'x-amz-crc32': String(crc32(text)),
      ...e.headers,
    },
    body: text,
  };
}

export const validation = (message: string): ApiError => new ApiError(400, 'ValidationException', message);

/** DynamoDB's form for a parameter that breaks its constraints. */
export function constraint(value: unknown, field: string, rule: string): ApiError {
  const shown = value === undefined || value === null ? 'null' : JSON.stringify(value);
  return validation(
    `1 validation error detected: Value ${shown} at '${field}' failed to satisfy constraint: ${rule}`,
  );
}

export const notFound = (message = 'Requested resource not found'): ApiError =>
  new ApiError(400, 'ResourceNotFoundException', message);

export const inUse = (message: string): ApiError => new ApiError(400, 'ResourceInUseException', message);

export const conditionFailed = (item?: unknown): ApiError =>
  new ApiError(
    400,
    'ConditionalCheckFailedException',
    'The conditional request failed',
    undefined,
    item === undefined ? undefined : ({ Item: item } as unknown as Record<string, string>),
  );

// SQS's two wire protocols, as codecs around one set of operations. AWS JSON 1.0 is what @aws-sdk/client-sqs
// sends (X-Amz-Target "AmazonSQS.<Op>", JSON both ways, errors as {__type, message} plus x-amzn-query-error,
// the query-protocol code the SDK names its exception after). The query protocol is what older SDKs (aws-sdk
// v2, boto before 2023) send: a form-encoded Action=<Op> with flattened lists ("Attribute.1.Name"), answered
// in XML. Operations see the JSON protocol's input shape; decodeQuery() turns a form into it and
// encodeXml() turns an operation's JSON output into the query protocol's XML.
import type { AwsResponse } from '../aws.js';
import { ApiError } from '../errors.js';

export type Input = Record<string, unknown>;

export const TARGET_PREFIX = 'AmazonSQS.';
const JSON_TYPE_PREFIX = 'com.amazonaws.sqs#';
const XMLNS = 'http://queue.amazonaws.com/doc/2012-11-05/';

/** An SQS error: the JSON protocol's name, the query protocol's code and the HTTP status, from SQS's model. */
interface ErrorFace {
  /** Full __type (a common AWS error is not in SQS's namespace). */
  type: string;
  query: string;
}

const FACES: Record<string, ErrorFace> = {
  QueueDoesNotExist: sqs('QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue'),
  QueueAlreadyExists: sqs('QueueNameExists', 'QueueAlreadyExists'),
  BatchEntryIdsNotDistinct: sqs(
    'BatchEntryIdsNotDistinct',
    'AWS.SimpleQueueService.BatchEntryIdsNotDistinct',
  ),
  BatchRequestTooLong: sqs('BatchRequestTooLong', 'AWS.SimpleQueueService.BatchRequestTooLong'),
  EmptyBatchRequest: sqs('EmptyBatchRequest', 'AWS.SimpleQueueService.EmptyBatchRequest'),
  InvalidBatchEntryId: sqs('InvalidBatchEntryId', 'AWS.SimpleQueueService.InvalidBatchEntryId'),
  TooManyEntriesInBatchRequest: sqs(
    'TooManyEntriesInBatchRequest',
    'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
  ),
  MessageNotInflight: sqs('MessageNotInflight', 'AWS.SimpleQueueService.MessageNotInflight'),
  UnsupportedOperation: sqs('UnsupportedOperation', 'AWS.SimpleQueueService.UnsupportedOperation'),
  AccessDenied: { type: 'com.amazon.coral.service#AccessDeniedException', query: 'AccessDenied' },
  InvalidClientTokenId: {
    type: 'com.amazon.coral.service#UnrecognizedClientException',
    query: 'InvalidClientTokenId',
  },
  SignatureDoesNotMatch: {
    type: 'com.amazon.coral.service#InvalidSignatureException',
    query: 'SignatureDoesNotMatch',
  },
  MissingAuthenticationToken: {
    type: 'com.amazon.coral.service#MissingAuthenticationTokenException',
    query: 'MissingAuthenticationToken',
  },
  RequestExpired: { type: 'com.amazon.coral.service#ExpiredTokenException', query: 'RequestExpired' },
  InternalFailure: { type: 'com.amazon.coral.service#InternalFailure', query: 'InternalFailure' },
};

function sqs(name: string, query: string): ErrorFace {
  return { type: JSON_TYPE_PREFIX + name, query };
}

/** The codes the listener and the signature check use, in SQS's words. */
const RENAMED: Record<string, string> = {
  UnrecognizedClientException: 'InvalidClientTokenId',
  InvalidSignatureException: 'SignatureDoesNotMatch',
  SignatureExpired: 'RequestExpired',
  MissingAuthenticationTokenException: 'MissingAuthenticationToken',
  AccessDeniedException: 'AccessDenied',
  InternalError: 'InternalFailure',
  RequestTooLargeException: 'InvalidParameterValue',
};

export type Wire = 'json' | 'query';

export interface Decoded {
  wire: Wire;
  action: string;
  input: Input;
}

/** Which protocol a request speaks, its operation and its input in the JSON protocol's shape. */
export function decodeRequest(
  method: string,
  headers: Record<string, string | string[] | undefined>,
  url: URL,
  body: Buffer,
): Decoded {
  const target = first(headers['x-amz-target']);
  if (target !== undefined) {
    if (!target.startsWith(TARGET_PREFIX)) {
      throw new ApiError(400, 'UnknownOperationException', 'The action or operation requested is invalid.');
    }
    return { wire: 'json', action: target.slice(TARGET_PREFIX.length), input: parseJson(body) };
  }
  const form = new URLSearchParams(url.search);
  if (method === 'POST') for (const [k, v] of new URLSearchParams(body.toString('utf8'))) form.append(k, v);
  const action = form.get('Action');
  if (!action) {
    throw new ApiError(400, 'MissingAction', 'The request must contain the parameter Action.');
  }
  const input = decodeQuery(form);
  // aws-sdk v2 posts to the queue URL itself; the path names the queue when the form does not.
  if (input['QueueUrl'] === undefined && /^\/[^/]+\/[^/]+\/?$/.test(url.pathname)) {
    input['QueueUrl'] = url.href;
  }
  return { wire: 'query', action, input };
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function parseJson(body: Buffer): Input {
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ApiError(400, 'SerializationException', 'The request body is not valid JSON.');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new ApiError(400, 'SerializationException', 'The request body must be a JSON object.');
  }
  return v as Input;
}

// The query protocol's flattened names and the JSON protocol's member each becomes.
const LIST_NAMES: Record<string, string> = {
  AttributeName: 'AttributeNames',
  MessageAttributeName: 'MessageAttributeNames',
  MessageSystemAttributeName: 'MessageSystemAttributeNames',
  TagKey: 'TagKeys',
  SendMessageBatchRequestEntry: 'Entries',
  DeleteMessageBatchRequestEntry: 'Entries',
  ChangeMessageVisibilityBatchRequestEntry: 'Entries',
  AWSAccountId: 'AWSAccountIds',
  ActionName: 'Actions',
};
/** Lists of name/value pairs that are maps in JSON: [query name, JSON member, key field, value field]. */
const MAP_NAMES: Record<string, [string, string, string]> = {
  Attribute: ['Attributes', 'Name', 'Value'],
  MessageAttribute: ['MessageAttributes', 'Name', 'Value'],
  MessageSystemAttribute: ['MessageSystemAttributes', 'Name', 'Value'],
  Tag: ['Tags', 'Key', 'Value'],
  Tags: ['Tags', 'Key', 'Value'],
};
const INTEGERS = new Set([
  'MaxNumberOfMessages',
  'VisibilityTimeout',
  'WaitTimeSeconds',
  'DelaySeconds',
  'MaxResults',
]);

/** "Attribute.1.Name=a&Attribute.1.Value=b" → { Attributes: { a: "b" } }, and so on for every list. */
export function decodeQuery(form: URLSearchParams): Input {
  const tree: Record<string, unknown> = {};
  for (const [key, value] of form) {
    if (key === 'Action' || key === 'Version') continue;
    let node = tree;
    const parts = key.split('.');
    for (const [i, part] of parts.entries()) {
      if (part === '__proto__' || part === 'constructor' || part === 'prototype') break;
      if (i === parts.length - 1) node[part] = value;
      else node = (node[part] ??= {}) as Record<string, unknown>;
      if (typeof node !== 'object') break;
    }
  }
  return shape(tree) as Input;
}

function shape(node: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const map = MAP_NAMES[key];
    if (map && isIndexed(value)) {
      const [member, k, v] = map;
      const entries: Record<string, unknown> = {};
      for (const e of ordered(value)) {
        const pair = e as Record<string, unknown>;
        if (typeof pair[k] !== 'string') continue;
        const val = pair[v];
        entries[pair[k]] =
          typeof val === 'object' && val !== null ? shape(val as Record<string, unknown>) : val;
      }
      out[member] = entries;
      continue;
    }
    const list = LIST_NAMES[key];
    if (list && isIndexed(value)) {
      out[list] = ordered(value).map((e) =>
        typeof e === 'object' && e !== null ? shape(e as Record<string, unknown>) : e,
      );
      continue;
    }
    if (typeof value === 'object' && value !== null) out[key] = shape(value as Record<string, unknown>);
    else if (INTEGERS.has(key) && typeof value === 'string' && /^-?\d+$/.test(value))
      out[key] = Number(value);
    else out[key] = value;
  }
  return out;
}

function isIndexed(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.keys(v).every((k) => /^\d+$/.test(k));
}

function ordered(v: Record<string, unknown>): unknown[] {
  return Object.keys(v)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => v[k]);
}

/** An operation's output in the wire format the request came in. */
export function encodeOutput(wire: Wire, action: string, output: Input, requestId: string): AwsResponse {
  if (wire === 'json') {
    return {
      status: 200,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': requestId },
      body: JSON.stringify(output),
    };
  }
  const result =
    Object.keys(output).length === 0 ? '' : `<${action}Result>${xmlOf(action, output)}</${action}Result>`;
  return {
    status: 200,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
    body:
      `<?xml version="1.0"?><${action}Response xmlns="${XMLNS}">${result}` +
      `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`,
  };
}

// The JSON output's lists and maps, flattened as the query protocol writes them.
const XML_LISTS: Record<string, string> = {
  QueueUrls: 'QueueUrl',
  queueUrls: 'QueueUrl',
  Messages: 'Message',
  Failed: 'BatchResultErrorEntry',
};
const XML_MAPS: Record<string, [string, string, string]> = {
  Attributes: ['Attribute', 'Name', 'Value'],
  MessageAttributes: ['MessageAttribute', 'Name', 'Value'],
  Tags: ['Tag', 'Key', 'Value'],
};

function xmlOf(action: string, node: Input): string {
  let out = '';
  for (const [key, value] of Object.entries(node)) {
    if (value === undefined || value === null) continue;
    const map = XML_MAPS[key];
    if (map && typeof value === 'object' && !Array.isArray(value)) {
      const [tag, k, v] = map;
      for (const [name, val] of Object.entries(value as Input)) {
        const inner =
          typeof val === 'object' && val !== null ? xmlOf(action, val as Input) : escapeXml(String(val));
        out += `<${tag}><${k}>${escapeXml(name)}</${k}><${v}>${inner}</${v}></${tag}>`;
      }
      continue;
    }
    if (Array.isArray(value)) {
      const tag = key === 'Successful' ? `${action}ResultEntry` : (XML_LISTS[key] ?? key);
      for (const e of value) {
        out += `<${tag}>${typeof e === 'object' && e !== null ? xmlOf(action, e as Input) : escapeXml(String(e))}</${tag}>`;
      }
      continue;
    }
    const inner = typeof value === 'object' ? xmlOf(action, value as Input) : escapeXml(String(value));
    out += `<${key}>${inner}</${key}>`;
  }
  return out;
}

/** XML 1.0 text: the five entities, and characters XML can only carry as references. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"'\r]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** An ApiError in the wire format of the request (JSON unless it was a query-protocol one). */
export function encodeError(wire: Wire, e: ApiError, requestId: string): AwsResponse {
  const code = RENAMED[e.code] ?? e.code;
  const face = FACES[code] ?? { type: JSON_TYPE_PREFIX + code, query: code };
  const fault = e.status >= 500 ? 'Receiver' : 'Sender';
  if (wire === 'json') {
    return {
      status: e.status,
      headers: {
        ...e.headers,
        'content-type': 'application/x-amz-json-1.0',
        'x-amzn-requestid': requestId,
        'x-amzn-query-error': `${face.query};${fault}`,
      },
      body: JSON.stringify({ __type: face.type, message: e.message }),
    };
  }
  return {
    status: e.status,
    headers: { ...e.headers, 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
    body:
      `<?xml version="1.0"?><ErrorResponse xmlns="${XMLNS}"><Error><Type>${fault}</Type>` +
      `<Code>${escapeXml(face.query)}</Code><Message>${escapeXml(e.message)}</Message><Detail/></Error>` +
      `<RequestId>${requestId}</RequestId></ErrorResponse>`,
  };
}

/** Whether a request is SQS's query protocol, from its headers alone (for errors before the body is read). */
export function wireOf(headers: Record<string, string | string[] | undefined>): Wire {
  return headers['x-amz-target'] === undefined ? 'query' : 'json';
}

// SQS's errors, in its words.
export const sqsError = (status: number, code: string, message: string): ApiError =>
  new ApiError(status, code, message);
export const invalidParameter = (message: string): ApiError =>
  sqsError(400, 'InvalidParameterValue', message);
export const missingParameter = (name: string): ApiError =>
  sqsError(400, 'MissingParameter', `The request must contain the parameter ${name}.`);
export const queueDoesNotExist = (): ApiError =>
  sqsError(400, 'QueueDoesNotExist', 'The specified queue does not exist.');

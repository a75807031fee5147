// AWS-compatible services on the API listener. A SigV4-signed request names its service in the credential
// scope (".../us-east-1/lambda/aws4_request"); the listener routes it to the AwsService registered under that
// name, which owns everything from there: its operations, its body limit and its error wire format.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Principal } from './auth.js';
import type { ApiError } from './errors.js';
import type { BodyLimit } from './limits.js';

export interface AwsRequest {
  method: string;
  /** The request URL (query in searchParams); its pathname is still percent-encoded. */
  url: URL;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Sent back as x-amzn-requestid; invocations take it as theirs. */
  requestId: string;
  /** The client's address (S3's event records name it as requestParameters.sourceIPAddress). */
  sourceIp?: string;
  /** Aborted when the client goes away before the answer is written (a long poll stops taking messages). */
  signal?: AbortSignal;
}

/**
 * A request whose body is still arriving (handleStream). The signature of its headers is verified; its body
 * is checked against the signature as it streams, and errors (an ApiError) instead of ending if it does not
 * match, so a consumer that commits only at the end commits nothing then.
 */
export interface AwsStreamRequest extends Omit<AwsRequest, 'body'> {
  /** The path exactly as received, still percent-encoded and with its dot segments: S3's keys live here. */
  rawPath: string;
  body: Readable;
  /** Trailing headers of an aws-chunked body, complete once body has ended. */
  trailers: Record<string, string>;
}

export interface AwsResponse {
  status: number;
  /** A streamed body (GetObject) brings its own content-length header. */
  headers: Record<string, string>;
  body: string | Buffer | Readable;
}

export interface AwsService {
  /** The name clients sign for in the credential scope: "lambda", "dynamodb", "s3", "sqs". */
  readonly service: string;
  /** How people call it in messages: "Lambda". */
  readonly title: string;
  /** Read before the signature is checked, since the signature covers the body. */
  readonly body: BodyLimit;
  /**
   * Whether a request with the bearer key (no SigV4) on this path is this service's. Lambda's REST paths are,
   * so `curl -H "authorization: Bearer ..."` can invoke; a service reachable by SigV4 only leaves it out.
   */
  ownsBearerPath?(pathname: string): boolean;
  /** Answers an authenticated request; a thrown ApiError is rendered by error(). */
  handle(req: AwsRequest, principal: Principal): Promise<AwsResponse>;
  /**
   * When present, SigV4 requests come here instead of handle(), with the body unread: for services whose
   * bodies can be gigabytes (S3), which must never be buffered whole. `body` above is then not used.
   */
  handleStream?(req: AwsStreamRequest, principal: Principal): Promise<AwsResponse>;
  /**
   * An unsigned OPTIONS request outside the control API (a browser's CORS preflight), when this service
   * answers them (S3). Its body is not read.
   */
  preflight?(req: Omit<AwsStreamRequest, 'body' | 'trailers'>): Promise<AwsResponse>;
  /**
   * The error in this service's own wire format. Only ApiErrors arrive here: anything else was logged and
   * replaced by InternalError, so no service can leak a stack trace. The request's headers, when given,
   * tell a service with two wire protocols (SQS) which one to answer in.
   */
  error(err: ApiError, requestId: string, headers?: IncomingHttpHeaders): AwsResponse;
}

/** The registered services, by credential-scope name. */
export class AwsServices {
  private readonly byName = new Map<string, AwsService>();

  constructor(services: readonly AwsService[]) {
    for (const s of services) {
      if (this.byName.has(s.service)) throw new Error(`AWS service "${s.service}" is registered twice`);
      this.byName.set(s.service, s);
    }
  }

  get(service: string): AwsService | undefined {
    return this.byName.get(service);
  }

  forBearerPath(pathname: string): AwsService | undefined {
    return [...this.byName.values()].find((s) => s.ownsBearerPath?.(pathname) ?? false);
  }

  /** The service answering unsigned preflights, if one does. */
  forPreflight(): AwsService | undefined {
    return [...this.byName.values()].find((s) => s.preflight !== undefined);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** "the Lambda API", "the Lambda and DynamoDB APIs". */
  describe(): string {
    const titles = [...this.byName.values()].map((s) => s.title);
    const list = titles.length > 1 ? `${titles.slice(0, -1).join(', ')} and ${titles.at(-1)}` : titles[0];
    return `the ${list ?? 'no'} API${titles.length > 1 ? 's' : ''}`;
  }
}

/**
 * An error for a request no registered service can own (an unknown or unreadable credential scope). It
 * carries the code both ways AWS SDKs look for it: x-amzn-errortype (REST protocols) and __type (JSON ones).
 */
export function awsJsonError(err: ApiError, requestId: string): AwsResponse {
  return {
    status: err.status,
    headers: {
      ...err.headers,
      'x-amzn-errortype': err.code,
      'x-amzn-requestid': requestId,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ __type: err.code, message: err.message }),
  };
}

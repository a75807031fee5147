// The parts of the API Gateway v2 event and result this example uses.
export interface HttpEvent {
  routeKey: string;
  pathParameters?: Record<string, string>;
  body?: string;
  isBase64Encoded: boolean;
}

export interface HttpResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}

export function json(statusCode: number, value: unknown): HttpResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

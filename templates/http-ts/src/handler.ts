// A Lambda-style HTTP handler in TypeScript. Nimbus bundles it at deploy; the types below are the parts of
// API Gateway's event (payload format 2.0) and response it uses.

export interface HttpEvent {
  rawPath: string;
  queryStringParameters?: Record<string, string | undefined>;
}

export interface HttpResult {
  statusCode: number;
  headers?: Record<string, string>;
  body: string;
}

/** GET /greeting?name=Ada → {"greeting":"Hello, Ada!"}; a name longer than 100 characters → 400. */
export async function greeting(event: HttpEvent): Promise<HttpResult> {
  const name = event.queryStringParameters?.name ?? 'world';
  if (name.length > 100) return json(400, { error: 'name is at most 100 characters' });
  return json(200, { greeting: `Hello, ${name}!` });
}

function json(statusCode: number, value: unknown): HttpResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) };
}

// Lambda-style HTTP handlers: the event is API Gateway's (payload format 2.0), the result its response.

/** GET /hello?name=Ada → {"message":"Hello, Ada!"} */
exports.hello = async (event) => {
  const name = event.queryStringParameters?.name ?? 'world';
  return json(200, { message: `Hello, ${name}!` });
};

/** POST /echo with a JSON body → the same JSON back, or 400 if it is not JSON. */
exports.echo = async (event) => {
  const raw = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString() : (event.body ?? '');
  try {
    return json(200, { received: JSON.parse(raw) });
  } catch {
    return json(400, { error: 'the body must be JSON, e.g. {"hi":1}' });
  }
};

function json(statusCode, value) {
  return {
    statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(value),
  };
}

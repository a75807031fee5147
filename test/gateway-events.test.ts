// Events and responses checked field by field against the shapes in AWS's documentation for HTTP API Lambda
// integrations (payload format 1.0 and 2.0). The doc examples' values are reused where they make sense.
import { describe, expect, it } from 'vitest';
import {
  buildEventV1,
  buildEventV2,
  domainFromHost,
  errorResponse,
  isTextBody,
  mapResultV1,
  mapResultV2,
  requestTime,
  type GatewayRequest,
} from '../src/gateway/events.js';
import { Router, type RouteMatch } from '../src/gateway/router.js';
import type { RouteMethod } from '../src/config/manifest.js';

function matchOf(
  method: RouteMethod,
  routePath: string,
  path: string,
  payload: '1.0' | '2.0' = '2.0',
): RouteMatch {
  const m = new Router([{ functionName: 'fn', route: { method, path: routePath, payload } }]).match(
    method,
    path,
  );
  if (!m) throw new Error(`no match for ${path}`);
  return m;
}

function request(over: Partial<GatewayRequest> = {}): GatewayRequest {
  return {
    method: 'POST',
    path: '/my/path',
    rawQueryString: 'parameter1=value1&parameter1=value2&parameter2=value',
    // prettier-ignore
    rawHeaders: [
      'Header1', 'value1',
      'Header2', 'value1',
      'Header2', 'value2',
      'Cookie', 'cookie1; cookie2',
      'User-Agent', 'agent',
      'Content-Type', 'text/plain',
    ],
    body: Buffer.from('Hello from Lambda'),
    sourceIp: '192.0.2.1',
    protocol: 'HTTP/1.1',
    requestId: 'id',
    timeEpoch: 1583348638390,
    domainName: 'id.execute-api.us-east-1.amazonaws.com',
    apiId: 'api-id',
    accountId: '123456789012',
    stage: '$default',
    ...over,
  };
}

describe('buildEventV2', () => {
  it('builds the documented 2.0 event', () => {
    const ev = buildEventV2(request(), matchOf('POST', '/my/path', '/my/path'));
    expect(ev).toStrictEqual({
      version: '2.0',
      routeKey: 'POST /my/path',
      rawPath: '/my/path',
      rawQueryString: 'parameter1=value1&parameter1=value2&parameter2=value',
      cookies: ['cookie1', 'cookie2'],
      headers: {
        header1: 'value1',
        header2: 'value1,value2',
        'user-agent': 'agent',
        'content-type': 'text/plain',
      },
      queryStringParameters: {
        parameter1: 'value1,value2',
        parameter2: 'value',
      },
      requestContext: {
        accountId: '123456789012',
        apiId: 'api-id',
        domainName: 'id.execute-api.us-east-1.amazonaws.com',
        domainPrefix: 'id',
        http: {
          method: 'POST',
          path: '/my/path',
          protocol: 'HTTP/1.1',
          sourceIp: '192.0.2.1',
          userAgent: 'agent',
        },
        requestId: 'id',
        routeKey: 'POST /my/path',
        stage: '$default',
        time: '04/Mar/2020:19:03:58 +0000',
        timeEpoch: 1583348638390,
      },
      body: 'Hello from Lambda',
      isBase64Encoded: false,
    });
    // The fields come in the documented order (what a function logging its event shows).
    expect(Object.keys(ev)).toEqual([
      'version',
      'routeKey',
      'rawPath',
      'rawQueryString',
      'cookies',
      'headers',
      'queryStringParameters',
      'requestContext',
      'body',
      'isBase64Encoded',
    ]);
  });

  it('leaves cookies, queryStringParameters, body, pathParameters and stageVariables out when there are none', () => {
    const ev = buildEventV2(
      request({
        method: 'GET',
        rawQueryString: '',
        rawHeaders: ['Host', 'example.com'],
        body: Buffer.alloc(0),
      }),
      matchOf('GET', '/my/path', '/my/path'),
    );
    expect(ev).toStrictEqual({
      version: '2.0',
      routeKey: 'GET /my/path',
      rawPath: '/my/path',
      rawQueryString: '',
      headers: { host: 'example.com' },
      requestContext: {
        accountId: '123456789012',
        apiId: 'api-id',
        domainName: 'id.execute-api.us-east-1.amazonaws.com',
        domainPrefix: 'id',
        http: { method: 'GET', path: '/my/path', protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: '' },
        requestId: 'id',
        routeKey: 'GET /my/path',
        stage: '$default',
        time: '04/Mar/2020:19:03:58 +0000',
        timeEpoch: 1583348638390,
      },
      isBase64Encoded: false,
    });
    for (const k of ['cookies', 'queryStringParameters', 'body', 'pathParameters', 'stageVariables']) {
      expect(Object.hasOwn(ev, k)).toBe(false);
    }
  });

  it('carries decoded path parameters and the route key with its templates', () => {
    const ev = buildEventV2(
      request({ method: 'GET', path: '/items/a%20b/files/x/y.txt', body: Buffer.alloc(0) }),
      matchOf('GET', '/items/{id}/files/{path+}', '/items/a%20b/files/x/y.txt'),
    );
    expect(ev.routeKey).toBe('GET /items/{id}/files/{path+}');
    expect(ev.requestContext.routeKey).toBe('GET /items/{id}/files/{path+}');
    expect(ev.rawPath).toBe('/items/a%20b/files/x/y.txt');
    expect(ev.requestContext.http.path).toBe('/items/a%20b/files/x/y.txt');
    expect(ev.pathParameters).toStrictEqual({ id: 'a b', path: 'x/y.txt' });
    expect(Object.keys(ev).at(-2)).toBe('pathParameters');
  });

  it('lower-cases header names and joins duplicates with commas, across differently cased names', () => {
    const ev = buildEventV2(
      request({ rawHeaders: ['X-Multi', 'a', 'x-multi', 'b', 'X-MULTI', 'c, d', 'Accept', '*/*'] }),
      matchOf('POST', '/my/path', '/my/path'),
    );
    expect(ev.headers).toStrictEqual({ 'x-multi': 'a,b,c, d', accept: '*/*' });
  });

  it('collects every Cookie header into cookies and keeps it out of headers', () => {
    const ev = buildEventV2(
      request({ rawHeaders: ['Cookie', 'a=1; b=2', 'X-A', '1', 'cookie', 'c=3;d=4;'] }),
      matchOf('POST', '/my/path', '/my/path'),
    );
    expect(ev.cookies).toStrictEqual(['a=1', 'b=2', 'c=3', 'd=4']);
    expect(ev.headers).toStrictEqual({ 'x-a': '1' });
  });

  it('decodes query strings like a form: %XX, "+" as space, bare keys, empty pairs skipped', () => {
    const ev = buildEventV2(
      request({ rawQueryString: 'q=a+b%2Bc&empty=&bare&&x=1&x=2&caf%C3%A9=%E2%9C%93&bad=%E0%A4' }),
      matchOf('POST', '/my/path', '/my/path'),
    );
    expect(ev.rawQueryString).toBe('q=a+b%2Bc&empty=&bare&&x=1&x=2&caf%C3%A9=%E2%9C%93&bad=%E0%A4');
    expect(ev.queryStringParameters).toStrictEqual({
      q: 'a b+c',
      empty: '',
      bare: '',
      x: '1,2',
      café: '✓',
      bad: '%E0%A4',
    });
  });

  it('base64-encodes binary bodies', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
    const ev = buildEventV2(
      request({ rawHeaders: ['Content-Type', 'image/png'], body: png }),
      matchOf('POST', '/my/path', '/my/path'),
    );
    expect(ev.isBase64Encoded).toBe(true);
    expect(ev.body).toBe(png.toString('base64'));
    expect(Buffer.from(ev.body!, 'base64')).toEqual(png);
  });

  it('passes text-like bodies as text, including JSON with a charset and +json types', () => {
    for (const type of [
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/vnd.api+json',
      'text/html',
      'application/x-www-form-urlencoded',
    ]) {
      const ev = buildEventV2(
        request({ rawHeaders: ['Content-Type', type], body: Buffer.from('{"é":1}') }),
        matchOf('POST', '/my/path', '/my/path'),
      );
      expect([type, ev.isBase64Encoded, ev.body]).toEqual([type, false, '{"é":1}']);
    }
  });

  it('base64-encodes a body without Content-Type, and text-typed bytes that are not UTF-8', () => {
    const noType = buildEventV2(
      request({ rawHeaders: [], body: Buffer.from('plain') }),
      matchOf('POST', '/my/path', '/my/path'),
    );
    expect([noType.isBase64Encoded, noType.body]).toEqual([true, Buffer.from('plain').toString('base64')]);
    const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // "café" in ISO-8859-1
    const ev = buildEventV2(
      request({ rawHeaders: ['Content-Type', 'text/plain; charset=iso-8859-1'], body: latin1 }),
      matchOf('POST', '/my/path', '/my/path'),
    );
    expect([ev.isBase64Encoded, ev.body]).toEqual([true, latin1.toString('base64')]);
  });

  it('survives a JSON round trip unchanged (the event reaches the function as JSON)', () => {
    const ev = buildEventV2(request(), matchOf('POST', '/my/path', '/my/path'));
    expect(JSON.parse(JSON.stringify(ev))).toStrictEqual(ev);
  });

  it('keeps headers named like Object.prototype members as ordinary keys', () => {
    const ev = buildEventV2(
      request({ rawHeaders: ['constructor', 'a', 'Constructor', 'b', '__proto__', 'c', 'toString', 'd'] }),
      matchOf('POST', '/my/path', '/my/path'),
    );
    expect(JSON.parse(JSON.stringify(ev.headers))).toStrictEqual(
      JSON.parse('{"constructor":"a,b","__proto__":"c","tostring":"d"}'),
    );
    expect(Object.getPrototypeOf(ev.headers)).toBe(Object.prototype);
  });
});

describe('buildEventV1', () => {
  const v1Request = (over: Partial<GatewayRequest> = {}) =>
    request({
      method: 'GET',
      path: '/my/path',
      timeEpoch: 1583349317135,
      requestId: 'id=',
      rawHeaders: ['Header1', 'value1', 'Header2', 'value1', 'Header2', 'value2', 'User-Agent', 'user-agent'],
      body: Buffer.from('Hello from Lambda!'),
      ...over,
    });

  it('builds the documented 1.0 event', () => {
    const ev = buildEventV1(
      v1Request({ rawHeaders: [...v1Request().rawHeaders, 'Content-Type', 'text/plain'] }),
      matchOf('GET', '/my/path', '/my/path', '1.0'),
    );
    expect(ev).toStrictEqual({
      version: '1.0',
      resource: '/my/path',
      path: '/my/path',
      httpMethod: 'GET',
      headers: {
        Header1: 'value1',
        Header2: 'value2',
        'User-Agent': 'user-agent',
        'Content-Type': 'text/plain',
      },
      multiValueHeaders: {
        Header1: ['value1'],
        Header2: ['value1', 'value2'],
        'User-Agent': ['user-agent'],
        'Content-Type': ['text/plain'],
      },
      queryStringParameters: {
        parameter1: 'value2',
        parameter2: 'value',
      },
      multiValueQueryStringParameters: {
        parameter1: ['value1', 'value2'],
        parameter2: ['value'],
      },
      requestContext: {
        accountId: '123456789012',
        apiId: 'api-id',
        domainName: 'id.execute-api.us-east-1.amazonaws.com',
        domainPrefix: 'id',
        extendedRequestId: 'id=',
        httpMethod: 'GET',
        identity: {
          accessKey: null,
          accountId: null,
          caller: null,
          cognitoAuthenticationProvider: null,
          cognitoAuthenticationType: null,
          cognitoIdentityId: null,
          cognitoIdentityPoolId: null,
          principalOrgId: null,
          sourceIp: '192.0.2.1',
          user: null,
          userAgent: 'user-agent',
          userArn: null,
        },
        path: '/my/path',
        protocol: 'HTTP/1.1',
        requestId: 'id=',
        requestTime: '04/Mar/2020:19:15:17 +0000',
        requestTimeEpoch: 1583349317135,
        resourceId: null,
        resourcePath: '/my/path',
        stage: '$default',
      },
      pathParameters: null,
      stageVariables: null,
      body: 'Hello from Lambda!',
      isBase64Encoded: false,
    });
  });

  it('uses null for no query, no path parameters and no body', () => {
    const ev = buildEventV1(
      v1Request({ rawQueryString: '', body: Buffer.alloc(0) }),
      matchOf('GET', '/my/path', '/my/path', '1.0'),
    );
    expect(ev.queryStringParameters).toBeNull();
    expect(ev.multiValueQueryStringParameters).toBeNull();
    expect(ev.pathParameters).toBeNull();
    expect(ev.stageVariables).toBeNull();
    expect(ev.body).toBeNull();
    expect(ev.isBase64Encoded).toBe(false);
  });

  it('sets resource to the route template and pathParameters to decoded values', () => {
    const ev = buildEventV1(
      v1Request({ path: '/items/a%2Fb', rawQueryString: '' }),
      matchOf('GET', '/items/{id}', '/items/a%2Fb', '1.0'),
    );
    expect(ev.resource).toBe('/items/{id}');
    expect(ev.requestContext.resourcePath).toBe('/items/{id}');
    expect(ev.path).toBe('/items/a%2Fb');
    expect(ev.requestContext.path).toBe('/items/a%2Fb');
    expect(ev.pathParameters).toStrictEqual({ id: 'a/b' });
  });

  it('keeps the Cookie header (1.0 has no cookies field) and finds headers case-insensitively', () => {
    const ev = buildEventV1(
      v1Request({
        rawHeaders: [
          'cookie',
          'a=1; b=2',
          'user-agent',
          'curl/8',
          'content-type',
          'application/octet-stream',
        ],
        body: Buffer.from('abc'),
      }),
      matchOf('GET', '/my/path', '/my/path', '1.0'),
    );
    expect(ev.headers).toStrictEqual({
      cookie: 'a=1; b=2',
      'user-agent': 'curl/8',
      'content-type': 'application/octet-stream',
    });
    expect(ev.requestContext.identity.userAgent).toBe('curl/8');
    expect([ev.isBase64Encoded, ev.body]).toEqual([true, Buffer.from('abc').toString('base64')]);
    expect(Object.hasOwn(ev, 'cookies')).toBe(false);
  });
});

describe('helpers', () => {
  it('formats request time like API Gateway, in UTC', () => {
    expect(requestTime(0)).toBe('01/Jan/1970:00:00:00 +0000');
    expect(requestTime(1583348638390)).toBe('04/Mar/2020:19:03:58 +0000');
    expect(requestTime(1583348638999)).toBe('04/Mar/2020:19:03:58 +0000');
    expect(requestTime(1583348639000)).toBe('04/Mar/2020:19:03:59 +0000');
  });

  it('takes the domain name from Host without its port', () => {
    expect(domainFromHost('api.example.com:8080')).toBe('api.example.com');
    expect(domainFromHost('api.example.com')).toBe('api.example.com');
    expect(domainFromHost('[::1]:3000')).toBe('[::1]');
    expect(domainFromHost(undefined)).toBe('localhost');
  });

  it('decides text vs binary by media type and UTF-8 validity', () => {
    const utf8 = Buffer.from('x');
    expect(isTextBody('text/csv', utf8)).toBe(true);
    expect(isTextBody('application/soap+xml; charset=utf-8', utf8)).toBe(true);
    expect(isTextBody('application/graphql', utf8)).toBe(true);
    expect(isTextBody('application/octet-stream', utf8)).toBe(false);
    expect(isTextBody('multipart/form-data; boundary=x', utf8)).toBe(false);
    expect(isTextBody(undefined, utf8)).toBe(false);
    expect(isTextBody('text/plain', Buffer.from([0xff]))).toBe(false);
  });
});

const text = (b: Buffer) => b.toString('utf8');

describe('mapResultV2', () => {
  it('infers 200 application/json with the string itself as body for a JSON string', () => {
    const r = mapResultV2('"Hello from Lambda!"');
    expect(r).toStrictEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from('Hello from Lambda!'),
    });
  });

  it('infers 200 with the JSON text as body for an object without statusCode, numbers, arrays, booleans', () => {
    const obj = mapResultV2('{ "message": "Hello from Lambda!" }');
    expect([obj.statusCode, obj.headers, text(obj.body)]).toEqual([
      200,
      { 'content-type': 'application/json' },
      '{ "message": "Hello from Lambda!" }',
    ]);
    expect(text(mapResultV2('42').body)).toBe('42');
    expect(text(mapResultV2('[1,{"statusCode":500}]').body)).toBe('[1,{"statusCode":500}]');
    expect(text(mapResultV2('true').body)).toBe('true');
    // A handler that returns nothing: 200 with an empty body.
    expect(mapResultV2('null')).toStrictEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/json' },
      body: Buffer.alloc(0),
    });
  });

  it('uses statusCode, headers (lower-cased), cookies as set-cookie and body', () => {
    const r = mapResultV2(
      JSON.stringify({
        statusCode: 201,
        headers: { 'Content-Type': 'text/plain', 'X-Count': 3, 'X-Ok': true },
        cookies: ['a=1; Path=/', 'b=2; HttpOnly'],
        body: 'created',
        isBase64Encoded: false,
      }),
    );
    expect(r).toStrictEqual({
      statusCode: 201,
      headers: {
        'content-type': 'text/plain',
        'x-count': '3',
        'x-ok': 'true',
        'set-cookie': ['a=1; Path=/', 'b=2; HttpOnly'],
      },
      body: Buffer.from('created'),
    });
  });

  it('adds cookies after a set-cookie header and sends one cookie as a plain value', () => {
    const both = mapResultV2(
      JSON.stringify({ statusCode: 200, headers: { 'Set-Cookie': 'h=1' }, cookies: ['c=2'] }),
    );
    expect(both.headers['set-cookie']).toEqual(['h=1', 'c=2']);
    const one = mapResultV2(JSON.stringify({ statusCode: 200, cookies: ['c=2'] }));
    expect(one.headers['set-cookie']).toBe('c=2');
  });

  it('decodes a base64 body when isBase64Encoded', () => {
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const r = mapResultV2(
      JSON.stringify({
        statusCode: 200,
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes.toString('base64'),
        isBase64Encoded: true,
      }),
    );
    expect(r.body).toEqual(bytes);
    expect(r.headers['content-type']).toBe('application/octet-stream');
  });

  it('merges multiValueHeaders with headers, a value given in both appearing once', () => {
    const r = mapResultV2(
      JSON.stringify({
        statusCode: 200,
        headers: { 'X-A': '1', 'X-B': 'b' },
        multiValueHeaders: { 'x-a': ['1', '2'], Vary: ['Accept', 'Origin'] },
      }),
    );
    expect(r.headers).toStrictEqual({
      'x-a': ['1', '2'],
      vary: ['Accept', 'Origin'],
      'x-b': 'b',
      'content-type': 'application/json',
    });
  });

  it('defaults content-type to application/json and the body to empty', () => {
    expect(mapResultV2('{"statusCode":204}')).toStrictEqual({
      statusCode: 204,
      headers: { 'content-type': 'application/json' },
      body: Buffer.alloc(0),
    });
    expect(mapResultV2('{"statusCode":"404","body":null}').statusCode).toBe(404);
  });

  it('drops framing headers a function must not set', () => {
    const r = mapResultV2(
      JSON.stringify({
        statusCode: 200,
        headers: {
          'Content-Length': '999',
          'Transfer-Encoding': 'chunked',
          Connection: 'close',
          'X-Kept': 'y',
        },
        body: 'ok',
      }),
    );
    expect(r.headers).toStrictEqual({ 'x-kept': 'y', 'content-type': 'application/json' });
  });

  it('answers 502 Internal Server Error for invalid JSON and unusable descriptions, with the request id', () => {
    const bad = mapResultV2('{not json', 'req-1');
    expect(bad.statusCode).toBe(502);
    expect(bad.headers).toStrictEqual({ 'content-type': 'application/json' });
    expect(JSON.parse(text(bad.body))).toStrictEqual({
      message: 'Internal Server Error',
      requestId: 'req-1',
    });
    expect(bad.problem).toBe('the function returned invalid JSON');

    for (const payload of [
      { statusCode: 'abc' },
      { statusCode: 99 },
      { statusCode: 700 },
      { statusCode: 200.5 },
      { statusCode: null },
      { statusCode: 200, body: { json: 'object' } },
      { statusCode: 200, headers: 'x' },
      { statusCode: 200, headers: { a: { b: 1 } } },
      { statusCode: 200, cookies: 'a=1' },
      { statusCode: 200, cookies: [1] },
      { statusCode: 200, isBase64Encoded: 'yes' },
      { statusCode: 200, multiValueHeaders: { a: 'not-array' } },
    ]) {
      const r = mapResultV2(JSON.stringify(payload));
      expect([payload, r.statusCode, typeof r.problem]).toEqual([payload, 502, 'string']);
    }
  });

  it('does not mistake an empty payload text for a response', () => {
    expect(mapResultV2('').statusCode).toBe(502);
  });
});

describe('mapResultV1', () => {
  it('maps the documented 1.0 response, merging headers and multiValueHeaders', () => {
    const r = mapResultV1(
      JSON.stringify({
        isBase64Encoded: false,
        statusCode: 200,
        headers: { 'Content-Type': 'text/plain', 'X-A': '1', 'Set-Cookie': 'a=1' },
        multiValueHeaders: { 'Set-Cookie': ['a=1', 'b=2'], 'X-A': ['0'] },
        body: 'hello',
      }),
    );
    expect(r).toStrictEqual({
      statusCode: 200,
      headers: { 'set-cookie': ['a=1', 'b=2'], 'x-a': ['0', '1'], 'content-type': 'text/plain' },
      body: Buffer.from('hello'),
    });
  });

  it('decodes a base64 body and ignores the 2.0-only cookies field', () => {
    const r = mapResultV1(
      JSON.stringify({
        statusCode: 200,
        body: Buffer.from('bin').toString('base64'),
        isBase64Encoded: true,
        cookies: ['x=1'],
      }),
    );
    expect(text(r.body)).toBe('bin');
    expect(r.headers).toStrictEqual({ 'content-type': 'application/json' });
  });

  it('requires statusCode: other JSON is a 502, unlike 2.0', () => {
    for (const payload of [
      '{"message":"hi"}',
      '"hello"',
      '42',
      'null',
      '[]',
      '{bad',
      '{"statusCode":200,"body":5}',
    ]) {
      const r = mapResultV1(payload, 'rid');
      expect([payload, r.statusCode]).toEqual([payload, 502]);
      expect(JSON.parse(text(r.body))).toStrictEqual({ message: 'Internal Server Error', requestId: 'rid' });
    }
  });
});

describe('errorResponse', () => {
  it('is JSON with the message and the request id', () => {
    const r = errorResponse(404, 'Not Found', 'abc');
    expect(r).toStrictEqual({
      statusCode: 404,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from('{"message":"Not Found","requestId":"abc"}'),
    });
  });
});

// The runtime's redirect of AWS hostnames to AWS_ENDPOINT_URL (what lets legacy aws-sdk v2 reach Nimbus),
// with a real local HTTP server standing in for the endpoint. It patches this worker's http and https, which
// is why it has a file of its own (vitest runs each file in its own process).
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { redirectAwsHosts } from '../src/runtime/aws-redirect.js';

interface Seen {
  method: string | undefined;
  url: string | undefined;
  host: string | undefined;
  body: string;
}

const seen: Seen[] = [];
let server: http.Server;
let port: number;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, host: req.headers.host, body });
      res.end('answered');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  redirectAwsHosts(`http://127.0.0.1:${port}`);
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function answer(req: http.ClientRequest, body?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

it('sends v2-style https requests to an AWS host to the endpoint, over http, with the signed Host kept', async () => {
  const req = https.request({
    host: 'dynamodb.us-east-1.amazonaws.com',
    port: 443,
    method: 'POST',
    path: '/',
    headers: { Host: 'dynamodb.us-east-1.amazonaws.com', 'X-Amz-Target': 'DynamoDB_20120810.ListTables' },
    // v2 passes its own https Agent; it cannot carry a plain http request and is dropped.
    agent: new https.Agent({ keepAlive: true }),
  });
  expect(await answer(req, '{}')).toBe('answered');
  expect(seen.at(-1)).toEqual({
    method: 'POST',
    url: '/',
    host: 'dynamodb.us-east-1.amazonaws.com',
    body: '{}',
  });
});

it('redirects get() with a URL, and adds the Host header (with a non-default port) when none is given', async () => {
  expect(await answer(https.get('https://photos.s3.amazonaws.com/cat.jpg?versionId=1'))).toBe('answered');
  expect(seen.at(-1)).toMatchObject({
    method: 'GET',
    url: '/cat.jpg?versionId=1',
    host: 'photos.s3.amazonaws.com',
  });
  const req = http.request({
    hostname: 'sqs.eu-west-1.amazonaws.com',
    port: 8080,
    path: '/q',
    method: 'PUT',
  });
  expect(await answer(req, 'x')).toBe('answered');
  expect(seen.at(-1)).toMatchObject({ url: '/q', host: 'sqs.eu-west-1.amazonaws.com:8080', body: 'x' });
});

it('leaves every other host alone, including look-alikes of AWS names', async () => {
  const before = seen.length;
  // Resolved to the stand-in server's address, but sent as HTTPS to it, as asked: the TLS handshake fails.
  const req = https.request({
    host: 'evilamazonaws.com',
    port,
    path: '/',
    lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]),
  });
  await expect(answer(req, '')).rejects.toMatchObject({
    code: expect.stringMatching(/^(EPROTO|ECONNRESET)$/),
  });
  const plain = http.request({ host: '127.0.0.1', port, path: '/direct', headers: { Host: 'example.com' } });
  expect(await answer(plain, '')).toBe('answered');
  expect(seen.slice(before)).toEqual([{ method: 'GET', url: '/direct', host: 'example.com', body: '' }]);
});

it('is what an ES module importing request by name gets too', async () => {
  const esm = (await import('node:https')) as { request: unknown };
  expect(esm.request).toBe(https.request);
});

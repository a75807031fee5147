// Oversized request headers get a complete 431 with a JSON body on every HTTP server, never a reset.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNimbus, type TestNimbus } from './helpers.js';

let n: TestNimbus;
beforeAll(async () => {
  n = await startTestNimbus();
});
afterAll(async () => n?.cleanup());

/** Sends `chunks` on a raw socket and returns everything the server answers until it closes. */
function raw(url: string, chunks: string[]): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let got = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (got += d));
    socket.on('error', (err) => (got ? resolve(got) : reject(err)));
    socket.on('end', () => {
      resolve(got);
      socket.destroy();
    });
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (socket.destroyed || got) break;
        await new Promise<void>((r) => socket.write(c, () => r()));
      }
    });
  });
}

function parse(reply: string): { status: string; headers: string; body: unknown } {
  const at = reply.indexOf('\r\n\r\n');
  const head = reply.slice(0, at);
  return {
    status: head.split('\r\n')[0]!,
    headers: head.toLowerCase(),
    body: JSON.parse(reply.slice(at + 4)),
  };
}

const manyHeaders = (bytes: number): string => {
  let h = '';
  for (let i = 0; h.length < bytes; i++) h += `x-filler-${i}: ${'v'.repeat(90)}\r\n`;
  return h;
};

const cases: [string, () => string[]][] = [
  ['20 KB of headers in one write', () => [`GET /x HTTP/1.1\r\nHost: a\r\n${manyHeaders(20_000)}\r\n`]],
  ['80 KB of headers in one write', () => [`GET /x HTTP/1.1\r\nHost: a\r\n${manyHeaders(80_000)}\r\n`]],
  ['1 MB of headers in one write', () => [`GET /x HTTP/1.1\r\nHost: a\r\n${manyHeaders(1_000_000)}\r\n`]],
  ['one giant header', () => [`GET /x HTTP/1.1\r\nHost: a\r\nx-big: ${'b'.repeat(100_000)}\r\n\r\n`]],
  [
    'headers dribbled in small chunks',
    () => {
      const all = `GET /x HTTP/1.1\r\nHost: a\r\n${manyHeaders(40_000)}\r\n`;
      const out: string[] = [];
      for (let i = 0; i < all.length; i += 512) out.push(all.slice(i, i + 512));
      return out;
    },
  ],
];

describe('oversized request headers', () => {
  for (const [name, chunks] of cases) {
    it(`gateway: ${name} → 431 with an API Gateway JSON body`, async () => {
      const r = parse(await raw(n.gatewayUrl, chunks()));
      expect(r.status).toBe('HTTP/1.1 431 Request Header Fields Too Large');
      expect(r.headers).toContain('content-type: application/json');
      expect(r.headers).toContain('connection: close');
      expect(r.body).toEqual({ message: 'Request Header Fields Too Large' });
    });
    it(`control API: ${name} → 431 with the control error shape`, async () => {
      const r = parse(await raw(n.apiUrl, chunks()));
      expect(r.status).toBe('HTTP/1.1 431 Request Header Fields Too Large');
      expect(r.headers).toContain('content-type: application/json');
      expect(r.body).toEqual({
        error: { code: 'RequestHeaderFieldsTooLarge', message: 'Request Header Fields Too Large' },
      });
    });
  }

  it('the servers still answer normal requests afterwards', async () => {
    const res = await fetch(`${n.apiUrl}/v1/functions`, { headers: { authorization: `Bearer ${n.apiKey}` } });
    expect(res.status).toBeLessThan(500);
  });
});

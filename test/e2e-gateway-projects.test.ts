// The gateway's front door per project, on each backend: the same service deployed in two projects answers on
// each project's own host (<project>.localhost, sent as a Host header), with its authorizer, CORS, throttles
// and invocation records in that project; any other host keeps serving the default project; an unknown
// project's host is a 404 in JSON.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, runNimbus, startTestNimbus, type TestNimbus } from './helpers.js';
import { gatewayRequest, serviceCopy } from './support/gateway.js';

describe.each(BACKENDS)('gateway per project on %s', (backend) => {
  let n: TestNimbus;
  let bKey: string;
  let port: string;
  const dirs: string[] = [];

  const as = (key: string, args: string[]) =>
    runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: key }, args);
  const get = (host: string, path: string, headers: Record<string, string> = {}, method = 'GET') =>
    gatewayRequest(n.gatewayUrl, host, path, headers, method);
  const records = async (key: string, fn: string): Promise<any[]> => {
    const res = await fetch(`${n.apiUrl}/v1/invocations?function=${fn}&limit=1000`, {
      headers: { authorization: `Bearer ${key}` },
    });
    return ((await res.json()) as any).invocations;
  };

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    port = new URL(n.gatewayUrl).port;
    const a = serviceCopy('tenant', 'from default');
    const b = serviceCopy('tenant', 'from team-b');
    dirs.push(a, b);
    await n.deploy(a);
    bKey = (await n.client.createProject('team-b')).key.key;
    const deployed = await as(bKey, ['deploy', b]);
    expect(deployed.stderr).not.toMatch(/error/i);
    expect(deployed.code).toBe(0);
    // The same routes as default's: conflicts are checked within a project only.
    expect(deployed.stdout).toContain(`Routes served at http://team-b.localhost:${port}`);
  });
  afterAll(async () => {
    await n?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("answers a project's route on its host, and the same path differently on default's", async () => {
    const b = await get(`team-b.localhost:${port}`, '/hello');
    expect(b.status).toBe(200);
    expect(b.body).toMatchObject({ greeting: 'from team-b', domainName: 'team-b.localhost' });
    expect(b.headers['x-nimbus-request-id']).toBeTruthy();
    // Host names are case-insensitive.
    expect((await get(`TEAM-B.LocalHost:${port}`, '/hello')).body.greeting).toBe('from team-b');
    const v1 = await get(`team-b.localhost:${port}`, '/hello-v1');
    expect(v1.status).toBe(200);
    expect(v1.body.greeting).toBe('from team-b');
  });

  it('keeps serving the default project on every other host', async () => {
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `default.localhost:${port}`,
      'example.test',
    ]) {
      const r = await get(host, '/hello');
      expect(r.status).toBe(200);
      expect(r.body.greeting).toBe('from default');
    }
    const plain = await fetch(`${n.gatewayUrl}/hello`);
    expect(((await plain.json()) as any).greeting).toBe('from default');
  });

  it("answers 404 in JSON for an unknown project's host and an unknown route of a known one", async () => {
    for (const [host, path] of [
      [`nobody.localhost:${port}`, '/hello'],
      [`a.team-b.localhost:${port}`, '/hello'],
      [`team-b.localhost:${port}`, '/nowhere'],
    ] as const) {
      const r = await get(host, path);
      expect(r.status).toBe(404);
      expect(r.headers['content-type']).toMatch(/application\/json/);
      expect(r.body).toMatchObject({ message: 'Not Found' });
    }
  });

  it("records each request's invocation in the project that served it", async () => {
    const r = await get(`team-b.localhost:${port}`, '/hello');
    const id = r.headers['x-nimbus-request-id'] as string;
    const mine = (await records(bKey, 'hello')).filter((x) => x.requestId === id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ project: 'team-b', trigger: 'http', functionName: 'hello' });
    expect((await records(n.apiKey, 'hello')).some((x) => x.requestId === id)).toBe(false);
  });

  it("runs the project's own Lambda authorizer, recorded in that project", async () => {
    const ok = await get(`team-b.localhost:${port}`, '/private', { authorization: 'allow-b' });
    expect(ok.status).toBe(200);
    expect(ok.body.authorizer).toEqual({ lambda: { user: 'allow-b', greeting: 'from team-b' } });
    const denied = await get(`team-b.localhost:${port}`, '/private', { authorization: 'nobody' });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ message: 'Forbidden' });
    const calls = (await records(bKey, 'authorize')).filter((x) =>
      String(x.logs).includes('AUTHORIZE allow-b'),
    );
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ project: 'team-b', trigger: 'authorizer' });
    // The default project's authorizer never saw it.
    const theirs = (await records(n.apiKey, 'authorize')).filter((x) => String(x.logs).includes('allow-b'));
    expect(theirs).toEqual([]);
  });

  it("answers CORS preflights with the project's configuration", async () => {
    const r = await get(
      `team-b.localhost:${port}`,
      '/hello',
      { origin: 'https://app.example', 'access-control-request-method': 'GET' },
      'OPTIONS',
    );
    expect(r.status).toBe(204);
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example');
    const real = await get(`team-b.localhost:${port}`, '/hello', { origin: 'https://app.example' });
    expect(real.headers['access-control-allow-origin']).toBe('https://app.example');
  });

  it('prints where the routes are served in `nimbus ls`, per project', async () => {
    const b = await as(bKey, ['ls']);
    expect(b.code).toBe(0);
    expect(b.stdout).toContain(`Routes served at http://team-b.localhost:${port}`);
    const bJson = JSON.parse((await as(bKey, ['ls', '--json'])).stdout) as { gatewayUrl: string };
    expect(bJson.gatewayUrl).toBe(`http://team-b.localhost:${port}`);
    const mine = await as(n.apiKey, ['ls']);
    expect(mine.stdout).toContain(`Routes served at ${n.gatewayUrl}`);
  });

  it('checks route conflicts within the project', async () => {
    const dir = serviceCopy('tenant', 'from another service');
    dirs.push(dir);
    const file = join(dir, 'nimbus.yaml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8')
        .replace('service: tenant', 'service: tenant-two')
        .replace('  hello:', '  hello2:')
        .replace('  authorize:', '  authorize2:')
        .replace('function: authorize,', 'function: authorize2,'),
    );
    const r = await as(bKey, ['deploy', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/route "GET \/hello" of function "hello2" is already used by function "hello"/);
    // team-b's routes are as they were.
    expect((await get(`team-b.localhost:${port}`, '/hello')).body.greeting).toBe('from team-b');
  });

  it("drops a removed function's routes from its project's table only", async () => {
    const rm = await as(bKey, ['rm', 'hello']);
    expect(rm.code).toBe(0);
    const gone = await get(`team-b.localhost:${port}`, '/hello');
    expect(gone.status).toBe(404);
    expect(gone.body).toMatchObject({ message: 'Not Found' });
    expect((await get(`127.0.0.1:${port}`, '/hello')).body.greeting).toBe('from default');
  });
});

describe('the gateway domain setting', () => {
  it('refuses a domain that is not a DNS name, in one line', async () => {
    const r = await runNimbus({ NIMBUS_DATA: mkdtempSync(join(tmpdir(), 'nimbus-gwdomain-')) }, [
      'up',
      '--port',
      '0',
      '--api-port',
      '0',
      '--gateway-domain',
      'http://api.example.com/',
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')[0]).toMatch(/--gateway-domain.*DNS name/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('serves projects under the domain named by NIMBUS_GATEWAY_DOMAIN', async () => {
    const old = process.env.NIMBUS_GATEWAY_DOMAIN;
    process.env.NIMBUS_GATEWAY_DOMAIN = 'API.Example.Test';
    let n: TestNimbus | undefined;
    const dir = serviceCopy('tenant', 'from team-c');
    try {
      n = await startTestNimbus();
      const key = (await n.client.createProject('team-c')).key.key;
      const res = await runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: key }, ['deploy', dir]);
      const port = new URL(n.gatewayUrl).port;
      expect(res.stdout).toContain(`Routes served at http://team-c.api.example.test:${port}`);
      const r = await gatewayRequest(n.gatewayUrl, `team-c.api.example.test:${port}`, '/hello');
      expect(r.body.greeting).toBe('from team-c');
      // Under another domain the name is just a host: the default project's (which has no routes).
      expect((await gatewayRequest(n.gatewayUrl, `team-c.localhost:${port}`, '/hello')).status).toBe(404);
    } finally {
      if (old === undefined) delete process.env.NIMBUS_GATEWAY_DOMAIN;
      else process.env.NIMBUS_GATEWAY_DOMAIN = old;
      await n?.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// HTTPS on both listeners: `nimbus up --tls-cert --tls-key` as its own process, a self-signed certificate made
// by openssl, the gateway called over https with the CA trusted, and the CLI trusting it through
// NODE_EXTRA_CA_CERTS. Bad TLS input ends `nimbus up` with one line; a plain-HTTP API beyond loopback warns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exited, runNimbus, startUpProcess, type CliResult, type UpProcess } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'nimbus-tls-'));
const cert = join(tmp, 'cert.pem');
const key = join(tmp, 'key.pem');
execFileSync(
  'openssl',
  [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-days',
    '1',
    '-keyout',
    key,
    '-out',
    cert,
  ],
  { stdio: 'ignore' },
);

function baseEnv(dataDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NIMBUS_DATA: dataDir,
    NIMBUS_STORE: 'sqlite',
    NIMBUS_LOG_LEVEL: 'error',
    NIMBUS_API_URL: '',
    NIMBUS_API_KEY: '',
    NIMBUS_TLS_CERT: '',
    NIMBUS_TLS_KEY: '',
    NIMBUS_API_HOST: '',
  };
}

/** The CLI with exactly the environment given (runNimbus adds the test's own on top). */
function run(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return runNimbus(env, args);
}

function httpsGet(url: string, ca?: Buffer, post?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ...(ca ? { ca } : {}),
        method: post === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(post);
  });
}

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('nimbus up with TLS', () => {
  let up: UpProcess | undefined;
  const dataDir = mkdtempSync(join(tmp, 'data-'));
  const env = baseEnv(dataDir);
  beforeAll(async () => {
    up = await startUpProcess(env, ['--tls-cert', cert, '--tls-key', key]);
  });
  afterAll(async () => {
    up?.proc.kill('SIGTERM');
    if (up) await exited(up.proc);
  });

  it('prints https URLs and no plain-HTTP warning', () => {
    expect(up!.info.gatewayUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(up!.info.apiUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(up!.stderr()).not.toMatch(/warning/);
  });

  it('the CLI deploys and invokes over https trusting the CA through NODE_EXTRA_CA_CERTS', async () => {
    const cli = { ...env, NODE_EXTRA_CA_CERTS: cert };
    const d = await run(['deploy', 'examples/hello'], cli);
    expect(d.stderr).not.toMatch(/error|certificate/i);
    expect(d.code).toBe(0);
    const inv = await run(['invoke', 'hello', '--data', '{"name":"Ada"}'], cli);
    expect(inv.code).toBe(0);
    expect(inv.stdout).toContain('Ada');
    const ls = await run(['ls', '--json'], cli);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain('hello');
  });

  it('functions still reach the AWS endpoint with the SDK while the API serves HTTPS', async () => {
    const cli = { ...env, NODE_EXTRA_CA_CERTS: cert };
    const d = await run(['deploy', 'test/fixtures/services/tables'], cli);
    expect(d.code).toBe(0);
    const ca = readFileSync(cert);
    const saved = await httpsGet(`${up!.info.gatewayUrl}/items`, ca, JSON.stringify({ id: 'a', data: 1 }));
    expect(saved).toEqual({ status: 201, body: JSON.stringify({ saved: 'a' }) });
    const got = await httpsGet(`${up!.info.gatewayUrl}/items/a`, ca);
    expect(got.status).toBe(200);
    expect(JSON.parse(got.body)).toEqual({ id: 'a', data: 1 });
  });

  it('the CLI without the CA refuses the untrusted certificate with a non-zero exit', async () => {
    const r = await run(['ls'], env);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/certificate/i);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('the gateway answers over https with the CA trusted, and refuses a client that does not trust it', async () => {
    const r = await httpsGet(`${up!.info.gatewayUrl}/hello`, readFileSync(cert));
    expect(r.status).toBe(200);
    expect(r.body).toContain('Hello');
    await expect(httpsGet(`${up!.info.gatewayUrl}/hello`)).rejects.toThrow(/self[- ]signed/);
  });
});

describe('bad TLS input ends nimbus up with one line', () => {
  const notPem = join(tmp, 'not.pem');
  writeFileSync(notPem, 'not a certificate\n');
  const otherKey = join(tmp, 'other-key.pem');
  execFileSync(
    'openssl',
    ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', otherKey],
    {
      stdio: 'ignore',
    },
  );
  const cases: [string, string[], RegExp][] = [
    [
      'a missing certificate file',
      ['--tls-cert', join(tmp, 'nope.pem'), '--tls-key', key],
      /cannot read the TLS certificate .*ENOENT/,
    ],
    ['a file that is not PEM', ['--tls-cert', notPem, '--tls-key', key], /not a usable PEM pair/],
    [
      'a key that does not match the certificate',
      ['--tls-cert', cert, '--tls-key', otherKey],
      /not a usable PEM pair: .*mismatch/,
    ],
    ['a certificate without a key', ['--tls-cert', cert], /needs both a certificate and a key/],
  ];
  it.each(cases)('%s', async (_name, args, message) => {
    const dataDir = mkdtempSync(join(tmp, 'bad-'));
    const r = await run(['up', '--port', '0', '--api-port', '0', ...args], baseEnv(dataDir));
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});

describe('the plain-HTTP warning', () => {
  it.each([
    ['0.0.0.0', true],
    ['127.0.0.1', false],
  ] as const)('API on %s: warned %s', async (host, warned) => {
    const dataDir = mkdtempSync(join(tmp, 'warn-'));
    const up = await startUpProcess({ ...baseEnv(dataDir), NIMBUS_API_HOST: host });
    try {
      const warnings = up
        .stderr()
        .split('\n')
        .filter((l) => /warning: the API listens/.test(l));
      expect(warnings).toHaveLength(warned ? 1 : 0);
    } finally {
      up.proc.kill('SIGTERM');
      await exited(up.proc);
    }
  });
});

// The CLI as users meet it: a real `node bin/nimbus.js` process (dist/ is built by test/global-setup.ts).
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, NimbusClient, resolveClientConfig } from '../src/client/index.js';
import { formatError } from '../src/cli/dispatch.js';
import { parseSince } from '../src/cli/format.js';

const ROOT = join(import.meta.dirname, '..');
const cwd = mkdtempSync(join(tmpdir(), 'nimbus-cli-test-'));
const install = mkdtempSync(join(tmpdir(), 'nimbus-cli-install-'));
const BIN = join(install, 'bin', 'nimbus.js');
afterAll(() => {
  rmSync(cwd, { recursive: true, force: true });
  rmSync(install, { recursive: true, force: true });
});

// Other suites rebuild dist/ (rm -rf, then write) while this one runs: run a private copy of the package,
// retried until the copy is a complete build.
beforeAll(async () => {
  symlinkSync(join(ROOT, 'node_modules'), join(install, 'node_modules'), 'dir');
  mkdirSync(join(install, 'bin'));
  copyFileSync(join(ROOT, 'bin', 'nimbus.js'), BIN);
  copyFileSync(join(ROOT, 'package.json'), join(install, 'package.json'));
  for (let attempt = 0; ; attempt++) {
    rmSync(join(install, 'dist'), { recursive: true, force: true });
    try {
      cpSync(join(ROOT, 'dist'), join(install, 'dist'), { recursive: true });
      if (spawnSync(process.execPath, [BIN, 'invoke', '--help'], { cwd }).status === 0) return;
    } catch {
      // dist/ vanished mid-copy: try again.
    }
    if (attempt === 40) throw new Error('dist/ is not built; run `npm run build`');
    await new Promise((r) => setTimeout(r, 250));
  }
});

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('NIMBUS_')) env[k] = v;
  // A state folder of this file's own: no server recorded by the user or by another test file is found.
  return { ...env, XDG_STATE_HOME: join(cwd, 'state'), ...extra };
}

function nimbus(
  args: string[],
  env: Record<string, string> = {},
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: cleanEnv(env),
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '');
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('nimbus CLI (real process)', () => {
  it('--help lists every command', () => {
    const r = nimbus(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['up', 'deploy', 'invoke', 'ls', 'logs', 'rm'])
      expect(r.stdout).toMatch(new RegExp(`^  ${c}\\s`, 'm'));
    expect(r.stderr).toBe('');
  });

  it('invoke --help shows its arguments and options', () => {
    const r = nimbus(['invoke', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: nimbus invoke <fn>');
    for (const o of ['--data <json>', '--file <path>', '--async', '--log', '--json'])
      expect(r.stdout).toContain(o);
  });

  it('--version prints the package version', () => {
    const r = nimbus(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('an unknown flag is a usage error: exit 2, one line on stderr', () => {
    const r = nimbus(['ls', '--bogus']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([
      'nimbus ls: unknown option --bogus. Run `nimbus ls --help` to see the options.',
    ]);
    expect(r.stdout).toBe('');
  });

  it('an unknown command suggests the closest one', () => {
    const r = nimbus(['lss']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain('nimbus ls');
  });

  it('invalid JSON in --data fails before any network call, naming --data', () => {
    const r = nimbus(['invoke', 'x', '--data', '{bad']);
    expect(r.code).not.toBe(0);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^nimbus invoke: --data is not valid JSON/);
  });

  it('missing and extra arguments are usage errors', () => {
    expect(nimbus(['invoke']).code).toBe(2);
    expect(nimbus(['rm', 'a', 'b']).code).toBe(2);
    const since = nimbus(['logs', 'x', '--since', 'yesterday']);
    expect(since.code).toBe(2);
    expect(since.stderr).toContain('--since');
  });

  it('an unreachable API gives one line naming the URL and the fix, exit 1, no stack trace', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = nimbus(['ls'], { NIMBUS_API_URL: url, NIMBUS_API_KEY: 'k' });
    expect(r.code).toBe(1);
    const out = lines(r.stderr);
    expect(out).toHaveLength(1);
    expect(out[0]).toContain(url);
    expect(out[0]).toContain('nimbus up');
    expect(out[0]).toContain('NIMBUS_API_URL');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('without NIMBUS_API_URL or a data folder, says how to configure', () => {
    const r = nimbus(['ls']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain('NIMBUS_API_URL is not set');
  });
});

describe('client and helpers', () => {
  let server: Server;
  let url = '';

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.headers.authorization !== 'Bearer key') {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: {
              code: 'Unauthorized',
              message: 'the API key is wrong, revoked or rotated',
              hint: 'use the key',
            },
          }),
        );
      } else if (req.url?.startsWith('/2015-03-31/functions/missing')) {
        res.writeHead(404, {
          'x-amzn-errortype': 'ResourceNotFoundException',
          'content-type': 'application/json',
        });
        res.end(JSON.stringify({ Type: 'User', message: 'Function not found: missing' }));
      } else if (req.url?.startsWith('/2015-03-31/functions/')) {
        res.writeHead(200, {
          'x-amz-function-error': 'Unhandled',
          'x-amz-log-result': Buffer.from('START\nline\n').toString('base64'),
          'x-amzn-requestid': 'req-1',
          'x-amz-executed-version': '3',
        });
        res.end('{"errorType":"Error","errorMessage":"x"}');
      } else if (req.url?.startsWith('/v1/functions/f/logs')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            records: [],
            cursor: Number(new URL(req.url, 'http://x').searchParams.get('after') ?? 0),
          }),
        );
      } else {
        res.writeHead(404);
        res.end('nope');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('maps both error shapes to ApiError with code and hint', async () => {
    const bad = await new NimbusClient({ apiUrl: url, apiKey: 'wrong' }).list().catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(ApiError);
    expect(bad).toMatchObject({
      status: 401,
      code: 'Unauthorized',
      message: 'the API key is wrong, revoked or rotated',
      hint: 'use the key',
    });
    const c = new NimbusClient({ apiUrl: `${url}/`, apiKey: 'key' });
    await expect(c.invoke('missing', '{}')).rejects.toMatchObject({
      status: 404,
      code: 'ResourceNotFoundException',
    });
    await expect(c.list()).rejects.toMatchObject({ status: 404, code: 'Http404', message: 'nope' });
  });

  it('invoke returns the function error, decoded tail log and headers', async () => {
    const r = await new NimbusClient({ apiUrl: url, apiKey: 'key' }).invoke('f', '{}', { tail: true });
    expect(r).toEqual({
      statusCode: 200,
      payload: '{"errorType":"Error","errorMessage":"x"}',
      functionError: 'Unhandled',
      logResult: 'START\nline\n',
      requestId: 'req-1',
      executedVersion: '3',
    });
  });

  it('logs passes the cursor', async () => {
    await expect(
      new NimbusClient({ apiUrl: url, apiKey: 'key' }).logs('f', { after: 7, limit: 5 }),
    ).resolves.toEqual({
      records: [],
      cursor: 7,
    });
  });

  it('resolveClientConfig prefers env, then the data folder files', () => {
    const dir = mkdtempSync(join(cwd, 'cfg-'));
    const state = { XDG_STATE_HOME: join(dir, 'state') };
    expect(() => resolveClientConfig(state, dir)).toThrow(/NIMBUS_API_URL is not set/);
    mkdirSync(join(dir, '.nimbus'));
    writeFileSync(join(dir, '.nimbus', 'api-url'), 'http://127.0.0.1:8081\n');
    expect(() => resolveClientConfig(state, dir)).toThrow(/no API key/);
    writeFileSync(join(dir, '.nimbus', 'api-key'), 'secret\n');
    expect(resolveClientConfig(state, dir)).toMatchObject({
      apiUrl: 'http://127.0.0.1:8081',
      apiKey: 'secret',
    });
    expect(
      resolveClientConfig({ ...state, NIMBUS_API_URL: 'http://h:1', NIMBUS_API_KEY: 'k' }, dir),
    ).toMatchObject({ apiUrl: 'http://h:1', apiKey: 'k' });
    // The flag comes before the environment.
    expect(
      resolveClientConfig({ ...state, NIMBUS_API_URL: 'http://h:1', NIMBUS_API_KEY: 'k' }, dir, 'http://f:2'),
    ).toMatchObject({ apiUrl: 'http://f:2', apiKey: 'k' });
    expect(() => resolveClientConfig({ ...state, NIMBUS_DATA: 'elsewhere' }, dir)).toThrow(/elsewhere/);
  });

  it('formats errors on one line and parses --since', () => {
    expect(formatError('ls', 'cannot reach x.\nreally', 'start it')).toBe(
      'nimbus ls: cannot reach x. really. Start it.',
    );
    expect(formatError('nimbus', 'unknown command "x"')).toBe('nimbus: unknown command "x".');
    const now = Date.UTC(2024, 0, 1);
    expect(parseSince('10m', now)).toBe(now - 600_000);
    expect(parseSince('2h', now)).toBe(now - 7_200_000);
    expect(parseSince('1d', now)).toBe(now - 86_400_000);
    expect(parseSince('2024-05-01T12:00:00Z', now)).toBe(Date.UTC(2024, 4, 1, 12));
    expect(() => parseSince('soon', now)).toThrow(/--since/);
  });
});

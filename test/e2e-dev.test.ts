// `nimbus dev` as a user runs it, in a temporary folder: it starts its own server (none is running for this
// file's state folder), deploys, and reloads on save only what changed; errors are shown inline while the
// last good version serves; .env fills ${env:...}; Ctrl+C and SIGTERM stop it and the server it started.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BIN, eventually, exited, runNimbus } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'nimbus-dev-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface DevProcess {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with stdout once it matches. */
  waitFor(re: RegExp): Promise<string>;
  gateway: string;
}

const running: DevProcess[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) {
    if (d.proc.exitCode === null && d.proc.signalCode === null) {
      d.proc.kill('SIGTERM');
      await exited(d.proc);
    }
  }
});

/** A service folder with two functions whose module-scope id tells one instance from another. */
function service(dir: string, name: string, extra: Record<string, string> = {}): void {
  const files: Record<string, string> = {
    'nimbus.yaml': [
      `service: ${name}`,
      'functions:',
      '  api:',
      '    handler: api.handler',
      '    environment:',
      '      GREETING: ${env:GREETING, unset}',
      '    events:',
      '      - http: GET /api',
      '  other:',
      '    handler: other.handler',
      '    events:',
      '      - http: GET /other',
      '',
    ].join('\n'),
    'api.js': apiSource(1),
    'other.js':
      'const id = Math.random().toString(36).slice(2);\nexports.handler = async () => ({ statusCode: 200, body: JSON.stringify({ id }) });\n',
    ...extra,
  };
  for (const [f, text] of Object.entries(files)) {
    writeFileSync(join(dir, f), text);
  }
}

function apiSource(v: number): string {
  return `const id = Math.random().toString(36).slice(2);\nexports.handler = async () => ({ statusCode: 200, body: JSON.stringify({ v: ${v}, id, greeting: process.env.GREETING }) });\n`;
}

async function startDev(dir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<DevProcess> {
  const proc = spawn(process.execPath, [BIN, 'dev', '--port', '0', '--api-port', '0', ...args], {
    cwd: dir,
    env: {
      ...process.env,
      NIMBUS_DATA: '',
      NIMBUS_API_URL: '',
      NIMBUS_API_KEY: '',
      NIMBUS_LOG_LEVEL: 'warn',
      NIMBUS_STEM_CELLS: '1',
      ...env,
    },
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const waitFor = async (re: RegExp): Promise<string> => {
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`nimbus dev exited ${proc.exitCode}: ${out}\n${err}`);
      return re.test(out) || undefined;
    }, 60_000);
    return out;
  };
  const d: DevProcess = { proc, stdout: () => out, stderr: () => err, waitFor, gateway: '' };
  running.push(d);
  const text = await waitFor(/Watching .* for changes/);
  d.gateway = /Started Nimbus: gateway (\S+),/.exec(text)![1]!;
  return d;
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  const text = await res.text();
  return {
    status: res.status,
    body: res.status === 200 ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

describe('nimbus dev', () => {
  it('reloads the function whose file was saved; the other keeps its warm instance; .env fills ${env:...}', async () => {
    const dir = mkdtempSync(join(work, 'reload-'));
    service(dir, 'reload', { '.env': 'GREETING=from-dotenv\n' });
    const dev = await startDev(dir);
    expect(dev.stdout()).toMatch(/Loaded \.env \(1 variable/);
    expect(dev.stdout()).toMatch(/api v1 {2}GET \/api/);

    const api1 = await get(`${dev.gateway}/api`);
    const other1 = await get(`${dev.gateway}/other`);
    expect(api1.body).toMatchObject({ v: 1, greeting: 'from-dotenv' });

    writeFileSync(join(dir, 'api.js'), apiSource(2));
    await dev.waitFor(/✓ reloaded api \(v2\) in \d+ ms; other kept warm/);
    const api2 = await get(`${dev.gateway}/api`);
    expect(api2.body).toMatchObject({ v: 2, greeting: 'from-dotenv' });
    expect(api2.body['id']).not.toBe(api1.body['id']);
    // The same instance: its module scope ran once, before the reload.
    expect((await get(`${dev.gateway}/other`)).body['id']).toBe(other1.body['id']);

    // Editing .env reloads what reads it, and nothing is ever uploaded from it.
    writeFileSync(join(dir, '.env'), 'GREETING=edited\n');
    await dev.waitFor(/✓ reloaded api \(v3\).*other kept warm/);
    expect((await get(`${dev.gateway}/api`)).body).toMatchObject({ v: 2, greeting: 'edited' });

    dev.proc.kill('SIGINT');
    expect(await exited(dev.proc)).toBe(0);
    expect(dev.stderr()).toMatch(/Stopping \(SIGINT\)/);
    // The server dev started is gone with it: its gateway no longer answers.
    await expect(fetch(`${dev.gateway}/api`)).rejects.toThrow();
  });

  it('shows a syntax error with its file and line, and keeps serving the last good version', async () => {
    const dir = mkdtempSync(join(work, 'broken-'));
    service(dir, 'broken');
    const dev = await startDev(dir);
    const before = await get(`${dev.gateway}/api`);
    writeFileSync(
      join(dir, 'api.js'),
      'const id = 1;\nexports.handler = async () => ({ statusCode: 200, body: "x" );\n',
    );
    await dev.waitFor(/✗ api: api\.js:2:\d+: SyntaxError/);
    expect(dev.stdout()).toMatch(/still serving api v1, other v1; fix it and save again/);
    const still = await get(`${dev.gateway}/api`);
    expect(still.status).toBe(200);
    expect(still.body['id']).toBe(before.body['id']);

    writeFileSync(join(dir, 'api.js'), apiSource(5));
    await dev.waitFor(/✓ reloaded api \(v2\)/);
    expect((await get(`${dev.gateway}/api`)).body).toMatchObject({ v: 5 });

    dev.proc.kill('SIGTERM');
    expect(await exited(dev.proc)).toBe(0);
  });

  it('refuses --inspect in production mode in one line, before starting anything', async () => {
    const dir = mkdtempSync(join(work, 'prod-'));
    service(dir, 'prod');
    const r = await runNimbus({ NODE_ENV: 'production' }, ['dev', dir, '--inspect', 'api']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'nimbus dev: --inspect is refused in production mode (NODE_ENV=production): a debugger runs any code in the function. Debug on a development machine, without NODE_ENV=production.',
    ]);
  });

  it('names a folder without nimbus.yaml in one line', async () => {
    const dir = mkdtempSync(join(work, 'empty-'));
    const r = await runNimbus({}, ['dev', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nimbus dev: .*nimbus\.yaml not found/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

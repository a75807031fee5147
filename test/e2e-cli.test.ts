// The user's journey with real processes: `nimbus up` as its own process, the CLI commands against it,
// and what survives a crash (accepted Event invokes) or a clean stop (in-flight work and its records).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BACKENDS, FIXTURES, eventually, exited, startUpProcess, type UpProcess } from './helpers.js';
import { createTestSchema, type TestSchema } from './support/postgres.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'nimbus.js');
// Set per backend below: the CLI finds the server through NIMBUS_DATA, the server its store through NIMBUS_STORE.
let dataDir = '';
const env: NodeJS.ProcessEnv = {
  ...process.env,
  NIMBUS_LOG_LEVEL: 'warn',
  NIMBUS_API_URL: '',
  NIMBUS_API_KEY: '',
};

type Up = UpProcess;

function up(args: string[] = []): Promise<Up> {
  return startUpProcess(env, args);
}

function nimbus(
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGINT'), opts.timeoutMs ?? 30_000);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

describe.each(BACKENDS)('on %s', (backend) => {
  let server: Up;

  let schema: TestSchema | undefined;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'nimbus-cli-'));
    schema = backend === 'postgresql' ? await createTestSchema('cli') : undefined;
    env['NIMBUS_DATA'] = dataDir;
    env['NIMBUS_STORE'] = schema?.url ?? 'sqlite';
    server = await up(['--examples']);
  });
  afterAll(async () => {
    server?.proc.kill('SIGTERM');
    if (server) await exited(server.proc);
    rmSync(dataDir, { recursive: true, force: true });
    await schema?.drop();
  });

  describe('nimbus CLI against a running nimbus up', () => {
    it('starts with the examples deployed and says where everything is', async () => {
      expect(server.info.gatewayUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(server.info.keyFile).toBe(join(dataDir, 'api-key'));
      expect(server.info.sandboxLevel.length).toBeGreaterThan(0);
      const res = await fetch(`${server.info.gatewayUrl}/hello?name=Ada`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ message: 'Hello, Ada!' });
    });

    it('refuses a second nimbus up on the same data dir with one line naming the holder, harming nothing', async () => {
      const second = await nimbus(['up', '--port', '0', '--api-port', '0']);
      expect(second.code).toBe(1);
      const lines = second.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `data dir ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by Nimbus \\(pid ${server.proc.pid} `,
        ),
      );
      expect(lines[0]).toContain('--data DIR');
      // The first one's sandboxes and store are untouched: it still serves, cold and warm.
      const res = await fetch(`${server.info.gatewayUrl}/hello?name=again`);
      expect(await res.json()).toEqual({ message: 'Hello, again!' });
    });

    it('deploys the TypeScript example and serves its routes with path parameters', async () => {
      const d = await nimbus(['deploy', 'examples/todo']);
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout).toContain('todos');
      const gw = server.info.gatewayUrl;
      const created = await fetch(`${gw}/todos`, {
        method: 'POST',
        body: JSON.stringify({ title: 'write tests' }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      const got = await fetch(`${gw}/todos/${id}`);
      expect(await got.json()).toMatchObject({ id, title: 'write tests', done: false });
      expect((await fetch(`${gw}/todos/${id}`, { method: 'DELETE' })).status).toBe(204);
      expect((await fetch(`${gw}/todos/${id}`)).status).toBe(404);
      const bad = await fetch(`${gw}/todos`, { method: 'POST', body: 'not json' });
      expect(bad.status).toBe(400);
    });

    it('invokes a function and prints its result', async () => {
      const r = await nimbus(['invoke', 'hello', '--data', '{"name":"Ada"}']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ message: 'Hello, Ada!' });
    });

    it('lists functions as a table and as JSON', async () => {
      const table = await nimbus(['ls']);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/hello/);
      const json = await nimbus(['ls', '--json']);
      const names = (JSON.parse(json.stdout) as { functions: { name: string }[] }).functions.map(
        (f) => f.name,
      );
      expect(names).toEqual(expect.arrayContaining(['hello', 'todos']));
    });

    it('shows logs and follows new ones', async () => {
      const logs = await nimbus(['logs', 'hello']);
      expect(logs.code).toBe(0);
      expect(logs.stdout).toContain('saying hello to Ada');
      const follow = spawn(process.execPath, [BIN, 'logs', 'hello', '--follow'], { env, cwd: ROOT });
      let out = '';
      follow.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((r) => setTimeout(r, 700));
      await fetch(`${server.info.gatewayUrl}/hello?name=Follower`);
      await eventually(async () => out.includes('saying hello to Follower'));
      follow.kill('SIGINT');
      await exited(follow);
    });

    it('refuses a bad manifest with one line naming file and field, and changes nothing', async () => {
      const before = (await nimbus(['ls', '--json'])).stdout;
      const r = await nimbus(['deploy', join(FIXTURES, 'broken')]);
      expect(r.code).not.toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines.at(-1)).toMatch(/nimbus\.yaml.*functions\.bad\.memory/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect((await nimbus(['ls', '--json'])).stdout).toBe(before);
    });

    it('removes a function; invoking it then fails with one line and exit 1', async () => {
      expect((await nimbus(['rm', 'todos'])).code).toBe(0);
      const r = await nimbus(['invoke', 'todos']);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/todos/);
    });
  });

  describe('durability', () => {
    it('runs an accepted Event invoke after a crash and restart', async () => {
      expect((await nimbus(['deploy', join(FIXTURES, 'durable')])).code).toBe(0);
      const r = await nimbus(['invoke', 'slow', '--async', '--data', '{"ms":3000}', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const requestId = (JSON.parse(r.stdout) as { requestId: string }).requestId;
      expect(requestId).toBeTruthy();
      await new Promise((res) => setTimeout(res, 500));
      server.proc.kill('SIGKILL');
      await exited(server.proc);
      server = await up();
      const apiKey = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();
      const rec = await eventually(async () => {
        const res = await fetch(`${server.info.apiUrl}/v1/invocations/${requestId}`, {
          headers: { authorization: `Bearer ${apiKey}` },
        });
        return res.status === 200
          ? ((await res.json()) as { status: string; trigger: string; attempt: number })
          : undefined;
      }, 20_000);
      // The first attempt was counted when it was claimed, before the crash cut it off.
      expect(rec).toMatchObject({ status: 'ok', trigger: 'event', attempt: 2 });
    });

    it('finishes in-flight work and writes its record on SIGTERM', async () => {
      expect((await nimbus(['deploy', join(FIXTURES, 'durable')])).code).toBe(0);
      const apiKeyBefore = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();
      const pending = nimbus(['invoke', 'slow', '--data', '{"ms":1500}', '--json']);
      // Stop only once the invocation is really running inside Nimbus.
      await eventually(async () => {
        const res = await fetch(`${server.info.apiUrl}/v1/health`, {
          headers: { authorization: `Bearer ${apiKeyBefore}` },
        });
        return ((await res.json()) as { inFlight: number }).inFlight > 0;
      });
      server.proc.kill('SIGTERM');
      const r = await pending;
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { requestId: string; payload: unknown };
      expect(await exited(server.proc)).toBe(0);
      server = await up();
      const apiKey = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();
      const res = await fetch(`${server.info.apiUrl}/v1/invocations/${out.requestId}`, {
        headers: { authorization: `Bearer ${apiKey}` },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok', functionName: 'slow' });
    });
  });
});

describe('start-up refusals', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-refuse-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const upWith = (extra: string[]) =>
    nimbus(['up', '--port', '0', '--api-port', '0', '--data', dir, ...extra], { timeoutMs: 20_000 });

  it('stops with one line when the PostgreSQL store cannot be reached, and leaves the data dir free', async () => {
    const r = await upWith(['--store', 'postgresql://127.0.0.1:1/nimbus']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot reach PostgreSQL at 127\.0\.0\.1:1 \(ECONNREFUSED\)/);
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
    // The failed start released its lock: the next start on the same folder works.
    const again = await up(['--data', dir, '--store', 'sqlite']);
    expect(again.info.gatewayUrl).toMatch(/^http:/);
    again.proc.kill('SIGTERM');
    expect(await exited(again.proc)).toBe(0);
  });

  it('refuses a store that is neither sqlite nor a PostgreSQL URL', async () => {
    const r = await upWith(['--store', 'mysql://127.0.0.1/nimbus']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/setting --store is invalid: must be "sqlite" or a postgresql:\/\/ URL/);
  });
});

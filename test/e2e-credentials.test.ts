// Credentials end to end, on each backend: a key issued with the CLI signs Lambda API calls made by the AWS
// SDK until it is removed; every deployed function runs with its own key and the API's address in its
// environment, and those authenticate (a function's key may not use the Lambda API: AccessDeniedException);
// and no secret is ever stored in the clear.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { ACCESS_KEY_ID } from '../src/security/access-keys.js';
import { BACKENDS, BIN, FIXTURES, startTestNimbus, type TestNimbus } from './helpers.js';
import { withClient } from './support/postgres.js';

const ROOT = join(import.meta.dirname, '..');

/** Another secret of the same shape: the last character changed. */
function wrong(secret: string): string {
  return `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
}

describe.each(BACKENDS)('credentials on %s', (backend) => {
  let n: TestNimbus;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'awsenv'));
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  function nimbus(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const env = { ...process.env, NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey, NIMBUS_DATA: '' };
      const p = spawn(process.execPath, [BIN, ...args], { env, cwd: ROOT });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
  }

  function lambda(accessKeyId: string, secretAccessKey: string): LambdaClient {
    return new LambdaClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 1,
    });
  }

  /** Invokes whoami signed with this key: its answer, or "<status> <error name>". */
  async function invokeAs(accessKeyId: string, secretAccessKey: string): Promise<string> {
    const c = lambda(accessKeyId, secretAccessKey);
    try {
      const out = await c.send(
        new InvokeCommand({ FunctionName: 'whoami', Payload: new TextEncoder().encode('{}') }),
      );
      return out.FunctionError ? `function error ${new TextDecoder().decode(out.Payload)}` : 'ok';
    } catch (err) {
      const e = err as { name: string; $metadata?: { httpStatusCode?: number } };
      return `${e.$metadata?.httpStatusCode} ${e.name}`;
    } finally {
      c.destroy();
    }
  }

  /** Everything the store has written, as text to search: the SQLite files, or the PostgreSQL rows. */
  async function storedText(): Promise<string> {
    if (backend === 'sqlite') {
      const db = join(n.dataDir, 'nimbus.db');
      return [db, `${db}-wal`]
        .filter((f) => existsSync(f))
        .map((f) => readFileSync(f).toString('latin1'))
        .join('\n');
    }
    const schema = /schema=(\w+)/.exec(n.store)?.[1];
    expect(schema).toBeDefined();
    return withClient(async (c) => {
      const r = await c.query(`SELECT t::text AS row FROM ${schema}.credentials t`);
      return r.rows.map((x: { row: string }) => x.row).join('\n');
    });
  }

  it('issues a key with `nimbus credentials create` that signs Lambda calls, until `nimbus credentials rm`', async () => {
    const created = await nimbus(['credentials', 'create', '--name', 'e2e', '--json']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const k = JSON.parse(created.stdout) as Record<string, unknown>;
    expect(k).toMatchObject({ name: 'e2e', kind: 'user', permissions: null });
    const id = k['accessKeyId'] as string;
    const secret = k['secretAccessKey'] as string;
    expect(id).toMatch(ACCESS_KEY_ID);
    expect(secret).toHaveLength(40);

    expect(await invokeAs(id, secret)).toBe('ok');
    expect(await invokeAs(id, wrong(secret))).toBe('403 InvalidSignatureException');

    const ls = await nimbus(['credentials', 'ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain(id);
    expect(ls.stdout).toMatch(/e2e\s+user\s+every table/);
    expect(ls.stdout).toMatch(/function:whoami\s+function\s+items/);
    expect(ls.stdout).not.toContain(secret);

    const stored = await storedText();
    expect(stored).toContain(id);
    expect(stored).not.toContain(secret);

    const rm = await nimbus(['credentials', 'rm', id]);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toContain(`Removed ${id}`);
    expect(await invokeAs(id, secret)).toBe('403 UnrecognizedClientException');
    const again = await nimbus(['credentials', 'rm', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not found/);
  });

  it('prints a new secret once, saying it will not be shown again; limits tables with --tables', async () => {
    const r = await nimbus(['credentials', 'create', '--name', 'ci', '--tables', 'items, orders']);
    expect(r.code).toBe(0);
    const id = /Access key id\s+(\S+)/.exec(r.stdout)?.[1] ?? '';
    const secret = /Secret access key\s+(\S+)/.exec(r.stdout)?.[1] ?? '';
    expect(id).toMatch(ACCESS_KEY_ID);
    expect(secret).toHaveLength(40);
    expect(r.stdout).toMatch(/Tables\s+items, orders/);
    expect(r.stdout).toMatch(/will not be shown again/);
    const listed = await n.client.credentials();
    expect(listed.find((c) => c.accessKeyId === id)).toMatchObject({
      permissions: { tables: ['items', 'orders'] },
    });
    expect(JSON.stringify(listed)).not.toContain(secret);
    expect((await nimbus(['credentials', 'rm', id])).code).toBe(0);
  });

  it('limits buckets with --buckets', async () => {
    const r = await nimbus(['credentials', 'create', '--name', 'uploader', '--buckets', 'uploads,logs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Tables\s+none/);
    expect(r.stdout).toMatch(/Buckets\s+logs, uploads/);
    const id = /Access key id\s+(\S+)/.exec(r.stdout)?.[1] ?? '';
    expect((await n.client.credentials()).find((c) => c.accessKeyId === id)).toMatchObject({
      permissions: { tables: [], buckets: ['logs', 'uploads'] },
    });
    const bad = await nimbus(['credentials', 'create', '--name', 'x', '--buckets', 'Not_A_Bucket']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/buckets must be a list of S3 bucket names/);
    expect((await nimbus(['credentials', 'rm', id])).code).toBe(0);
  });

  it("gives each function its own key and the API's address, which authenticate; the secret is stored encrypted", async () => {
    const out = await n.client.invoke('whoami', '{}');
    const env = JSON.parse(out.payload) as Record<string, unknown>;
    const port = new URL(n.apiUrl).port;
    expect(env).toMatchObject({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      plain: 'kept',
      // Reached from inside the sandbox: an unsigned call is refused, but answered.
      reached: 401,
    });
    const id = env['accessKeyId'] as string;
    const secret = env['secretAccessKey'] as string;
    expect(id).toMatch(ACCESS_KEY_ID);
    expect(secret).toHaveLength(40);

    const mine = (await n.client.credentials()).find((c) => c.accessKeyId === id);
    expect(mine).toMatchObject({
      name: 'function:whoami',
      kind: 'function',
      functionName: 'whoami',
      permissions: { tables: ['items'] },
    });
    const caller = (await n.client.credentials()).find((c) => c.functionName === 'caller');
    expect(caller).toMatchObject({ permissions: { tables: [] } });
    expect(caller?.accessKeyId).not.toBe(id);

    // Authenticated (a wrong secret is a signature failure), and refused the Lambda API.
    expect(await invokeAs(id, secret)).toBe('403 AccessDeniedException');
    expect(await invokeAs(id, wrong(secret))).toBe('403 InvalidSignatureException');

    // The AWS SDK inside a function finds region, credentials and endpoint in its environment by itself.
    const fromInside = JSON.parse((await n.client.invoke('caller', '{}')).payload) as Record<string, unknown>;
    expect(fromInside).toMatchObject({ name: 'AccessDeniedException', status: 403 });
    expect(fromInside['message']).toMatch(/is not authorized to perform: lambda:InvokeFunction/);

    const stored = await storedText();
    expect(stored).toContain(id);
    expect(stored).not.toContain(secret);
  });

  it("removes a function's key with the function, and refuses AWS_* in a manifest's environment", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-awsenv-'));
    try {
      writeFileSync(join(dir, 'f.js'), 'exports.handler = async () => 1;\n');
      writeFileSync(
        join(dir, 'nimbus.yaml'),
        'service: sneaky\nfunctions:\n  f:\n    handler: f.handler\n    environment: { AWS_ACCESS_KEY_ID: NIMBAAAAAAAAAAAAAAAA }\n',
      );
      await expect(n.deploy(dir)).rejects.toThrow(/AWS_ACCESS_KEY_ID: is reserved by the runtime/);
      writeFileSync(join(dir, 'nimbus.yaml'), 'service: sneaky\nfunctions:\n  f:\n    handler: f.handler\n');
      await n.deploy(dir);
      const key = (await n.client.credentials()).find((c) => c.functionName === 'f');
      expect(key).toBeDefined();
      // The deploy answered after the key was made: the first invocation has it.
      await n.client.remove('f');
      expect((await n.client.credentials()).some((c) => c.functionName === 'f')).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

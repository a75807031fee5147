// Secrets end to end, on each backend, against a real `nimbus up` process: a secret set with the CLI from
// stdin reaches a function's environment (the function answers a hash of it, not the value), a new value
// reaches the next invocation, and the value never shows: not in the CLI's output (set, ls, deploy, ls, logs,
// invoke), the control API's answers, the invocation records, the platform's log, the errors of refused
// deploys, nor in any file of the data dir (the at-rest test reads every file as bytes).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, exited, runNimbus, startUpProcess, type CliResult, type UpProcess } from './helpers.js';
import { createTestSchema, withClient, type TestSchema } from './support/postgres.js';

const HANDLER = `import { createHash } from 'node:crypto';
export const handler = async () => {
  const v = process.env.DB_PASSWORD;
  console.log('checking the password');
  return { set: v !== undefined, sha256: v === undefined ? null : createHash('sha256').update(v).digest('hex'), plain: process.env.PLAIN ?? null };
};
`;

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Every file under dir, as bytes. */
function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      let st;
      try {
        st = statSync(p);
      } catch {
        continue; // gone meanwhile (a stopped instance's folder)
      }
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        try {
          out.push({ path: p, bytes: readFileSync(p) });
        } catch {
          // unreadable sockets or vanished files hold nothing at rest
        }
      }
    }
  };
  walk(dir);
  return out;
}

describe.each(BACKENDS)('secrets on %s', (backend) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-secrets-'));
  const work = mkdtempSync(join(tmpdir(), 'nimbus-secrets-svc-'));
  let schema: TestSchema | undefined;
  let up: UpProcess;
  let apiKey = '';
  // Distinct, unguessable values: any occurrence anywhere is a leak.
  const first = `pw-${randomUUID()}-first`;
  const second = `pw-${randomBytes(12).toString('hex')}-second`;

  beforeAll(async () => {
    if (backend === 'postgresql') schema = await createTestSchema('secrets');
    up = await startUpProcess({
      ...process.env,
      NIMBUS_DATA: dataDir,
      NIMBUS_STORE: schema?.url ?? 'sqlite',
      NIMBUS_LOG_LEVEL: 'debug',
      NIMBUS_API_URL: '',
      NIMBUS_API_KEY: '',
      NIMBUS_MASTER_KEY: '',
    });
    apiKey = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();
  });
  afterAll(async () => {
    if (up) {
      up.proc.kill('SIGTERM');
      await exited(up.proc);
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
    await schema?.drop();
  });

  /** Everything any CLI run printed, to search for the values at the end. */
  const printed: string[] = [];

  async function nimbus(args: string[], stdin?: string): Promise<CliResult> {
    const r = await runNimbus({ NIMBUS_API_URL: up.info.apiUrl, NIMBUS_API_KEY: apiKey }, args, stdin);
    printed.push(r.stdout, r.stderr);
    return r;
  }

  async function api(method: string, path: string, body?: Buffer): Promise<{ status: number; text: string }> {
    const res = await fetch(up.info.apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${apiKey}` },
      ...(body ? { body } : {}),
    });
    const text = await res.text();
    printed.push(text);
    return { status: res.status, text };
  }

  function service(name: string, env: string): string {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'nimbus.yaml'),
      `service: ${name}\nfunctions:\n  ${name}-fn:\n    handler: handler.handler\n    environment:\n${env}`,
    );
    writeFileSync(join(dir, 'handler.mjs'), HANDLER);
    return dir;
  }

  async function invoke(fn: string): Promise<{ set: boolean; sha256: string | null; plain: string | null }> {
    const r = await nimbus(['invoke', fn]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as { set: boolean; sha256: string | null; plain: string | null };
  }

  it('sets a secret from stdin, refuses one on argv, and lists names only', async () => {
    const set = await nimbus(['secret', 'set', 'db-password'], `${first}\n`);
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout.trim()).toBe('Secret db-password created.');

    const argv = await nimbus(['secret', 'set', 'db-password', second]);
    expect(argv.code).toBe(2);
    expect(argv.stdout).toBe('');
    expect(argv.stderr.trim().split('\n')).toHaveLength(1);
    expect(argv.stderr).toMatch(/never taken from the command line.*shell history.*ps/);
    expect(argv.stderr).not.toContain(second);

    const ls = await nimbus(['secret', 'ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^NAME\s+CREATED\s+UPDATED\s+USED BY/);
    expect(ls.stdout).toMatch(/db-password\s+\d{4}-\d\d-\d\dT\S+\s+\S+\s+-/);
    const json = await nimbus(['secret', 'ls', '--json']);
    const listed = JSON.parse(json.stdout) as { secrets: Record<string, unknown>[] };
    expect(listed.secrets).toHaveLength(1);
    expect(Object.keys(listed.secrets[0]!).sort()).toEqual(['createdAt', 'name', 'updatedAt', 'usedBy']);
  });

  it('refuses, with nothing changed, deploys that reference a missing secret or misuse a reference', async () => {
    const missing = await nimbus([
      'deploy',
      service('lacking', '      DB_PASSWORD: ${secret:not-set-yet}\n'),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      'functions.lacking-fn.environment.DB_PASSWORD: references secret "not-set-yet", which does not exist in this project',
    );
    const embedded = await nimbus([
      'deploy',
      service('embedded', '      DB_URL: postgres://app:${secret:db-password}@db/app\n'),
    ]);
    expect(embedded.code).toBe(1);
    expect(embedded.stderr).toContain('functions.embedded-fn.environment.DB_URL');
    expect(embedded.stderr).toContain('must be the whole value');
    const badName = await nimbus(['deploy', service('badname', '      X: ${secret:no spaces}\n')]);
    expect(badName.code).toBe(1);
    expect(badName.stderr).toContain('functions.badname-fn.environment.X');
    const ls = await nimbus(['ls', '--json']);
    expect((JSON.parse(ls.stdout) as { functions: unknown[] }).functions).toEqual([]);
  });

  it("decrypts the secret into the function's environment only, and a new value reaches the next invocation", async () => {
    const dir = service('app', '      DB_PASSWORD: ${secret:db-password}\n      PLAIN: visible\n');
    const deploy = await nimbus(['deploy', dir]);
    expect(deploy.code).toBe(0);
    expect(deploy.stdout).toContain('app-fn');

    expect(await invoke('app-fn')).toEqual({ set: true, sha256: sha256(first), plain: 'visible' });
    // Warm now: the same instance answers again with the same value.
    expect((await invoke('app-fn')).sha256).toBe(sha256(first));

    const ls = await nimbus(['ls']);
    expect(ls.stdout).toContain('Secrets app-fn: DB_PASSWORD from db-password');
    const lsJson = JSON.parse((await nimbus(['ls', '--json'])).stdout) as {
      functions: { name: string; environment: Record<string, string> }[];
    };
    expect(lsJson.functions.find((f) => f.name === 'app-fn')?.environment).toEqual({
      DB_PASSWORD: '${secret:db-password}',
      PLAIN: 'visible',
    });
    const used = JSON.parse((await nimbus(['secret', 'ls', '--json'])).stdout) as {
      secrets: { name: string; usedBy: string[] }[];
    };
    expect(used.secrets).toEqual([expect.objectContaining({ name: 'db-password', usedBy: ['app-fn'] })]);

    // From a file this time; its trailing newline is dropped as stdin's was.
    const file = join(work, 'value.txt');
    writeFileSync(file, `${second}\n`);
    const set = await nimbus(['secret', 'set', 'db-password', '--file', file]);
    rmSync(file);
    expect(set.code).toBe(0);
    expect(set.stdout).toContain('Secret db-password updated; idle instances of app-fn were retired');
    expect(await invoke('app-fn')).toEqual({ set: true, sha256: sha256(second), plain: 'visible' });

    const logs = await nimbus(['logs', 'app-fn']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('checking the password');
  });

  it('refuses to remove a secret a deployed function references (409 naming it), and removes it after', async () => {
    const refused = await nimbus(['secret', 'rm', 'db-password']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('secret "db-password" is referenced by function app-fn');
    const viaApi = await api('DELETE', '/v1/secrets/db-password');
    expect(viaApi.status).toBe(409);
    expect(JSON.parse(viaApi.text)).toMatchObject({ error: { code: 'SecretInUse' } });
    expect((await invoke('app-fn')).sha256).toBe(sha256(second));

    const missing = await nimbus(['secret', 'rm', 'never-set']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('secret "never-set" not found');
  });

  it('answers bad input with one line and no value', async () => {
    const badName = await nimbus(['secret', 'set', 'bad name'], first);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toContain('is not valid: use 1 to 128 letters, digits');
    const empty = await nimbus(['secret', 'set', 'empty'], '\n');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('the value of empty is empty');
    const noFile = await nimbus(['secret', 'set', 'x', '--file', join(work, 'nope')]);
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toContain('ENOENT');

    expect((await api('PUT', '/v1/secrets/big', Buffer.alloc(64 * 1024 + 1, 'a'))).status).toBe(413);
    expect((await api('PUT', '/v1/secrets/big', Buffer.alloc(64 * 1024, 'a'))).status).toBe(200);
    expect((await api('DELETE', '/v1/secrets/big')).status).toBe(200);
    const nul = await api('PUT', '/v1/secrets/nul', Buffer.from('a\u0000b'));
    expect(nul.status).toBe(400);
    expect(nul.text).toContain('NUL');
    expect((await api('PUT', '/v1/secrets/utf', Buffer.from([0xff, 0xfe]))).status).toBe(400);
    expect((await api('PUT', `/v1/secrets/${'x'.repeat(129)}`, Buffer.from('v'))).status).toBe(400);
    expect((await api('GET', '/v1/secrets')).text).not.toContain('"utf"');
  });

  it('never shows the value: API answers, records, CLI output, the platform log, every file of the data dir', async () => {
    for (const path of [
      '/v1/secrets',
      '/v1/functions',
      '/v1/functions/app-fn',
      '/v1/functions/app-fn/logs',
      '/v1/invocations',
      '/v1/health',
    ]) {
      const r = await api('GET', path);
      expect(r.status).toBe(200);
    }
    const records = JSON.parse((await api('GET', '/v1/invocations')).text) as { invocations: unknown[] };
    expect(records.invocations).toHaveLength(4);

    const everything = [...printed, up.stderr()];
    expect(everything.join('\n')).toContain('db-password');
    for (const value of [first, second]) {
      for (const text of everything) expect(text).not.toContain(value);
    }

    const files = filesUnder(dataDir);
    expect(files.some((f) => f.path.endsWith('master.key'))).toBe(true);
    for (const value of [first, second]) {
      const needle = Buffer.from(value);
      const leaks = files.filter((f) => f.bytes.includes(needle)).map((f) => f.path);
      expect(leaks).toEqual([]);
    }
    if (schema) {
      const rows = await withClient(async (c) => {
        const r = await c.query(`SELECT t::text AS row FROM ${schema!.schema}.secrets t`);
        return r.rows.map((x: { row: string }) => x.row).join('\n');
      });
      expect(rows).toContain('db-password');
      for (const value of [first, second]) expect(rows).not.toContain(value);
    }
  });

  it('fails cold starts with a clear error, and no value, when the secret does not decrypt (another master key)', async () => {
    up.proc.kill('SIGTERM');
    await exited(up.proc);
    up = await startUpProcess({
      ...process.env,
      NIMBUS_DATA: dataDir,
      NIMBUS_STORE: schema?.url ?? 'sqlite',
      NIMBUS_LOG_LEVEL: 'debug',
      NIMBUS_API_URL: '',
      NIMBUS_API_KEY: '',
      NIMBUS_MASTER_KEY: randomBytes(32).toString('base64'),
    });
    const r = await nimbus(['invoke', 'app-fn']);
    expect(r.code).toBe(1);
    const out = `${r.stdout}${r.stderr}`;
    expect(out).toContain('Nimbus.SecretUnavailable');
    expect(out).toContain(
      'secret "db-password" (environment variable DB_PASSWORD) does not decrypt with this node\'s master key',
    );
    const records = JSON.parse((await api('GET', '/v1/invocations?function=app-fn&limit=1')).text) as {
      invocations: { errorType: string | null; errorMessage: string | null }[];
    };
    expect(records.invocations[0]).toMatchObject({ errorType: 'Nimbus.SecretUnavailable' });
    for (const value of [first, second]) {
      expect(out).not.toContain(value);
      expect(up.stderr()).not.toContain(value);
    }
  });

  it('removes the secret once no function references it', async () => {
    expect((await nimbus(['rm', 'app-fn'])).code).toBe(0);
    const rm = await nimbus(['secret', 'rm', 'db-password']);
    expect(rm.code).toBe(0);
    expect(rm.stdout.trim()).toBe('Removed secret db-password.');
    expect((await nimbus(['secret', 'ls'])).stdout).toContain('No secrets yet');
  });
});

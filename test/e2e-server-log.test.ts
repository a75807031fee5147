// What the `nimbus up` process itself prints: a line per gateway request and per function error (JSON when
// stderr is not a terminal), NIMBUS_ACCESS_LOG=off, and NIMBUS_FUNCTION_LOGS=stdout.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BACKENDS,
  FIXTURES,
  eventually,
  exited,
  runNimbus,
  startUpProcess,
  type UpProcess,
} from './helpers.js';
import { createTestSchema, type TestSchema } from './support/postgres.js';

describe.each(BACKENDS)('server output on %s', (backend) => {
  let up: UpProcess | undefined;
  let dataDir = '';
  let schema: TestSchema | undefined;
  let stdout = '';

  async function start(extra: NodeJS.ProcessEnv): Promise<UpProcess> {
    dataDir = mkdtempSync(join(tmpdir(), 'nimbus-serverlog-'));
    schema = backend === 'postgresql' ? await createTestSchema('serverlog') : undefined;
    up = await startUpProcess({
      ...process.env,
      NIMBUS_DATA: dataDir,
      NIMBUS_STORE: schema?.url ?? 'sqlite',
      NIMBUS_LOG_LEVEL: 'info',
      NIMBUS_API_URL: '',
      NIMBUS_API_KEY: '',
      ...extra,
    });
    stdout = '';
    up.proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const key = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();
    const r = await runNimbus({ NIMBUS_API_URL: up.info.apiUrl, NIMBUS_API_KEY: key }, [
      'deploy',
      join(FIXTURES, 'logsearch'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    return up;
  }
  const lines = () =>
    up!
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  afterEach(async () => {
    if (up) {
      up.proc.kill('SIGTERM');
      await exited(up.proc);
    }
    up = undefined;
    rmSync(dataDir, { recursive: true, force: true });
    await schema?.drop();
  });

  it('prints a JSON line per request and per function error when not a terminal', async () => {
    const u = await start({});
    const ok = await fetch(`${u.info.gatewayUrl}/alpha?say=hello`);
    const okId = ok.headers.get('x-nimbus-request-id')!;
    await ok.arrayBuffer();
    const bad = await fetch(`${u.info.gatewayUrl}/alpha?say=boom&fail=1`);
    const badId = bad.headers.get('x-nimbus-request-id')!;
    await bad.arrayBuffer();
    const missing = await fetch(`${u.info.gatewayUrl}/nowhere`);
    await missing.arrayBuffer();
    const request = await eventually(async () =>
      lines().find((l) => l['requestId'] === okId && l['kind'] === 'request'),
    );
    expect(request).toMatchObject({
      method: 'GET',
      path: '/alpha',
      status: 200,
      function: 'alpha',
      cold: true,
    });
    expect(typeof request['ms']).toBe('number');
    expect(request['msg']).toMatch(new RegExp(`^GET /alpha 200 [\\d.]+ms alpha ${okId} cold$`));
    const error = await eventually(async () =>
      lines().find((l) => l['requestId'] === badId && l['kind'] === 'function-error'),
    );
    expect(error).toMatchObject({
      function: 'alpha',
      status: 'error',
      errorType: 'Error',
      errorMessage: 'failed on purpose: boom',
    });
    expect(error['msg']).toContain('failed on purpose: boom');
    await eventually(async () =>
      lines().find((l) => l['kind'] === 'request' && l['path'] === '/nowhere' && l['status'] === 404),
    );
    // Function log lines stay in the records unless asked for.
    expect(stdout).not.toContain('hello');
  });

  it('prints no request lines with NIMBUS_ACCESS_LOG=off, and function logs on stdout with NIMBUS_FUNCTION_LOGS=stdout', async () => {
    const u = await start({ NIMBUS_ACCESS_LOG: 'off', NIMBUS_FUNCTION_LOGS: 'stdout' });
    const first = await fetch(`${u.info.gatewayUrl}/beta?say=shipped+to+journald`);
    const id = first.headers.get('x-nimbus-request-id')!;
    await first.arrayBuffer();
    const bad = await fetch(`${u.info.gatewayUrl}/beta?say=boom&fail=1`);
    const badId = bad.headers.get('x-nimbus-request-id')!;
    await bad.arrayBuffer();
    await eventually(async () => stdout.includes(badId));
    expect(stdout).toMatch(new RegExp(`^beta ${id} .*shipped to journald$`, 'm'));
    // The error line still comes (it is not a request line); request lines do not.
    await eventually(async () =>
      lines().find((l) => l['requestId'] === badId && l['kind'] === 'function-error'),
    );
    expect(lines().filter((l) => l['kind'] === 'request')).toEqual([]);
  });
});

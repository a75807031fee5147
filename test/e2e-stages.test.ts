// Variables and stages through the real CLI: `nimbus deploy` resolves ${env:...}, ${self:...} and ${file(...)}
// before it uploads, refuses an unset variable with one line and deploys nothing, and `--stage` deploys a
// second copy of a service that answers on its own routes next to the first.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, runNimbus, startTestNimbus, type TestNimbus } from './helpers.js';

const HANDLER =
  'export const env = async () => ({ statusCode: 200, body: JSON.stringify({ fn: process.env.AWS_LAMBDA_FUNCTION_NAME, TABLE: process.env.TABLE, SERVICE: process.env.SERVICE, REGION: process.env.REGION, LIMIT: process.env.LIMIT, GREETING: process.env.GREETING, STAGE: process.env.STAGE, STORE: process.env.STORE }) });\n';

const MANIFEST = `service: vars
tables:
  store: { key: { id: S } }
custom:
  limit: 25
functions:
  api:
    handler: handler.env
    environment:
      TABLE: \${env:STAGES_E2E_TABLE}
      GREETING: "hello \${env:STAGES_E2E_UNSET, world}"
      SERVICE: \${self:service}
      LIMIT: "\${self:custom.limit}"
      REGION: \${file(./config.json):region}
      STAGE: \${stage}
      STORE: store
    events:
      - http: GET /vars
`;

function service(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-stages-'));
  writeFileSync(join(dir, 'nimbus.yaml'), yaml);
  writeFileSync(join(dir, 'handler.js'), HANDLER);
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ region: 'eu-west' }));
  return dir;
}

describe.each(BACKENDS)('variables and stages on %s', (backend) => {
  let n: TestNimbus;
  const dirs: string[] = [];
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey, ...env }, args);
  const get = async (path: string) => {
    const res = await fetch(`${n.gatewayUrl}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  beforeAll(async () => {
    n = await startTestNimbus({ backend });
  });
  afterAll(async () => {
    await n?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('an unset ${env:...} fails the deploy with one line naming the field, and deploys nothing', async () => {
    const dir = service(MANIFEST);
    dirs.push(dir);
    const r = await cli(['deploy', dir], { STAGES_E2E_TABLE: undefined });
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(
      'functions.api.environment.TABLE: ${env:STAGES_E2E_TABLE} is not set; set it or give a default: ${env:STAGES_E2E_TABLE, value}',
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await n.client.list()).functions.map((f) => f.name)).not.toContain('api');
  });

  it('deploys with the values resolved, and the function sees them', async () => {
    const dir = service(MANIFEST);
    dirs.push(dir);
    const r = await cli(['deploy', dir], { STAGES_E2E_TABLE: 'orders' });
    expect(r.stderr + r.stdout).toContain('Deployed vars');
    expect(r.code).toBe(0);
    const res = await get('/vars');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      fn: 'api',
      TABLE: 'orders',
      GREETING: 'hello world',
      SERVICE: 'vars',
      LIMIT: '25',
      REGION: 'eu-west',
      STAGE: 'default',
      STORE: 'store',
    });
  });

  it('a second stage deploys beside the first and answers on its own routes', async () => {
    const dir = service(MANIFEST);
    dirs.push(dir);
    const r = await cli(['deploy', dir, '--stage', 'prod'], { STAGES_E2E_TABLE: 'orders-prod' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Deployed vars-prod');
    expect(r.stdout).toContain('GET /prod/vars');
    expect(r.stdout).toContain('Tables: store-prod (created)');
    const prod = await get('/prod/vars');
    expect(prod.status).toBe(200);
    expect(prod.body).toMatchObject({
      fn: 'api-prod',
      TABLE: 'orders-prod',
      SERVICE: 'vars-prod',
      STAGE: 'prod',
    });
    const unstaged = await get('/vars');
    expect(unstaged.body).toMatchObject({ fn: 'api', TABLE: 'orders', SERVICE: 'vars' });
    const services = (await n.client.list()).functions.map((f) => `${f.service}/${f.name}`).sort();
    expect(services).toEqual(expect.arrayContaining(['vars/api', 'vars-prod/api-prod']));

    const bad = await cli(['deploy', dir, '--stage', 'Prod'], { STAGES_E2E_TABLE: 'x' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('--stage "Prod" is not a stage name');

    const rm = await cli(['rm', '--service', 'vars', '--stage', 'prod']);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toContain('Removed service vars-prod: api-prod');
    expect((await get('/prod/vars')).status).toBe(404);
    expect((await get('/vars')).status).toBe(200);
  });
});

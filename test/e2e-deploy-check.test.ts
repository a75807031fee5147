// `nimbus deploy` loads every handler in a sandbox before the new versions go live: a handler that cannot load
// fails the deploy with one line per function and changes nothing; --no-verify deploys it anyway.
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, runNimbus, startTestNimbus, type TestNimbus } from './helpers.js';

const YAML = (handler = 'src/a.handler') =>
  `service: checked\nfunctions:\n  api:\n    handler: ${handler}\n    events:\n      - http: GET /checked\n`;
const GOOD = "exports.handler = async () => ({ statusCode: 200, body: 'v1' });\n";

function service(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-check-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe.each(BACKENDS)('deploy-time handler checks on %s', (backend) => {
  let n: TestNimbus;
  const dirs: string[] = [];
  const cli = (args: string[]) => runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey }, args);
  const dir = (files: Record<string, string>) => {
    const d = service(files);
    dirs.push(d);
    return d;
  };
  const codeDirs = () => readdirSync(join(n.dataDir, 'code')).sort();

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    const r = await cli(['deploy', dir({ 'nimbus.yaml': YAML(), 'src/a.js': GOOD })]);
    expect(r.stderr).toBe(r.code === 0 ? r.stderr : '');
    expect(r.code).toBe(0);
  });
  afterAll(async () => {
    await n?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const cases: [string, Record<string, string>, RegExp][] = [
    [
      'a syntax error in a CommonJS module, with file, line and column',
      { 'nimbus.yaml': YAML(), 'src/a.js': 'const a = 1;\nexports.handler = () => {\n  return a +;\n};\n' },
      /^nimbus deploy: function api: src\/a\.js:3:13: SyntaxError: Unexpected token ';'$/m,
    ],
    [
      'a syntax error in an ES module (Node gives no position; it is found)',
      {
        'nimbus.yaml': YAML(),
        'src/a.mjs': 'const a = 1;\nexport const handler = () => {\n  return a +;\n};\n',
      },
      /^nimbus deploy: function api: src\/a\.mjs:3:13: SyntaxError: Unexpected token ';'$/m,
    ],
    [
      'a misspelt export, with the one meant',
      { 'nimbus.yaml': YAML('src/a.hanlder'), 'src/a.js': GOOD },
      /^nimbus deploy: function api: handler 'hanlder' is not exported by src\/a\.js; did you mean 'handler'\?$/m,
    ],
    [
      'a module that is not installed',
      {
        'nimbus.yaml': YAML(),
        'src/a.js': "const pad = require('left-pad-not-installed');\nexports.handler = async () => pad;\n",
      },
      /^nimbus deploy: function api: cannot find module 'left-pad-not-installed' \(required by src\/a\.js\); install it/m,
    ],
    [
      'an exception during module init, with where it was thrown',
      {
        'nimbus.yaml': YAML(),
        'src/a.js':
          "const url = process.env.DATABASE_URL;\nif (!url) throw new Error('DATABASE_URL is not set');\nexports.handler = async () => url;\n",
      },
      /^nimbus deploy: function api: module init threw Error: DATABASE_URL is not set \(src\/a\.js:2:17\)$/m,
    ],
  ];

  for (const [name, files, expected] of cases) {
    it(`refuses ${name}; the old version still answers`, async () => {
      const before = codeDirs();
      const r = await cli(['deploy', dir(files)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(expected);
      expect(r.stderr).toMatch(
        /^nimbus deploy: 1 function failed to load in a sandbox; nothing was deployed\. Fix the code and deploy again, or skip the check with --no-verify\.$/m,
      );
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stdout).toBe('');
      expect((await n.client.get('api')).version).toBe(1);
      const res = await fetch(`${n.gatewayUrl}/checked`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('v1');
      // The refused code was extracted to be loaded, and removed again.
      expect(codeDirs()).toEqual(before);
    });
  }

  it('names every function that fails, one line each, and deploys none of them', async () => {
    const yaml =
      'service: checked\nfunctions:\n  api:\n    handler: src/a.handler\n    events:\n      - http: GET /checked\n' +
      '  ok:\n    handler: src/ok.handler\n  broken:\n    handler: src/b.handlr\n';
    const r = await cli([
      'deploy',
      dir({
        'nimbus.yaml': yaml,
        'src/a.js': 'throw new TypeError("bad config");\n',
        'src/ok.js': GOOD,
        'src/b.js': GOOD,
      }),
    ]);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('nimbus deploy:'));
    expect(lines).toEqual([
      'nimbus deploy: function api: module init threw TypeError: bad config (src/a.js:1:7)',
      "nimbus deploy: function broken: handler 'handlr' is not exported by src/b.js; did you mean 'handler'?",
      'nimbus deploy: 2 functions failed to load in a sandbox; nothing was deployed. Fix the code and deploy again, or skip the check with --no-verify.',
    ]);
    expect((await n.client.list()).functions.map((f) => f.name)).toEqual(['api']);
  });

  it('warns about the AWS SDK v2 required inside a handler, and deploys', async () => {
    const r = await cli([
      'deploy',
      dir({
        'nimbus.yaml': 'service: legacy\nfunctions:\n  legacy:\n    handler: index.handler\n',
        'index.js': "exports.handler = async () => new (require('aws-sdk').S3)();\n",
      }),
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /^warning: index\.js uses the AWS SDK v2 \(aws-sdk\), which is not in the uploaded service/m,
    );
    expect((await n.client.get('legacy')).version).toBe(1);
  });

  it('warns about a handler whose answer would be lost, deploys, and the warning is true', async () => {
    const r = await cli([
      'deploy',
      dir({
        'nimbus.yaml':
          'service: shapes\nfunctions:\n' +
          '  dropped:\n    handler: src/dropped.handler\n    events:\n      - http: GET /dropped\n' +
          '  silent:\n    handler: src/silent.handler\n    events:\n      - http: GET /silent\n' +
          '  worker:\n    handler: src/worker.handler\n' +
          '  callback:\n    handler: src/callback.handler\n    events:\n      - http: GET /callback\n',
        'src/dropped.js': "exports.handler = (event) => ({ statusCode: 201, body: 'made' });\n",
        'src/silent.mjs': 'export async function handler(event) {\n  console.log(event.rawPath);\n}\n',
        'src/worker.js': 'exports.handler = async (event) => {\n  console.log(event);\n};\n',
        'src/callback.js':
          "exports.handler = (event, context, callback) => callback(null, { statusCode: 200, body: 'cb' });\n",
      }),
    ]);
    expect(r.code).toBe(0);
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning: '));
    expect(warnings).toEqual([
      expect.stringMatching(
        /^warning: function dropped: src\/dropped\.js's handler returns a value but is not async: Lambda ignores the return value/,
      ),
      expect.stringMatching(
        /^warning: function silent: src\/silent\.mjs's handler is async but never returns a value: every HTTP request it serves answers null/,
      ),
    ]);
    // What the warnings say: the dropped response is not the one written; the callback's arrives.
    const dropped = await fetch(`${n.gatewayUrl}/dropped`);
    expect(dropped.status).not.toBe(201);
    expect(await dropped.text()).not.toBe('made');
    const cb = await fetch(`${n.gatewayUrl}/callback`);
    expect([cb.status, await cb.text()]).toEqual([200, 'cb']);
  });

  it('--no-verify deploys a handler that cannot load; its invocations then fail', async () => {
    const r = await cli([
      'deploy',
      '--no-verify',
      dir({ 'nimbus.yaml': YAML(), 'src/a.js': 'exports.handler = () => {;\n' }),
    ]);
    expect(r.stderr).not.toMatch(/failed to load/);
    expect(r.code).toBe(0);
    expect((await n.client.get('api')).version).toBe(2);
    const res = await fetch(`${n.gatewayUrl}/checked`);
    expect(res.status).toBe(502);
  });
});

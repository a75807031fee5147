// A service with many files (node_modules travel with it): a cold start links them all into the sandbox
// without stalling the platform, and the function can require any of them.
import { afterAll, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestNimbus, type TestNimbus } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'nimbus-bigcode-'));
let n: TestNimbus | undefined;
afterAll(async () => {
  await n?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

it('runs a function whose package holds 1,500 files', async () => {
  writeFileSync(join(dir, 'nimbus.yaml'), 'service: big\nfunctions:\n  big:\n    handler: index.handler\n');
  writeFileSync(
    join(dir, 'index.js'),
    "const many = require('many');\nexports.handler = async (e) => ({ value: many.get(e.i) });\n",
  );
  const pkg = join(dir, 'node_modules', 'many');
  for (let d = 0; d < 15; d++) {
    mkdirSync(join(pkg, `part${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) {
      writeFileSync(join(pkg, `part${d}`, `f${f}.js`), `module.exports = ${d * 100 + f};\n`);
    }
  }
  writeFileSync(
    join(pkg, 'index.js'),
    'exports.get = (i) => require(`./part${Math.floor(i / 100)}/f${i % 100}.js`);\n',
  );
  n = await startTestNimbus();
  await n.deploy(dir);
  const first = await n.client.invoke('big', JSON.stringify({ i: 1499 }), {});
  expect(JSON.parse(first.payload)).toEqual({ value: 1499 });
  const again = await n.client.invoke('big', JSON.stringify({ i: 7 }), {});
  expect(JSON.parse(again.payload)).toEqual({ value: 7 });
  // Meanwhile and after, the platform answers other calls.
  expect(
    (await fetch(`${n.apiUrl}/v1/health`, { headers: { authorization: `Bearer ${n.apiKey}` } })).status,
  ).toBe(200);
});

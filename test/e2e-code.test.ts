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

it('runs handlers as users write them: TypeScript in a "type": "module" folder, and tsc-style CommonJS', async () => {
  const svc = mkdtempSync(join(tmpdir(), 'nimbus-styles-'));
  try {
    writeFileSync(
      join(svc, 'nimbus.yaml'),
      'service: styles2\nfunctions:\n  esm:\n    handler: src/app.handler\n  tsc:\n    handler: dist/index.handler\n',
    );
    mkdirSync(join(svc, 'src'));
    mkdirSync(join(svc, 'lib'));
    mkdirSync(join(svc, 'dist'));
    // The handler's own folder says "type": "module", though the service root has no package.json.
    writeFileSync(join(svc, 'src', 'package.json'), '{ "type": "module" }\n');
    writeFileSync(
      join(svc, 'src', 'app.ts'),
      "import dep from '../lib/dep.cjs';\nexport const handler = async (): Promise<unknown> => ({ esm: typeof import.meta.url, dep: dep.hello() });\n",
    );
    // A CommonJS dependency that require()s a builtin, inside the ES module bundle.
    writeFileSync(
      join(svc, 'lib', 'dep.cjs'),
      "const path = require('node:path');\nmodule.exports = { hello: () => path.basename('/a/b') };\n",
    );
    // What tsc emits for `import` + `export const handler` with module: commonjs.
    writeFileSync(
      join(svc, 'dist', 'index.js'),
      '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.handler = void 0;\nconst node_path_1 = require("node:path");\nconst handler = async () => ({ tsc: (0, node_path_1.extname)("x.ts") });\nexports.handler = handler;\n',
    );
    const t = await startTestNimbus();
    try {
      await t.deploy(svc);
      const esm = await t.client.invoke('esm', '{}', {});
      expect(JSON.parse(esm.payload)).toEqual({ esm: 'string', dep: 'b' });
      const tsc = await t.client.invoke('tsc', '{}', {});
      expect(JSON.parse(tsc.payload)).toEqual({ tsc: '.ts' });
    } finally {
      await t.cleanup();
    }
  } finally {
    rmSync(svc, { recursive: true, force: true });
  }
});

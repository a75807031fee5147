// The cold path as a user meets it: a bundled CommonJS function gets a V8 code cache at deploy, its cold starts
// use it, a damaged cache is refused by V8 and thrown away without the function noticing, and nothing the
// function writes can become its cache. Counted by nimbus_code_cache_total{outcome}.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { eventually, startTestNimbus, type TestNimbus } from './helpers.js';

const parent = mkdtempSync(join(tmpdir(), 'nimbus-codecache-'));
const svc = join(parent, 'svc');
const dataDir = join(parent, 'data');
let n: TestNimbus | undefined;
afterAll(async () => {
  await n?.stop();
  rmSync(parent, { recursive: true, force: true });
});

// A function that tries to pass off its own bytes as the cache: at module load (during the deploy check) and
// in every invocation, it writes a code cache message to the channel's descriptor.
const FORGER = `const fs = require('fs');
const forge = (id) => { try { fs.writeSync(3, JSON.stringify({ t: 'codecache', id, data: Buffer.from('forged').toString('base64') }) + '\\n'); } catch {} };
forge('x');
${Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x + ${i}; }`).join('\n')}
exports.handler = async (event, context) => { forge(context.awsRequestId); return { v: f199(event.n ?? 0) }; };
`;

async function counts(): Promise<Record<string, number>> {
  const text = await (
    await fetch(`${n!.apiUrl}/metrics`, { headers: { authorization: `Bearer ${n!.apiKey}` } })
  ).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^nimbus_code_cache_total\{outcome="(\w+)"\} (\d+)$/gm))
    out[m[1]!] = Number(m[2]);
  return out;
}

function cacheFiles(): string[] {
  const code = join(dataDir, 'code');
  return readdirSync(code)
    .filter((d) => d.endsWith('.v8'))
    .flatMap((d) => readdirSync(join(code, d)).map((f) => join(code, d, f)));
}

it('produces a cache at deploy for a CommonJS bundle (none for an ES module), and a cold start uses it', async () => {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(svc, { recursive: true });
  writeFileSync(
    join(svc, 'nimbus.yaml'),
    'service: cached\nfunctions:\n  bundle:\n    handler: bundle.handler\n  esm:\n    handler: esm.handler\n',
  );
  writeFileSync(join(svc, 'bundle.js'), FORGER);
  writeFileSync(join(svc, 'esm.mjs'), 'export const handler = async () => ({ esm: true });\n');
  n = await startTestNimbus({ dataDir });
  await n.deploy(svc);
  expect(await counts()).toEqual({ produced: 1 });
  expect(cacheFiles()).toHaveLength(1);

  const r = await n.client.invoke('bundle', JSON.stringify({ n: 1 }), {});
  expect(JSON.parse(r.payload)).toEqual({ v: 200 });
  expect(JSON.parse((await n.client.invoke('esm', '{}', {})).payload)).toEqual({ esm: true });
  // The forged messages (at load during the check, and in the invocation) were not taken: V8 accepted the cache.
  expect(await counts()).toEqual({ produced: 1, accepted: 1 });
});

it("the cache survives a restart and is still the platform's own, not what the function wrote", async () => {
  await n!.stop();
  n = await startTestNimbus({ dataDir });
  const r = await n.client.invoke('bundle', JSON.stringify({ n: 2 }), {});
  expect(JSON.parse(r.payload)).toEqual({ v: 201 });
  expect(await counts()).toEqual({ accepted: 1 });
});

it('a damaged cache file is refused by V8 and deleted; the function answers all the same', async () => {
  await n!.stop();
  const [file] = cacheFiles();
  writeFileSync(file!, Buffer.from('this is not what V8 wrote'));
  n = await startTestNimbus({ dataDir });
  const r = await n.client.invoke('bundle', JSON.stringify({ n: 3 }), {});
  expect(JSON.parse(r.payload)).toEqual({ v: 202 });
  expect(await counts()).toEqual({ rejected: 1 });
  // Deleted after the answer, off the request's path.
  await eventually(async () => cacheFiles().length === 0);
});

it('NIMBUS_CODE_CACHE=off produces and uses none', async () => {
  await n!.stop();
  n = await startTestNimbus({ dataDir: join(parent, 'off'), codeCache: false });
  await n.deploy(svc);
  expect(JSON.parse((await n.client.invoke('bundle', '{}', {})).payload)).toEqual({ v: 199 });
  expect(await counts()).toEqual({});
});

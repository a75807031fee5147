// A refused deploy leaves nothing behind: no extracted code under the data dir, no store rows.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, FIXTURES, startTestNimbus, type TestNimbus } from './helpers.js';

/** Every file and folder under the data dir except the store's own database files, logs and the stem cells'
 *  folders (sandboxes/: a deploy's load check takes a stem cell and the pool boots another). */
function listing(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const rel = relative(root, p);
      if (/\.(db|db-wal|db-shm|sqlite\S*|log)$/.test(e) || rel === 'sandboxes') continue;
      out.push(rel);
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return out.sort();
}

function service(yaml: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-refused-'));
  writeFileSync(join(dir, 'nimbus.yaml'), yaml);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe.each(BACKENDS)('refused deploys on %s', (backend) => {
  let n: TestNimbus;
  const dirs: string[] = [];
  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'noop'));
    const first = service(
      'service: first\nfunctions:\n  f:\n    handler: handler.noop\n    events:\n      - http: GET /clash\n',
      { 'handler.js': 'export const noop = async () => ({});\n' },
    );
    dirs.push(first);
    await n.deploy(first);
  });
  afterAll(async () => {
    await n?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const refused: [string, string, Record<string, string>, string][] = [
    [
      'a handler file missing (refused by nimbus deploy before upload)',
      'service: gone\ntables:\n  gone_t1: { key: { id: S } }\nfunctions:\n  g: { handler: src/missing.get }\n',
      { 'other.js': 'export const x = 1;\n' },
      'handler "src/missing.get" needs src/missing.js',
    ],
    [
      'a route another service already has, with a table declared',
      'service: clash\ntables:\n  clash_t2: { key: { id: S } }\nfunctions:\n  c:\n    handler: handler.noop\n    events:\n      - http: GET /clash\n',
      { 'handler.js': 'export const noop = async () => ({});\n' },
      'GET /clash',
    ],
  ];

  for (const [name, yaml, files, expected] of refused) {
    it(`${name}: refused, data dir and function list unchanged`, async () => {
      const before = listing(n.dataDir);
      const fnsBefore = (await n.client.list()).functions.map((f) => f.name).sort();
      const tablesBefore = (await n.client.tables()).map((t) => t.name).sort();
      const dir = service(yaml, files);
      dirs.push(dir);
      const err = await n.deploy(dir).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).toContain(expected);
      expect(listing(n.dataDir)).toEqual(before);
      expect((await n.client.list()).functions.map((f) => f.name).sort()).toEqual(fnsBefore);
      expect((await n.client.tables()).map((t) => t.name).sort()).toEqual(tablesBefore);
    });
  }
});

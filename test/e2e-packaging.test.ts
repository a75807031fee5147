// What gets packaged (.nimbusignore and the defaults), `nimbus deploy --dry-run`, and code archives collected
// once no deployed version uses them, counted on disk and in the store.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, runNimbus, startTestNimbus, type TestNimbus } from './helpers.js';
import { withClient } from './support/postgres.js';

function service(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'nimbus-pkg-'));
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

/** Reports which of the paths it is asked about exist in its own code folder. */
const PROBE = `const fs = require('node:fs');
const path = require('node:path');
exports.handler = async (event) =>
  Object.fromEntries(event.paths.map((p) => [p, fs.existsSync(path.join(__dirname, p))]));
`;

const PROBED: Record<string, string> = {
  'nimbus.yaml': 'service: probe\nfunctions:\n  probe:\n    handler: index.handler\n',
  'index.js': PROBE,
  '.env': 'DATABASE_PASSWORD=hunter2\n',
  '.env.local': 'X=1\n',
  'secret.txt': 'left out by .nimbusignore\n',
  'docs/notes.md': 'a folder left out\n',
  'tests/kept.js': 'brought back by a negation\n',
  'test/gone.js': 'a default test folder\n',
  'lib/util.test.js': 'a test file\n',
  'lib/util.js': 'module.exports = 1;\n',
  'node_modules/pkg/test/needed.js': "a package's own test folder stays\n",
  'node_modules/.cache/big.bin': 'a cache\n',
  '.nimbusignore': '# comments and blank lines are fine\n\nsecret.txt\ndocs/\n!tests/\n',
};

describe('what gets packaged', () => {
  let dir: string;
  beforeAll(() => {
    dir = service(PROBED);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--dry-run lists the files with sizes and the total, and needs no server', async () => {
    // An API nobody listens on: a dry run must not try it.
    const r = await runNimbus({ NIMBUS_API_URL: 'http://127.0.0.1:9', NIMBUS_API_KEY: 'x' }, [
      'deploy',
      dir,
      '--dry-run',
    ]);
    expect(r.stderr).not.toMatch(/cannot reach/);
    expect(r.code).toBe(0);
    const rows = r.stdout
      .trim()
      .split('\n')
      .slice(1)
      .filter((l) => /^\d/.test(l));
    expect(rows.map((l) => l.split(/\s{2,}/)[1])).toEqual([
      'index.js',
      'lib/util.js',
      'nimbus.yaml',
      'node_modules/pkg/test/needed.js',
      'tests/kept.js',
    ]);
    expect(rows[0]).toMatch(new RegExp(`^${Buffer.byteLength(PROBE)} B\\s+index\\.js$`));
    const total = [
      'index.js',
      'lib/util.js',
      'nimbus.yaml',
      'node_modules/pkg/test/needed.js',
      'tests/kept.js',
    ]
      .map((p) => Buffer.byteLength(PROBED[p]!))
      .reduce((a, b) => a + b, 0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^Would upload 5 files, ${total} B \\(\\d+ B compressed\\) for probe; nothing was uploaded$`,
        'm',
      ),
    );
  });

  it('--dry-run --json gives the same list as data', async () => {
    const r = await runNimbus({ NIMBUS_API_URL: 'http://127.0.0.1:9' }, [
      'deploy',
      dir,
      '--dry-run',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { files: { path: string; size: number }[]; totalBytes: number };
    expect(out.files.find((f) => f.path === 'index.js')).toEqual({
      path: 'index.js',
      size: Buffer.byteLength(PROBE),
    });
    expect(out.files.map((f) => f.path)).not.toContain('.env');
    expect(out.totalBytes).toBe(out.files.reduce((n, f) => n + f.size, 0));
  });

  it('refuses a handler that an ignore rule leaves out, before uploading', async () => {
    const d = service({
      'nimbus.yaml': 'service: hidden\nfunctions:\n  f:\n    handler: src/a.handler\n',
      'src/a.js': 'exports.handler = async () => 1;\n',
      '.nimbusignore': 'src/\n',
    });
    try {
      const r = await runNimbus({ NIMBUS_API_URL: 'http://127.0.0.1:9' }, ['deploy', d, '--dry-run']);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n').at(-1)).toBe(
        'nimbus deploy: src/a.js, the handler of function "f", is left out by .nimbusignore or a default ignore rule. Add "!src/a.js" to .nimbusignore, or move the handler.',
      );
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

/** Archives the store holds, counted in its own table. */
async function storedArchives(n: TestNimbus): Promise<number> {
  if (n.backend === 'sqlite') {
    const db = new Database(join(n.dataDir, 'nimbus.db'), { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM code').get() as { n: number }).n;
    } finally {
      db.close();
    }
  }
  const schema = /schema=(\w+)/.exec(n.store)![1]!;
  return withClient(async (c) =>
    Number((await c.query(`SELECT count(*) AS n FROM ${schema}.code`)).rows[0].n),
  );
}

describe.each(BACKENDS)('deployed code on %s', (backend) => {
  let n: TestNimbus;
  const dirs: string[] = [];
  const cli = (args: string[]) => runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey }, args);
  /** Extracted archives under the data dir, and every file in them. */
  const onDisk = () => {
    const root = join(n.dataDir, 'code');
    const trees = readdirSync(root).filter((e) => /^[0-9a-f]{64}$/.test(e));
    const files = trees.reduce(
      (sum, t) =>
        sum +
        readdirSync(join(root, t), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length,
      0,
    );
    return { trees: trees.length, files };
  };
  const big = (seed: string) =>
    service({
      'nimbus.yaml':
        'service: big\nfunctions:\n  big:\n    handler: index.handler\n  other:\n    handler: index.handler\n',
      'index.js': `exports.handler = async () => ${JSON.stringify(seed)};\n`,
      'data/blob.bin': randomBytes(512 * 1024),
      'data/more.bin': randomBytes(256 * 1024),
    });

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
  });
  afterAll(async () => {
    await n?.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('never uploads .env or ignored files: the function finds nothing', async () => {
    const d = service(PROBED);
    dirs.push(d);
    const r = await cli(['deploy', d]);
    expect(r.code).toBe(0);
    const paths = [
      '.env',
      '.env.local',
      'secret.txt',
      'docs/notes.md',
      'test/gone.js',
      'lib/util.test.js',
      'node_modules/.cache/big.bin',
      '.nimbusignore',
      'tests/kept.js',
      'lib/util.js',
      'node_modules/pkg/test/needed.js',
    ];
    const res = await n.client.invoke('probe', JSON.stringify({ paths }));
    expect(JSON.parse(res.payload)).toEqual({
      '.env': false,
      '.env.local': false,
      'secret.txt': false,
      'docs/notes.md': false,
      'test/gone.js': false,
      'lib/util.test.js': false,
      'node_modules/.cache/big.bin': false,
      '.nimbusignore': false,
      'tests/kept.js': true,
      'lib/util.js': true,
      'node_modules/pkg/test/needed.js': true,
    });
    expect((await cli(['rm', 'probe'])).code).toBe(0);
  });

  it('keeps one archive per deployed code: a redeploy and a removal delete the unused ones', async () => {
    const before = { disk: onDisk(), store: await storedArchives(n) };
    const first = big('one');
    const second = big('two');
    dirs.push(first, second);

    expect((await cli(['deploy', first])).code).toBe(0);
    expect(onDisk()).toEqual({ trees: before.disk.trees + 1, files: before.disk.files + 4 });
    expect(await storedArchives(n)).toBe(before.store + 1);

    expect((await cli(['deploy', second])).code).toBe(0);
    expect(JSON.parse((await n.client.invoke('big', '{}')).payload)).toBe('two');
    // The first deploy's code is no version's any more: gone from the data dir and from the store.
    expect(onDisk()).toEqual({ trees: before.disk.trees + 1, files: before.disk.files + 4 });
    expect(await storedArchives(n)).toBe(before.store + 1);

    // One function removed: the other still runs the code.
    expect((await cli(['rm', 'other'])).code).toBe(0);
    expect(onDisk().trees).toBe(before.disk.trees + 1);
    expect((await cli(['rm', 'big'])).code).toBe(0);
    expect(onDisk()).toEqual(before.disk);
    expect(await storedArchives(n)).toBe(before.store);
  });
});

import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  existsSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Header, type HeaderData } from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { ManifestError } from '../src/config/manifest.js';
import { PackageError, packageService, unpackArchive } from '../src/build/package.js';

const tmp = mkdtempSync(join(tmpdir(), 'nimbus-build-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let counter = 0;
function service(files: Record<string, string>): string {
  const dir = join(tmp, `svc-${++counter}`);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

function fresh(name: string): string {
  const d = join(tmp, `${name}-${++counter}`);
  mkdirSync(d, { recursive: true });
  return d;
}

const MANIFEST = `service: shop
functions:
  get:
    handler: src/items.get
    events:
      - http: GET /items/{id}
  list:
    handler: src/items.list
  plain:
    handler: plain.handler
`;

function shop(): string {
  const dir = service({
    'nimbus.yaml': MANIFEST,
    'package.json': JSON.stringify({ name: 'shop', private: true }),
    'src/items.ts': `import { label } from './util';
import { double } from 'fake-dep';
export const get = async (event: { id: number }): Promise<{ label: string; n: number }> => ({ label: label(event.id), n: double(event.id) });
export const list = async (): Promise<string[]> => [label(1), label(2)];
`,
    'src/util.ts': `export const label = (id: number): string => 'item-' + id;\n`,
    'plain.js': `exports.handler = async () => 'plain';\n`,
    'node_modules/fake-dep/package.json': JSON.stringify({ name: 'fake-dep', main: 'index.js' }),
    'node_modules/fake-dep/index.js': `const path = require('node:path'); exports.double = (n) => n * 2 + path.sep.length - 1;\n`,
    '.git/HEAD': 'ref: refs/heads/main\n',
    '.nimbus/api-key': 'secret',
    'data/a.txt': 'a',
  });
  mkdirSync(join(dir, 'node_modules/.bin'));
  symlinkSync('../fake-dep/index.js', join(dir, 'node_modules/.bin/fake'));
  symlinkSync('data/a.txt', join(dir, 'link.txt'));
  return dir;
}

describe('packageService', () => {
  it('bundles a TypeScript handler with its local modules and node_modules packages, runnable after unpack', async () => {
    const steps: string[] = [];
    const pkg = await packageService(shop(), (s) => steps.push(s));
    expect(pkg.manifest.service).toBe('shop');
    expect(steps).toContain('Bundling src/items.ts…');
    expect(pkg.files).toBeGreaterThanOrEqual(6);

    const out = fresh('unpacked');
    await unpackArchive(pkg.archive, out);
    // The bundle must not need node_modules at run time.
    rmSync(join(out, 'node_modules'), { recursive: true });
    const mod = createRequire(import.meta.url)(join(out, 'src/items.js')) as {
      get(e: { id: number }): Promise<unknown>;
      list(): Promise<unknown>;
    };
    await expect(mod.get({ id: 21 })).resolves.toEqual({ label: 'item-21', n: 42 });
    await expect(mod.list()).resolves.toEqual(['item-1', 'item-2']);
    expect(readFileSync(join(out, 'src/items.js'), 'utf8')).toContain(
      'sourceMappingURL=data:application/json',
    );
  });

  it('keeps everything else, drops .git, .nimbus and node_modules/.bin, keeps internal symlinks', async () => {
    const pkg = await packageService(shop());
    const out = fresh('contents');
    await unpackArchive(pkg.archive, out);
    for (const f of [
      'nimbus.yaml',
      'package.json',
      'plain.js',
      'src/items.ts',
      'src/util.ts',
      'node_modules/fake-dep/index.js',
    ]) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    for (const f of ['.git', '.nimbus', 'node_modules/.bin']) expect(existsSync(join(out, f)), f).toBe(false);
    expect(lstatSync(join(out, 'link.txt')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(out, 'link.txt'))).toBe('data/a.txt');
    expect(readFileSync(join(out, 'link.txt'), 'utf8')).toBe('a');
    expect(statSync(join(out, 'plain.js')).mode & 0o777).toBe(0o644);
    expect(statSync(join(out, 'src')).mode & 0o777).toBe(0o755);
  });

  it('is deterministic: same code, same sha256, even after touching files', async () => {
    const dir = shop();
    const a = await packageService(dir);
    utimesSync(join(dir, 'src/util.ts'), new Date(), new Date('2030-01-01'));
    const b = await packageService(dir);
    expect(b.sha256).toBe(a.sha256);
    expect(b.archive.equals(a.archive)).toBe(true);
    writeFileSync(join(dir, 'src/util.ts'), `export const label = (id: number): string => 'thing-' + id;\n`);
    expect((await packageService(dir)).sha256).not.toBe(a.sha256);
  });

  it('leaves the SDK packages the runtime provides out of a bundle, unless the service ships its own', async () => {
    const handler = `import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
export const h = async () => [typeof DynamoDBClient, typeof DynamoDBDocumentClient];
`;
    const manifest = 'service: s\nfunctions:\n  a:\n    handler: a.h\n  b:\n    handler: b.h\n';
    const provided = fresh('provided');
    await unpackArchive(
      (await packageService(service({ 'nimbus.yaml': manifest, 'a.ts': handler, 'b.mts': handler }))).archive,
      provided,
    );
    const cjs = readFileSync(join(provided, 'a.js'), 'utf8');
    expect(cjs).toContain('require("@aws-sdk/client-dynamodb")');
    expect(cjs).toContain('require("@aws-sdk/lib-dynamodb")');
    const esm = readFileSync(join(provided, 'b.mjs'), 'utf8');
    expect(esm).toMatch(/import \{ DynamoDBClient \} from "@aws-sdk\/client-dynamodb"/);

    const own = fresh('own');
    const dir = service({
      'nimbus.yaml': manifest.replace(/ {2}b:[^]*/, ''),
      'a.ts': handler,
      'node_modules/@aws-sdk/client-dynamodb/package.json': JSON.stringify({
        name: '@aws-sdk/client-dynamodb',
      }),
      'node_modules/@aws-sdk/client-dynamodb/index.js':
        'exports.DynamoDBClient = function OwnCopyOfTheClient() {};\n',
    });
    await unpackArchive((await packageService(dir)).archive, own);
    const bundled = readFileSync(join(own, 'a.js'), 'utf8');
    expect(bundled).toContain('OwnCopyOfTheClient');
    expect(bundled).not.toContain('require("@aws-sdk/client-dynamodb")');
    // The one the service does not ship is still left to the runtime.
    expect(bundled).toContain('require("@aws-sdk/lib-dynamodb")');
  });

  it('still bundles, or reports, an @aws-sdk package the runtime does not provide', async () => {
    const dir = service({
      'nimbus.yaml': 'service: s\nfunctions:\n  a:\n    handler: a.h\n',
      'a.ts': `import { STSClient } from '@aws-sdk/client-sts';\nexport const h = () => STSClient;\n`,
    });
    const err = await packageService(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PackageError);
    expect((err as PackageError).message).toMatch(/Could not resolve "@aws-sdk\/client-sts"/);
  });

  it('outputs ES modules for .mts handlers and for "type": "module" packages, with require() for bundled CJS', async () => {
    const dir = service({
      'nimbus.yaml':
        'service: esm\nfunctions:\n  a: { handler: a.handler }\n  b: { handler: lib/b.handler }\n',
      'package.json': JSON.stringify({ type: 'module' }),
      'a.mts': `import { double } from 'cjs-dep';\nexport const handler = async (): Promise<number> => double(2);\n`,
      'lib/b.ts': `export const handler = async (): Promise<string> => 'b';\n`,
      'node_modules/cjs-dep/package.json': JSON.stringify({ name: 'cjs-dep' }),
      'node_modules/cjs-dep/index.js': `const os = require('os'); exports.double = (n) => (os.EOL ? n * 2 : 0);\n`,
    });
    const out = fresh('esm');
    await unpackArchive((await packageService(dir)).archive, out);
    const a = (await import(pathToFileURL(join(out, 'a.mjs')).href)) as { handler(): Promise<number> };
    await expect(a.handler()).resolves.toBe(4);
    const b = (await import(pathToFileURL(join(out, 'lib/b.js')).href)) as { handler(): Promise<string> };
    await expect(b.handler()).resolves.toBe('b');
  });

  it('resolves handler modules like AWS: the module ends at the first dot of the file name', async () => {
    const dir = service({
      'nimbus.yaml': 'service: nested\nfunctions:\n  f: { handler: lib/api.v1.fn }\n',
      'lib/api.ts': `export const v1 = { fn: async (): Promise<string> => 'nested' };\n`,
    });
    const out = fresh('nested');
    await unpackArchive((await packageService(dir)).archive, out);
    expect(existsSync(join(out, 'lib/api.js'))).toBe(true);
  });

  it('rejects a symlink that leads outside the service folder, naming it', async () => {
    const outside = service({ 'secret.txt': 'nope' });
    const dir = service({
      'nimbus.yaml': 'service: s\nfunctions:\n  f: { handler: h.handler }\n',
      'h.js': 'exports.handler=async()=>1',
    });
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'escape.txt'));
    await expect(packageService(dir)).rejects.toThrow(
      /escape\.txt is a symlink to .*outside the service folder/,
    );
    await expect(packageService(dir)).rejects.toBeInstanceOf(PackageError);
  });

  it('reports a bad manifest with the file and the field', async () => {
    const dir = service({
      'nimbus.yaml': 'service: s\nfunctions:\n  f:\n    handler: h.handler\n    memory: 64\n',
    });
    const err = await packageService(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).message).toContain(
      join(dir, 'nimbus.yaml').replace(`${process.cwd()}/`, ''),
    );
    expect((err as ManifestError).field).toBe('functions.f.memory');
  });

  it('reports a missing manifest and a missing handler module clearly', async () => {
    await expect(packageService(service({ 'x.js': '' }))).rejects.toThrow(/nimbus\.yaml not found/);
    const dir = service({ 'nimbus.yaml': 'service: s\nfunctions:\n  getItem: { handler: src/nope.get }\n' });
    await expect(packageService(dir)).rejects.toThrow(
      /function "getItem": handler "src\/nope\.get" needs src\/nope\.js/,
    );
  });

  it('reports a TypeScript error with file and position', async () => {
    const dir = service({
      'nimbus.yaml': 'service: s\nfunctions:\n  f: { handler: h.handler }\n',
      'h.ts': `import { x } from 'not-installed';\nexport const handler = async () => x;\n`,
    });
    await expect(packageService(dir)).rejects.toThrow(
      /cannot bundle h\.ts: h\.ts:1:\d+: Could not resolve "not-installed"/,
    );
  });

  it('uploads nimbus.yaml as written without variables or a stage, and the resolved one otherwise', async () => {
    const plain = 'service: s\nfunctions:\n  f: { handler: h.f, environment: { A: "$${x}" } }\n';
    const asWritten = service({ 'nimbus.yaml': plain.replace('$${x}', 'x'), 'h.js': 'exports.f = 1;\n' });
    const out1 = fresh('plain');
    await unpackArchive((await packageService(asWritten)).archive, out1);
    expect(readFileSync(join(out1, 'nimbus.yaml'), 'utf8')).toBe(plain.replace('$${x}', 'x'));

    const withVars = service({
      'nimbus.yaml':
        'service: s\nfunctions:\n  f:\n    handler: h.f\n    environment: { A: "${env:BUILD_TEST_A}", L: "$${x}" }\n',
      'h.js': 'exports.f = 1;\n',
    });
    const pkg = await packageService(withVars, undefined, { env: { BUILD_TEST_A: 'a' }, stage: 'qa' });
    expect(pkg.manifest.service).toBe('s-qa');
    const out2 = fresh('resolved');
    await unpackArchive(pkg.archive, out2);
    const uploaded = readFileSync(join(out2, 'nimbus.yaml'), 'utf8');
    expect(uploaded).toContain('service: s-qa');
    expect(uploaded).toContain('f-qa:');
    expect(uploaded).toContain('A: a');
    expect(uploaded).toContain('L: ${x}');
    await expect(packageService(withVars, undefined, { env: {} })).rejects.toThrow(ManifestError);
  });
});

/** A hand-made archive, to feed unpackArchive what packageService never would. */
function archive(entries: (HeaderData & { body?: string })[]): Buffer {
  const blocks: Buffer[] = [];
  for (const { body = '', ...h } of entries) {
    const header = new Header({ mode: 0o644, mtime: new Date(0), size: Buffer.byteLength(body), ...h });
    header.encode();
    blocks.push(header.block!);
    if (body) {
      const b = Buffer.from(body);
      blocks.push(b, Buffer.alloc((512 - (b.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

describe('unpackArchive', () => {
  it('refuses absolute paths and ".."', async () => {
    await expect(
      unpackArchive(archive([{ path: '/etc/evil', type: 'File', body: 'x' }]), fresh('abs')),
    ).rejects.toThrow(/unsafe path/);
    await expect(
      unpackArchive(archive([{ path: 'a/../../evil', type: 'File', body: 'x' }]), fresh('dots')),
    ).rejects.toThrow(/\.\./);
  });

  it('refuses symlinks and hard links that lead outside', async () => {
    await expect(
      unpackArchive(archive([{ path: 'l', type: 'SymbolicLink', linkpath: '/etc/passwd' }]), fresh('sym')),
    ).rejects.toThrow(/outside/);
    await expect(
      unpackArchive(archive([{ path: 'l', type: 'SymbolicLink', linkpath: '../x' }]), fresh('sym')),
    ).rejects.toThrow(/outside/);
    await expect(
      unpackArchive(archive([{ path: 'h', type: 'Link', linkpath: '../x' }]), fresh('hard')),
    ).rejects.toThrow(/\.\./);
  });

  it('refuses a link that escapes through another link', async () => {
    const parent = fresh('chain');
    mkdirSync(join(parent, 'outside'));
    const dest = join(parent, 'dest');
    const evil = archive([
      { path: 'a', type: 'SymbolicLink', linkpath: '.' },
      { path: 'b', type: 'SymbolicLink', linkpath: 'a/../outside' },
    ]);
    await expect(unpackArchive(evil, dest)).rejects.toThrow(/outside/);
    expect(existsSync(join(dest, 'b'))).toBe(false);
  });

  it('never writes through a link: a folder path that is also a link is refused', async () => {
    const dest = fresh('through');
    const evil = archive([
      { path: 'd/x', type: 'File', body: 'x' },
      { path: 'd', type: 'SymbolicLink', linkpath: '.' },
    ]);
    await expect(unpackArchive(evil, dest)).rejects.toThrow(/existing entry/);
  });

  it('normalizes modes to 0644 files and 0755 folders', async () => {
    const dest = fresh('modes');
    await unpackArchive(
      archive([
        { path: 'bin/', type: 'Directory', mode: 0o700 },
        { path: 'bin/run', type: 'File', mode: 0o4777, body: '#!/bin/sh' },
        { path: 'copy', type: 'Link', linkpath: 'bin/run' },
      ]),
      dest,
    );
    expect(statSync(join(dest, 'bin')).mode & 0o7777).toBe(0o755);
    expect(statSync(join(dest, 'bin/run')).mode & 0o7777).toBe(0o644);
    expect(readFileSync(join(dest, 'copy'), 'utf8')).toBe('#!/bin/sh');
  });

  it('refuses garbage and oversized archives', async () => {
    await expect(unpackArchive(Buffer.from('not gzip'), fresh('garbage'))).rejects.toThrow(
      /not a valid gzip/,
    );
    const big = archive([{ path: 'big', type: 'File', body: 'x'.repeat(4096) }]);
    await expect(unpackArchive(big, fresh('big'), { maxBytes: 1000 })).rejects.toThrow(/larger than/);
  });
});

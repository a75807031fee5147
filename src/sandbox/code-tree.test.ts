import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveEntry, scanTree } from './code-tree.js';

let root: string;
afterEach(() => rmSync(root, { recursive: true, force: true }));

function tree(files: Record<string, string>, links: Record<string, string> = {}) {
  root = mkdtempSync(join(tmpdir(), 'nimbus-entry-'));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  for (const [p, target] of Object.entries(links)) symlinkSync(target, join(root, p));
  return scanTree(root);
}

describe('resolveEntry: the handler file and format, in the runtime order', () => {
  it('a .js file without any package.json is CommonJS', () => {
    expect(resolveEntry(tree({ 'index.js': '' }), 'index.handler', '/var/task')).toEqual({
      file: '/var/task/index.js',
      format: 'commonjs',
    });
  });

  it('"type": "module" in a parent folder inside the code makes a nested .js an ES module', () => {
    const t = tree({ 'package.json': '{"type":"module"}', 'src/api/app.js': '' });
    expect(resolveEntry(t, 'src/api/app.handler', '/var/task')).toEqual({
      file: '/var/task/src/api/app.js',
      format: 'module',
    });
  });

  it('the nearest package.json wins, and one without a type is CommonJS', () => {
    const t = tree({ 'package.json': '{"type":"module"}', 'lib/package.json': '{}', 'lib/a.js': '' });
    expect(resolveEntry(t, 'lib/a.handler', '/t')?.format).toBe('commonjs');
  });

  it('.js before .mjs before .cjs', () => {
    expect(resolveEntry(tree({ 'h.mjs': '', 'h.cjs': '' }), 'h.handler', '/t')).toEqual({
      file: '/t/h.mjs',
      format: 'module',
    });
    rmSync(root, { recursive: true, force: true });
    expect(resolveEntry(tree({ 'h.cjs': '' }), 'h.handler', '/t')).toEqual({
      file: '/t/h.cjs',
      format: 'commonjs',
    });
    rmSync(root, { recursive: true, force: true });
    expect(resolveEntry(tree({ 'h.js': '', 'h.mjs': '' }), 'h.handler', '/t')?.file).toBe('/t/h.js');
  });

  it('a module root with ./ and nested handler paths', () => {
    expect(resolveEntry(tree({ 'lib/api.js': '' }), './lib/api.v1.fn', '/t')?.file).toBe('/t/lib/api.js');
  });

  it('a scope walk stops at node_modules, as the runtime does', () => {
    const t = tree({ 'package.json': '{"type":"module"}', 'node_modules/x/index.js': '' });
    expect(resolveEntry(t, 'node_modules/x/index.handler', '/t')?.format).toBe('commonjs');
  });

  const leftToRuntime: Array<[string, () => ReturnType<typeof tree>, string]> = [
    ['an exact file', () => tree({ handler: '' }), 'handler.fn'],
    ['a directory', () => tree({ 'app/index.js': '' }), 'app.handler'],
    ['a symlinked file', () => tree({ 'real.js': '' }, { 'h.js': 'real.js' }), 'h.handler'],
    ['a package.json that does not parse', () => tree({ 'package.json': '{', 'h.js': '' }), 'h.handler'],
    ['a package.json that is null', () => tree({ 'package.json': 'null', 'h.js': '' }), 'h.handler'],
    ['a package in node_modules', () => tree({ 'node_modules/pkg/index.js': '' }), 'pkg.handler'],
    ['an absolute module root', () => tree({ 'h.js': '' }), '/opt/h.handler'],
    ['a malformed name', () => tree({ 'h.js': '' }), 'nodot'],
    ['a name with ..', () => tree({ 'h.js': '' }), '../h.handler'],
  ];
  it.each(leftToRuntime)('leaves %s to the runtime', (_name, make, handler) => {
    expect(resolveEntry(make(), handler, '/t')).toBeUndefined();
  });
});

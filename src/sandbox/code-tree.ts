// A function version's code as a list of entries, scanned once per version, and its linking into an
// instance's task directory. Small trees (most functions) link synchronously in well under a millisecond;
// a tree with node_modules can hold thousands of files, and linking those must not stall the event loop.
import {
  promises as fsp,
  copyFileSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
} from 'node:fs';
import { join, posix } from 'node:path';
import { splitHandler } from '../protocol/handler.js';
import type { HandlerEntry } from '../protocol/messages.js';

export interface CodeTree {
  root: string;
  /** Relative paths, parents before children. */
  dirs: string[];
  files: string[];
  symlinks: [path: string, target: string][];
}

/** Trees up to this many entries link synchronously. */
const SYNC_LIMIT = 256;
/** Links in flight at once for a large tree. */
const PARALLEL = 32;

export function scanTree(root: string): CodeTree {
  const tree: CodeTree = { root, dirs: [], files: [], symlinks: [] };
  const walk = (rel: string): void => {
    for (const ent of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        tree.dirs.push(p);
        walk(p);
      } else if (ent.isSymbolicLink()) {
        tree.symlinks.push([p, readlinkSync(join(root, p))]);
      } else if (ent.isFile()) {
        tree.files.push(p);
      }
    }
  };
  walk('');
  return tree;
}

/** Mirrors the tree into dst with hard links (same inodes, no copy), copying across filesystems. */
export async function linkTree(tree: CodeTree, dst: string): Promise<void> {
  const entries = tree.dirs.length + tree.files.length + tree.symlinks.length;
  if (entries <= SYNC_LIMIT) {
    for (const d of tree.dirs) mkdirSync(join(dst, d), { mode: 0o755 });
    for (const f of tree.files) linkOrCopySync(join(tree.root, f), join(dst, f));
    for (const [p, target] of tree.symlinks) symlinkSync(target, join(dst, p));
    return;
  }
  for (const d of tree.dirs) await fsp.mkdir(join(dst, d), { mode: 0o755 });
  for (let i = 0; i < tree.files.length; i += PARALLEL) {
    await Promise.all(
      tree.files.slice(i, i + PARALLEL).map((f) => linkOrCopy(join(tree.root, f), join(dst, f))),
    );
  }
  for (const [p, target] of tree.symlinks) await fsp.symlink(target, join(dst, p));
}

function linkOrCopySync(src: string, dst: string): void {
  try {
    linkSync(src, dst);
  } catch (err) {
    // Another filesystem (instance folders in the temp dir): copy instead of linking.
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    copyFileSync(src, dst);
  }
}

async function linkOrCopy(src: string, dst: string): Promise<void> {
  try {
    await fsp.link(src, dst);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await fsp.copyFile(src, dst);
  }
}

/**
 * The handler's module file and format, resolved from the scanned tree in the runtime's own order (RIC's): an
 * exact path is left to the runtime; then <name>.js, an ES module when the nearest package.json in the tree
 * says "type": "module"; then .mjs; then .cjs. Undefined whenever the runtime must decide itself: an absolute
 * module root, an exact file or a directory, a symlink on the way, a package.json that does not parse (the
 * runtime warns about it), or nothing found (Node's resolution, a package in node_modules). Nothing above the
 * code folder counts: the sandbox cannot read it, so the runtime finds no package.json there either.
 */
export function resolveEntry(
  tree: CodeTree,
  handler: string,
  codeDirInside: string,
): HandlerEntry | undefined {
  const parts = splitHandler(handler);
  if ('malformed' in parts || parts.moduleRoot.startsWith('/')) return undefined;
  const rel = posix.normalize(parts.moduleRoot + parts.moduleName);
  if (rel === '.' || rel.startsWith('../') || rel.startsWith('/')) return undefined;
  const t = indexOf(tree);
  const file = (ext: string): boolean | undefined => {
    const p = rel + ext;
    if (t.files.has(p)) return true;
    // A directory or symlink of that name: the runtime's existsSync sees it, and decides what it is.
    return t.other.has(p) ? undefined : false;
  };
  if (t.files.has(rel) || t.other.has(rel)) return undefined;
  const inside = (ext: string): string => `${codeDirInside}/${rel}${ext}`;
  const js = file('.js');
  if (js === undefined) return undefined;
  if (js) {
    const scope = scopeType(tree, t, posix.dirname(rel));
    return scope === undefined ? undefined : { file: inside('.js'), format: scope };
  }
  const mjs = file('.mjs');
  if (mjs !== false) return mjs ? { file: inside('.mjs'), format: 'module' } : undefined;
  const cjs = file('.cjs');
  return cjs ? { file: inside('.cjs'), format: 'commonjs' } : undefined;
}

interface TreeIndex {
  files: Set<string>;
  /** Directories and symlinks. */
  other: Set<string>;
  scopes: Map<string, HandlerEntry['format'] | undefined>;
}

const indexes = new WeakMap<CodeTree, TreeIndex>();

function indexOf(tree: CodeTree): TreeIndex {
  let t = indexes.get(tree);
  if (!t) {
    t = {
      files: new Set(tree.files),
      other: new Set([...tree.dirs, ...tree.symlinks.map(([p]) => p)]),
      scopes: new Map(),
    };
    indexes.set(tree, t);
  }
  return t;
}

/** The nearest package.json's "type" from dir up to the tree's root, as the runtime's scope walk reads it. */
function scopeType(tree: CodeTree, t: TreeIndex, dir: string): HandlerEntry['format'] | undefined {
  if (t.scopes.has(dir)) return t.scopes.get(dir);
  let format: HandlerEntry['format'] | undefined = 'commonjs';
  for (let d = dir; ; d = posix.dirname(d)) {
    if (posix.basename(d) === 'node_modules') break;
    const pj = d === '.' ? 'package.json' : `${d}/package.json`;
    if (t.other.has(pj)) {
      format = undefined;
      break;
    }
    if (t.files.has(pj)) {
      try {
        const type = (JSON.parse(readFileSync(join(tree.root, pj), 'utf8')) as { type?: unknown }).type;
        format = type === 'module' ? 'module' : 'commonjs';
      } catch {
        format = undefined;
      }
      break;
    }
    if (d === '.') break;
  }
  t.scopes.set(dir, format);
  return format;
}

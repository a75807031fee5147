// A function version's code as a list of entries, scanned once per version, and its linking into an
// instance's task directory. Small trees (most functions) link synchronously in well under a millisecond;
// a tree with node_modules can hold thousands of files, and linking those must not stall the event loop.
import {
  promises as fsp,
  copyFileSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';

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

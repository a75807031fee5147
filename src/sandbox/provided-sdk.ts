// The AWS SDK v3 clients Nimbus provides to every function, as AWS's Node.js runtimes provide theirs in
// /var/runtime/node_modules (built by scripts/build.mjs into dist/runtime/node_modules). Node finds a package in
// the node_modules folder of any parent of the importing file, for require() and import alike (NODE_PATH
// serves require() only), so the tree sits where that lookup reaches it from the function's code directory:
// beside the instance folders on the host, and at /var/node_modules, the parent of /var/task, under
// bubblewrap. A function's own node_modules is nearer, so a copy it ships always wins.
import { chmodSync, cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Where the tree is, on the host, for the instances under sandboxRoot. */
export function providedSdkDir(sandboxRoot: string): string {
  return join(sandboxRoot, 'node_modules');
}

/** The tree as a function sees it under bubblewrap: a parent node_modules of /var/task. */
export const PROVIDED_SDK_INSIDE = '/var/node_modules';

/**
 * Copies the built tree into the sandbox root with modes the sandbox user can read and nobody but root (or
 * Nimbus's user) can change; the permission model and bubblewrap's read-only mount keep functions from writing.
 */
export function installProvidedSdk(builtDir: string, sandboxRoot: string): string {
  const dest = providedSdkDir(sandboxRoot);
  cpSync(builtDir, dest, { recursive: true });
  const fix = (dir: string): void => {
    chmodSync(dir, 0o755);
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) fix(p);
      else chmodSync(p, 0o644);
    }
  };
  fix(dest);
  return dest;
}

// Builds dist/ from src/: the platform as ESM modules, and the sandbox runtime as one self-contained CJS file
// (it is copied into every sandbox, so it must not depend on node_modules).
import { build } from 'esbuild';
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    // runtime/ is bundled on its own below; conformance/ holds test suites, which import vitest.
    if (statSync(p).isDirectory()) return name === 'runtime' || name === 'conformance' ? [] : walk(p);
    return name.endsWith('.ts') && !/(\.test|\.d)\.ts$/.test(name) ? [p] : [];
  });
}

// Built beside dist/ and swapped in at the end, so a process running from dist/ (a test's `nimbus up`, a
// second build) never finds it half written or missing.
const dist = join(root, 'dist');
const out = join(root, `.dist-${process.pid}`);
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: walk(src),
  outdir: out,
  outbase: src,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
});
await build({
  entryPoints: [join(src, 'runtime', 'bootstrap.ts')],
  outfile: join(out, 'runtime', 'bootstrap.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
});

const old = join(root, `.dist-old-${process.pid}`);
if (existsSync(dist)) renameSync(dist, old);
renameSync(out, dist);
rmSync(old, { recursive: true, force: true });

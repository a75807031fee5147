// Builds dist/ from src/: the platform as ESM modules, and the sandbox runtime as one self-contained CJS file
// (it is copied into every sandbox, so it must not depend on node_modules).
import { build } from 'esbuild';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'runtime' ? [] : walk(p);
    return name.endsWith('.ts') && !/(\.test|\.d|^conformance)\.ts$/.test(name) ? [p] : [];
  });
}

rmSync(join(root, 'dist'), { recursive: true, force: true });
await build({
  entryPoints: walk(src),
  outdir: join(root, 'dist'),
  outbase: src,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
});
await build({
  entryPoints: [join(src, 'runtime', 'bootstrap.ts')],
  outfile: join(root, 'dist', 'runtime', 'bootstrap.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
});

// Builds dist/ from src/: the platform as ESM modules, the sandbox runtime as one self-contained CJS file
// (it is copied into every sandbox, so it must not depend on node_modules), and beside it the AWS SDK the
// runtime provides to functions (dist/runtime/node_modules).
import { build } from 'esbuild';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

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

// The list of provided packages is platform code: read from the build just made.
const { PROVIDED_SDK } = await import(pathToFileURL(join(out, 'build', 'provided-sdk.js')).href);
await buildProvidedSdk(PROVIDED_SDK, join(out, 'runtime', 'node_modules'));

await buildConsole(join(out, 'console'));

const old = join(root, `.dist-old-${process.pid}`);
if (existsSync(dist)) renameSync(dist, old);
renameSync(out, dist);
rmSync(old, { recursive: true, force: true });

/**
 * The web console (console/: Preact, uPlot) compiled by Vite into dist/console, which the control listener
 * serves at /console/. Vite is a devDependency: an install without them (`npm ci --omit=dev`) gets a server
 * whose /console/ says how to build it rather than a failed install.
 */
async function buildConsole(outDir) {
  let vite;
  try {
    vite = await import('vite');
  } catch {
    console.warn('build: vite is not installed (devDependencies left out?); the web console is not built');
    return;
  }
  await vite.build({
    root: join(root, 'console'),
    base: '/console/',
    configFile: false,
    logLevel: 'warn',
    oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
    build: {
      outDir,
      emptyOutDir: true,
      // Nothing inline: the console's CSP allows scripts and styles from its own files only.
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      sourcemap: false,
      target: 'es2022',
    },
  });
}

/**
 * The AWS SDK v3 clients every function may require without bundling them, as AWS's Node.js runtimes provide
 * them in /var/runtime/node_modules. Each package is one self-contained CommonJS file, so the sandbox is given
 * these few files and never Nimbus's own node_modules. lib-dynamodb requires the provided client-dynamodb (its
 * commands are that client's) rather than carrying a second copy. The ES module builds are bundled so esbuild
 * knows every export name and writes the annotation Node reads to offer them as named imports to `import`.
 */
async function buildProvidedSdk(packages, dir) {
  const req = createRequire(join(root, 'package.json'));
  await Promise.all(
    Object.entries(packages).map(async ([name, external]) => {
      const pkgDir = join(dir, name);
      const { version } = JSON.parse(
        readFileSync(join(dirname(req.resolve(`${name}/package.json`)), 'package.json'), 'utf8'),
      );
      await build({
        stdin: { contents: `export * from '${name}';`, resolveDir: root, loader: 'js' },
        outfile: join(pkgDir, 'index.js'),
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node20',
        mainFields: ['module', 'main'],
        external: [...external],
        // Minified (names kept: SDK errors are matched by name) to parse faster on every cold start.
        minify: true,
        keepNames: true,
        legalComments: 'none',
        logLevel: 'warning',
      });
      mkdirSync(pkgDir, { recursive: true });
      writeFileSync(
        join(pkgDir, 'package.json'),
        `${JSON.stringify({ name, version, main: 'index.js' }, null, 2)}\n`,
      );
    }),
  );
}

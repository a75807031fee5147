// What each function of a packaged service depends on, as one digest per function, so `nimbus dev` redeploys
// only the functions whose code or config changed and the others keep their warm instances. A function's
// digest covers its config, the files its handler imports (esbuild's metafile, packages left external) and
// every packaged file that no handler imports (node_modules, data read with fs, the package.json): a change
// that cannot be traced to some functions counts for all of them, so a reload never keeps stale code.
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { canonicalJson } from '../store/canonical-json.js';
import type { FunctionConfig, Manifest } from '../config/manifest.js';
import type { PackageResult } from './package.js';

const EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

/** Function name → digest. */
export type Fingerprints = Map<string, string>;

export async function fingerprintFunctions(root: string, pkg: PackageResult): Promise<Fingerprints> {
  const byModule = new Map<string, Promise<{ entry: string; inputs: string[] } | undefined>>();
  const inputsOf = new Map<string, { entry: string; inputs: string[] } | undefined>();
  for (const fn of pkg.manifest.functions) {
    const mod = modulePath(fn);
    let p = byModule.get(mod);
    if (!p) byModule.set(mod, (p = importedFiles(root, mod)));
    inputsOf.set(fn.name, await p);
  }
  const traced = new Set<string>();
  const generated = new Set<string>();
  for (const found of inputsOf.values()) {
    if (!found) continue;
    for (const f of found.inputs) traced.add(f);
    // The bundle of a TypeScript handler is in the archive in place of its source, which is traced.
    if (/\.[mc]?ts$/.test(found.entry)) generated.add(found.entry.replace(/\.([mc]?)ts$/, '.$1js'));
  }
  const digests = new Map<string, string>();
  const digestOf = async (path: string): Promise<string> => {
    let d = digests.get(path);
    if (d === undefined) {
      const data = await fsp.readFile(join(root, path)).catch(() => Buffer.from('(missing)'));
      digests.set(path, (d = createHash('sha256').update(data).digest('hex')));
    }
    return d;
  };
  const shared = createHash('sha256');
  for (const f of pkg.listing) {
    if (f.path === 'nimbus.yaml' || traced.has(f.path) || generated.has(f.path)) continue;
    shared.update(`${f.path}\0${await digestOf(f.path)}\n`);
  }
  const sharedDigest = shared.digest('hex');
  const out: Fingerprints = new Map();
  for (const fn of pkg.manifest.functions) {
    const h = createHash('sha256').update(canonicalJson(fn)).update(sharedDigest);
    const found = inputsOf.get(fn.name);
    // Not traceable (a syntax error the server will name): a new digest each time, so it always redeploys.
    if (!found) h.update(String(Math.random()));
    else for (const f of [...found.inputs].sort()) h.update(`${f}\0${await digestOf(f)}\n`);
    out.set(fn.name, h.digest('hex'));
  }
  return out;
}

/** The functions whose digest differs from the one they were last deployed with. */
export function changedFunctions(manifest: Manifest, before: Fingerprints, now: Fingerprints): string[] {
  return manifest.functions.map((f) => f.name).filter((n) => before.get(n) !== now.get(n));
}

/** Like AWS: the module ends at the first "." after the last "/". */
function modulePath(fn: FunctionConfig): string {
  return fn.handler.slice(0, fn.handler.indexOf('.', fn.handler.lastIndexOf('/') + 1));
}

/** The service's own files a handler module imports, itself included, relative to root; undefined if
 *  esbuild cannot follow them. */
async function importedFiles(
  root: string,
  mod: string,
): Promise<{ entry: string; inputs: string[] } | undefined> {
  const entry = EXTENSIONS.map((e) => mod + e).find((p) => isFile(join(root, p)));
  if (!entry) return undefined;
  try {
    const result = await build({
      absWorkingDir: root,
      entryPoints: [join(root, entry)],
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      target: 'node20',
      packages: 'external',
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs).filter((p) => !p.includes(':') && !p.startsWith('..'));
    return { entry, inputs };
  } catch {
    return undefined;
  }
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

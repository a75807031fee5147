// Turns a service folder into the one artifact a deploy uploads: TypeScript handlers bundled in place, then a
// deterministic tar.gz (sorted entries, fixed mtime and modes) so identical code always hashes the same and
// the server can skip versions that did not change. unpackArchive is the server's half of the contract.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  promises as fsp,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  statSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { build, type BuildFailure, type Message, type Plugin } from 'esbuild';
import ignore, { type Ignore } from 'ignore';
import { Header, Pax, type HeaderData } from 'tar';
import { manifestFromValue, parseManifestYaml, type Manifest } from '../config/manifest.js';
import { applyStage, stageService } from '../config/stages.js';
import { DEFAULT_STAGE, resolveVariables } from '../config/variables.js';
import { stringify as stringifyYaml } from 'yaml';
import { isProvidedSdk } from './provided-sdk.js';

export interface PackageResult {
  manifest: Manifest;
  archive: Buffer;
  /** Hex SHA-256 of the archive. */
  sha256: string;
  /** Regular files in the archive (bundles included). */
  files: number;
  /** Uncompressed bytes of those files. */
  bytes: number;
  /** Every file in the archive with its uncompressed size, in archive order (what `--dry-run` lists). */
  listing: { path: string; size: number }[];
}

/**
 * Left out of every archive unless `.nimbusignore` brings them back with a negation (`!tests/`): what is never
 * needed to run, and what should never leave the machine. Test folders and files count only outside
 * node_modules, where a package's own may be needed at run time.
 */
export const DEFAULT_IGNORES: readonly string[] = [
  '.git',
  '.env*',
  '.nimbus',
  '.nimbusignore',
  'node_modules/.cache',
  'test/',
  'tests/',
  '__tests__/',
  '*.test.*',
  '!node_modules/**/test/',
  '!node_modules/**/tests/',
  '!node_modules/**/__tests__/',
  '!node_modules/**/*.test.*',
];

const IGNORE_FILE = '.nimbusignore';

/** A problem with the service folder the user can fix; hint says how. */
export class PackageError extends Error {
  override name = 'PackageError';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const MANIFEST = 'nimbus.yaml';
const FIXED_MTIME = new Date('2000-01-01T00:00:00Z');
const TS_EXT = ['.ts', '.mts', '.cts'] as const;
const JS_EXT = ['.js', '.mjs', '.cjs'] as const;
const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

type Entry =
  | { kind: 'dir'; path: string }
  | { kind: 'file'; path: string; data: Buffer }
  | { kind: 'symlink'; path: string; target: string };

export interface PackageOptions {
  /** Deploy a separate copy of the service under this stage ([a-z0-9-]); undefined keeps today's names. */
  stage?: string | undefined;
  /** What ${env:NAME} reads; the CLI's environment by default. */
  env?: NodeJS.ProcessEnv;
}

export async function packageService(
  dir: string,
  onProgress?: (step: string) => void,
  opts: PackageOptions = {},
): Promise<PackageResult> {
  const root = resolve(dir);
  const manifestPath = join(root, MANIFEST);
  let text: string;
  try {
    text = readFileSync(manifestPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PackageError(
        `${displayPath(manifestPath)} not found`,
        existsSync(root) ? 'run the command in a service folder or pass its path' : `check the path ${dir}`,
      );
    }
    throw e;
  }
  const file = displayPath(manifestPath);
  const raw = parseManifestYaml(text, file);
  const vars = { env: opts.env ?? process.env, stage: opts.stage ?? DEFAULT_STAGE, dir: root, file };
  const staged = opts.stage === undefined ? raw : stageService(raw, opts.stage, file);
  let resolved = resolveVariables(staged, vars);
  if (opts.stage !== undefined) resolved = applyStage(resolved, opts.stage, file);
  const manifest = manifestFromValue(resolved, file);
  // The server reads nimbus.yaml from the archive: it gets the resolved one. Unchanged, the file goes as written.
  const changed = JSON.stringify(resolved) !== JSON.stringify(raw);

  const bundles = await bundleHandlers(root, manifest, onProgress);

  onProgress?.('Packaging…');
  const ignored = ignoreRules(root);
  const entries = collectEntries(root, new Set(bundles.keys()), ignored);
  for (const [path, data] of bundles) entries.set(path, { kind: 'file', path, data });
  if (changed) {
    const data = Buffer.from(`# resolved by nimbus deploy from ${MANIFEST}\n${stringifyYaml(resolved)}`);
    entries.set(MANIFEST, { kind: 'file', path: MANIFEST, data });
  }
  checkHandlersKept(root, manifest, entries);
  addParentDirs(entries);

  const sorted = [...entries.values()].sort((a, b) => compare(a.path, b.path));
  const tar = writeTar(sorted);
  const archive = await gzipAsync(tar, { level: 9 });
  // The gzip header's OS byte depends on the platform; "unknown" keeps the hash the same everywhere.
  archive[9] = 255;
  const listing: PackageResult['listing'] = [];
  for (const e of sorted) if (e.kind === 'file') listing.push({ path: e.path, size: e.data.length });
  const bytes = listing.reduce((n, f) => n + f.size, 0);
  const sha256 = createHash('sha256').update(archive).digest('hex');
  return { manifest, archive, sha256, files: listing.length, bytes, listing };
}

/** The defaults, then the service's .nimbusignore (gitignore syntax), whose later rules win. */
export function ignoreRules(root: string): Ignore {
  const rules = ignore().add([...DEFAULT_IGNORES]);
  const file = join(root, IGNORE_FILE);
  if (isFile(file)) rules.add(readFileSync(file, 'utf8'));
  return rules;
}

/** A JavaScript handler left out by an ignore rule would only be refused by the server, less clearly. */
function checkHandlersKept(root: string, manifest: Manifest, entries: Map<string, Entry>): void {
  for (const fn of manifest.functions) {
    const modulePath = fn.handler.slice(0, fn.handler.indexOf('.', fn.handler.lastIndexOf('/') + 1));
    const candidates = ['', ...JS_EXT].map((ext) => toPosix(modulePath + ext));
    if (candidates.some((p) => entries.get(p)?.kind === 'file')) continue;
    const onDisk = candidates.find((p) => isFile(join(root, p)));
    if (onDisk) {
      throw new PackageError(
        `${onDisk}, the handler of function "${fn.name}", is left out by ${IGNORE_FILE} or a default ignore rule`,
        `add "!${onDisk}" to ${IGNORE_FILE}, or move the handler`,
      );
    }
  }
}

/** Bundles each distinct TypeScript handler module; returns archive path → bundled code. */
async function bundleHandlers(
  root: string,
  manifest: Manifest,
  onProgress?: (step: string) => void,
): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const seen = new Set<string>();
  for (const fn of manifest.functions) {
    // Like AWS: the module ends at the first "." after the last "/" ("lib/api.v1.fn" is lib/api, export v1.fn).
    const modulePath = fn.handler.slice(0, fn.handler.indexOf('.', fn.handler.lastIndexOf('/') + 1));
    if (seen.has(modulePath)) continue;
    seen.add(modulePath);
    const ts = TS_EXT.map((ext) => modulePath + ext).find((p) => isFile(join(root, p)));
    if (!ts) {
      if (JS_EXT.some((ext) => isFile(join(root, modulePath + ext)))) continue;
      throw new PackageError(
        `function "${fn.name}": handler "${fn.handler}" needs ${modulePath}.js (or .mjs, .cjs, .ts, .mts, .cts), and none exists in ${displayPath(root)}`,
        `create the file or fix "handler" in ${MANIFEST}`,
      );
    }
    const ext = ts.slice(ts.lastIndexOf('.'));
    const outExt = ext === '.mts' ? '.mjs' : ext === '.cts' ? '.cjs' : '.js';
    const typeModule = packageTypeIsModule(root, dirname(join(root, ts)));
    const format = ext === '.mts' || (ext === '.ts' && typeModule) ? 'esm' : 'cjs';
    const outPath = modulePath + outExt;
    onProgress?.(`Bundling ${ts}…`);
    if (isFile(join(root, outPath))) onProgress?.(`${outPath} is replaced by the bundle of ${ts}`);
    out.set(toPosix(outPath), await bundleOne(root, ts, outPath, format));
  }
  return out;
}

async function bundleOne(
  root: string,
  entry: string,
  outPath: string,
  format: 'esm' | 'cjs',
): Promise<Buffer> {
  try {
    const result = await build({
      absWorkingDir: root,
      entryPoints: [join(root, entry)],
      outfile: join(root, outPath),
      write: false,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format,
      // Inline keeps one file per handler; sourcesContent is dropped because stack traces need only mappings.
      sourcemap: 'inline',
      sourcesContent: false,
      logLevel: 'silent',
      plugins: [providedSdk(realpathSync(root))],
      // Bundled CommonJS dependencies call require() for builtins, which an ES module lacks (esbuild renames
      // any user-declared `require`, so this cannot collide).
      banner:
        format === 'esm'
          ? {
              js: 'import { createRequire as __nimbusCreateRequire } from "node:module";\nconst require = __nimbusCreateRequire(import.meta.url);',
            }
          : {},
    });
    const file = result.outputFiles?.find((f) => !f.path.endsWith('.map'));
    if (!file) throw new PackageError(`bundling ${entry} produced no output`);
    return Buffer.from(file.contents);
  } catch (e) {
    if (e instanceof PackageError) throw e;
    const first = (e as Partial<BuildFailure>).errors?.[0];
    if (first) throw new PackageError(`cannot bundle ${entry}: ${formatMessage(first)}`, bundleHint(first));
    throw e;
  }
}

/**
 * The SDK packages the runtime provides stay imports, as Lambda users expect (their bundles leave out
 * `@aws-sdk/*`), unless the service installed its own copy: then that version is bundled and wins. Only the
 * service's own node_modules count, not a parent folder's (a monorepo's, or Nimbus's in its tests).
 */
function providedSdk(root: string): Plugin {
  return {
    name: 'nimbus-provided-sdk',
    setup(b) {
      b.onResolve({ filter: /^@aws-sdk\// }, (args) =>
        isProvidedSdk(args.path) && !installedWithin(root, args.resolveDir, args.path)
          ? { path: args.path, external: true }
          : undefined,
      );
    },
  };
}

/** Whether node_modules/<name> exists in dir or a parent of it up to root. */
function installedWithin(root: string, dir: string, name: string): boolean {
  for (let d = dir; isInside(root, d); d = dirname(d)) {
    if (existsSync(join(d, 'node_modules', name, 'package.json'))) return true;
    if (d === root) return false;
  }
  return false;
}

function formatMessage(m: Message): string {
  const where = m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ` : '';
  return `${where}${m.text}`;
}

function bundleHint(m: Message): string {
  return /Could not resolve/.test(m.text)
    ? 'install the package in the service folder (npm install) or fix the import path'
    : 'fix the error in the source file';
}

/**
 * Whether Node will read `<dir>/x.js` as an ES module: the nearest package.json from dir up to the service's
 * root decides, as it does for Node itself (a handler folder may have its own with "type": "module").
 */
function packageTypeIsModule(root: string, dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    const file = join(d, 'package.json');
    if (isFile(file)) {
      try {
        return (JSON.parse(readFileSync(file, 'utf8')) as { type?: unknown }).type === 'module';
      } catch {
        return false;
      }
    }
    if (d === root || dirname(d) === d) return false;
  }
}

/** Every file, folder and (internal) symlink of the service that no ignore rule leaves out, by archive path. */
function collectEntries(root: string, skip: Set<string>, ignored: Ignore): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const realRoot = realpathSync(root);
  const walk = (absDir: string, rel: string): void => {
    for (const d of readdirSync(absDir, { withFileTypes: true })) {
      const relPath = rel ? `${rel}/${d.name}` : d.name;
      if (isExcluded(relPath, d.name)) continue;
      // A folder is matched with its trailing slash, so "test/" rules see it as one.
      if (relPath !== MANIFEST && ignored.ignores(d.isDirectory() ? `${relPath}/` : relPath)) continue;
      const abs = join(absDir, d.name);
      if (d.isSymbolicLink()) {
        if (skip.has(relPath)) continue;
        entries.set(relPath, {
          kind: 'symlink',
          path: relPath,
          target: checkSymlink(realRoot, root, abs, relPath),
        });
      } else if (d.isDirectory()) {
        entries.set(relPath, { kind: 'dir', path: relPath });
        walk(abs, relPath);
      } else if (d.isFile()) {
        if (!skip.has(relPath))
          entries.set(relPath, { kind: 'file', path: relPath, data: readFileSync(abs) });
      }
      // Sockets, FIFOs and devices have no meaning in a deployment and are left out.
    }
  };
  walk(root, '');
  return entries;
}

/** Never packaged, whatever the ignore rules say: node_modules/.bin, links to binaries of the packages. */
function isExcluded(relPath: string, name: string): boolean {
  return name === '.bin' && (relPath === 'node_modules/.bin' || relPath.endsWith('/node_modules/.bin'));
}

/** The link's target as a relative path, if it stays inside the service; otherwise an error naming it. */
function checkSymlink(realRoot: string, root: string, abs: string, relPath: string): string {
  const target = readlinkSync(abs);
  let real: string;
  try {
    real = realpathSync(abs);
  } catch {
    throw new PackageError(
      `${relPath} is a symlink to ${target}, which does not exist`,
      'remove the broken link or create its target',
    );
  }
  if (!isInside(realRoot, real)) {
    throw new PackageError(
      `${relPath} is a symlink to ${target}, outside the service folder ${displayPath(root)}`,
      'copy the target into the service folder instead of linking to it',
    );
  }
  // A relative target survives being unpacked anywhere; an absolute one would point back at this machine.
  return toPosix(relative(dirname(join(realRoot, relPath)), real)) || '.';
}

function addParentDirs(entries: Map<string, Entry>): void {
  for (const path of [...entries.keys()]) {
    let p = posix.dirname(path);
    while (p !== '.' && !entries.has(p)) {
      entries.set(p, { kind: 'dir', path: p });
      p = posix.dirname(p);
    }
  }
}

function writeTar(entries: Entry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data: HeaderData = {
      path: e.kind === 'dir' ? `${e.path}/` : e.path,
      mode: e.kind === 'dir' ? 0o755 : e.kind === 'symlink' ? 0o777 : 0o644,
      uid: 0,
      gid: 0,
      size: e.kind === 'file' ? e.data.length : 0,
      mtime: FIXED_MTIME,
      type: e.kind === 'dir' ? 'Directory' : e.kind === 'symlink' ? 'SymbolicLink' : 'File',
      linkpath: e.kind === 'symlink' ? e.target : '',
      uname: '',
      gname: '',
    };
    const header = new Header(data);
    if (header.encode()) {
      // Long or non-ASCII paths do not fit the ustar fields: a PAX record before the header carries them.
      blocks.push(
        new Pax({ path: data.path, linkpath: data.linkpath || undefined, mtime: FIXED_MTIME }).encode(),
      );
    }
    blocks.push(header.block!);
    if (e.kind === 'file') {
      blocks.push(e.data);
      const pad = (512 - (e.data.length % 512)) % 512;
      if (pad) blocks.push(Buffer.alloc(pad));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export interface UnpackOptions {
  /** Refuse archives whose content is larger than this when uncompressed (default 1 GiB). */
  maxBytes?: number;
}

export interface UnpackResult {
  files: number;
  bytes: number;
}

/**
 * Extracts an archive from packageService (or any tar.gz) into dest, which should be new or empty. Refuses
 * absolute paths, "..", links leading outside dest and device files; files become 0644 and folders 0755.
 */
export async function unpackArchive(
  archive: Buffer,
  dest: string,
  opts: UnpackOptions = {},
): Promise<UnpackResult> {
  const maxBytes = opts.maxBytes ?? 1024 ** 3;
  let tar: Buffer;
  try {
    // In zlib's thread pool, and every file written asynchronously below: a deploy of a large service must
    // not stall the event loop that serves the gateway (a synchronous 15 MB unpack held it for 1.4 s).
    tar = await gunzipAsync(archive, { maxOutputLength: maxBytes + 1024 * 1024 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PackageError(
      code === 'ERR_BUFFER_TOO_LARGE'
        ? `archive is larger than ${maxBytes} bytes uncompressed`
        : `archive is not a valid gzip file (${(e as Error).message})`,
    );
  }
  mkdirSync(dest, { recursive: true });
  const root = realpathSync(dest);
  // Sandboxes may run as another user: the code must be readable whatever the server's umask.
  chmodSync(root, 0o755);
  const safeDirs = new Set<string>([root]);
  const links: { path: string; target: string }[] = [];
  const hardlinks: { path: string; target: string }[] = [];
  let files = 0;
  let bytes = 0;

  // Folders and files first, links last: no entry can be written through a link from the same archive.
  for (const entry of readTar(tar)) {
    const rel = safeRelPath(entry.path);
    if (rel === '') continue;
    const abs = join(root, ...rel.split('/'));
    switch (entry.type) {
      case 'Directory':
        ensureDir(root, abs, safeDirs);
        break;
      case 'File':
      case 'OldFile':
      case 'ContiguousFile': {
        ensureDir(root, dirname(abs), safeDirs);
        bytes += entry.data.length;
        if (bytes > maxBytes) throw new PackageError(`archive is larger than ${maxBytes} bytes uncompressed`);
        const existing = lstatSafe(abs);
        if (existing?.isDirectory())
          throw new PackageError(`archive path ${rel} is used both as a folder and as a file`);
        if (existing?.isSymbolicLink()) unlinkSync(abs);
        await fsp.writeFile(abs, entry.data, { mode: 0o644 });
        await fsp.chmod(abs, 0o644);
        files++;
        break;
      }
      case 'SymbolicLink':
        links.push({ path: rel, target: entry.linkpath });
        break;
      case 'Link':
        hardlinks.push({ path: rel, target: safeRelPath(entry.linkpath) });
        break;
      default:
        throw new PackageError(`archive entry ${rel} has unsupported type ${entry.type}`);
    }
  }

  // Hard links become copies: a link would share one inode with a file the sandbox may see under two names.
  for (const h of hardlinks) {
    const src = join(root, ...h.target.split('/'));
    if (!lstatSafe(src)?.isFile())
      throw new PackageError(`hard link ${h.path} points to ${h.target}, which is not a file in the archive`);
    const abs = join(root, ...h.path.split('/'));
    ensureDir(root, dirname(abs), safeDirs);
    await fsp.copyFile(src, abs);
    await fsp.chmod(abs, 0o644);
    files++;
  }

  for (const l of links) {
    const abs = join(root, ...l.path.split('/'));
    ensureDir(root, dirname(abs), safeDirs);
    if (isAbsolute(l.target) || !isInside(root, resolve(dirname(abs), l.target))) {
      throw new PackageError(`symlink ${l.path} points outside the archive (${l.target})`);
    }
    if (lstatSafe(abs)) throw new PackageError(`symlink ${l.path} would replace an existing entry`);
    symlinkSync(l.target, abs);
  }
  // A link can still escape through another link ("a" -> ".", "b" -> "a/../x"); the real path settles it.
  for (const l of links) {
    const abs = join(root, ...l.path.split('/'));
    let real: string | undefined;
    try {
      real = realpathSync(abs);
    } catch {
      real = undefined;
    }
    if (real === undefined || !isInside(root, real)) {
      for (const created of links) unlinkSync(join(root, ...created.path.split('/')));
      throw new PackageError(
        real === undefined
          ? `symlink ${l.path} points to ${l.target}, which is not in the archive`
          : `symlink ${l.path} points outside the archive (${l.target})`,
      );
    }
  }
  return { files, bytes };
}

interface TarEntry {
  path: string;
  type: string;
  linkpath: string;
  data: Buffer;
}

function* readTar(buf: Buffer): Generator<TarEntry> {
  let off = 0;
  let ex: HeaderData | undefined;
  let gex: HeaderData | undefined;
  while (off + 512 <= buf.length) {
    const h = new Header(buf, off, ex, gex);
    if (h.nullBlock) return;
    if (!h.cksumValid) throw new PackageError(`archive is corrupt (bad header checksum at byte ${off})`);
    const size = h.size ?? 0;
    const start = off + 512;
    const end = start + size;
    if (end > buf.length) throw new PackageError('archive is truncated');
    const body = buf.subarray(start, end);
    off = start + Math.ceil(size / 512) * 512;
    switch (h.type) {
      case 'ExtendedHeader':
        ex = Pax.parse(body.toString('utf8'), ex, false);
        continue;
      case 'GlobalExtendedHeader':
        gex = Pax.parse(body.toString('utf8'), gex, true);
        continue;
      case 'NextFileHasLongPath':
      case 'OldGnuLongPath':
        ex = { ...ex, path: body.toString('utf8').replace(/\0.*/s, '') };
        continue;
      case 'NextFileHasLongLinkpath':
        ex = { ...ex, linkpath: body.toString('utf8').replace(/\0.*/s, '') };
        continue;
    }
    ex = undefined;
    yield { path: h.path ?? '', type: h.type, linkpath: h.linkpath ?? '', data: body };
  }
}

/** "a/b/c" for a safe entry path ("" for the root itself); an error for absolute paths and "..". */
function safeRelPath(p: string): string {
  if (p.includes('\0') || p.includes('\\') || p.startsWith('/') || /^[A-Za-z]:/.test(p)) {
    throw new PackageError(`archive entry "${p}" has an absolute or unsafe path`);
  }
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw new PackageError(`archive entry "${p}" leads outside the archive ("..")`);
  return parts.join('/');
}

/** Creates a folder (0755) whose every ancestor inside root is a real folder, never a link. */
function ensureDir(root: string, abs: string, safe: Set<string>): void {
  if (safe.has(abs)) return;
  const parent = dirname(abs);
  if (parent !== abs) ensureDir(root, parent, safe);
  const st = lstatSafe(abs);
  if (!st) {
    mkdirSync(abs, { mode: 0o755 });
  } else if (!st.isDirectory()) {
    throw new PackageError(
      `archive path ${relative(root, abs)} is used both as a file or link and as a folder`,
    );
  }
  chmodSync(abs, 0o755);
  safe.add(abs);
}

function lstatSafe(p: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function isInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

function toPosix(p: string): string {
  return p.split(sep).join('/');
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function displayPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

// The deploy-time check: every handler of a deploy is loaded in a sandbox (DefaultInvoker.checkLoad) before
// the new versions go live, and each failure becomes one line a user can act on. The load itself happens in
// the sandbox; the host only reads the extracted files to name where a syntax error is (Node 20 reports no
// position for one in an ES module) and to look for the legacy SDK.
import { promises as fsp, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { build, type BuildFailure } from 'esbuild';
import { closest, distance } from 'fastest-levenshtein';
import type { FunctionConfig } from '../config/manifest.js';
import type { LoadCheck } from '../invoker/types.js';
import { handlerWarning } from './handler-warnings.js';

/** One function that did not load, in a line that names it. */
export interface LoadFailure {
  function: string;
  message: string;
}

/** The deploy was refused because handlers did not load; nothing of it was applied. */
export class LoadCheckError extends Error {
  override name = 'LoadCheckError';
  constructor(readonly failures: LoadFailure[]) {
    super(
      `${failures.length === 1 ? '1 function' : `${failures.length} functions`} failed to load in a sandbox: ` +
        failures.map((f) => `${f.function}: ${f.message}`).join('; '),
    );
  }
}

/** Loads are checked this many at a time: each holds a stem cell for the length of its module's init. */
const PARALLEL = 4;

/**
 * Loads each function (those with the same handler and settings once) and throws a LoadCheckError naming every
 * one that failed; when all loaded, answers the warnings their handlers' shapes call for (handler-warnings.ts).
 * `hostDir` is the extracted code as the host sees it.
 */
export async function checkLoads(
  functions: readonly FunctionConfig[],
  hostDir: string,
  load: (f: FunctionConfig) => Promise<LoadCheck>,
): Promise<string[]> {
  const byConfig = new Map<string, Promise<LoadCheck>>();
  const queue = [...functions];
  const results = new Map<string, LoadCheck>();
  const worker = async (): Promise<void> => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      // The name is part of the environment a module sees (AWS_LAMBDA_FUNCTION_NAME): only it may differ.
      const key = JSON.stringify({ ...f, name: '' });
      let p = byConfig.get(key);
      if (!p) byConfig.set(key, (p = load(f)));
      results.set(f.name, await p);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, functions.length) }, worker));
  const failures: LoadFailure[] = [];
  for (const f of functions) {
    const r = results.get(f.name)!;
    if (!r.ok) failures.push({ function: f.name, message: await describeFailure(r, f.handler, hostDir) });
  }
  if (failures.length > 0) throw new LoadCheckError(failures);
  const warnings: string[] = [];
  for (const f of functions) {
    const r = results.get(f.name)!;
    if (!r.ok || !r.handler) continue;
    const warning = handlerWarning(r.handler, handlerName(f.handler, hostDir), f.routes.length > 0);
    if (warning) warnings.push(`function ${f.name}: ${warning}`);
  }
  return warnings;
}

/** "src/api.js's handler": the export as the user wrote it, in the file the loader picked. */
function handlerName(handler: string, hostDir: string): string {
  const base = handler.slice(handler.lastIndexOf('/') + 1);
  const path = base.slice(base.indexOf('.') + 1);
  const file = moduleFile(hostDir, handler);
  return file ? `${file}'s ${path}` : `handler ${handler}`;
}

/** What went wrong in one line: where, what, and for a misspelt export the one meant. */
export async function describeFailure(
  check: Exclude<LoadCheck, { ok: true }>,
  handler: string,
  hostDir: string,
): Promise<string> {
  if ('environment' in check) return `its environment cannot be resolved: ${check.environment}`;
  const { result, codeDir } = check;
  const local = (s: string): string => localPaths(s, codeDir);
  const err = result.kind === 'requeue' ? undefined : result.error;
  switch (result.kind) {
    case 'requeue':
      return 'the sandbox process exited before it loaded the handler';
    case 'timeout':
      return "loading the module took longer than the function's timeout; module init must finish within it";
    case 'oom':
      return "the sandbox ran out of memory while loading the module; raise the function's memory";
    default:
      break;
  }
  const type = err!.errorType;
  const message = err!.errorMessage;
  if (type === 'Runtime.UserCodeSyntaxError') {
    const where = syntaxPositionFromTrace(err!.trace, codeDir) ?? (await locateSyntaxError(hostDir, handler));
    const text = firstLine(message).replace(/^SyntaxError: /, '');
    return `${where ? `${where}: ` : ''}SyntaxError: ${text}`;
  }
  if (type === 'Runtime.HandlerNotFound') {
    return missingExport(handler, hostDir, result.kind === 'init' ? result.exports : undefined, message);
  }
  if (type === 'Runtime.ImportModuleError') return missingModule(local(message));
  if (type === 'Runtime.MalformedHandlerName') return `handler "${handler}" is malformed: ${message}`;
  const at = userFrame(err!.trace, codeDir);
  const what = `${type === 'Error' ? 'Error' : type}: ${local(firstLine(message))}`;
  const during = result.kind === 'init' ? 'module init threw' : 'the process died while loading the module:';
  return `${during} ${what}${at ? ` (${at})` : ''}`;
}

function missingExport(
  handler: string,
  hostDir: string,
  exports: string[] | undefined,
  fallback: string,
): string {
  const base = handler.slice(handler.lastIndexOf('/') + 1);
  const path = base.slice(base.indexOf('.') + 1);
  const file = moduleFile(hostDir, handler);
  if (!file || exports === undefined) return `handler ${fallback}`;
  const head = `handler '${path}' is not exported by ${file}`;
  if (exports.length === 0) return `${head}, which exports no functions`;
  const wanted = path.split('.')[0]!;
  const near = closest(wanted, exports);
  // Close enough to be a slip of the keyboard, or the only function there is.
  if (distance(wanted, near) <= Math.max(2, Math.floor(wanted.length / 3)) || exports.length === 1) {
    return `${head}; did you mean '${near}'?`;
  }
  const listed = exports.slice(0, 5).map((n) => `'${n}'`);
  return `${head}; it exports ${listed.join(', ')}${exports.length > 5 ? ', ...' : ''}`;
}

function missingModule(message: string): string {
  // "Error: Cannot find module 'x'\nRequire stack:\n- src/a.js\n- /var/runtime/bootstrap.cjs" (CommonJS) or
  // "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x' imported from src/a.mjs" (ES modules).
  const lines = message.split('\n');
  const first = lines[0]!.replace(/^Error(?: \[\w+\])?: /, '');
  const requiredBy = lines.find((l) => l.startsWith('- ') && !l.startsWith('- /'))?.slice(2);
  const name = /Cannot find (?:module|package) '([^']+)'/.exec(first)?.[1];
  const v2 =
    name === 'aws-sdk' || name?.startsWith('aws-sdk/')
      ? '; the AWS SDK v2 (aws-sdk) is not provided (nor on Lambda since Node.js 18): install it in the service folder or use the v3 clients (@aws-sdk/*)'
      : name && !name.startsWith('.') && !name.startsWith('/')
        ? '; install it in the service folder (npm install) so it is uploaded, or bundle it'
        : '';
  return `${first.charAt(0).toLowerCase()}${first.slice(1)}${requiredBy ? ` (required by ${requiredBy})` : ''}${v2}`;
}

/** CommonJS syntax errors carry "file:line", the source line and a caret under the column. */
function syntaxPositionFromTrace(trace: string[], codeDir: string): string | undefined {
  const m = /^(.+):(\d+)$/.exec(trace[0] ?? '');
  if (!m) return undefined;
  const caret = trace[2] ?? '';
  const col = /^\s*\^/.test(caret) ? caret.indexOf('^') + 1 : undefined;
  return `${localPaths(m[1]!, codeDir)}:${m[2]}${col ? `:${col}` : ''}`;
}

/**
 * Node 20 gives no position for a syntax error in an ES module: esbuild parses the handler's module and what it
 * imports from the service (packages left out) and names the first error's file, line and column.
 */
async function locateSyntaxError(hostDir: string, handler: string): Promise<string | undefined> {
  const file = moduleFile(hostDir, handler);
  if (!file) return undefined;
  try {
    await build({
      absWorkingDir: hostDir,
      entryPoints: [join(hostDir, file)],
      bundle: true,
      write: false,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      logLevel: 'silent',
    });
    return undefined;
  } catch (e) {
    const errors = (e as Partial<BuildFailure>).errors ?? [];
    const loc = errors.find((m) => m.location && !/^Could not resolve/.test(m.text))?.location;
    return loc ? `${loc.file.split(sep).join('/')}:${loc.line}:${loc.column + 1}` : undefined;
  }
}

/** The module file a handler names, as the runtime's loader would pick it (relative to the service). */
function moduleFile(hostDir: string, handler: string): string | undefined {
  const slash = handler.lastIndexOf('/');
  const dot = handler.indexOf('.', slash + 1);
  const base = handler.slice(0, dot < 0 ? undefined : dot);
  for (const ext of ['', '.js', '.mjs', '.cjs']) {
    try {
      if (statSync(join(hostDir, base + ext)).isFile()) return base + ext;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** The first stack frame in the function's own code, as "file:line:column" relative to the service. */
function userFrame(trace: string[], codeDir: string): string | undefined {
  for (const line of trace) {
    const m = /^\s+at (?:.*\()?(?:file:\/\/)?([^()\s]+):(\d+):(\d+)\)?$/.exec(line);
    if (!m) continue;
    const file = m[1]!;
    if (!file.startsWith(`${codeDir}/`) || file.includes('/node_modules/')) continue;
    return `${file.slice(codeDir.length + 1)}:${m[2]}:${m[3]}`;
  }
  return undefined;
}

function localPaths(s: string, codeDir: string): string {
  return s.split(`file://${codeDir}/`).join('').split(`${codeDir}/`).join('');
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

/** Files larger than this are not read for the legacy SDK (a bundle that large is minified past reading). */
const MAX_SCAN_BYTES = 4 * 1024 * 1024;
const MAX_SCAN_FILES = 2000;
const V2_REQUIRE =
  /\brequire\(\s*['"]aws-sdk(?:\/[^'"]*)?['"]\s*\)|\bfrom\s*['"]aws-sdk(?:\/[^'"]*)?['"]|\bimport\(\s*['"]aws-sdk(?:\/[^'"]*)?['"]\s*\)/;

/**
 * Warnings for mistakes a load does not reveal. Today: the AWS SDK v2 (`aws-sdk`) used by the service's code
 * but not uploaded with it. A require at module scope already fails the load; one inside the handler would
 * fail only its first invocation.
 */
export async function deployWarnings(hostDir: string): Promise<string[]> {
  if (await exists(join(hostDir, 'node_modules', 'aws-sdk', 'package.json'))) return [];
  const users: string[] = [];
  let seen = 0;
  const walk = async (rel: string): Promise<void> => {
    for (const ent of await fsp.readdir(join(hostDir, rel), { withFileTypes: true })) {
      if (seen >= MAX_SCAN_FILES) return;
      const p = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        if (ent.name !== 'node_modules') await walk(p);
      } else if (ent.isFile() && /\.[cm]?js$/.test(ent.name)) {
        seen++;
        const file = join(hostDir, p);
        if ((await fsp.stat(file)).size > MAX_SCAN_BYTES) continue;
        if (V2_REQUIRE.test(await fsp.readFile(file, 'utf8'))) users.push(p);
      }
    }
  };
  await walk('');
  if (users.length === 0) return [];
  const named = users.slice(0, 3).join(', ') + (users.length > 3 ? `, and ${users.length - 3} more` : '');
  return [
    `${named} ${users.length === 1 ? 'uses' : 'use'} the AWS SDK v2 (aws-sdk), which is not in the uploaded service and is not provided (nor on Lambda since Node.js 18); install it in the service folder or move to the v3 clients (@aws-sdk/*)`,
  ];
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.stat(p);
    return true;
  } catch {
    return false;
  }
}

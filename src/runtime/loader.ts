// Resolves and loads the function's handler the way RIC (AWS's Node.js runtime) does, so a handler string and a
// code layout that work on AWS work here, and fail with the same Runtime.* error types when they do not.
import { existsSync, readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import type { HandlerEntry } from '../protocol/messages.js';
import { splitHandler, type HandlerParts } from '../protocol/handler.js';
import { HandlerNotFound, ImportModuleError, MalformedHandlerName, UserCodeSyntaxError } from './errors.js';

export type Handler = (event: unknown, context: unknown, callback: unknown) => unknown;

export interface LoadedHandler {
  fn: Handler;
  /** Declared `async`: RIC treats a never-settling promise from such a handler as an error, not a null result. */
  isAsync: boolean;
  /** What became of the code cache the loader was given, if it was given one. */
  codeCache?: 'accepted' | 'rejected';
}

/** The V8 code cache of a CommonJS entry: one to use, or a request to produce one before the code runs. */
export interface CodeCacheOptions {
  data?: Buffer;
  /** Called with the cache (or undefined when the entry cannot have one) before any of the function's code runs. */
  produce?: (data: Buffer | undefined) => Promise<void>;
}

export function parseHandler(full: string): HandlerParts {
  const parts = splitHandler(full);
  if ('malformed' in parts) throw new MalformedHandlerName(parts.malformed);
  return parts;
}

let runtimeRequire: NodeJS.Require | undefined;
let runtimeModule: Module | undefined;

/**
 * Made while the stem cell boots, so a cold start does not pay for it. `runtimeFile` (the bootstrap's own path)
 * is the parent of the function's module, so "Require stack" in a not-found message names the runtime, as AWS's
 * does, instead of some file in the function.
 */
export function prepareLoader(runtimeFile: string): void {
  runtimeRequire ??= createRequire(runtimeFile);
  if (!runtimeModule) {
    runtimeModule = new Module(runtimeFile);
    runtimeModule.filename = runtimeFile;
    runtimeModule.paths = nodeModulePaths(path.dirname(runtimeFile));
  }
}

export interface LoadOptions {
  /** The module file and format as the host resolved them; without it the loader looks in RIC's order. */
  entry?: HandlerEntry;
  cache?: CodeCacheOptions;
  /** The entry's text, instead of reading entry.file: the runtime's own rehearsal handler (bootstrap.ts). */
  source?: string;
}

export async function loadHandler(
  codeDir: string,
  full: string,
  runtimeFile: string,
  opts: LoadOptions = {},
): Promise<LoadedHandler> {
  const { moduleRoot, moduleName, handlerPath } = parseHandler(full);
  prepareLoader(runtimeFile);
  const loaded = { codeCache: undefined as LoadedHandler['codeCache'] };
  const userApp = await loadModule(codeDir, moduleRoot, moduleName, opts, loaded);

  let fn = findIn(userApp, handlerPath);
  // An ES module written as `export default { handler }` (or CJS seen through import()) nests it under default.
  if (fn === undefined && typeof userApp === 'object' && userApp !== null && 'default' in userApp) {
    fn = findIn((userApp as { default: unknown }).default, handlerPath);
  }
  if (!fn) throw withExports(new HandlerNotFound(`${full} is undefined or not exported`), userApp);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${full} is not a function`);
  return {
    fn: fn as Handler,
    isAsync: isAsyncFunction(fn),
    ...(loaded.codeCache ? { codeCache: loaded.codeCache } : {}),
  };
}

async function loadModule(
  codeDir: string,
  moduleRoot: string,
  moduleName: string,
  { entry, cache, source }: LoadOptions,
  loaded: { codeCache: LoadedHandler['codeCache'] },
): Promise<unknown> {
  const req = runtimeRequire as NodeJS.Require;
  try {
    if (entry) {
      if (entry.format === 'module') {
        await cache?.produce?.(undefined);
        return await importFile(entry.file);
      }
      return await loadCommonJs(entry.file, source, cache, loaded);
    }
    await cache?.produce?.(undefined);
    const base = path.resolve(codeDir, moduleRoot, moduleName);
    // RIC's order: exact path (file or directory) by require; then .js by the package scope's "type"; then
    // .mjs by import; .cjs by require; last, Node's own resolution (a package in node_modules).
    if (existsSync(base)) return req(base);
    const esmScope = scopeIsModule(path.dirname(base));
    if (existsSync(base + '.js')) return esmScope ? await importFile(base + '.js') : req(base + '.js');
    if (existsSync(base + '.mjs')) return await importFile(base + '.mjs');
    if (existsSync(base + '.cjs')) return req(base + '.cjs');
    let resolved: string;
    try {
      resolved = req.resolve(moduleName, { paths: [codeDir, path.resolve(codeDir, moduleRoot)] });
    } catch (err) {
      // Under the permission model, probing node_modules outside the code dir is denied: that is "not found".
      if (errorCode(err) === 'ERR_ACCESS_DENIED') throw notFound(moduleName, err);
      throw err;
    }
    return req(resolved);
  } catch (err) {
    if (err instanceof SyntaxError) throw new UserCodeSyntaxError(err);
    const code = errorCode(err);
    // RIC maps only the CJS code; a missing import of an ES module is the same mistake, so it maps both.
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') throw new ImportModuleError(err);
    throw err;
  }
}

const WRAPPER_PARAMS = ['exports', 'require', 'module', '__filename', '__dirname'];
const SOURCE_MAP = /\/[/*][#@]\s*sourceMappingURL=/;
const DYNAMIC_IMPORT = /\bimport\s*\(/;

/**
 * A CommonJS entry the host resolved: compiled here as Node's loader compiles it (the same wrapper parameters,
 * module object, cache entry and require), which is what lets V8's code cache be used (Node's loader takes
 * none) and skips the loader's package scope walk. A file with a source map or a hashbang goes through
 * require() as before: Node registers source maps (--enable-source-maps) only for what its loader compiles.
 */
async function loadCommonJs(
  file: string,
  source: string | undefined,
  cache: CodeCacheOptions | undefined,
  loaded: { codeCache: LoadedHandler['codeCache'] },
): Promise<unknown> {
  const req = runtimeRequire as NodeJS.Require;
  let src = source ?? readFileSync(file, 'utf8');
  if (src.charCodeAt(0) === 0xfeff) src = src.slice(1);
  if (src.startsWith('#!') || SOURCE_MAP.test(src.slice(-64 * 1024))) {
    await cache?.produce?.(undefined);
    return req(file);
  }
  type Compiled = ReturnType<typeof vm.compileFunction> & {
    cachedData?: Buffer;
    cachedDataRejected?: boolean;
  };
  let fn: Compiled;
  try {
    fn = vm.compileFunction(src, WRAPPER_PARAMS, {
      filename: file,
      ...(cache?.data ? { cachedData: cache.data } : {}),
      ...(cache?.produce ? { produceCachedData: true } : {}),
      // Only when the code has a dynamic import(): the option is experimental and warns once when used.
      ...(DYNAMIC_IMPORT.test(src)
        ? { importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER }
        : {}),
    }) as Compiled;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    // Not CommonJS after all: Node's require detects ES module syntax in a .js file outside a "type" scope, and
    // reports real syntax errors as it always has.
    await cache?.produce?.(undefined);
    return req(file);
  }
  if (cache?.data) loaded.codeCache = fn.cachedDataRejected === true ? 'rejected' : 'accepted';
  if (cache?.produce) await cache.produce(fn.cachedData);
  const mod = new Module(file, runtimeModule);
  mod.filename = file;
  mod.paths = nodeModulePaths(path.dirname(file));
  const cjs = Module as unknown as { _cache: Record<string, Module> };
  cjs._cache[file] = mod;
  let threw = true;
  try {
    fn.call(mod.exports, mod.exports, requireFor(mod), mod, file, path.dirname(file));
    threw = false;
  } finally {
    // As Node's loader: a module whose evaluation threw is not left in the cache.
    if (threw) delete cjs._cache[file];
  }
  mod.loaded = true;
  return mod.exports;
}

/** The require a module's code gets, as Node's makeRequireFunction builds it. */
function requireFor(mod: Module): NodeJS.Require {
  const internals = Module as unknown as {
    _resolveFilename(request: string, parent: Module, isMain: boolean, options?: unknown): string;
    _resolveLookupPaths(request: string, parent: Module): string[] | null;
    _extensions: NodeJS.RequireExtensions;
    _cache: NodeJS.Dict<NodeModule>;
  };
  const require = ((id: string) => mod.require(id)) as NodeJS.Require;
  const resolve = ((request: string, options?: { paths?: string[] }) =>
    internals._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
  resolve.paths = (request: string) => internals._resolveLookupPaths(request, mod);
  require.resolve = resolve;
  require.main = process.mainModule;
  require.extensions = internals._extensions;
  require.cache = internals._cache;
  return require;
}

/** Forgets a module compiled by loadCommonJs (the rehearsal's): its cache entry and its place among children. */
export function forgetModule(file: string): void {
  const cjs = Module as unknown as { _cache: Record<string, Module> };
  const mod = cjs._cache[file];
  delete cjs._cache[file];
  const children = runtimeModule?.children;
  const at = mod && children ? children.indexOf(mod) : -1;
  if (at >= 0) children?.splice(at, 1);
}

function nodeModulePaths(dir: string): string[] {
  return (Module as unknown as { _nodeModulePaths(d: string): string[] })._nodeModulePaths(dir);
}

function importFile(file: string): Promise<unknown> {
  // A real dynamic import (esbuild keeps it for target node20), so ES modules and top-level await work.
  return import(pathToFileURL(file).href) as Promise<unknown>;
}

/**
 * Whether .js files in `dir` are ES modules: the nearest package.json's "type", as RIC decides it. Only read
 * once per instance. Unreadable directories (the sandbox denies reads outside the code dir) count as absent.
 */
function scopeIsModule(dir: string): boolean {
  for (let d = dir; ; d = path.dirname(d)) {
    if (path.basename(d) === 'node_modules') return false;
    const pj = path.join(d, 'package.json');
    let text: string | undefined;
    try {
      text = readFileSync(pj, 'utf8');
    } catch {
      text = undefined;
    }
    if (text !== undefined) {
      try {
        return (JSON.parse(text) as { type?: unknown }).type === 'module';
      } catch (err) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, err);
        return false;
      }
    }
    if (path.dirname(d) === d) return false;
  }
}

/**
 * The module's function-valued exports (those under `default` too), kept on the error for a deploy's check to
 * suggest the one meant. Not enumerable: the error's JSON in an "Invoke Error" log line stays AWS's.
 */
function withExports(err: HandlerNotFound, userApp: unknown): HandlerNotFound {
  const names = new Set<string>();
  const add = (o: unknown): void => {
    if (o === null || (typeof o !== 'object' && typeof o !== 'function')) return;
    try {
      for (const k of Object.keys(o)) {
        if (typeof (o as Record<string, unknown>)[k] === 'function') names.add(k);
      }
    } catch {
      // a getter of the user's threw: no suggestions
    }
  };
  add(userApp);
  if (typeof userApp === 'object' && userApp !== null && 'default' in userApp) {
    add((userApp as { default: unknown }).default);
  }
  Object.defineProperty(err, 'exportNames', { value: [...names], enumerable: false });
  return err;
}

/** What withExports kept on a HandlerNotFound, if anything. */
export function exportNamesOf(err: unknown): string[] | undefined {
  const v =
    typeof err === 'object' && err !== null ? (err as { exportNames?: unknown }).exportNames : undefined;
  return Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string') : undefined;
}

function findIn(root: unknown, handlerPath: string): unknown {
  let v = root;
  for (const key of handlerPath.split('.')) {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

function isAsyncFunction(fn: unknown): boolean {
  try {
    return (fn as { constructor?: { name?: unknown } }).constructor?.name === 'AsyncFunction';
  } catch {
    return false;
  }
}

function errorCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function notFound(moduleName: string, cause: unknown): Error {
  return Object.assign(new Error(`Cannot find module '${moduleName}'`, { cause }), {
    code: 'MODULE_NOT_FOUND',
  });
}

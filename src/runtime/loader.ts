// Resolves and loads the function's handler the way RIC (AWS's Node.js runtime) does, so a handler string and a
// code layout that work on AWS work here, and fail with the same Runtime.* error types when they do not.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HandlerNotFound, ImportModuleError, MalformedHandlerName, UserCodeSyntaxError } from './errors.js';

export type Handler = (event: unknown, context: unknown, callback: unknown) => unknown;

export interface LoadedHandler {
  fn: Handler;
  /** Declared `async`: RIC treats a never-settling promise from such a handler as an error, not a null result. */
  isAsync: boolean;
}

interface ParsedHandler {
  /** "lib/" for "lib/api.v1.fn"; may be "" or absolute. */
  moduleRoot: string;
  moduleName: string;
  /** "v1.fn": a property path into the module's exports. */
  handlerPath: string;
}

export function parseHandler(full: string): ParsedHandler {
  if (full.includes('..')) {
    throw new MalformedHandlerName(
      `'${full}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const slash = full.lastIndexOf('/');
  const base = full.slice(slash + 1);
  const dot = base.indexOf('.');
  if (dot < 0) throw new MalformedHandlerName('Bad handler');
  return {
    moduleRoot: full.slice(0, slash + 1),
    moduleName: base.slice(0, dot),
    handlerPath: base.slice(dot + 1),
  };
}

/**
 * @param runtimeFile the bootstrap's own path: the parent for require(), so "Require stack" in a not-found
 *   message names the runtime, as AWS's does, instead of some file in the function.
 */
export async function loadHandler(
  codeDir: string,
  full: string,
  runtimeFile: string,
): Promise<LoadedHandler> {
  const { moduleRoot, moduleName, handlerPath } = parseHandler(full);
  const userApp = await loadModule(codeDir, moduleRoot, moduleName, createRequire(runtimeFile));

  let fn = findIn(userApp, handlerPath);
  // An ES module written as `export default { handler }` (or CJS seen through import()) nests it under default.
  if (fn === undefined && typeof userApp === 'object' && userApp !== null && 'default' in userApp) {
    fn = findIn((userApp as { default: unknown }).default, handlerPath);
  }
  if (!fn) throw withExports(new HandlerNotFound(`${full} is undefined or not exported`), userApp);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${full} is not a function`);
  return { fn: fn as Handler, isAsync: isAsyncFunction(fn) };
}

async function loadModule(
  codeDir: string,
  moduleRoot: string,
  moduleName: string,
  req: NodeJS.Require,
): Promise<unknown> {
  const base = path.resolve(codeDir, moduleRoot, moduleName);
  try {
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

// The gateway's route table, with API Gateway HTTP API semantics: at each path segment a static segment
// beats {param}, which beats {proxy+}; on one path an exact method beats ANY. A table is immutable: on
// deploy/remove build a new Router (its constructor also rejects conflicting routes) and swap the reference.
import type { Route } from '../config/manifest.js';

export interface RouteBinding {
  functionName: string;
  route: Route;
}

export interface RouteMatch {
  functionName: string;
  route: Route;
  /** "GET /items/{id}", as API Gateway reports it in routeKey. */
  routeKey: string;
  /** URL-decoded values by parameter name; undefined when the route has no parameters. */
  pathParameters: Record<string, string> | undefined;
}

/** Two bindings claim the same method and path shape (parameter names aside). */
export class RouteConflictError extends Error {
  override name = 'RouteConflictError';
  constructor(
    readonly routeKey: string,
    readonly functionName: string,
    readonly otherFunctionName: string,
  ) {
    super(
      `route "${routeKey}" of function "${functionName}" is already used by function "${otherFunctionName}"`,
    );
  }
}

interface Entry {
  functionName: string;
  route: Route;
  routeKey: string;
  /** Names of the {params} on the way to this entry, in path order (the greedy one last). */
  paramNames: string[];
}

/** Entries keyed by method, 'ANY' included. */
type MethodTable = Map<string, Entry>;

interface TrieNode {
  statics: Map<string, TrieNode> | undefined;
  param: TrieNode | undefined;
  /** Routes whose {name+} starts at this node's next segment. */
  greedy: MethodTable | undefined;
  /** Routes that end exactly at this node. */
  end: MethodTable | undefined;
}

const newNode = (): TrieNode => ({ statics: undefined, param: undefined, greedy: undefined, end: undefined });

export class Router {
  private readonly root = newNode();
  /** Whole-path lookup for routes without parameters: the common case skips splitting the path. */
  private readonly exact = new Map<string, MethodTable>();
  readonly size: number;

  constructor(bindings: readonly RouteBinding[]) {
    for (const b of bindings) this.add(b);
    this.size = bindings.length;
  }

  /** The most specific route for the request, or undefined (unknown path, or no route for this method). */
  match(method: string, path: string): RouteMatch | undefined {
    if (path.charCodeAt(0) !== 47 /* / */) return undefined;
    const exact = this.exact.get(path);
    if (exact) {
      const e = exact.get(method) ?? exact.get('ANY');
      if (e)
        return {
          functionName: e.functionName,
          route: e.route,
          routeKey: e.routeKey,
          pathParameters: undefined,
        };
    }
    // segs[0] is the empty string before the leading slash; "/" gives ['', ''], matching the route "/".
    const segs = path.split('/');
    return walk(this.root, segs, 1, method, []);
  }

  private add(b: RouteBinding): void {
    const { method, path } = b.route;
    const routeKey = `${method} ${path}`;
    const segs = path.split('/');
    const paramNames: string[] = [];
    let node = this.root;
    let table: MethodTable | undefined;
    for (let i = 1; i < segs.length; i++) {
      const seg = segs[i]!;
      const param = seg.length > 2 && seg.charCodeAt(0) === 123 /* { */ && seg.endsWith('}');
      if (param && seg.endsWith('+}')) {
        if (i !== segs.length - 1)
          throw new Error(`greedy parameter ${seg} must be the last segment of "${routeKey}"`);
        paramNames.push(seg.slice(1, -2));
        table = node.greedy ??= new Map();
        break;
      }
      if (param) {
        paramNames.push(seg.slice(1, -1));
        node = node.param ??= newNode();
      } else {
        node.statics ??= new Map();
        let next = node.statics.get(seg);
        if (!next) node.statics.set(seg, (next = newNode()));
        node = next;
      }
    }
    table ??= node.end ??= new Map();
    const other = table.get(method);
    if (other) throw new RouteConflictError(routeKey, b.functionName, other.functionName);
    const entry: Entry = { functionName: b.functionName, route: b.route, routeKey, paramNames };
    table.set(method, entry);
    if (paramNames.length === 0) {
      let byMethod = this.exact.get(path);
      if (!byMethod) this.exact.set(path, (byMethod = new Map()));
      byMethod.set(method, entry);
    }
  }
}

/** Depth-first in specificity order; a branch that has the path but not the method falls back to the next. */
function walk(
  node: TrieNode,
  segs: string[],
  i: number,
  method: string,
  values: string[],
): RouteMatch | undefined {
  if (i === segs.length) {
    const e = node.end && (node.end.get(method) ?? node.end.get('ANY'));
    return e && found(e, values);
  }
  const seg = segs[i]!;
  if (node.statics) {
    let child = node.statics.get(seg);
    if (!child && seg.includes('%')) child = node.statics.get(decode(seg));
    if (child) {
      const m = walk(child, segs, i + 1, method, values);
      if (m) return m;
    }
  }
  // An empty segment ("/items/" or "/a//b") never fills a parameter, as in API Gateway.
  if (node.param && seg !== '') {
    values.push(seg);
    const m = walk(node.param, segs, i + 1, method, values);
    if (m) return m;
    values.pop();
  }
  if (node.greedy) {
    const e = node.greedy.get(method) ?? node.greedy.get('ANY');
    if (e) {
      const rest = i === segs.length - 1 ? seg : segs.slice(i).join('/');
      if (rest !== '') return found(e, [...values, rest]);
    }
  }
  return undefined;
}

function found(e: Entry, values: string[]): RouteMatch {
  let pathParameters: Record<string, string> | undefined;
  if (e.paramNames.length > 0) {
    pathParameters = {};
    for (let k = 0; k < e.paramNames.length; k++) {
      const name = e.paramNames[k]!;
      const value = decode(values[k]!);
      // A parameter literally named __proto__ must become a key, not a prototype.
      if (name === '__proto__')
        Object.defineProperty(pathParameters, name, { value, enumerable: true, writable: true });
      else pathParameters[name] = value;
    }
  }
  return { functionName: e.functionName, route: e.route, routeKey: e.routeKey, pathParameters };
}

/** Percent-decoding that keeps malformed input as sent instead of failing the request. */
function decode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// A route table for the API listener: METHOD + a path pattern ("/v1/functions/{name}/logs") to one handler.
// It only matches; what a miss looks like on the wire (control JSON, Lambda's format) is the caller's choice,
// so the control API and every AWS service share it.
import { DEFAULT_BODY, type BodyLimit } from './limits.js';

export interface Route<H> {
  method: string;
  /** Literal segments and {param} segments, e.g. "/v1/functions/{name}". */
  path: string;
  /** How much body the handler may receive; the table's default when left out. */
  body?: BodyLimit;
  handler: H;
}

export type RouteMatch<H> =
  | { kind: 'found'; handler: H; params: Record<string, string>; body: BodyLimit; route: string }
  | { kind: 'method_not_allowed'; allow: string[] }
  | { kind: 'not_found' }
  /** The path matched a route but a parameter is not valid percent-encoding. */
  | { kind: 'bad_encoding'; segment: string };

type Segment = { literal: string } | { param: string };

interface Compiled<H> {
  route: Route<H>;
  segments: Segment[];
}

export class RouteTable<H> {
  private readonly routes: Compiled<H>[];

  constructor(routes: readonly Route<H>[]) {
    const compiled = routes.map((route) => ({ route, segments: compile(route.path) }));
    const seen = new Set<string>();
    for (const c of compiled) {
      const key = `${c.route.method} ${shape(c.segments)}`;
      if (seen.has(key)) throw new Error(`duplicate API route ${c.route.method} ${c.route.path}`);
      seen.add(key);
    }
    // Most specific first: segment by segment, a literal beats a {param}.
    this.routes = compiled.sort((a, b) => specificity(a.segments, b.segments));
  }

  /** The handler for a request path as received (percent-encoded, without the query). */
  match(method: string, pathname: string): RouteMatch<H> {
    const parts = split(pathname);
    const allow = new Set<string>();
    for (const c of this.routes) {
      const raw = bind(c.segments, parts);
      if (!raw) continue;
      if (c.route.method !== method) {
        allow.add(c.route.method);
        continue;
      }
      const params: Record<string, string> = {};
      for (const [name, value] of Object.entries(raw)) {
        try {
          params[name] = decodeURIComponent(value);
        } catch {
          return { kind: 'bad_encoding', segment: value };
        }
      }
      const body = c.route.body ?? DEFAULT_BODY;
      return { kind: 'found', handler: c.route.handler, params, body, route: c.route.path };
    }
    return allow.size > 0 ? { kind: 'method_not_allowed', allow: [...allow].sort() } : { kind: 'not_found' };
  }

  /** Whether any route has this path, whatever its method. */
  hasPath(pathname: string): boolean {
    const parts = split(pathname);
    return this.routes.some((c) => bind(c.segments, parts) !== undefined);
  }
}

function compile(path: string): Segment[] {
  if (!path.startsWith('/')) throw new Error(`API route path "${path}" must start with "/"`);
  return split(path).map((s) => {
    const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(s);
    if (m) return { param: m[1]! };
    if (s === '' || /[{}]/.test(s)) throw new Error(`API route path "${path}" has a bad segment "${s}"`);
    return { literal: s };
  });
}

/** Segments of a path; one trailing slash is ignored, so "/v1/functions/" is "/v1/functions". */
function split(pathname: string): string[] {
  const trimmed = pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
  return trimmed === '/' ? [] : trimmed.slice(1).split('/');
}

/** The raw (still encoded) parameter values if the path fits the pattern. */
function bind(segments: Segment[], parts: string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const part = parts[i]!;
    if ('literal' in seg) {
      if (seg.literal !== part) return undefined;
    } else {
      // An empty segment never fills a parameter: "/v1/functions//logs" is no route.
      if (part === '') return undefined;
      params[seg.param] = part;
    }
  }
  return params;
}

function specificity(a: Segment[], b: Segment[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const la = 'literal' in a[i]!;
    const lb = 'literal' in b[i]!;
    if (la !== lb) return la ? -1 : 1;
  }
  return 0;
}

function shape(segments: Segment[]): string {
  return segments.map((s) => ('literal' in s ? s.literal : '{}')).join('/');
}

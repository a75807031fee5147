import { describe, expect, it } from 'vitest';
import type { Route, RouteMethod } from '../src/config/manifest.js';
import { RouteConflictError, Router, type RouteBinding } from '../src/gateway/router.js';

function bind(functionName: string, key: string, payload: Route['payload'] = '2.0'): RouteBinding {
  const [method, path] = key.split(' ') as [RouteMethod, string];
  return { functionName, route: { method, path, payload } };
}

function routeOf(router: Router, method: string, path: string) {
  const m = router.match(method, path);
  return m && { fn: m.functionName, key: m.routeKey, params: m.pathParameters };
}

describe('Router', () => {
  const router = new Router([
    bind('root', 'GET /'),
    bind('list', 'GET /items'),
    bind('create', 'POST /items'),
    bind('special', 'GET /items/special'),
    bind('get', 'GET /items/{id}'),
    bind('anyItem', 'ANY /items/{id}'),
    bind('sub', 'GET /items/{id}/parts/{partId}'),
    bind('proxy', 'ANY /items/{proxy+}'),
    bind('files', 'GET /files/{path+}'),
    bind('catchAll', 'ANY /{all+}'),
  ]);

  it('matches static routes exactly, with no path parameters', () => {
    expect(routeOf(router, 'GET', '/items')).toEqual({ fn: 'list', key: 'GET /items', params: undefined });
    expect(routeOf(router, 'POST', '/items')).toEqual({
      fn: 'create',
      key: 'POST /items',
      params: undefined,
    });
    expect(routeOf(router, 'GET', '/')).toEqual({ fn: 'root', key: 'GET /', params: undefined });
  });

  it('prefers a static segment over {param}, and {param} over {proxy+}', () => {
    expect(routeOf(router, 'GET', '/items/special')?.fn).toBe('special');
    expect(routeOf(router, 'GET', '/items/42')).toEqual({
      fn: 'get',
      key: 'GET /items/{id}',
      params: { id: '42' },
    });
    expect(routeOf(router, 'GET', '/items/42/parts/7')).toEqual({
      fn: 'sub',
      key: 'GET /items/{id}/parts/{partId}',
      params: { id: '42', partId: '7' },
    });
    // Deeper than any {param} route: the greedy route of the longest matching prefix takes it.
    expect(routeOf(router, 'GET', '/items/42/other')).toEqual({
      fn: 'proxy',
      key: 'ANY /items/{proxy+}',
      params: { proxy: '42/other' },
    });
  });

  it('prefers an exact method over ANY on the same path', () => {
    expect(routeOf(router, 'GET', '/items/1')?.fn).toBe('get');
    expect(routeOf(router, 'DELETE', '/items/1')).toEqual({
      fn: 'anyItem',
      key: 'ANY /items/{id}',
      params: { id: '1' },
    });
  });

  it('falls back to a less specific path when the specific one lacks the method', () => {
    // GET /items/special exists, but not for PUT: ANY /items/{id} is next in line.
    expect(routeOf(router, 'PUT', '/items/special')?.fn).toBe('anyItem');
    // GET /files/{path+} does not take POST; the root greedy route does.
    expect(routeOf(router, 'POST', '/files/a/b')).toEqual({
      fn: 'catchAll',
      key: 'ANY /{all+}',
      params: { all: 'files/a/b' },
    });
    // Only GET and POST exist for /items, and /{all+} needs one segment: DELETE /items goes to the catch-all.
    expect(routeOf(router, 'DELETE', '/items')?.fn).toBe('catchAll');
  });

  it('greedy parameters take one or more segments and keep their slashes', () => {
    expect(routeOf(router, 'GET', '/files/a')?.params).toEqual({ path: 'a' });
    expect(routeOf(router, 'GET', '/files/a/b/c.txt')?.params).toEqual({ path: 'a/b/c.txt' });
    expect(routeOf(router, 'GET', '/files/a/')?.params).toEqual({ path: 'a/' });
    // Zero segments: /files alone is not a match of /files/{path+}.
    expect(routeOf(router, 'GET', '/files')?.fn).toBe('catchAll');
  });

  it('URL-decodes parameter values; an encoded slash stays inside its segment', () => {
    expect(routeOf(router, 'GET', '/items/a%20b')?.params).toEqual({ id: 'a b' });
    expect(routeOf(router, 'GET', '/items/a%2Fb')).toEqual({
      fn: 'get',
      key: 'GET /items/{id}',
      params: { id: 'a/b' },
    });
    expect(routeOf(router, 'GET', '/files/dir%20one/f%C3%A9.txt')?.params).toEqual({
      path: 'dir one/fé.txt',
    });
    // '+' is literal in a path (only query strings use it for a space).
    expect(routeOf(router, 'GET', '/items/a+b')?.params).toEqual({ id: 'a+b' });
    // Malformed escapes are passed on as sent rather than failing.
    expect(routeOf(router, 'GET', '/items/%E0%A4%A')?.params).toEqual({ id: '%E0%A4%A' });
    // An encoded static segment still reaches the static route.
    expect(routeOf(router, 'GET', '/items/sp%65cial')?.fn).toBe('special');
  });

  it('never fills a parameter with an empty segment', () => {
    const r = new Router([bind('get', 'GET /items/{id}'), bind('list', 'GET /items')]);
    expect(r.match('GET', '/items/')).toBeUndefined();
    expect(r.match('GET', '/items//')).toBeUndefined();
    expect(routeOf(r, 'GET', '/items')?.fn).toBe('list');
  });

  it('answers no match for unknown paths, unknown methods, and paths that are not origin-form', () => {
    const r = new Router([bind('get', 'GET /items/{id}'), bind('list', 'GET /items')]);
    expect(r.match('GET', '/nothing')).toBeUndefined();
    expect(r.match('POST', '/items')).toBeUndefined();
    expect(r.match('DELETE', '/items/1')).toBeUndefined();
    expect(r.match('GET', '/items/1/more')).toBeUndefined();
    expect(r.match('GET', '')).toBeUndefined();
    expect(r.match('GET', '*')).toBeUndefined();
    expect(r.match('GET', '/ITEMS')).toBeUndefined(); // paths are case-sensitive
  });

  it('a greedy route at the root does not match "/"', () => {
    const r = new Router([bind('all', 'ANY /{proxy+}')]);
    expect(r.match('GET', '/')).toBeUndefined();
    expect(routeOf(r, 'GET', '/x')?.params).toEqual({ proxy: 'x' });
  });

  it('lets routes share a parameter position under different names', () => {
    const r = new Router([bind('a', 'GET /users/{userId}'), bind('b', 'DELETE /users/{id}/posts/{postId}')]);
    expect(routeOf(r, 'GET', '/users/u1')?.params).toEqual({ userId: 'u1' });
    expect(routeOf(r, 'DELETE', '/users/u1/posts/p2')?.params).toEqual({ id: 'u1', postId: 'p2' });
  });

  it('keeps a parameter named __proto__ as an own key', () => {
    const r = new Router([bind('a', 'GET /x/{__proto__}')]);
    const params = r.match('GET', '/x/v')?.pathParameters;
    expect(Object.keys(params ?? {})).toEqual(['__proto__']);
    expect(JSON.stringify(params)).toBe('{"__proto__":"v"}');
  });

  it('returns the route as bound, so the payload version travels with the match', () => {
    const r = new Router([bind('v1', 'POST /legacy', '1.0')]);
    expect(r.match('POST', '/legacy')?.route).toEqual({ method: 'POST', path: '/legacy', payload: '1.0' });
    expect(r.size).toBe(1);
  });

  it('rejects two functions claiming the same method and path shape', () => {
    expect(() => new Router([bind('a', 'GET /items/{id}'), bind('b', 'GET /items/{itemId}')])).toThrow(
      RouteConflictError,
    );
    expect(() => new Router([bind('a', 'ANY /x/{p+}'), bind('b', 'ANY /x/{q+}')])).toThrow(
      'route "ANY /x/{q+}" of function "b" is already used by function "a"',
    );
    // Same path, different methods; and ANY next to GET: no conflict.
    expect(() => new Router([bind('a', 'GET /x'), bind('b', 'POST /x'), bind('c', 'ANY /x')])).not.toThrow();
  });

  it('an empty table matches nothing', () => {
    expect(new Router([]).match('GET', '/')).toBeUndefined();
  });
});

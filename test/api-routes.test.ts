// The API route table on its own: what matches, with which parameters, and what a miss is.
import { describe, expect, it } from 'vitest';
import { DEFAULT_BODY, DEPLOY_BODY } from '../src/api/limits.js';
import { RouteTable, type RouteMatch } from '../src/api/routes.js';

const table = new RouteTable<string>([
  { method: 'GET', path: '/v1/functions', handler: 'list' },
  { method: 'GET', path: '/v1/functions/{name}', handler: 'get' },
  { method: 'DELETE', path: '/v1/functions/{name}', handler: 'remove' },
  { method: 'GET', path: '/v1/functions/{name}/logs', handler: 'logs' },
  { method: 'GET', path: '/v1/functions/{name}/{part}', handler: 'part' },
  { method: 'POST', path: '/v1/functions/special', handler: 'special' },
  { method: 'POST', path: '/v1/deploy', body: DEPLOY_BODY, handler: 'deploy' },
  { method: 'POST', path: '/', handler: 'root' },
]);

function found(m: RouteMatch<string>): { handler: string; params: Record<string, string> } {
  if (m.kind !== 'found') throw new Error(`expected a match, got ${m.kind}`);
  return { handler: m.handler, params: m.params };
}

describe('RouteTable', () => {
  it('matches literal paths and binds {param} segments, decoded', () => {
    expect(found(table.match('GET', '/v1/functions'))).toEqual({ handler: 'list', params: {} });
    expect(found(table.match('GET', '/v1/functions/hello'))).toEqual({
      handler: 'get',
      params: { name: 'hello' },
    });
    expect(found(table.match('GET', '/v1/functions/a%20b%3Ac/logs'))).toEqual({
      handler: 'logs',
      params: { name: 'a b:c' },
    });
    expect(found(table.match('POST', '/'))).toEqual({ handler: 'root', params: {} });
  });

  it('prefers a literal segment over a parameter, whatever the declaration order', () => {
    expect(found(table.match('GET', '/v1/functions/x/logs')).handler).toBe('logs');
    expect(found(table.match('GET', '/v1/functions/x/other'))).toEqual({
      handler: 'part',
      params: { name: 'x', part: 'other' },
    });
    expect(found(table.match('POST', '/v1/functions/special')).handler).toBe('special');
  });

  it('falls back to a parameter route when the literal one lacks the method', () => {
    expect(found(table.match('GET', '/v1/functions/special'))).toEqual({
      handler: 'get',
      params: { name: 'special' },
    });
  });

  it('answers not_found for unknown paths, and never fills a parameter with an empty segment', () => {
    for (const path of ['/v1/nope', '/v1/functions//logs', '/v1/functions/a/b/c', '/v2/functions', '']) {
      expect(table.match('GET', path), path).toEqual({ kind: 'not_found' });
    }
  });

  it('answers method_not_allowed with every method the path has', () => {
    expect(table.match('PUT', '/v1/functions/hello')).toEqual({
      kind: 'method_not_allowed',
      allow: ['DELETE', 'GET'],
    });
    expect(table.match('GET', '/v1/deploy')).toEqual({ kind: 'method_not_allowed', allow: ['POST'] });
    expect(table.match('GET', '/v1/functions/special')).toMatchObject({ kind: 'found' });
    expect(table.match('PATCH', '/v1/functions/special')).toEqual({
      kind: 'method_not_allowed',
      allow: ['DELETE', 'GET', 'POST'],
    });
  });

  it('reports malformed percent-encoding in a parameter instead of throwing', () => {
    expect(table.match('GET', '/v1/functions/%E0%A4%A')).toEqual({
      kind: 'bad_encoding',
      segment: '%E0%A4%A',
    });
    expect(table.match('GET', '/v1/functions/%zz/logs')).toEqual({ kind: 'bad_encoding', segment: '%zz' });
  });

  it('ignores one trailing slash', () => {
    expect(found(table.match('GET', '/v1/functions/')).handler).toBe('list');
    expect(found(table.match('GET', '/v1/functions/hello/')).handler).toBe('get');
  });

  it("gives each match its route's body limit, the default when none is declared", () => {
    expect(table.match('POST', '/v1/deploy')).toMatchObject({ body: DEPLOY_BODY });
    expect(table.match('GET', '/v1/functions')).toMatchObject({ body: DEFAULT_BODY });
  });

  it('tells whether a path exists at all', () => {
    expect(table.hasPath('/v1/deploy')).toBe(true);
    expect(table.hasPath('/v1/functions/x')).toBe(true);
    expect(table.hasPath('/v1/nope')).toBe(false);
  });

  it('refuses duplicate routes and malformed patterns when built', () => {
    expect(
      () =>
        new RouteTable([
          { method: 'GET', path: '/a/{x}', handler: 1 },
          { method: 'GET', path: '/a/{y}', handler: 2 },
        ]),
    ).toThrow(/duplicate API route GET \/a\/\{y\}/);
    expect(() => new RouteTable([{ method: 'GET', path: 'a', handler: 1 }])).toThrow(/must start/);
    expect(() => new RouteTable([{ method: 'GET', path: '/a//b', handler: 1 }])).toThrow(/bad segment/);
    expect(() => new RouteTable([{ method: 'GET', path: '/a/{x-y}', handler: 1 }])).toThrow(/bad segment/);
  });
});

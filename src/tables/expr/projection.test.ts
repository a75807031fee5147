import { describe, expect, it } from 'vitest';
import type { Item } from '../types.js';
import { ExpressionContext } from './context.js';
import { parseProjectionExpression } from './parser.js';
import { project } from './projection.js';

const n = (v: number) => ({ N: String(v) });
const s = (v: string) => ({ S: v });

const item: Item = {
  id: s('k'),
  a: { M: { b: { M: { c: n(1), d: n(2) } }, e: n(3) } },
  l: { L: [n(0), { M: { x: n(10), y: n(11) } }, n(2), n(3)] },
  top: s('t'),
};

function p(source: string, names: Record<string, string> = {}): Item {
  return project(item, parseProjectionExpression(source, new ExpressionContext(names)));
}

describe('project', () => {
  it('picks top-level attributes whole', () => {
    expect(p('id, top')).toEqual({ id: s('k'), top: s('t') });
    expect(p('a')).toEqual({ a: item.a });
  });

  it('keeps the structure of nested paths', () => {
    expect(p('a.b.c')).toEqual({ a: { M: { b: { M: { c: n(1) } } } } });
    expect(p('a.b.c, a.e')).toEqual({ a: { M: { b: { M: { c: n(1) } }, e: n(3) } } });
  });

  it('returns the list elements it picks as a shorter list, in index order', () => {
    expect(p('l[2]')).toEqual({ l: { L: [n(2)] } });
    expect(p('l[3], l[0]')).toEqual({ l: { L: [n(0), n(3)] } });
    expect(p('l[1].y')).toEqual({ l: { L: [{ M: { y: n(11) } }] } });
    expect(p('l[1].x, l[1].y')).toEqual({ l: { L: [{ M: { x: n(10), y: n(11) } }] } });
  });

  it('leaves out what the item does not have', () => {
    expect(p('nope, a.zz, l[9], top.x, #n', { '#n': 'id' })).toEqual({ id: s('k') });
    expect(p('a[0]')).toEqual({});
    expect(p('nope')).toEqual({});
  });

  it('copies, so the result does not share values with the item', () => {
    const out = p('a');
    (out.a as { M: Record<string, unknown> }).M.e = s('changed');
    expect(item.a).toEqual({ M: { b: { M: { c: n(1), d: n(2) } }, e: n(3) } });
  });
});

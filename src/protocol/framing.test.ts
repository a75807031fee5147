import { describe, expect, it } from 'vitest';
import { encodeLine, lineDecoder } from './framing.js';

describe('line framing', () => {
  it('decodes messages split across chunks and several in one chunk', () => {
    const got: unknown[] = [];
    const feed = lineDecoder((m) => got.push(m));
    const text = encodeLine({ a: 1 }) + encodeLine({ b: 'x\ny' }) + encodeLine([3]);
    feed(text.slice(0, 4));
    feed(text.slice(4, 15));
    feed(text.slice(15));
    expect(got).toEqual([{ a: 1 }, { b: 'x\ny' }, [3]]);
  });

  it('carries a payload of JSON text after a tab as it is, tabs and newlines inside it escaped', () => {
    const got: unknown[] = [];
    const feed = lineDecoder((m) => got.push(m));
    const payload = JSON.stringify({ s: 'a\tb\nc', n: [1, 2] });
    feed(encodeLine({ t: 'result', id: 'x' }, payload) + encodeLine({ t: 'log' }));
    expect(got).toEqual([{ t: 'result', id: 'x', payload }, { t: 'log' }]);
    // A payload with something other than an object before it is skipped like any line that is not JSON.
    got.length = 0;
    feed('[1]\t{}\n"x"\t{}\n');
    expect(got).toEqual([]);
  });

  it('skips lines that are not JSON and goes on', () => {
    const got: unknown[] = [];
    const feed = lineDecoder((m) => got.push(m));
    feed('not json\n{"ok":true}\n');
    expect(got).toEqual([{ ok: true }]);
  });

  it('stops a peer that never ends its line', () => {
    let overflowed = 0;
    const feed = lineDecoder(() => {}, { maxLine: 100, onOverflow: () => overflowed++ });
    for (let i = 0; i < 10; i++) feed('x'.repeat(50));
    expect(overflowed).toBeGreaterThan(0);
  });
});

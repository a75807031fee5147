import { describe, expect, it } from 'vitest';
import { readSandboxMessage } from './messages.js';

describe('readSandboxMessage', () => {
  it('ignores what is not a message of ours', () => {
    for (const raw of [
      null,
      1,
      'x',
      [],
      {},
      { t: 'nope' },
      { t: 'log', id: 1, data: 'x' },
      { t: 'result' },
    ]) {
      expect(readSandboxMessage(raw)).toBeNull();
    }
  });

  it('never passes on the memory a sandbox reports, nor fields of the wrong type', () => {
    const m = readSandboxMessage({
      t: 'result',
      id: 'r',
      ok: true,
      payload: '1',
      rss: 1e30,
      initMs: -1,
      logs: 5,
    });
    expect(m).toEqual({ t: 'result', id: 'r', ok: true, payload: '1' });
    const nan = readSandboxMessage({ t: 'result', id: 'r', ok: true, initMs: 'NaN' });
    expect(nan).toEqual({ t: 'result', id: 'r', ok: true, payload: 'null' });
    expect(readSandboxMessage({ t: 'result', id: 'r', ok: true, initMs: 12.5 })).toMatchObject({
      initMs: 12.5,
    });
  });

  it('turns a result that is not text into an error, and bad errors into plain ones', () => {
    expect(readSandboxMessage({ t: 'result', id: 'r', ok: true, payload: { a: 1 } })).toMatchObject({
      ok: false,
      error: { errorType: 'Runtime.InvalidResponse' },
    });
    const bad = readSandboxMessage({
      t: 'result',
      id: 'r',
      ok: false,
      errorKind: 'weird',
      error: { errorType: 7, errorMessage: 'x'.repeat(100_000), trace: ['a', 3, null] },
    });
    expect(bad).toMatchObject({
      ok: false,
      errorKind: 'handled',
      error: { errorType: 'Error', trace: ['a'] },
    });
    expect((bad as { error: { errorMessage: string } }).error.errorMessage).toHaveLength(64 * 1024);
    expect(readSandboxMessage({ t: 'fatal', id: 5, error: 'boom' })).toEqual({
      t: 'fatal',
      id: null,
      error: { errorType: 'Error', errorMessage: 'unknown error', trace: [] },
    });
  });
});

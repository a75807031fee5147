// The filter pattern's parser: words, phrases, prefixes, and the JSON terms of Lambda's JSON log format.
import { describe, expect, it } from 'vitest';
import { LogPatternError, matchesLogPattern, parseLogPattern } from './log-pattern.js';

describe('parseLogPattern', () => {
  it('turns a JSON term into the text JSON.stringify writes for the field', () => {
    expect(parseLogPattern('{ $.level = "ERROR" }').all).toEqual(['"level":"ERROR"']);
    expect(parseLogPattern('{$.metrics.billedDurationMs=3}').all).toEqual(['"billedDurationMs":3']);
    expect(parseLogPattern('-{ $.ok = true } ?{ $.x = null } word').none).toEqual(['"ok":true']);
    expect(parseLogPattern('?{ $.x = null }').any).toEqual(['"x":null']);
    expect(parseLogPattern('{ $.m = "say \\"hi\\"" }').all).toEqual(['"m":"say \\"hi\\""']);
  });

  it('matches JSON lines as they are logged', () => {
    const line = JSON.stringify({ timestamp: 't', level: 'ERROR', requestId: 'r', message: { user: 'u1' } });
    expect(matchesLogPattern(parseLogPattern('{ $.level = "ERROR" }'), line)).toBe(true);
    expect(matchesLogPattern(parseLogPattern('{ $.message.user = "u1" }'), line)).toBe(true);
    expect(matchesLogPattern(parseLogPattern('{ $.level = "INFO" }'), line)).toBe(false);
  });

  it('refuses a JSON term it cannot read, saying how to write one', () => {
    for (const bad of [
      '{ $.level = "ERROR"',
      '{ level = "ERROR" }',
      '{ $.level = ERROR }',
      '{ $.a = [1] }',
    ]) {
      expect(() => parseLogPattern(bad), bad).toThrow(LogPatternError);
    }
    expect(() => parseLogPattern('{ level }')).toThrow(/write it like \{ \$\.level = "ERROR" \}/);
  });
});

import { describe, expect, it } from 'vitest';
import { formatBytes, parseCount, parseSize } from './quota-values.js';

describe('quota values', () => {
  it('parses sizes in binary units, plain digits as bytes, and none or 0 as clearing', () => {
    expect(parseSize('storage', '500MB')).toBe(500 * 1024 ** 2);
    expect(parseSize('storage', '2gb')).toBe(2 * 1024 ** 3);
    expect(parseSize('storage', '1.5 KiB')).toBe(1536);
    expect(parseSize('storage', '4096')).toBe(4096);
    expect(parseSize('storage', 'none')).toBeNull();
    expect(parseSize('storage', '0')).toBeNull();
  });

  it('refuses what is not a size or a count, naming the flag', () => {
    for (const bad of ['-5MB', 'lots', '5XB', '', '0.1b']) {
      expect(() => parseSize('storage', bad)).toThrow(/--storage must be a size/);
    }
    for (const bad of ['-1', '1.5', 'ten', '']) {
      expect(() => parseCount('concurrency', bad)).toThrow(/--concurrency must be a whole number/);
    }
    expect(parseCount('memory', '512')).toBe(512);
    expect(parseCount('memory', 'none')).toBeNull();
  });

  it('formats bytes the way they are parsed', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(500 * 1024 ** 2)).toBe('500 MB');
    expect(formatBytes(2 * 1024 ** 3)).toBe('2 GB');
  });
});

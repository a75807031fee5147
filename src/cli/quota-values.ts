// The values `nimbus project quota` takes and shows: counts, megabytes and sizes like 500MB or 2GB, where
// `none` (or 0) clears a quota. Sizes are binary: 1 KB is 1024 bytes, as the memory sizes are.
import { UsageError } from './command.js';

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** null: clear the quota. */
export function parseCount(flag: string, text: string): number | null {
  const t = text.trim().toLowerCase();
  if (t === 'none' || t === '0') return null;
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t))) {
    throw new UsageError(
      `--${flag} must be a whole number, or none to clear it; got "${text}"`,
      `for example --${flag} 10`,
    );
  }
  return Number(t);
}

/** A size in bytes (plain digits are bytes); null: clear the quota. */
export function parseSize(flag: string, text: string): number | null {
  const t = text.trim().toLowerCase();
  if (t === 'none' || t === '0') return null;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(t);
  const unit = m ? UNITS[m[2] || 'b'] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new UsageError(
      `--${flag} must be a size like 500MB or 2GB (KB, MB, GB, TB; 1 KB = 1024 bytes), or none to clear it; got "${text}"`,
      `for example --${flag} 2GB`,
    );
  }
  return bytes;
}

export function formatBytes(n: number): string {
  for (const [unit, size] of [
    ['TB', 1024 ** 4],
    ['GB', 1024 ** 3],
    ['MB', 1024 ** 2],
    ['KB', 1024],
  ] as const) {
    if (n >= size) {
      const v = n / size;
      return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
    }
  }
  return `${n} B`;
}

// Small text helpers shared by the commands' human-readable output.
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './command.js';

/** The Nimbus package folder: src/cli and dist/cli are both two levels below it. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Left-aligned columns separated by two spaces; the header row in upper case. */
export function table(headers: string[], rows: string[][]): string {
  const all = [headers.map((h) => h.toUpperCase()), ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "30s", "10m", "2h", "1d" before now, or an ISO date; epoch ms. */
export function parseSince(value: string, now = Date.now(), flag = '--since'): number {
  const m = /^(\d+)\s*([smhd])$/.exec(value.trim());
  if (m) return now - Number(m[1]) * UNITS[m[2]!]!;
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return t;
  }
  throw new UsageError(
    `${flag} "${value}" is neither a duration nor a date`,
    'use 30s, 10m, 2h, 1d or an ISO date like 2024-05-01T12:00:00Z',
  );
}

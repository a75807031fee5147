// Loads an Azure Functions 2019 trace (or a slice of it in the same format): invocations per function and
// minute, execution times per function, allocated memory per application.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TraceFunction {
  /** Position in the trace, also the simulator's function key ("f<index>"). */
  index: number;
  owner: string;
  app: string;
  hash: string;
  trigger: string;
  /** Allocated memory of the function's application (MB). */
  memoryMB: number;
  /** false: the trace had no memory row for the app, and memoryMB is the median of the others. */
  memoryKnown: boolean;
  /** Mean execution time (ms). */
  durationMs: number;
  /**
   * Percentiles 0, 1, 25, 50, 75, 99, 100 of the execution time (ms), for sampling durations; null when the
   * trace had no duration row (durationMs is then the median of the others).
   */
  durationPercentiles: readonly number[] | null;
  /** Invocations in each minute of the trace. */
  perMinute: Uint32Array;
  total: number;
}

export interface Trace {
  dir: string;
  /** First minute of the day covered (e.g. 480), for the report. */
  firstMinute: number;
  minutes: number;
  functions: TraceFunction[];
  invocations: number;
}

/** The percentile points, in percent, of durations.csv's percentile_Average_* columns. */
export const DURATION_PERCENTILES = [0, 1, 25, 50, 75, 99, 100] as const;

interface Table {
  header: string[];
  rows: string[][];
  col(name: string): number;
}

/** Comma-separated values with a header line; double-quoted fields are unquoted. */
export function parseCsv(text: string, file = 'csv'): Table {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const split = (line: string): string[] => {
    if (!line.includes('"')) return line.split(',');
    const out: string[] = [];
    let cur = '';
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i]!;
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') {
          cur += '"';
          i++;
        } else if (ch === '"') quoted = false;
        else cur += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ',') {
        out.push(cur);
        cur = '';
      } else cur += ch;
    }
    out.push(cur);
    return out;
  };
  if (lines.length === 0) throw new Error(`${file}: empty`);
  const header = split(lines[0]!).map((h) => h.trim());
  const rows = lines.slice(1).map(split);
  return {
    header,
    rows,
    col(name: string): number {
      const i = header.indexOf(name);
      if (i < 0) throw new Error(`${file}: no column ${name}`);
      return i;
    },
  };
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function num(s: string | undefined, what: string): number {
  const v = Number(s);
  if (s === undefined || s.trim() === '' || !Number.isFinite(v))
    throw new Error(`${what}: not a number: ${s}`);
  return v;
}

/**
 * Reads invocations.csv, durations.csv and memory.csv from `dir`. `minutes` keeps only the first N minute
 * columns.
 */
export function loadTrace(dir: string, minutes?: number): Trace {
  const inv = parseCsv(readFileSync(join(dir, 'invocations.csv'), 'utf8'), 'invocations.csv');
  const dur = parseCsv(readFileSync(join(dir, 'durations.csv'), 'utf8'), 'durations.csv');
  const mem = parseCsv(readFileSync(join(dir, 'memory.csv'), 'utf8'), 'memory.csv');

  // Minute columns are the ones named by an integer (480..959 in the sample, 1..1440 in a full day).
  let minuteCols = inv.header.flatMap((h, i) => (/^\d+$/.test(h) ? [i] : []));
  if (minuteCols.length === 0) throw new Error('invocations.csv: no minute columns');
  if (minutes !== undefined) minuteCols = minuteCols.slice(0, Math.max(0, minutes));
  const firstMinute = Number(inv.header[minuteCols[0] ?? 0] ?? 0);

  const [iOwner, iApp, iFn, iTrig] = ['HashOwner', 'HashApp', 'HashFunction', 'Trigger'].map((c) =>
    inv.col(c),
  ) as [number, number, number, number];

  const durations = new Map<string, { avg: number; pct: number[] }>();
  {
    const [o, a, f, avg] = ['HashOwner', 'HashApp', 'HashFunction', 'Average'].map((c) => dur.col(c)) as [
      number,
      number,
      number,
      number,
    ];
    const pcols = DURATION_PERCENTILES.map((p) => dur.col(`percentile_Average_${p}`));
    for (const r of dur.rows) {
      const key = `${r[o]}/${r[a]}/${r[f]}`;
      const pct = pcols.map((c) => num(r[c], `durations.csv ${key}`));
      // Percentiles of per-interval averages are not guaranteed monotone after rounding; sampling needs them so.
      for (let i = 1; i < pct.length; i++) pct[i] = Math.max(pct[i]!, pct[i - 1]!);
      durations.set(key, { avg: num(r[avg], `durations.csv ${key}`), pct });
    }
  }
  const memory = new Map<string, number>();
  {
    const [o, a, m] = ['HashOwner', 'HashApp', 'AverageAllocatedMb'].map((c) => mem.col(c)) as [
      number,
      number,
      number,
    ];
    // One row per app in the public trace; if an app has several (this sample has one per function), they agree.
    for (const r of mem.rows) memory.set(`${r[o]}/${r[a]}`, num(r[m], 'memory.csv'));
  }
  const medianMemory = median([...memory.values()]);
  const medianDuration = median([...durations.values()].map((d) => d.avg));

  let invocations = 0;
  const functions = inv.rows.map((r, index): TraceFunction => {
    const owner = r[iOwner] ?? '';
    const app = r[iApp] ?? '';
    const hash = r[iFn] ?? '';
    const perMinute = new Uint32Array(minuteCols.length);
    let total = 0;
    for (let m = 0; m < minuteCols.length; m++) {
      const v = num(r[minuteCols[m]!], `invocations.csv row ${index + 2}`);
      perMinute[m] = v;
      total += v;
    }
    invocations += total;
    const d = durations.get(`${owner}/${app}/${hash}`);
    const mb = memory.get(`${owner}/${app}`);
    return {
      index,
      owner,
      app,
      hash,
      trigger: r[iTrig] ?? '',
      memoryMB: mb ?? medianMemory,
      memoryKnown: mb !== undefined,
      durationMs: d?.avg ?? medianDuration,
      durationPercentiles: d?.pct ?? null,
      perMinute,
      total,
    };
  });
  return { dir, firstMinute, minutes: minuteCols.length, functions, invocations };
}

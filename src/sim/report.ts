// The simulator's results as a console table and as markdown.
import type { SimOptions, SimResult } from './simulate.js';

export interface SimReport {
  date: string;
  trace: { dir: string; firstMinute: number; minutes: number; functions: number; invocations: number };
  options: Required<Omit<SimOptions, 'verify' | 'perFunction' | 'memoryBudgetMB'>> & {
    memoryBudgetMB: number | 'unlimited';
  };
  node: string;
  results: SimResult[];
}

const fmt = (x: number, digits = 0): string =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** One row per policy; ratios are against the first policy given. */
function rows(r: SimReport): string[][] {
  const base = r.results[0];
  const head = [
    'policy',
    'cold starts',
    'from zero',
    'scale-out',
    'cold %',
    'fn cold % p50',
    'fn cold % p75',
    'fn cold % p99',
    'idle GB-s',
    base ? `idle vs ${base.policy}` : 'idle ratio',
    'peak inst',
    'peak GB',
    'pre-warms (used)',
    'wall s',
  ];
  return [
    head,
    ...r.results.map((x) => [
      x.policy,
      fmt(x.cold),
      fmt(x.coldFromZero),
      fmt(x.coldScaleOut),
      fmt(x.coldStartRate * 100, 3),
      fmt(x.perFunctionColdPct.p50, 2),
      fmt(x.perFunctionColdPct.p75, 2),
      fmt(x.perFunctionColdPct.p99, 2),
      fmt(x.idleGBs),
      base && base.idleGBs > 0 ? `${fmt(x.idleGBs / base.idleGBs, 3)}×` : '-',
      fmt(x.peakInstances),
      fmt(x.peakMemoryMB / 1024, 1),
      x.prewarmStarts ? `${fmt(x.prewarmStarts)} (${fmt(x.prewarmHits)})` : '0',
      fmt(x.wallMs / 1000, 1),
    ]),
  ];
}

export function table(r: SimReport): string {
  const t = rows(r);
  const w = t[0]!.map((_, c) => Math.max(...t.map((row) => row[c]!.length)));
  const line = (row: string[]): string =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(w[c]!) : cell.padStart(w[c]!))).join('  ');
  return [line(t[0]!), w.map((n) => '-'.repeat(n)).join('  '), ...t.slice(1).map(line)].join('\n');
}

export function markdown(r: SimReport): string {
  const t = rows(r);
  const md = (row: string[]): string => `| ${row.join(' | ')} |`;
  const modes = r.results
    .filter((x) => x.hybridModes)
    .map(
      (x) =>
        `- ${x.policy}: functions by final histogram mode: ${Object.entries(x.hybridModes!)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
    );
  return [
    `# Keep-alive simulation, ${r.date}`,
    '',
    `Trace: \`${r.trace.dir}\`, ${r.trace.functions} functions, ${fmt(r.trace.invocations)} invocations, ` +
      `minutes ${r.trace.firstMinute}..${r.trace.firstMinute + r.trace.minutes - 1}.`,
    `Options: arrivals ${r.options.arrivals}, durations ${r.options.durations}, seed ${r.options.seed}, ` +
      `tick ${r.options.tickMs} ms, init ${r.options.initMs} ms, memory budget ${r.options.memoryBudgetMB}` +
      (r.options.memoryBudgetMB === 'unlimited' ? '' : ' MB') +
      `; Node ${r.node}.`,
    '',
    md(t[0]!),
    md(t[0]!.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...t.slice(1).map(md),
    '',
    ...modes,
    ...r.results.map(
      (x) =>
        `- ${x.policy} (${x.policyName}): ${fmt(x.acquires)} invocations, ${fmt(x.throttled)} throttled, ` +
        `${x.functionsAlwaysCold} of ${x.functions} functions always cold, mean fn cold ${fmt(x.perFunctionColdPct.mean, 2)} %, ` +
        `allocated ${fmt(x.allocatedGBs)} GB-s, stops: ${Object.entries(x.stops)
          .map(([k, v]) => `${k} ${fmt(v)}`)
          .join(', ')}`,
    ),
    '',
  ].join('\n');
}

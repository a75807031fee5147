// npm run sim -- [--trace DIR] [--policies fixed10,fixed20,hybrid] [--minutes N] [--json] ...
// Replays an Azure Functions trace through the Scaler under each keep-alive policy and reports cold starts
// against idle memory-time. See docs/simulator.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { makePolicy } from './policies.js';
import { markdown, table, type SimReport } from './report.js';
import { simulate, type ArrivalModel, type DurationModel } from './simulate.js';
import { loadTrace } from './trace.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

const USAGE = `usage: npm run sim -- [options]
  --trace DIR              trace directory (default ../shared/data/azure-functions-2019-sample from the repo)
  --policies LIST          comma-separated: fixed<minutes>, hybrid[:option=value...] (default fixed10,fixed20,hybrid)
  --minutes N              replay only the first N minutes
  --memory-budget-mb N     scaler memory budget (default unlimited), to study eviction
  --arrivals MODEL         even | random | trigger (default trigger: timers even, others seeded-random)
  --durations MODEL        average | percentiles (default average)
  --seed N                 PRNG seed (default 1)
  --tick-ms N              simulated time between scaler ticks (default 1000)
  --init-ms N              initialization time of pre-warm starts (default 0)
  --out DIR                where sim-<date>.json/.md go (default bench/results)
  --no-save                do not write result files
  --json                   print the report as JSON instead of a table`;

function positive(v: string | undefined, flag: string, allowZero = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0))
    throw new Error(`${flag}: expected a number, got ${v}`);
  return n;
}

function oneOf<T extends string>(v: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  const found = allowed.find((a) => a === v);
  if (!found) throw new Error(`${flag}: expected ${allowed.join(' | ')}, got ${v}`);
  return found;
}

export function main(argv: string[]): SimReport | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      trace: { type: 'string' },
      policies: { type: 'string' },
      minutes: { type: 'string' },
      'memory-budget-mb': { type: 'string' },
      arrivals: { type: 'string' },
      durations: { type: 'string' },
      seed: { type: 'string' },
      'tick-ms': { type: 'string' },
      'init-ms': { type: 'string' },
      out: { type: 'string' },
      'no-save': { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return null;
  }
  const dir = values.trace
    ? resolve(values.trace)
    : resolve(root, '../shared/data/azure-functions-2019-sample');
  const specs = (values.policies ?? 'fixed10,fixed20,hybrid').split(',').filter(Boolean);
  // Fail on a bad policy name before spending time on loading and replaying.
  specs.forEach(makePolicy);
  const minutes = positive(values.minutes, '--minutes');
  const budget = positive(values['memory-budget-mb'], '--memory-budget-mb');
  const options = {
    arrivals: oneOf<ArrivalModel>(values.arrivals, '--arrivals', ['even', 'random', 'trigger']) ?? 'trigger',
    durations: oneOf<DurationModel>(values.durations, '--durations', ['average', 'percentiles']) ?? 'average',
    seed: positive(values.seed, '--seed', true) ?? 1,
    tickMs: positive(values['tick-ms'], '--tick-ms') ?? 1000,
    initMs: positive(values['init-ms'], '--init-ms', true) ?? 0,
  };

  const trace = loadTrace(dir, minutes);
  const log = values.json ? (): void => {} : (s: string): void => console.error(s);
  log(
    `trace ${dir}: ${trace.functions.length} functions, ${trace.invocations.toLocaleString('en-US')} invocations, ${trace.minutes} minutes`,
  );
  const results = specs.map((spec) => {
    const r = simulate(trace, makePolicy(spec), spec, { ...options, memoryBudgetMB: budget ?? Infinity });
    log(`  ${spec}: ${(r.wallMs / 1000).toFixed(1)} s`);
    return r;
  });
  const report: SimReport = {
    date: new Date().toISOString().slice(0, 10),
    trace: {
      dir,
      firstMinute: trace.firstMinute,
      minutes: trace.minutes,
      functions: trace.functions.length,
      invocations: trace.invocations,
    },
    options: { ...options, memoryBudgetMB: budget ?? 'unlimited' },
    node: process.version,
    results,
  };
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else console.log(table(report));
  if (!values['no-save']) {
    const out = values.out ? resolve(values.out) : join(root, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const base = join(out, `sim-${report.date}`);
    writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(`${base}.md`, markdown(report));
    log(`saved ${base}.json and .md`);
  }
  return report;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    console.error(USAGE);
    process.exitCode = 1;
  }
}

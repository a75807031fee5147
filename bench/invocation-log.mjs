// Microbenchmark of the SQLite invocation log's write: what one record costs the thread that writes it, on
// the real schema (the migrations of this build) with a million rows already in the table, for each set of
// indexes on it. Not part of `npm run bench` (the prefill takes a minute): `node bench/invocation-log.mjs`.
// BENCH_ROWS (default 1,000,000), BENCH_BATCH (records per transaction, default 500: one 50 ms flush at
// 10k req/s), BENCH_BATCHES (timed batches per variant, default 40). The variants take turns, so a change in
// the machine's load spreads over all of them; each figure is the median of its batches, in µs per record
// (process CPU time, user + system, from process.cpuUsage(), and wall time beside it).
import { mkdtempSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { openSqliteStore } from '../dist/store/sqlite/index.js';
import { timeOrderedId } from '../dist/ids.js';
import { machine, saveResult } from './lib.mjs';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 500);
const BATCHES = Number(process.env.BENCH_BATCHES ?? 40);

function record(requestId, start, fn = 'hello') {
  return {
    requestId,
    project: 'default',
    functionName: fn,
    version: '1',
    trigger: 'http',
    attempt: 1,
    start,
    durationMs: 0.21,
    billedMs: 1,
    memoryMB: 128,
    requests: 1,
    costPicoUsd: 2100,
    maxRssBytes: 0,
    cold: false,
    initMs: null,
    status: 'ok',
    errorType: null,
    errorMessage: null,
    logs: '',
  };
}

const work = mkdtempSync(join(tmpdir(), 'nimbus-invlog-'));
const base = join(work, 'base.db');
{
  // The schema as this build migrates it, then ROWS records of 20 functions over the last 30 days.
  openSqliteStore({ path: base }).closeSync();
  const db = new BetterSqlite3(base);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const cols =
    'request_id, project, function_name, version, trigger, attempt, start, duration_ms, billed_ms, memory_mb, max_rss, cold, init_ms, status, error_type, error_message, logs, requests, cost_pico_usd';
  const ins = db.prepare(
    `INSERT INTO invocations (${cols}) VALUES (?, 'default', ?, '1', 'http', 1, ?, 0.2, 1, 128, 0, 0, NULL, 'ok', NULL, NULL, '', 1, 2100)`,
  );
  const t0 = Date.now() - 30 * 86_400_000;
  const step = (30 * 86_400_000) / ROWS;
  const fill = db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      const at = t0 + i * step;
      ins.run(timeOrderedId(at), `fn${i % 20}`, at);
    }
  });
  for (let i = 0; i < ROWS; i += 100_000) fill(i, Math.min(ROWS, i + 100_000));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  console.log(`prefilled ${ROWS} rows`);
}

const INDEXES = [
  'invocations_by_function_seq',
  'invocations_by_function_start',
  'invocations_by_project_start',
  'invocations_by_start',
];
// Each variant is a copy of the prefilled file with some indexes dropped (and the unique key's ids random).
const variants = [
  { name: 'as migrated (v7 ids)', drop: [] },
  { name: 'as migrated, random v4 ids', drop: [], random: true },
  { name: 'without by_function_start', drop: ['invocations_by_function_start'] },
  {
    name: 'without by_function_start, by_project_start',
    drop: ['invocations_by_function_start', 'invocations_by_project_start'],
  },
  { name: 'no secondary index (unique key only)', drop: INDEXES },
  { name: 'as migrated, writer thread: main thread', drop: [], thread: true },
];
for (const [i, v] of variants.entries()) {
  v.path = join(work, `v${i}.db`);
  copyFileSync(base, v.path);
  const db = new BetterSqlite3(v.path);
  for (const ix of v.drop) db.exec(`DROP INDEX ${ix}`);
  db.close();
  v.store = openSqliteStore({
    path: v.path,
    flushIntervalMs: 3_600_000,
    maxBatch: 1e9,
    writer: v.thread ? 'thread' : 'inline',
  });
  v.cpu = [];
  v.wall = [];
}

let at = Date.now();
for (let b = 0; b < BATCHES; b++) {
  for (const v of variants) {
    for (let i = 0; i < BATCH; i++) {
      at += 0.1;
      const id = v.random ? crypto.randomUUID() : timeOrderedId(at);
      v.store.invocations.write(record(id, at, `fn${i % 3}`));
    }
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    // With the thread, what the main thread pays is handing the batch over (flush()'s synchronous part);
    // its CPU figure then includes the thread's, which runs meanwhile.
    const done = v.thread ? v.store.invocations.flush() : v.store.invocations.flushSync();
    const w = performance.now() - w0;
    await done;
    const c = process.cpuUsage(c0);
    if (b >= 2) {
      v.cpu.push(((c.user + c.system) / BATCH) * 1);
      v.wall.push((w * 1000) / BATCH);
    }
  }
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const result = { machine: machine(), date: new Date().toISOString(), rows: ROWS, batch: BATCH, variants: [] };
console.log(`µs per record, batches of ${BATCH} on ${ROWS} rows (median of ${BATCHES - 2}):`);
for (const v of variants) {
  const r = {
    name: v.name,
    cpuUs: Math.round(median(v.cpu) * 10) / 10,
    wallUs: Math.round(median(v.wall) * 10) / 10,
  };
  result.variants.push(r);
  console.log(
    `  ${v.name.padEnd(48)} cpu ${String(r.cpuUs).padStart(6)}  wall ${String(r.wallUs).padStart(6)}`,
  );
  v.store.closeSync();
}
rmSync(work, { recursive: true, force: true });
console.log(`saved ${saveResult('invocation-log', result)}`);

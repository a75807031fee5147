// A warm, console.log-heavy invocation (100 lines) with the Text and the JSON log format, sequentially through
// the gateway. NIMBUS_ROOT=<another checkout> measures that checkout's build instead (before/after a change to
// src/runtime/logs.ts). Prints milliseconds per invocation; nothing passes or fails on them.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib.mjs';

const root = process.env.NIMBUS_ROOT ?? ROOT;
const { startNimbus } = await import(join(root, 'dist', 'server.js'));
const { NimbusClient } = await import(join(root, 'dist', 'client', 'index.js'));
const { packageService } = await import(join(root, 'dist', 'build', 'package.js'));
const N = Number(process.env.LOG_BENCH_N ?? 400);

const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-bench-logs-'));
const n = await startNimbus({ port: 0, apiPort: 0, smtpPort: 0, dataDir, logLevel: 'silent', stemCells: 2 });
try {
  const client = new NimbusClient({ apiUrl: n.apiUrl, apiKey: n.apiKey });
  const service = join(dataDir, 'service');
  cpSync(join(ROOT, 'bench', 'fixtures', 'logheavy'), service, { recursive: true });
  // Another checkout may predate logFormat: its "json" function is then a Text one, told apart in the output.
  const older = process.env.NIMBUS_ROOT !== undefined;
  if (older) {
    const yaml = join(service, 'nimbus.yaml');
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/\n\s+logFormat: JSON/, ''));
  }
  await client.deploy((await packageService(service)).archive);
  const figures = {};
  for (let round = 0; round < 3; round++) {
    for (const fn of ['text', 'json']) {
      for (let i = 0; i < 20; i++) await (await fetch(`${n.gatewayUrl}/${fn}`)).text();
      const t0 = performance.now();
      for (let i = 0; i < N; i++) await (await fetch(`${n.gatewayUrl}/${fn}`)).text();
      const ms = (performance.now() - t0) / N;
      // The best of three rounds: the machine is shared, and interference only ever adds time.
      const label = older && fn === 'json' ? 'text (second function)' : fn;
      figures[label] = Math.min(figures[label] ?? Infinity, ms);
    }
  }
  console.log(JSON.stringify({ root, invocations: N, msPerInvocation: figures }));
} finally {
  await n.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

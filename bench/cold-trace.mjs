// Where a cold start's time goes, read from Nimbus's own spans: `node bench/cold-trace.mjs [functions]`.
// Deploys N never-invoked hello-world functions on a fresh Nimbus with every trace sampled, requests each once
// (and, after the same pause, the one before it again: the warm floor), then prints the median duration of
// each span over the cold requests and the warm ones, and the client's end-to-end figures beside them.
// BENCH_COLD_NETWORK=none deploys the functions with `network: none`. Every trace is kept: the spans cost
// some of their own time, so read the differences between spans, not the client's figure, from this.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, percentile, sleep, startNimbus, stop } from './lib.mjs';

const N = Number(process.argv[2] ?? 30);
const GAP_MS = 150;
const work = mkdtempSync(join(tmpdir(), 'nimbus-coldtrace-'));
const dir = join(work, 'svc');
mkdirSync(dir);
const fns = Array.from({ length: N }, (_, i) => `c${i}`);
writeFileSync(
  join(dir, 'nimbus.yaml'),
  `service: coldtrace\nfunctions:\n  warmup:\n    handler: handler.handler\n    events:\n      - http: GET /warmup\n${fns.map((f) => `  ${f}:\n    handler: handler.handler\n${process.env.BENCH_COLD_NETWORK ? `    network: ${process.env.BENCH_COLD_NETWORK}\n` : ''}    events:\n      - http: GET /${f}\n`).join('')}`,
);
writeFileSync(join(dir, 'handler.js'), "exports.handler = async () => ({ message: 'hello world' });\n");
const env = {
  ...process.env,
  NIMBUS_DATA: join(work, 'data'),
  NIMBUS_LOG_LEVEL: 'warn',
  OTEL_TRACES_SAMPLER: 'always_on',
};
const nimbus = await startNimbus(env);
try {
  const { gatewayUrl, apiUrl } = nimbus.info;
  const apiKey = readFileSync(nimbus.info.keyFile, 'utf8').trim();
  execFileSync(process.execPath, [BIN, 'deploy', dir], { env, stdio: 'ignore' });
  await sleep(1000);
  for (let i = 0; i < 50; i++) await (await fetch(`${gatewayUrl}/warmup`)).text();
  const get = async (f) => {
    const t0 = performance.now();
    const res = await fetch(`${gatewayUrl}/${f}`);
    await res.text();
    return { ms: performance.now() - t0, id: res.headers.get('x-nimbus-request-id') };
  };
  const cold = [];
  const warm = [];
  for (let i = 0; i < fns.length; i++) {
    await sleep(GAP_MS);
    cold.push(await get(fns[i]));
    await sleep(GAP_MS);
    warm.push(await get(i === 0 ? 'warmup' : fns[i - 1]));
  }
  await sleep(500);
  const spans = async (id) => {
    const res = await fetch(`${apiUrl}/v1/invocations/${id}/trace`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    return res.ok ? (await res.json()).spans : [];
  };
  const byName = (traces) => {
    const m = new Map();
    for (const t of traces) {
      for (const s of t) {
        // Names carry the route or function: keep the part that says what the span is.
        const name = s.name.startsWith('GET /')
          ? 'gateway request'
          : /^c\d+$|^warmup$/.test(s.name)
            ? 'invocation (function span)'
            : s.name.replace(/ c\d+$| warmup$/, '');
        if (!m.has(name)) m.set(name, []);
        m.get(name).push(s.durationMs);
      }
    }
    return m;
  };
  const show = (label, results, traces) => {
    console.log(
      `${label}: client end to end p50 ${percentile(
        results.map((r) => r.ms),
        50,
      ).toFixed(2)} ms (n=${results.length})`,
    );
    for (const [name, ds] of byName(traces)) {
      console.log(`  ${name.padEnd(34)} p50 ${percentile(ds, 50).toFixed(2)} ms  (n=${ds.length})`);
    }
  };
  show('cold', cold, await Promise.all(cold.map((r) => spans(r.id))));
  show('warm after the same idle', warm, await Promise.all(warm.map((r) => spans(r.id))));
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
} finally {
  await stop(nimbus.proc);
  rmSync(work, { recursive: true, force: true });
}

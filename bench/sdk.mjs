// What the provided AWS SDK costs a cold start (BENCH_ONLY=sdk): time to the first answer through the gateway
// of never-invoked functions that
//   noop      return at once (the floor: a cold start of nothing);
//   load      require client-dynamodb and lib-dynamodb from the runtime, and return;
//   provided  do that and answer with one GetItem on their table (what a real first request does);
//   bundled   the same handler with the SDK bundled into it by esbuild, as a service shipping its own does;
//   v2        the same with the legacy aws-sdk v2 DynamoDB client bundled, redirected to Nimbus.
// The variants take turns, one cold request each, paced so the stem-cell pool refills between them.
// Figures, not pass/fail.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { BIN, ROOT, machine, percentile, saveResult, sleep, startJsonProcess, stop } from './lib.mjs';

const PER_VARIANT = Number(process.env.BENCH_SDK_FUNCTIONS ?? 20);
const GAP_MS = Number(process.env.BENCH_COLD_GAP_MS ?? 150);

const V3 = `const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const { DynamoDBDocumentClient, GetCommand } = require('@aws-sdk/lib-dynamodb');
const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ maxAttempts: 1 }));
`;
const SOURCES = {
  noop: `exports.handler = async () => ({ ok: true });\n`,
  load: `${V3}exports.handler = async () => ({ ok: typeof doc.send });\n`,
  provided: `${V3}exports.handler = async () => ({ ok: (await doc.send(new GetCommand({ TableName: 'bench', Key: { id: 'a' } }))).Item });\n`,
  v2: `const AWS = require('aws-sdk/global');
require('aws-sdk/clients/dynamodb');
const doc = new AWS.DynamoDB.DocumentClient({ maxRetries: 0 });
exports.handler = async () => ({ ok: (await doc.get({ TableName: 'bench', Key: { id: 'a' } }).promise()).Item });
`,
};

export async function runSdk() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-sdk-'));
  const svc = join(work, 'svc');
  mkdirSync(svc);
  for (const [name, code] of Object.entries(SOURCES)) writeFileSync(join(svc, `${name}.js`), code);
  // "bundled" and "v2" carry their SDK, bundled here from Nimbus's node_modules as a user's build would.
  for (const [name, from] of [
    ['bundled', 'provided'],
    ['v2', 'v2'],
  ]) {
    await build({
      stdin: { contents: SOURCES[from], resolveDir: ROOT, loader: 'js' },
      outfile: join(svc, `${name}.js`),
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      logLevel: 'error',
    });
  }
  const variants = ['noop', 'load', 'provided', 'bundled', 'v2'];
  const fns = variants.flatMap((v) =>
    Array.from({ length: PER_VARIANT }, (_, i) => ({ v, name: `${v}${i}` })),
  );
  writeFileSync(
    join(svc, 'nimbus.yaml'),
    `service: sdkbench\ntables:\n  bench:\n    key: { id: S }\nfunctions:\n${fns
      .map(
        ({ v, name }) =>
          `  ${name}:\n    handler: ${v}.handler\n    timeout: 10\n    permissions: { tables: [bench] }\n    events:\n      - http: GET /${name}\n`,
      )
      .join('')}`,
  );

  const env = {
    ...process.env,
    NIMBUS_DATA: join(work, 'data'),
    NIMBUS_LOG_LEVEL: 'warn',
    NIMBUS_MAX_CONCURRENCY: '200',
  };
  const nimbus = await startJsonProcess(
    process.execPath,
    [BIN, 'up', '--port', '0', '--api-port', '0', '--json'],
    {
      env,
    },
  );
  const result = { machine: machine(), date: new Date().toISOString(), sandbox: nimbus.info.sandboxLevel };
  try {
    execFileSync(process.execPath, [BIN, 'deploy', svc], { env, stdio: 'ignore' });
    execFileSync(process.execPath, [BIN, 'deploy', join(ROOT, 'bench', 'fixtures', 'hello')], {
      env,
      stdio: 'ignore',
    });
    await sleep(1000);
    const get = async (path) => {
      const t0 = performance.now();
      const res = await fetch(`${nimbus.info.gatewayUrl}/${path}`);
      const body = await res.text();
      if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${body}`);
      return performance.now() - t0;
    };
    // Warm the platform's own request path first, so what is measured is the function's cold start.
    for (let i = 0; i < 50; i++) await get('bench/hello');
    const cold = Object.fromEntries(variants.map((v) => [v, []]));
    for (let i = 0; i < PER_VARIANT; i++) {
      for (const v of variants) {
        await sleep(GAP_MS);
        cold[v].push(await get(`${v}${i}`));
      }
    }
    const warm = Object.fromEntries(variants.map((v) => [v, []]));
    for (let i = 0; i < 100; i++) for (const v of variants) warm[v].push(await get(`${v}0`));
    result.cold = {};
    for (const v of variants) {
      const c = cold[v];
      result.cold[v] = {
        p50: round(percentile(c, 50)),
        p90: round(percentile(c, 90)),
        max: round(Math.max(...c)),
        warmP50: round(percentile(warm[v], 50)),
      };
      console.log(
        `[sdk] ${v.padEnd(8)} cold p50 ${result.cold[v].p50} ms, p90 ${result.cold[v].p90} ms, max ${result.cold[v].max} ms; warm p50 ${result.cold[v].warmP50} ms`,
      );
    }
    result.functionsPerVariant = PER_VARIANT;
  } finally {
    await stop(nimbus.proc);
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`saved ${saveResult('sdk', result)}`);
  return result;
}

function round(x) {
  return Math.round(x * 10) / 10;
}

if (import.meta.url === `file://${process.argv[1]}`) await runSdk();

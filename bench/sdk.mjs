// What the provided AWS SDK costs a cold start (BENCH_ONLY=sdk): time to the first answer through the gateway
// of never-invoked functions that
//   noop      return at once (the floor: a cold start of nothing);
//   load      require client-dynamodb and lib-dynamodb from the runtime, and return;
//   provided  do that and answer with one GetItem on their table (what a real first request does);
//   bundled   the same handler with the SDK bundled into it by esbuild, as a service shipping its own does;
//   v2        the same with the legacy aws-sdk v2 DynamoDB client bundled, redirected to Nimbus.
// "bundled" is also measured on a second Nimbus started with NIMBUS_CODE_CACHE=off, in turns with the rest:
// the same real function's cold start with and without the V8 code cache its deploy produced.
// The variants take turns, one cold request each, paced so the stem-cell pool refills between them.
// Figures, not pass/fail.
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { BIN, ROOT, machine, percentile, saveResult, sleep, startNimbus, stop } from './lib.mjs';

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
  const up = (e) => startNimbus(e);
  const offEnv = { ...env, NIMBUS_DATA: join(work, 'data-nocache'), NIMBUS_CODE_CACHE: 'off' };
  const nimbus = await up(env);
  const noCache = await up(offEnv).catch(async (err) => {
    await stop(nimbus.proc);
    throw err;
  });
  const result = { machine: machine(), date: new Date().toISOString(), sandbox: nimbus.info.sandboxLevel };
  try {
    for (const e of [env, offEnv]) {
      execFileSync(process.execPath, [BIN, 'deploy', svc], { env: e, stdio: 'ignore' });
      execFileSync(process.execPath, [BIN, 'deploy', join(ROOT, 'bench', 'fixtures', 'hello')], {
        env: e,
        stdio: 'ignore',
      });
    }
    await sleep(1000);
    const getFrom = async (server, path) => {
      const t0 = performance.now();
      const res = await fetch(`${server.info.gatewayUrl}/${path}`);
      const body = await res.text();
      if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${body}`);
      return performance.now() - t0;
    };
    const get = (path) => getFrom(nimbus, path);
    // Warm the platform's own request path first, so what is measured is the function's cold start.
    for (let i = 0; i < 50; i++) await get('bench/hello');
    for (let i = 0; i < 50; i++) await getFrom(noCache, 'bench/hello');
    const all = [...variants, 'bundled-nocache'];
    const cold = Object.fromEntries(all.map((v) => [v, []]));
    for (let i = 0; i < PER_VARIANT; i++) {
      for (const v of all) {
        await sleep(GAP_MS);
        cold[v].push(await (v === 'bundled-nocache' ? getFrom(noCache, `bundled${i}`) : get(`${v}${i}`)));
      }
    }
    const warm = Object.fromEntries(all.map((v) => [v, []]));
    for (let i = 0; i < 100; i++)
      for (const v of all)
        warm[v].push(await (v === 'bundled-nocache' ? getFrom(noCache, 'bundled0') : get(`${v}0`)));
    result.cold = {};
    for (const v of all) {
      const c = cold[v];
      result.cold[v] = {
        p50: round(percentile(c, 50)),
        p90: round(percentile(c, 90)),
        max: round(Math.max(...c)),
        warmP50: round(percentile(warm[v], 50)),
      };
      console.log(
        `[sdk] ${v.padEnd(15)} cold p50 ${result.cold[v].p50} ms, p90 ${result.cold[v].p90} ms, max ${result.cold[v].max} ms; warm p50 ${result.cold[v].warmP50} ms`,
      );
    }
    result.functionsPerVariant = PER_VARIANT;
    const c = result.cold;
    result.codeCacheSavesP50 = round(c['bundled-nocache'].p50 - c.bundled.p50);
    console.log(
      `[sdk] bundled cold p50 with the code cache ${c.bundled.p50} ms, without ${c['bundled-nocache'].p50} ms (saves ${result.codeCacheSavesP50} ms)`,
    );
  } finally {
    await stop(nimbus.proc);
    await stop(noCache.proc);
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`saved ${saveResult('sdk', result)}`);
  return result;
}

function round(x) {
  return Math.round(x * 10) / 10;
}

if (import.meta.url === `file://${process.argv[1]}`) await runSdk();

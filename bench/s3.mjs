// S3 API benchmark (BENCH_ONLY=s3). Through @aws-sdk/client-s3 (keep-alive agent, maxAttempts 1,
// path-style, checksums only when an operation requires them, identical for every target), in turns against
// every target in one run:
//  - PutObject and GetObject (body read to its end) of 1 KB and of 1 MB objects, by BENCH_S3_CONCURRENCY (8)
//    workers for BENCH_S3_SECONDS (2) each: ops/s, MB/s, p50 and p99; then GetObject of 1 MB by one worker;
// against
//  - s3rver (npm, pure JavaScript, objects and their metadata as files under a folder, no fsync): the usual
//    local S3 for Node tests. MinIO and LocalStack need a downloaded binary or Docker, which this machine
//    cannot fetch;
//  - Nimbus on SQLite (bytes fsynced and renamed, metadata and the change-log entry group-committed and
//    fsynced before the answer);
// and, in the same run, the floor: the 1 MB file read with node:fs readFile, at the same concurrency and by
// one reader (from the page cache, as the targets' reads are).
// Figures, not pass/fail: the machine is shared; compare within one run.
import { Agent } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BIN, ROOT, machine, percentile, saveResult, startJsonProcess, stop } from './lib.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const SETTINGS = {
  concurrency: Number(process.env.BENCH_S3_CONCURRENCY ?? 8),
  seconds: Number(process.env.BENCH_S3_SECONDS ?? 2),
  sequentialSeconds: Number(process.env.BENCH_S3_SEQUENTIAL_SECONDS ?? 1.5),
  warmupSeconds: Number(process.env.BENCH_S3_WARMUP_SECONDS ?? 0.5),
};
const TARGETS = (process.env.BENCH_S3_TARGETS ?? 's3rver,sqlite').split(',');
const TITLE = { s3rver: 's3rver (files)', sqlite: 'Nimbus, SQLite' };
const SIZES = { '1KB': 1024, '1MB': 1024 * 1024 };

function sdk(target) {
  const agent = new Agent({ keepAlive: true, maxSockets: SETTINGS.concurrency });
  return new S3Client({
    endpoint: target.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    maxAttempts: 1,
    // s3rver predates the SDK's default CRC32 on every put; asking for none keeps the work the same.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: agent },
  });
}

/** Runs `once` from `workers` loops until `seconds` pass; ops/s, MB/s of `bytes` per op, p50, p99. */
async function drive(workers, seconds, bytes, once) {
  const until = performance.now() + seconds * 1000;
  const durations = [];
  let i = 0;
  const loop = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      await once(i++);
      durations.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: workers }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  durations.sort((a, b) => a - b);
  const ops = durations.length / elapsed;
  return {
    opsPerSec: Math.round(ops),
    mbPerSec: round((ops * bytes) / 2 ** 20, 1),
    p50: round(percentile(durations, 50)),
    p99: round(percentile(durations, 99)),
  };
}

async function drain(body) {
  let n = 0;
  for await (const chunk of body) n += chunk.length;
  return n;
}

async function measure(target) {
  const s3 = sdk(target);
  const out = {};
  try {
    if (target.createBucket) await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
    for (const [label, size] of Object.entries(SIZES)) {
      const body = randomBytes(size);
      // Puts cycle over 100 keys, so the gets below read objects that exist and the store does not grow.
      const put = (i) =>
        s3.send(new PutObjectCommand({ Bucket: 'bench', Key: `${label}/${i % 100}`, Body: body }));
      const get = async (i) => {
        const r = await s3.send(new GetObjectCommand({ Bucket: 'bench', Key: `${label}/${i % 100}` }));
        if ((await drain(r.Body)) !== size) throw new Error('short read');
      };
      for (let i = 0; i < 100; i++) await put(i);
      await drive(SETTINGS.concurrency, SETTINGS.warmupSeconds, size, get);
      out[`put${label}`] = await drive(SETTINGS.concurrency, SETTINGS.seconds, size, put);
      out[`get${label}`] = await drive(SETTINGS.concurrency, SETTINGS.seconds, size, get);
    }
    out.get1MBSequential = await drive(1, SETTINGS.sequentialSeconds, SIZES['1MB'], get1MB(s3));
    return out;
  } finally {
    s3.destroy();
  }
}

function get1MB(s3) {
  return async (i) => {
    const r = await s3.send(new GetObjectCommand({ Bucket: 'bench', Key: `1MB/${i % 100}` }));
    await drain(r.Body);
  };
}

async function floor(work) {
  const file = join(work, 'floor-1mb');
  writeFileSync(file, randomBytes(SIZES['1MB']));
  const once = () => readFile(file);
  await drive(SETTINGS.concurrency, SETTINGS.warmupSeconds, SIZES['1MB'], once);
  return {
    readFile1MB: await drive(SETTINGS.concurrency, SETTINGS.seconds, SIZES['1MB'], once),
    readFile1MBSequential: await drive(1, SETTINGS.sequentialSeconds, SIZES['1MB'], once),
  };
}

async function start(name, work) {
  if (name === 's3rver') {
    const s = await startJsonProcess(process.execPath, [
      join(ROOT, 'bench', 's3-peer-server.mjs'),
      join(work, 's3rver'),
    ]);
    const target = {
      endpoint: `http://127.0.0.1:${s.info.port}`,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
    };
    return { proc: s.proc, target };
  }
  if (name === 'sqlite') {
    const env = { ...process.env, NIMBUS_DATA: join(work, 'sqlite'), NIMBUS_LOG_LEVEL: 'warn' };
    const n = await startJsonProcess(
      process.execPath,
      [BIN, 'up', '--port', '0', '--api-port', '0', '--json'],
      {
        env,
      },
    );
    const secretAccessKey = readFileSync(join(work, 'sqlite', 'api-key'), 'utf8').trim();
    return {
      proc: n.proc,
      target: { endpoint: n.info.apiUrl, accessKeyId: 'nimbus', secretAccessKey, createBucket: true },
    };
  }
  throw new Error(`unknown target ${name}`);
}

export async function runS3() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-s3-'));
  const peerVersion = JSON.parse(
    readFileSync(join(ROOT, 'node_modules', 's3rver', 'package.json'), 'utf8'),
  ).version;
  const result = {
    machine: machine(),
    date: new Date().toISOString(),
    settings: {
      ...SETTINGS,
      client: '@aws-sdk/client-s3, keep-alive agent, maxAttempts 1, path-style, checksums WHEN_REQUIRED',
    },
    peer: `s3rver ${peerVersion}`,
    loadAverage: { before: loadavg()[0] },
    targets: {},
  };
  try {
    result.floor = await floor(work);
    const f = result.floor;
    console.log(
      `s3   node:fs readFile 1 MB (floor)   ${f.readFile1MB.opsPerSec}/s ${f.readFile1MB.mbPerSec} MB/s p50 ${f.readFile1MB.p50} ms | one at a time p50 ${f.readFile1MBSequential.p50} ms`,
    );
    for (const name of TARGETS) {
      const s = await start(name, work);
      try {
        result.targets[name] = await measure(s.target);
      } finally {
        await stop(s.proc);
      }
      const r = result.targets[name];
      const line = (k) => `${r[k].opsPerSec}/s ${r[k].mbPerSec} MB/s p50 ${r[k].p50} ms`;
      console.log(
        `s3   ${TITLE[name].padEnd(16)} put 1 KB ${line('put1KB')} | get 1 KB ${line('get1KB')}\n` +
          `     ${''.padEnd(16)} put 1 MB ${line('put1MB')} | get 1 MB ${line('get1MB')} | get 1 MB one at a time p50 ${r.get1MBSequential.p50} ms`,
      );
      r.get1MBVsFloor = round(f.readFile1MB.mbPerSec / r.get1MB.mbPerSec);
      r.get1MBSequentialVsFloor = round(r.get1MBSequential.p50 / f.readFile1MBSequential.p50);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  result.loadAverage.after = loadavg()[0];
  return result;
}

function round(v, digits = 2) {
  return Math.round(v * 10 ** digits) / 10 ** digits;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runS3();
  console.log(`saved ${saveResult('s3', r)}`);
}

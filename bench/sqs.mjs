// SQS API benchmark (BENCH_ONLY=sqs). Through @aws-sdk/client-sqs (keep-alive agent, maxAttempts 1), in turns
// against every target in one run:
//  - round trip: SendMessage, then ReceiveMessage (1, no wait), then DeleteMessage of what came back, by
//    BENCH_SQS_CONCURRENCY (8) workers for BENCH_SQS_SECONDS (3): round trips/s and their p50, p99; then by
//    one worker: p50, p99;
//  - batches: SendMessageBatch of 10, ReceiveMessage of 10, DeleteMessageBatch: messages/s at the same
//    concurrency;
// against
//  - local-aws-sqs (npm, pure JavaScript, in memory: nothing is durable, so it is the cost of the protocol and
//    the SDK more than of a queue). ElasticMQ and LocalStack need Java or Docker; fauxqs needs Node >= 22.5.
//  - Nimbus on SQLite (every send, receive and delete committed, sends fsynced), and on PostgreSQL (a fresh
//    schema on NIMBUS_BENCH_POSTGRES, default 127.0.0.1:5432/test, dropped afterwards; skipped when nothing
//    answers there).
// Figures, not pass/fail: the machine is shared; compare within one run.
import { Agent } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { BIN, ROOT, machine, percentile, saveResult, startJsonProcess, stop } from './lib.mjs';
import { benchPostgres } from './core.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const SETTINGS = {
  concurrency: Number(process.env.BENCH_SQS_CONCURRENCY ?? 8),
  seconds: Number(process.env.BENCH_SQS_SECONDS ?? 3),
  sequentialSeconds: Number(process.env.BENCH_SQS_SEQUENTIAL_SECONDS ?? 1.5),
  warmupSeconds: Number(process.env.BENCH_SQS_WARMUP_SECONDS ?? 0.5),
};
const TARGETS = (process.env.BENCH_SQS_TARGETS ?? 'local-aws-sqs,sqlite,postgresql').split(',');
const TITLE = {
  'local-aws-sqs': 'local-aws-sqs (memory)',
  sqlite: 'Nimbus, SQLite',
  postgresql: 'Nimbus, PostgreSQL',
};

function sdk(target) {
  const agent = new Agent({ keepAlive: true, maxSockets: SETTINGS.concurrency });
  return new SQSClient({
    endpoint: target.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    maxAttempts: 1,
    requestHandler: { httpAgent: agent },
  });
}

/** Runs `once` from `workers` loops until `seconds` pass; each call's duration and its count of work. */
async function drive(workers, seconds, once) {
  const until = performance.now() + seconds * 1000;
  const durations = [];
  let units = 0;
  const loop = async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      // Not `units += await once()`: that reads units before the await and loses the other workers' counts.
      const n = await once();
      units += n;
      durations.push(performance.now() - t0);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: workers }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  durations.sort((a, b) => a - b);
  return {
    perSec: Math.round(units / elapsed),
    p50: round(percentile(durations, 50)),
    p99: round(percentile(durations, 99)),
  };
}

async function roundTrip(sqs, QueueUrl) {
  await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x'.repeat(200) }));
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1 }));
  for (const m of r.Messages ?? []) {
    await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m.ReceiptHandle }));
  }
  return 1;
}

const BATCH = Array.from({ length: 10 }, (_, i) => ({ Id: `m${i}`, MessageBody: 'x'.repeat(200) }));

async function batchTrip(sqs, QueueUrl) {
  await sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries: BATCH }));
  const r = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
  const ms = r.Messages ?? [];
  if (ms.length > 0) {
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl,
        Entries: ms.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle })),
      }),
    );
  }
  return ms.length;
}

async function measure(target) {
  const sqs = sdk(target);
  try {
    const { QueueUrl: single } = await sqs.send(new CreateQueueCommand({ QueueName: 'bench-single' }));
    const { QueueUrl: batch } = await sqs.send(new CreateQueueCommand({ QueueName: 'bench-batch' }));
    await drive(SETTINGS.concurrency, SETTINGS.warmupSeconds, () => roundTrip(sqs, single));
    const concurrent = await drive(SETTINGS.concurrency, SETTINGS.seconds, () => roundTrip(sqs, single));
    const sequential = await drive(1, SETTINGS.sequentialSeconds, () => roundTrip(sqs, single));
    const batches = await drive(SETTINGS.concurrency, SETTINGS.seconds, () => batchTrip(sqs, batch));
    return {
      roundTripsPerSec: concurrent.perSec,
      p50: concurrent.p50,
      p99: concurrent.p99,
      sequentialP50: sequential.p50,
      sequentialP99: sequential.p99,
      batchMessagesPerSec: batches.perSec,
    };
  } finally {
    sqs.destroy();
  }
}

async function startNimbus(work, name, store) {
  const env = { ...process.env, NIMBUS_DATA: join(work, name), NIMBUS_LOG_LEVEL: 'warn' };
  if (store) env.NIMBUS_STORE = store;
  const n = await startJsonProcess(
    process.execPath,
    [BIN, 'up', '--port', '0', '--api-port', '0', '--json'],
    {
      env,
    },
  );
  const secretAccessKey = readFileSync(join(work, name, 'api-key'), 'utf8').trim();
  return { proc: n.proc, target: { endpoint: n.info.apiUrl, accessKeyId: 'nimbus', secretAccessKey } };
}

async function start(name, work, pg) {
  if (name === 'local-aws-sqs') {
    const s = await startJsonProcess(process.execPath, [join(ROOT, 'bench', 'sqs-peer-server.mjs')]);
    const target = {
      endpoint: `http://127.0.0.1:${s.info.port}`,
      accessKeyId: 'bench',
      secretAccessKey: 'bench',
    };
    return { proc: s.proc, target };
  }
  if (name === 'sqlite') return startNimbus(work, 'sqlite');
  if (name === 'postgresql') return pg ? startNimbus(work, 'postgresql', pg.url) : null;
  throw new Error(`unknown target ${name}`);
}

export async function runSqs() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-sqs-'));
  const peerVersion = JSON.parse(
    readFileSync(join(ROOT, 'node_modules', 'local-aws-sqs', 'package.json'), 'utf8'),
  ).version;
  const result = {
    machine: machine(),
    date: new Date().toISOString(),
    settings: {
      ...SETTINGS,
      client: '@aws-sdk/client-sqs, keep-alive agent, maxAttempts 1',
      body: '200 bytes',
    },
    peer: `local-aws-sqs ${peerVersion}`,
    loadAverage: { before: loadavg()[0] },
    targets: {},
  };
  const pg = TARGETS.includes('postgresql') ? await benchPostgres(`bench_sqs_${process.pid}`) : null;
  try {
    for (const name of TARGETS) {
      const s = await start(name, work, pg);
      if (!s) {
        console.log(`sqs: ${name} skipped (no PostgreSQL at NIMBUS_BENCH_POSTGRES)`);
        continue;
      }
      try {
        result.targets[name] = await measure(s.target);
      } finally {
        await stop(s.proc);
      }
      const r = result.targets[name];
      console.log(
        `sqs  ${TITLE[name].padEnd(24)} send+receive+delete ${String(r.roundTripsPerSec).padStart(5)}/s ` +
          `p50 ${r.p50} ms p99 ${r.p99} ms | one at a time p50 ${r.sequentialP50} ms p99 ${r.sequentialP99} ms | ` +
          `batches of 10 ${r.batchMessagesPerSec} msg/s`,
      );
    }
  } finally {
    await pg?.drop();
    rmSync(work, { recursive: true, force: true });
  }
  result.loadAverage.after = loadavg()[0];
  return result;
}

function round(v, digits = 2) {
  return Math.round(v * 10 ** digits) / 10 ** digits;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runSqs();
  console.log(`saved ${saveResult('sqs', r)}`);
}

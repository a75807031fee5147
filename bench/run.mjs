// `npm run bench`: every benchmark in one run. Each prints its figures and saves them under bench/results/;
// timing is compared against a baseline measured in the same run (bare node:http, workerd, serverless-offline),
// since absolute numbers drift on shared 2-core machines. Nothing here passes or fails on a threshold.
import { runCore } from './core.mjs';
import { runPeers } from './peers.mjs';
import { runScale } from './scale.mjs';
import { runSpawn } from './spawn.mjs';
import { runEvents } from './events.mjs';
import { runDynamo } from './dynamodb.mjs';
import { runSdk } from './sdk.mjs';
import { runColdCpu } from './cold-cpu.mjs';
import { runSqs } from './sqs.mjs';
import { runGateway } from './gateway.mjs';
import { runS3 } from './s3.mjs';
import { runS3Multipart } from './s3-multipart.mjs';
import { runMetrics } from './metrics.mjs';
import { runTracing } from './tracing.mjs';
import { saveResult } from './lib.mjs';

const only = new Set(
  (
    process.env.BENCH_ONLY ??
    'core,coldcpu,peers,scale,spawn,events,dynamodb,sdk,sqs,gateway,s3,s3-multipart,metrics,tracing'
  ).split(','),
);
const summary = {};
if (only.has('core')) summary.core = await runCore();
if (only.has('coldcpu')) summary.coldCpu = await runColdCpu();
if (only.has('peers')) summary.peers = await runPeers();
if (only.has('scale')) summary.scale = await runScale();
if (only.has('spawn')) summary.spawn = await runSpawn();
if (only.has('events')) summary.events = await runEvents();
if (only.has('dynamodb')) summary.dynamodb = await runDynamo();
if (only.has('sdk')) summary.sdk = await runSdk();
if (only.has('sqs')) summary.sqs = await runSqs();
if (only.has('gateway')) summary.gateway = await runGateway();
if (only.has('s3')) summary.s3 = await runS3();
if (only.has('s3-multipart')) summary.s3Multipart = await runS3Multipart();
if (only.has('metrics')) summary.metrics = await runMetrics();
if (only.has('tracing')) summary.tracing = await runTracing();

const core = summary.core;
const peers = summary.peers;
if (core && peers) {
  const w = peers.workerd?.reqPerSec;
  const s = peers.serverlessOffline?.reqPerSec;
  console.log('\nside by side, warm hello world, autocannon -c 50:');
  console.log(
    `  bare node:http      ${core.bare.reqPerSec} req/s  p50 ${core.bare.p50} ms  p99 ${core.bare.p99} ms`,
  );
  console.log(
    `  nimbus              ${core.nimbus.reqPerSec} req/s  p50 ${core.nimbus.p50} ms  p99 ${core.nimbus.p99} ms  (${core.warmRatio}x bare${w ? `, ${(core.nimbus.reqPerSec / w).toFixed(2)}x workerd` : ''})`,
  );
  if (core.postgresql) {
    const pg = core.postgresql.nimbus;
    console.log(
      `  nimbus, postgresql  ${pg.reqPerSec} req/s  p50 ${pg.p50} ms  p99 ${pg.p99} ms  (${core.postgresql.warmRatio}x bare)`,
    );
  }
  if (w)
    console.log(`  workerd             ${w} req/s  p50 ${peers.workerd.p50} ms  p99 ${peers.workerd.p99} ms`);
  if (s)
    console.log(
      `  serverless-offline  ${s} req/s  p50 ${peers.serverlessOffline.p50} ms  p99 ${peers.serverlessOffline.p99} ms`,
    );
}
console.log(`saved ${saveResult('all', summary)}`);

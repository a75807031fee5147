// S3 upload benchmark (BENCH_ONLY=s3-multipart). Through @aws-sdk/client-s3 against Nimbus on SQLite, a body of
// BENCH_S3_MIB (64) MiB, BENCH_S3_ROUNDS (3) times each, the median kept:
//  - PutObject of the whole body (one streamed put: the baseline of this run);
//  - lib-storage's Upload in 8 MiB parts, 4 at a time (CreateMultipartUpload, UploadPart, Complete);
//  - CompleteMultipartUpload alone for the same parts: the cost of composing them into one file and fsyncing.
// Figures, not pass/fail: the machine is shared; compare within one run.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { BIN, machine, percentile, saveResult, startJsonProcess, stop } from './lib.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const MiB = 1024 * 1024;
const SETTINGS = {
  mib: Number(process.env.BENCH_S3_MIB ?? 64),
  rounds: Number(process.env.BENCH_S3_ROUNDS ?? 3),
  partMib: 8,
  queueSize: 4,
};

async function timed(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export async function runS3Multipart() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-s3-'));
  const env = { ...process.env, NIMBUS_DATA: join(work, 'data'), NIMBUS_LOG_LEVEL: 'warn' };
  const n = await startJsonProcess(
    process.execPath,
    [BIN, 'up', '--port', '0', '--api-port', '0', '--json'],
    {
      env,
    },
  );
  const s3 = new S3Client({
    endpoint: n.info.apiUrl,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: 'nimbus',
      secretAccessKey: readFileSync(join(work, 'data', 'api-key'), 'utf8').trim(),
    },
    maxAttempts: 1,
  });
  const body = randomBytes(SETTINGS.mib * MiB);
  const put = [];
  const multipart = [];
  const complete = [];
  try {
    await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
    for (let i = 0; i < SETTINGS.rounds; i++) {
      put.push(
        await timed(() => s3.send(new PutObjectCommand({ Bucket: 'bench', Key: `put-${i}`, Body: body }))),
      );
      multipart.push(
        await timed(() =>
          new Upload({
            client: s3,
            params: { Bucket: 'bench', Key: `mpu-${i}`, Body: body },
            partSize: SETTINGS.partMib * MiB,
            queueSize: SETTINGS.queueSize,
          }).done(),
        ),
      );
      const { UploadId } = await s3.send(
        new CreateMultipartUploadCommand({ Bucket: 'bench', Key: `c-${i}` }),
      );
      const Parts = [];
      for (let p = 0; p * SETTINGS.partMib * MiB < body.length; p++) {
        const chunk = body.subarray(p * SETTINGS.partMib * MiB, (p + 1) * SETTINGS.partMib * MiB);
        const r = await s3.send(
          new UploadPartCommand({ Bucket: 'bench', Key: `c-${i}`, UploadId, PartNumber: p + 1, Body: chunk }),
        );
        Parts.push({ PartNumber: p + 1, ETag: r.ETag });
      }
      complete.push(
        await timed(() =>
          s3.send(
            new CompleteMultipartUploadCommand({
              Bucket: 'bench',
              Key: `c-${i}`,
              UploadId,
              MultipartUpload: { Parts },
            }),
          ),
        ),
      );
    }
  } finally {
    s3.destroy();
    await stop(n.proc);
    rmSync(work, { recursive: true, force: true });
  }
  const ms = (xs) => Math.round(percentile(xs, 50));
  const mibps = (t) => Math.round((SETTINGS.mib / t) * 1000);
  const result = {
    machine: machine(),
    date: new Date().toISOString(),
    settings: SETTINGS,
    putObjectMs: ms(put),
    putObjectMiBps: mibps(ms(put)),
    multipartUploadMs: ms(multipart),
    multipartUploadMiBps: mibps(ms(multipart)),
    completeMs: ms(complete),
  };
  console.log(`\nS3 on SQLite, ${SETTINGS.mib} MiB, median of ${SETTINGS.rounds}:`);
  console.log(`  PutObject                 ${result.putObjectMs} ms  (${result.putObjectMiBps} MiB/s)`);
  console.log(
    `  Upload, ${SETTINGS.partMib} MiB parts x${SETTINGS.queueSize}  ${result.multipartUploadMs} ms  (${result.multipartUploadMiBps} MiB/s)`,
  );
  console.log(
    `  CompleteMultipartUpload   ${result.completeMs} ms  (composing ${SETTINGS.mib / SETTINGS.partMib} parts)`,
  );
  console.log(`saved ${saveResult('s3-multipart', result)}`);
  return result;
}

// Multipart uploads across a SIGKILL of a real `nimbus up`, on both stores: an upload's acknowledged parts
// survive the crash and the orphan sweep at restart (which must count parts' bytes as held), the upload
// completes afterwards, and the parts of uploads a DeleteBucket dropped are swept as orphans.
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  GetObjectCommand,
  ListPartsCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BACKENDS, byteFiles, eventually, exited, upProcessRig } from './helpers.js';

const MiB = 1024 * 1024;

function client(apiUrl: string, key: string): S3Client {
  return new S3Client({
    endpoint: apiUrl,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'nimbus', secretAccessKey: key },
    maxAttempts: 1,
  });
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

describe.each(BACKENDS)('S3 multipart uploads across a crash on %s', (backend) => {
  const rig = upProcessRig(backend, 's3mpu');
  const dataDir = rig.dataDir;

  it(
    'keeps acknowledged parts through SIGKILL and the sweep, and sweeps the parts of dropped uploads',
    { timeout: 120_000 },
    async () => {
      const first = await rig.start();
      const key = first.key;
      let up = first.up;
      let s3 = client(up.info.apiUrl, key);
      await s3.send(new CreateBucketCommand({ Bucket: 'keep' }));
      await s3.send(new CreateBucketCommand({ Bucket: 'drop' }));
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'keep', Key: 'k' }));
      const p1 = randomBytes(5 * MiB);
      const p2 = randomBytes(1000);
      const e1 = (
        await s3.send(new UploadPartCommand({ Bucket: 'keep', Key: 'k', UploadId, PartNumber: 1, Body: p1 }))
      ).ETag;
      const e2 = (
        await s3.send(new UploadPartCommand({ Bucket: 'keep', Key: 'k', UploadId, PartNumber: 2, Body: p2 }))
      ).ETag;
      const dropped = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'drop', Key: 'd' }));
      await s3.send(
        new UploadPartCommand({
          Bucket: 'drop',
          Key: 'd',
          UploadId: dropped.UploadId,
          PartNumber: 1,
          Body: 'gone',
        }),
      );
      // Deleting the bucket drops its upload; the part's file is left for the sweep.
      await s3.send(new DeleteBucketCommand({ Bucket: 'drop' }));
      expect(byteFiles(dataDir)).toBe(3);

      up.proc.kill('SIGKILL');
      await exited(up.proc);
      s3.destroy();
      ({ up } = await rig.start());
      s3 = client(up.info.apiUrl, key);

      // The sweep runs in the background from start: it deletes the dropped part, and only that.
      await eventually(async () => byteFiles(dataDir) === 2, 30_000);
      const parts = await s3.send(new ListPartsCommand({ Bucket: 'keep', Key: 'k', UploadId }));
      expect(parts.Parts?.map((p) => [p.PartNumber, p.Size])).toEqual([
        [1, 5 * MiB],
        [2, 1000],
      ]);
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'keep',
          Key: 'k',
          UploadId,
          MultipartUpload: {
            Parts: [
              { PartNumber: 1, ETag: e1 },
              { PartNumber: 2, ETag: e2 },
            ],
          },
        }),
      );
      const got = await s3.send(new GetObjectCommand({ Bucket: 'keep', Key: 'k' }));
      expect(md5(Buffer.from(await got.Body!.transformToByteArray()))).toBe(md5(Buffer.concat([p1, p2])));
      expect(byteFiles(dataDir)).toBe(1);
      s3.destroy();
    },
  );
});

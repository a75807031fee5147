// The rest of the S3 API through the official AWS SDK v3 against a real Nimbus, on both stores: multipart
// uploads (lib-storage's Upload for a 12 MB body, each operation and S3's errors on completion), presigned
// GET and PUT URLs fetched with plain fetch, object tagging, and bucket CORS with its preflight and headers.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCorsCommand,
  DeleteObjectTaggingCommand,
  GetBucketCorsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutBucketCorsCommand,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startTestNimbus, type TestNimbus } from './helpers.js';

const MiB = 1024 * 1024;

async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as S3ServiceException;
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  throw new Error('expected the call to fail');
}

function byteFiles(n: TestNimbus): string[] {
  const root = join(n.dataDir, 'objects', 'bytes');
  return readdirSync(root).flatMap((d) => readdirSync(join(root, d)).map((f) => join(d, f)));
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

async function bodyOf(s3: S3Client, Bucket: string, Key: string): Promise<Buffer> {
  const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

describe.each(BACKENDS)('S3 multipart, presigned URLs, tagging and CORS on %s', (backend) => {
  let n: TestNimbus;
  let s3: S3Client;
  let presigner: S3Client;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    const config = {
      endpoint: n.apiUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    };
    s3 = new S3Client(config);
    presigner = new S3Client({ ...config, requestChecksumCalculation: 'WHEN_REQUIRED' });
    await s3.send(new CreateBucketCommand({ Bucket: 'mpu' }));
  });
  afterAll(async () => {
    s3?.destroy();
    presigner?.destroy();
    await n?.cleanup();
  });

  it('uploads 12 MB with lib-storage in parts, composed into one object with a multipart ETag', async () => {
    const before = byteFiles(n).length;
    const body = randomBytes(12 * MiB);
    const up = new Upload({
      client: s3,
      params: {
        Bucket: 'mpu',
        Key: 'big.bin',
        Body: body,
        ContentType: 'application/x-test',
        Metadata: { a: 'b' },
      },
      partSize: 5 * MiB,
    });
    const done = await up.done();
    const parts = [body.subarray(0, 5 * MiB), body.subarray(5 * MiB, 10 * MiB), body.subarray(10 * MiB)];
    const expected = createHash('md5')
      .update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest())))
      .digest('hex');
    expect(done.ETag).toBe(`"${expected}-3"`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'big.bin' }));
    expect(head).toMatchObject({
      ContentLength: 12 * MiB,
      ContentType: 'application/x-test',
      Metadata: { a: 'b' },
    });
    expect(md5(await bodyOf(s3, 'mpu', 'big.bin'))).toBe(md5(body));
    // The parts' bytes went once the object held the composed copy: one new file.
    expect(byteFiles(n).length).toBe(before + 1);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }));
    expect(uploads.Uploads ?? []).toEqual([]);
  });

  it('lists parts and uploads, copies a range into a part, and refuses bad completions', async () => {
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'manual', Tagging: 'team=x' }),
    );
    const p1 = Buffer.alloc(5 * MiB, 1);
    const r1 = await s3.send(
      new UploadPartCommand({ Bucket: 'mpu', Key: 'manual', UploadId, PartNumber: 1, Body: p1 }),
    );
    expect(r1.ETag).toBe(`"${md5(p1)}"`);
    await s3.send(new PutObjectCommand({ Bucket: 'mpu', Key: 'src', Body: 'hello, multipart world' }));
    const copied = await s3.send(
      new UploadPartCopyCommand({
        Bucket: 'mpu',
        Key: 'manual',
        UploadId,
        PartNumber: 2,
        CopySource: 'mpu/src',
        CopySourceRange: 'bytes=7-15',
      }),
    );
    expect(copied.CopyPartResult?.ETag).toBe(`"${md5(Buffer.from('multipart'))}"`);
    const small = Buffer.from('tiny');
    const r3 = await s3.send(
      new UploadPartCommand({ Bucket: 'mpu', Key: 'manual', UploadId, PartNumber: 3, Body: small }),
    );

    const listed = await s3.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'manual', UploadId }));
    expect(listed.Parts?.map((p) => [p.PartNumber, p.Size])).toEqual([
      [1, 5 * MiB],
      [2, 9],
      [3, 4],
    ]);
    const page = await s3.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'manual', UploadId, MaxParts: 2 }));
    expect(page).toMatchObject({ IsTruncated: true, NextPartNumberMarker: '2' });
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpu' }));
    expect(uploads.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual([['manual', UploadId]]);

    const complete = (Parts: { PartNumber: number; ETag?: string }[]) =>
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'mpu',
          Key: 'manual',
          UploadId,
          MultipartUpload: { Parts },
        }),
      );
    const e2 = copied.CopyPartResult!.ETag!;
    expect(
      await failure(
        complete([
          { PartNumber: 2, ETag: e2 },
          { PartNumber: 1, ETag: r1.ETag },
        ]),
      ),
    ).toMatchObject({
      name: 'InvalidPartOrder',
      status: 400,
    });
    expect(await failure(complete([{ PartNumber: 1, ETag: '"0123"' }]))).toMatchObject({
      name: 'InvalidPart',
    });
    expect(await failure(complete([{ PartNumber: 4, ETag: r1.ETag }]))).toMatchObject({
      name: 'InvalidPart',
    });
    // Part 2 (9 bytes) is not the last here: too small.
    expect(
      await failure(
        complete([
          { PartNumber: 1, ETag: r1.ETag },
          { PartNumber: 2, ETag: e2 },
          { PartNumber: 3, ETag: r3.ETag },
        ]),
      ),
    ).toMatchObject({ name: 'EntityTooSmall', status: 400 });
    // Nothing was written by the failures: the upload is still there, the key absent.
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'manual' })))).toMatchObject({
      status: 404,
    });

    const ok = await complete([
      { PartNumber: 1, ETag: r1.ETag },
      { PartNumber: 2, ETag: e2 },
    ]);
    expect(ok.ETag).toMatch(/^"[0-9a-f]{32}-2"$/);
    const got = await bodyOf(s3, 'mpu', 'manual');
    expect(got.length).toBe(5 * MiB + 9);
    expect(got.subarray(5 * MiB).toString()).toBe('multipart');
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: 'mpu', Key: 'manual' }));
    expect(tags.TagSet).toEqual([{ Key: 'team', Value: 'x' }]);
    expect(await failure(complete([{ PartNumber: 1, ETag: r1.ETag }]))).toMatchObject({
      name: 'NoSuchUpload',
      status: 404,
    });
  });

  it('refuses a malformed CompleteMultipartUpload body with MalformedXML, and parts for unknown uploads', async () => {
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'm' }));
    const empty = await failure(
      s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'mpu',
          Key: 'm',
          UploadId,
          MultipartUpload: { Parts: [] },
        }),
      ),
    );
    expect(empty).toMatchObject({ name: 'MalformedXML', status: 400 });
    expect(
      await failure(
        s3.send(
          new UploadPartCommand({ Bucket: 'mpu', Key: 'm', UploadId: 'nope', PartNumber: 1, Body: 'x' }),
        ),
      ),
    ).toMatchObject({ name: 'NoSuchUpload', status: 404 });
    expect(
      await failure(
        s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'other', UploadId, PartNumber: 1, Body: 'x' })),
      ),
    ).toMatchObject({ name: 'NoSuchUpload' });
    expect(
      await failure(
        s3.send(new UploadPartCommand({ Bucket: 'mpu', Key: 'm', UploadId, PartNumber: 10001, Body: 'x' })),
      ),
    ).toMatchObject({ name: 'InvalidArgument', status: 400 });
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'm', UploadId }));
  });

  it('aborts an upload, deleting its parts, and answers NoSuchUpload after', async () => {
    const before = byteFiles(n).length;
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'gone' }));
    await s3.send(
      new UploadPartCommand({ Bucket: 'mpu', Key: 'gone', UploadId, PartNumber: 1, Body: 'part one' }),
    );
    await s3.send(
      new UploadPartCommand({ Bucket: 'mpu', Key: 'gone', UploadId, PartNumber: 2, Body: 'part two' }),
    );
    // A part sent again replaces the first one, whose bytes go.
    await s3.send(
      new UploadPartCommand({ Bucket: 'mpu', Key: 'gone', UploadId, PartNumber: 2, Body: 'part 2!' }),
    );
    expect(byteFiles(n).length).toBe(before + 2);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'gone', UploadId }));
    expect(byteFiles(n).length).toBe(before);
    expect(
      await failure(s3.send(new ListPartsCommand({ Bucket: 'mpu', Key: 'gone', UploadId }))),
    ).toMatchObject({
      name: 'NoSuchUpload',
      status: 404,
    });
    expect(
      await failure(s3.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'gone', UploadId }))),
    ).toMatchObject({ name: 'NoSuchUpload' });
  });

  it('serves presigned GET and PUT URLs to plain fetch, and refuses expired or tampered ones', async () => {
    // By default the SDK signs the CRC32 of the (absent) body into a PUT URL; S3 then refuses any real body.
    const crcOfNothing = await getSignedUrl(
      s3,
      new PutObjectCommand({ Bucket: 'mpu', Key: 'pre/signed.txt' }),
      {
        expiresIn: 300,
      },
    );
    expect(crcOfNothing).toContain('x-amz-checksum-crc32=AAAAAA%3D%3D');
    const refused = await fetch(crcOfNothing, { method: 'PUT', body: 'from a browser' });
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain('<Code>BadDigest</Code>');

    // The documented fix: a presigning client that adds checksums only when an operation requires them.
    const put = await getSignedUrl(
      presigner,
      new PutObjectCommand({ Bucket: 'mpu', Key: 'pre/signed.txt' }),
      {
        expiresIn: 300,
      },
    );
    expect(put).toContain('X-Amz-Signature=');
    const res = await fetch(put, { method: 'PUT', body: 'from a browser' });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${md5(Buffer.from('from a browser'))}"`);

    const get = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'mpu', Key: 'pre/signed.txt' }), {
      expiresIn: 300,
    });
    const got = await fetch(get);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('from a browser');

    const tampered = await fetch(
      get.replace('pre%2Fsigned.txt', 'pre%2Fother.txt').replace('pre/signed.txt', 'pre/other.txt'),
    );
    expect(tampered.status).toBe(403);
    expect(await tampered.text()).toContain('<Code>SignatureDoesNotMatch</Code>');

    // Signed an hour ago for 60 s: expired.
    const old = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'mpu', Key: 'pre/signed.txt' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 3600_000),
    });
    const expired = await fetch(old);
    expect(expired.status).toBe(403);
    const text = await expired.text();
    expect(text).toContain('<Code>AccessDenied</Code>');
    expect(text).toContain('<Message>Request has expired</Message>');
  });

  it('puts, gets and deletes object tags, within S3 limits, and takes x-amz-tagging on PutObject', async () => {
    await s3.send(
      new PutObjectCommand({ Bucket: 'mpu', Key: 'tagged', Body: 'x', Tagging: 'a=1&b=two%20words' }),
    );
    const t0 = await s3.send(new GetObjectTaggingCommand({ Bucket: 'mpu', Key: 'tagged' }));
    expect(t0.TagSet).toEqual([
      { Key: 'a', Value: '1' },
      { Key: 'b', Value: 'two words' },
    ]);
    await s3.send(
      new PutObjectTaggingCommand({
        Bucket: 'mpu',
        Key: 'tagged',
        Tagging: { TagSet: [{ Key: 'env', Value: 'prod' }] },
      }),
    );
    const t1 = await s3.send(new GetObjectTaggingCommand({ Bucket: 'mpu', Key: 'tagged' }));
    expect(t1.TagSet).toEqual([{ Key: 'env', Value: 'prod' }]);
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'mpu', Key: 'tagged' }))).TagCount).toBe(1);
    // The object's bytes and metadata are untouched by tagging.
    expect((await bodyOf(s3, 'mpu', 'tagged')).toString()).toBe('x');

    const eleven = Array.from({ length: 11 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
    const tooMany = await failure(
      s3.send(new PutObjectTaggingCommand({ Bucket: 'mpu', Key: 'tagged', Tagging: { TagSet: eleven } })),
    );
    expect(tooMany).toMatchObject({ name: 'InvalidTag', status: 400 });
    const longKey = await failure(
      s3.send(
        new PutObjectTaggingCommand({
          Bucket: 'mpu',
          Key: 'tagged',
          Tagging: { TagSet: [{ Key: 'k'.repeat(129), Value: 'v' }] },
        }),
      ),
    );
    expect(longKey).toMatchObject({ name: 'InvalidTag' });
    const longValue = await failure(
      s3.send(
        new PutObjectTaggingCommand({
          Bucket: 'mpu',
          Key: 'tagged',
          Tagging: { TagSet: [{ Key: 'k', Value: 'v'.repeat(257) }] },
        }),
      ),
    );
    expect(longValue).toMatchObject({ name: 'InvalidTag' });
    expect(
      await failure(
        s3.send(
          new PutObjectCommand({ Bucket: 'mpu', Key: 'tagged2', Body: 'x', Tagging: 'k'.repeat(129) + '=v' }),
        ),
      ),
    ).toMatchObject({ name: 'InvalidTag' });
    // Refused tag sets changed nothing.
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: 'mpu', Key: 'tagged' }))).TagSet).toEqual([
      { Key: 'env', Value: 'prod' },
    ]);

    await s3.send(new DeleteObjectTaggingCommand({ Bucket: 'mpu', Key: 'tagged' }));
    expect(
      (await s3.send(new GetObjectTaggingCommand({ Bucket: 'mpu', Key: 'tagged' }))).TagSet ?? [],
    ).toEqual([]);
    expect(await failure(s3.send(new GetObjectTaggingCommand({ Bucket: 'mpu', Key: 'nope' })))).toMatchObject(
      {
        name: 'NoSuchKey',
        status: 404,
      },
    );
  });

  it('keeps bucket CORS rules, answers preflights from them, and adds CORS headers to a presigned PUT', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'web' }));
    const origin = 'https://app.example.com';
    const preflight = (o: string, method: string, headers?: string) =>
      fetch(`${n.apiUrl}/web/upload.txt`, {
        method: 'OPTIONS',
        headers: {
          origin: o,
          'access-control-request-method': method,
          ...(headers ? { 'access-control-request-headers': headers } : {}),
        },
      });
    const none = await preflight(origin, 'PUT');
    expect(none.status).toBe(403);
    expect(await none.text()).toContain('CORS is not enabled for this bucket');
    expect(await failure(s3.send(new GetBucketCorsCommand({ Bucket: 'web' })))).toMatchObject({
      name: 'NoSuchCORSConfiguration',
      status: 404,
    });

    await s3.send(
      new PutBucketCorsCommand({
        Bucket: 'web',
        CORSConfiguration: {
          CORSRules: [
            {
              AllowedMethods: ['PUT', 'GET'],
              AllowedOrigins: ['https://*.example.com'],
              AllowedHeaders: ['content-type'],
              ExposeHeaders: ['ETag'],
              MaxAgeSeconds: 600,
            },
          ],
        },
      }),
    );
    const rules = await s3.send(new GetBucketCorsCommand({ Bucket: 'web' }));
    expect(rules.CORSRules).toEqual([
      {
        AllowedMethods: ['PUT', 'GET'],
        AllowedOrigins: ['https://*.example.com'],
        AllowedHeaders: ['content-type'],
        ExposeHeaders: ['ETag'],
        MaxAgeSeconds: 600,
      },
    ]);
    expect(
      await failure(
        s3.send(
          new PutBucketCorsCommand({
            Bucket: 'web',
            CORSConfiguration: { CORSRules: [{ AllowedMethods: ['PATCH'], AllowedOrigins: ['*'] }] },
          }),
        ),
      ),
    ).toMatchObject({ name: 'InvalidRequest', status: 400 });

    const ok = await preflight(origin, 'PUT', 'Content-Type');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(origin);
    expect(ok.headers.get('access-control-allow-methods')).toBe('PUT, GET');
    expect(ok.headers.get('access-control-allow-headers')).toBe('Content-Type');
    expect(ok.headers.get('access-control-max-age')).toBe('600');
    expect((await preflight('https://evil.test', 'PUT')).status).toBe(403);
    expect((await preflight(origin, 'DELETE')).status).toBe(403);
    expect((await preflight(origin, 'PUT', 'x-custom')).status).toBe(403);

    const url = await getSignedUrl(presigner, new PutObjectCommand({ Bucket: 'web', Key: 'upload.txt' }), {
      expiresIn: 300,
    });
    const put = await fetch(url, { method: 'PUT', body: 'browser bytes', headers: { origin } });
    expect(put.status).toBe(200);
    expect(put.headers.get('access-control-allow-origin')).toBe(origin);
    expect(put.headers.get('access-control-expose-headers')).toBe('ETag');
    const missing = await getSignedUrl(presigner, new GetObjectCommand({ Bucket: 'web', Key: 'nope' }), {
      expiresIn: 300,
    });
    const notFound = await fetch(missing, { headers: { origin } });
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('access-control-allow-origin')).toBe(origin);
    const foreign = await fetch(url, { method: 'PUT', body: 'x', headers: { origin: 'https://evil.test' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();

    await s3.send(new DeleteBucketCorsCommand({ Bucket: 'web' }));
    expect((await preflight(origin, 'PUT')).status).toBe(403);
  });
  it('lets a key limited to some buckets upload in parts there, but not copy from or configure others', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'closed' }));
    await s3.send(new PutObjectCommand({ Bucket: 'closed', Key: 'secret', Body: 'no' }));
    const key = await n.client.createCredential({ name: 'parts', buckets: ['mpu'] });
    const limited = new S3Client({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
    const { UploadId } = await limited.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: 'lim' }));
    const denied = { name: 'AccessDenied', status: 403 };
    expect(
      await failure(
        limited.send(
          new UploadPartCopyCommand({
            Bucket: 'mpu',
            Key: 'lim',
            UploadId,
            PartNumber: 1,
            CopySource: 'closed/secret',
          }),
        ),
      ),
    ).toMatchObject(denied);
    expect(await failure(limited.send(new ListMultipartUploadsCommand({ Bucket: 'closed' })))).toMatchObject(
      denied,
    );
    expect(
      await failure(
        limited.send(
          new PutBucketCorsCommand({
            Bucket: 'mpu',
            CORSConfiguration: { CORSRules: [{ AllowedMethods: ['GET'], AllowedOrigins: ['*'] }] },
          }),
        ),
      ),
    ).toMatchObject(denied);
    expect(await failure(s3.send(new GetBucketCorsCommand({ Bucket: 'mpu' })))).toMatchObject({
      name: 'NoSuchCORSConfiguration',
    });
    await limited.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: 'lim', UploadId }));
    limited.destroy();
  });
});

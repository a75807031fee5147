// The S3 API through the official AWS SDK v3 (client-s3) against a real Nimbus, on both stores: buckets,
// objects with their metadata and checksums, streamed (aws-chunked) uploads, conditional and ranged reads,
// listings with prefixes, delimiters and pages, copies, batch deletes, and S3's errors in its own words.
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  NoSuchBucket,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { createHash, createHmac } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, FIXTURES, startTestNimbus, type TestNimbus } from './helpers.js';

/** The S3 error an SDK call failed with: its name (S3's code) and HTTP status. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as S3ServiceException;
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  throw new Error('expected the call to fail');
}

function s3Client(n: TestNimbus, over: { secret?: string } = {}): S3Client {
  return new S3Client({
    endpoint: n.apiUrl,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'nimbus', secretAccessKey: over.secret ?? n.apiKey },
    maxAttempts: 1,
  });
}

/** Every file under the data dir's object bytes. */
function byteFiles(n: TestNimbus): string[] {
  const root = join(n.dataDir, 'objects', 'bytes');
  return readdirSync(root).flatMap((d) => readdirSync(join(root, d)).map((f) => join(d, f)));
}

describe.each(BACKENDS)('S3 API on %s', (backend) => {
  let n: TestNimbus;
  let s3: S3Client;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    s3 = s3Client(n);
    await s3.send(new CreateBucketCommand({ Bucket: 'main' }));
  });
  afterAll(async () => {
    s3?.destroy();
    await n?.cleanup();
  });

  it('creates, lists, heads, locates and deletes buckets', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'temp.bucket-1' }));
    const list = await s3.send(new ListBucketsCommand({}));
    expect(list.Buckets?.map((b) => b.Name)).toEqual(expect.arrayContaining(['main', 'temp.bucket-1']));
    expect(list.Buckets?.[0]?.CreationDate).toBeInstanceOf(Date);
    expect((await s3.send(new HeadBucketCommand({ Bucket: 'temp.bucket-1' }))).$metadata.httpStatusCode).toBe(
      200,
    );
    const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'temp.bucket-1' }));
    expect(loc.LocationConstraint ?? '').toBe('');
    expect(await failure(s3.send(new CreateBucketCommand({ Bucket: 'temp.bucket-1' })))).toMatchObject({
      name: 'BucketAlreadyOwnedByYou',
      status: 409,
    });
    await s3.send(new DeleteBucketCommand({ Bucket: 'temp.bucket-1' }));
    expect(await failure(s3.send(new HeadBucketCommand({ Bucket: 'temp.bucket-1' })))).toMatchObject({
      name: 'NotFound',
      status: 404,
    });
    const err = await s3.send(new DeleteBucketCommand({ Bucket: 'temp.bucket-1' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoSuchBucket);
  });

  it('refuses invalid bucket names with InvalidBucketName', async () => {
    for (const name of [
      'ab',
      'UpperCase',
      'has_underscore',
      '-dash',
      'a..b',
      '192.168.0.1',
      'x'.repeat(64),
    ]) {
      expect(await failure(s3.send(new CreateBucketCommand({ Bucket: name })))).toMatchObject({
        name: 'InvalidBucketName',
        status: 400,
      });
    }
  });

  it('refuses to delete a bucket that holds objects with BucketNotEmpty', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'full' }));
    await s3.send(new PutObjectCommand({ Bucket: 'full', Key: 'k', Body: 'x' }));
    expect(await failure(s3.send(new DeleteBucketCommand({ Bucket: 'full' })))).toMatchObject({
      name: 'BucketNotEmpty',
      status: 409,
    });
    await s3.send(new DeleteObjectCommand({ Bucket: 'full', Key: 'k' }));
    await s3.send(new DeleteBucketCommand({ Bucket: 'full' }));
  });

  it('puts and gets an object with its headers, metadata, ETag and checksum', async () => {
    const body = 'hello, objects';
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: 'main',
        Key: 'docs/hello.txt',
        Body: body,
        ContentType: 'text/plain; charset=utf-8',
        CacheControl: 'max-age=60',
        ContentDisposition: 'attachment; filename="hello.txt"',
        ContentEncoding: 'identity',
        ContentLanguage: 'en',
        Metadata: { owner: 'alice', purpose: 'test' },
        Tagging: 'env=test&team=core',
      }),
    );
    const md5 = createHash('md5').update(body).digest('hex');
    expect(put.ETag).toBe(`"${md5}"`);
    expect(put.ChecksumCRC32).toBeDefined();
    const got = await s3.send(
      new GetObjectCommand({ Bucket: 'main', Key: 'docs/hello.txt', ChecksumMode: 'ENABLED' }),
    );
    expect(await got.Body!.transformToString()).toBe(body);
    expect(got).toMatchObject({
      ETag: `"${md5}"`,
      ContentType: 'text/plain; charset=utf-8',
      CacheControl: 'max-age=60',
      ContentDisposition: 'attachment; filename="hello.txt"',
      ContentEncoding: 'identity',
      ContentLanguage: 'en',
      ContentLength: body.length,
      Metadata: { owner: 'alice', purpose: 'test' },
      TagCount: 2,
      ChecksumCRC32: put.ChecksumCRC32,
    });
    expect(got.LastModified).toBeInstanceOf(Date);
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'main', Key: 'docs/hello.txt' }));
    expect(head).toMatchObject({
      ETag: `"${md5}"`,
      ContentLength: body.length,
      ContentType: 'text/plain; charset=utf-8',
    });
    expect(got.$metadata.requestId).toBeTruthy();
  });

  it('returns the SHA256 and CRC32C checksums a put asked for', async () => {
    const put = await s3.send(
      new PutObjectCommand({ Bucket: 'main', Key: 'sum', Body: 'checksummed', ChecksumAlgorithm: 'SHA256' }),
    );
    expect(put.ChecksumSHA256).toBe(createHash('sha256').update('checksummed').digest('base64'));
    const c = await s3.send(
      new PutObjectCommand({
        Bucket: 'main',
        Key: 'sum32c',
        Body: 'checksummed',
        ChecksumAlgorithm: 'CRC32C',
      }),
    );
    expect(c.ChecksumCRC32C).toBeDefined();
    const head = await s3.send(
      new HeadObjectCommand({ Bucket: 'main', Key: 'sum', ChecksumMode: 'ENABLED' }),
    );
    expect(head.ChecksumSHA256).toBe(put.ChecksumSHA256);
  });

  it('takes a streamed aws-chunked upload with a trailing checksum', async () => {
    const parts = Array.from({ length: 20 }, (_, i) => Buffer.alloc(70_000, 97 + (i % 26)));
    const whole = Buffer.concat(parts);
    const put = await s3.send(
      new PutObjectCommand({
        Bucket: 'main',
        Key: 'streamed',
        Body: Readable.from(parts),
        ContentLength: whole.length,
      }),
    );
    expect(put.ETag).toBe(`"${createHash('md5').update(whole).digest('hex')}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'main', Key: 'streamed' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(whole)).toBe(true);
  });

  it('answers NoSuchKey and NoSuchBucket', async () => {
    const err = await s3
      .send(new GetObjectCommand({ Bucket: 'main', Key: 'missing' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoSuchKey);
    expect(err).toMatchObject({ $metadata: { httpStatusCode: 404 } });
    expect(await failure(s3.send(new GetObjectCommand({ Bucket: 'nobucket', Key: 'k' })))).toMatchObject({
      name: 'NoSuchBucket',
      status: 404,
    });
    expect(
      await failure(s3.send(new PutObjectCommand({ Bucket: 'nobucket', Key: 'k', Body: 'x' }))),
    ).toMatchObject({ name: 'NoSuchBucket', status: 404 });
    expect(await failure(s3.send(new ListObjectsV2Command({ Bucket: 'nobucket' })))).toMatchObject({
      name: 'NoSuchBucket',
    });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'main', Key: 'missing' })))).toMatchObject({
      name: 'NotFound',
      status: 404,
    });
  });

  it('reads ranges, and refuses one past the end with InvalidRange', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'main', Key: 'digits', Body: '0123456789' }));
    const read = async (Range: string) => {
      const r = await s3.send(new GetObjectCommand({ Bucket: 'main', Key: 'digits', Range }));
      return {
        body: await r.Body!.transformToString(),
        range: r.ContentRange,
        status: r.$metadata.httpStatusCode,
      };
    };
    expect(await read('bytes=2-4')).toEqual({ body: '234', range: 'bytes 2-4/10', status: 206 });
    expect(await read('bytes=7-')).toEqual({ body: '789', range: 'bytes 7-9/10', status: 206 });
    expect(await read('bytes=-2')).toEqual({ body: '89', range: 'bytes 8-9/10', status: 206 });
    expect(await read('bytes=5-100')).toEqual({ body: '56789', range: 'bytes 5-9/10', status: 206 });
    expect(
      await failure(s3.send(new GetObjectCommand({ Bucket: 'main', Key: 'digits', Range: 'bytes=10-20' }))),
    ).toMatchObject({ name: 'InvalidRange', status: 416 });
  });

  it('answers conditional reads with 304 and 412', async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: 'main', Key: 'cond', Body: 'v1' }));
    const etag = put.ETag!;
    const get = (over: Record<string, unknown>) =>
      s3.send(new GetObjectCommand({ Bucket: 'main', Key: 'cond', ...over }));
    expect((await get({ IfMatch: etag })).$metadata.httpStatusCode).toBe(200);
    expect(await failure(get({ IfMatch: '"nope"' }))).toMatchObject({
      name: 'PreconditionFailed',
      status: 412,
    });
    expect(await failure(get({ IfNoneMatch: etag }))).toMatchObject({ status: 304 });
    expect((await get({ IfNoneMatch: '"other"' })).$metadata.httpStatusCode).toBe(200);
    const future = new Date(Date.now() + 3600_000);
    const past = new Date(Date.now() - 3600_000);
    expect(await failure(get({ IfModifiedSince: future }))).toMatchObject({ status: 304 });
    expect((await get({ IfModifiedSince: past })).$metadata.httpStatusCode).toBe(200);
    expect(await failure(get({ IfUnmodifiedSince: past }))).toMatchObject({
      name: 'PreconditionFailed',
      status: 412,
    });
    expect((await get({ IfUnmodifiedSince: future })).$metadata.httpStatusCode).toBe(200);
    expect(
      await failure(s3.send(new HeadObjectCommand({ Bucket: 'main', Key: 'cond', IfMatch: '"nope"' }))),
    ).toMatchObject({ status: 412 });
  });

  it('refuses a wrong Content-MD5 with BadDigest and writes nothing', async () => {
    const files = byteFiles(n).length;
    const wrong = createHash('md5').update('something else').digest('base64');
    expect(
      await failure(
        s3.send(new PutObjectCommand({ Bucket: 'main', Key: 'md5', Body: 'payload', ContentMD5: wrong })),
      ),
    ).toMatchObject({ name: 'BadDigest', status: 400 });
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'main', Key: 'md5' })))).toMatchObject({
      status: 404,
    });
    expect(byteFiles(n)).toHaveLength(files);
    const right = createHash('md5').update('payload').digest('base64');
    await s3.send(new PutObjectCommand({ Bucket: 'main', Key: 'md5', Body: 'payload', ContentMD5: right }));
    expect(byteFiles(n)).toHaveLength(files + 1);
  });

  it('replaces an object and frees the bytes it held', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'main', Key: 'over', Body: 'first' }));
    const files = byteFiles(n).length;
    await s3.send(new PutObjectCommand({ Bucket: 'main', Key: 'over', Body: 'second' }));
    expect(byteFiles(n)).toHaveLength(files);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'main', Key: 'over' }));
    expect(await got.Body!.transformToString()).toBe('second');
    await s3.send(new DeleteObjectCommand({ Bucket: 'main', Key: 'over' }));
    expect(byteFiles(n)).toHaveLength(files - 1);
    // Deleting a missing key succeeds, as in S3.
    expect(
      (await s3.send(new DeleteObjectCommand({ Bucket: 'main', Key: 'over' }))).$metadata.httpStatusCode,
    ).toBe(204);
  });

  it('keeps keys with ../ and unicode as keys, never as paths', async () => {
    const keys = [
      '../../etc/passwd',
      'a/../b',
      './x',
      '..',
      'ünïcödé/файл 😀.txt',
      'spaces and+plus',
      'a//b',
    ];
    await s3.send(new CreateBucketCommand({ Bucket: 'odd-keys' }));
    for (const Key of keys)
      await s3.send(new PutObjectCommand({ Bucket: 'odd-keys', Key, Body: `body of ${Key}` }));
    for (const Key of keys) {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'odd-keys', Key }));
      expect(await got.Body!.transformToString()).toBe(`body of ${Key}`);
    }
    const list = await s3.send(new ListObjectsV2Command({ Bucket: 'odd-keys' }));
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(list.Contents?.map((c) => c.Key)).toEqual(sorted);
    // Nothing was written outside the byte store's own random names.
    for (const f of byteFiles(n)) expect(f).toMatch(/^[0-9a-f]{2}\/[0-9a-f]{32}$/);
  });

  it('refuses a key longer than 1,024 bytes with KeyTooLongError', async () => {
    expect(
      await failure(s3.send(new PutObjectCommand({ Bucket: 'main', Key: 'é'.repeat(513), Body: 'x' }))),
    ).toMatchObject({ name: 'KeyTooLongError', status: 400 });
  });

  it('lists with prefixes, delimiters, pages, start-after and url encoding (V2 and V1)', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'listing' }));
    const keys = ['a/1', 'a/2', 'a/b/3', 'b', 'c d/e', 'c d/f', 'z'];
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: 'listing', Key, Body: Key }));
    const top = await s3.send(new ListObjectsV2Command({ Bucket: 'listing', Delimiter: '/' }));
    expect(top.Contents?.map((c) => c.Key)).toEqual(['b', 'z']);
    expect(top.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['a/', 'c d/']);
    expect(top).toMatchObject({ KeyCount: 4, IsTruncated: false, MaxKeys: 1000 });
    expect(top.Contents?.[0]).toMatchObject({
      Size: 1,
      StorageClass: 'STANDARD',
      ETag: expect.stringMatching(/^"/),
    });

    const inA = await s3.send(new ListObjectsV2Command({ Bucket: 'listing', Prefix: 'a/', Delimiter: '/' }));
    expect(inA.Contents?.map((c) => c.Key)).toEqual(['a/1', 'a/2']);
    expect(inA.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['a/b/']);

    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const p = await s3.send(
        new ListObjectsV2Command({ Bucket: 'listing', MaxKeys: 3, ContinuationToken: token }),
      );
      seen.push(...(p.Contents ?? []).map((c) => c.Key!));
      token = p.NextContinuationToken;
      pages++;
      expect(p.IsTruncated).toBe(token !== undefined);
    } while (token);
    expect(seen).toEqual(keys);
    expect(pages).toBe(3);

    const after = await s3.send(new ListObjectsV2Command({ Bucket: 'listing', StartAfter: 'b' }));
    expect(after.Contents?.map((c) => c.Key)).toEqual(['c d/e', 'c d/f', 'z']);
    const encoded = await s3.send(
      new ListObjectsV2Command({ Bucket: 'listing', Prefix: 'c', EncodingType: 'url' }),
    );
    expect(encoded.Contents?.map((c) => c.Key)).toEqual(['c+d/e', 'c+d/f']);

    const v1 = await s3.send(new ListObjectsCommand({ Bucket: 'listing', MaxKeys: 2, Delimiter: '/' }));
    expect(v1).toMatchObject({ IsTruncated: true, NextMarker: 'b' });
    const v1next = await s3.send(
      new ListObjectsCommand({ Bucket: 'listing', Marker: v1.NextMarker, Delimiter: '/' }),
    );
    expect(v1next.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['c d/']);
    expect(v1next.Contents?.map((c) => c.Key)).toEqual(['z']);

    expect(
      await failure(s3.send(new ListObjectsV2Command({ Bucket: 'listing', ContinuationToken: 'garbage!' }))),
    ).toMatchObject({ name: 'InvalidArgument', status: 400 });
  });

  it('copies objects, keeping or replacing their metadata', async () => {
    await s3.send(
      new PutObjectCommand({
        Bucket: 'main',
        Key: 'orig',
        Body: 'copy me',
        ContentType: 'text/x-orig',
        Metadata: { a: '1' },
      }),
    );
    const copy = await s3.send(
      new CopyObjectCommand({ Bucket: 'main', Key: 'copy', CopySource: 'main/orig' }),
    );
    expect(copy.CopyObjectResult?.ETag).toBe(`"${createHash('md5').update('copy me').digest('hex')}"`);
    const kept = await s3.send(new GetObjectCommand({ Bucket: 'main', Key: 'copy' }));
    expect(await kept.Body!.transformToString()).toBe('copy me');
    expect(kept).toMatchObject({ ContentType: 'text/x-orig', Metadata: { a: '1' } });

    await s3.send(
      new CopyObjectCommand({
        Bucket: 'main',
        Key: 'orig',
        CopySource: '/main/orig',
        MetadataDirective: 'REPLACE',
        ContentType: 'text/x-new',
        Metadata: { b: '2' },
      }),
    );
    const replaced = await s3.send(new HeadObjectCommand({ Bucket: 'main', Key: 'orig' }));
    expect(replaced).toMatchObject({ ContentType: 'text/x-new', Metadata: { b: '2' } });
    // The copy is independent: the source changed, and deleting it leaves the copy whole.
    await s3.send(new DeleteObjectCommand({ Bucket: 'main', Key: 'orig' }));
    const still = await s3.send(new GetObjectCommand({ Bucket: 'main', Key: 'copy' }));
    expect(await still.Body!.transformToString()).toBe('copy me');

    expect(
      await failure(s3.send(new CopyObjectCommand({ Bucket: 'main', Key: 'copy', CopySource: 'main/copy' }))),
    ).toMatchObject({ name: 'InvalidRequest', status: 400 });
    expect(
      await failure(s3.send(new CopyObjectCommand({ Bucket: 'main', Key: 'x', CopySource: 'main/missing' }))),
    ).toMatchObject({ name: 'NoSuchKey', status: 404 });
  });

  it('deletes objects in a batch, and refuses malformed XML', async () => {
    for (const Key of ['d1', 'd2']) await s3.send(new PutObjectCommand({ Bucket: 'main', Key, Body: Key }));
    const res = await s3.send(
      new DeleteObjectsCommand({
        Bucket: 'main',
        Delete: { Objects: [{ Key: 'd1' }, { Key: 'd2' }, { Key: 'never-was' }] },
      }),
    );
    expect(res.Deleted?.map((d) => d.Key).sort()).toEqual(['d1', 'd2', 'never-was']);
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'main', Key: 'd1' })))).toMatchObject({
      status: 404,
    });
    const quiet = await s3.send(
      new DeleteObjectsCommand({ Bucket: 'main', Delete: { Objects: [{ Key: 'x' }], Quiet: true } }),
    );
    expect(quiet.Deleted ?? []).toEqual([]);

    const raw = await signedFetch(n, 'POST', '/main?delete', '<Delete><Object><Key>a</Key></Object>');
    expect(raw.status).toBe(400);
    expect(raw.body).toContain('<Code>MalformedXML</Code>');
  });

  it('answers a bad signature with SignatureDoesNotMatch in XML, and writes nothing', async () => {
    const bad = s3Client(n, { secret: 'not-the-key' });
    expect(
      await failure(bad.send(new PutObjectCommand({ Bucket: 'main', Key: 'forged', Body: 'x' }))),
    ).toMatchObject({
      name: 'SignatureDoesNotMatch',
      status: 403,
    });
    bad.destroy();
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'main', Key: 'forged' })))).toMatchObject({
      status: 404,
    });
    const stranger = new S3Client({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDNOBODY', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    expect(await failure(stranger.send(new ListBucketsCommand({})))).toMatchObject({
      name: 'InvalidAccessKeyId',
      status: 403,
    });
    stranger.destroy();
  });

  it('refuses a body that does not match its signed x-amz-content-sha256, writing nothing', async () => {
    const files = byteFiles(n).length;
    const res = await signedFetch(n, 'PUT', '/main/tampered', 'original', { tamper: 'changed!' });
    expect(res.status).toBe(400);
    expect(res.body).toContain('<Code>XAmzContentSHA256Mismatch</Code>');
    expect(res.headers.get('x-amz-request-id')).toBeTruthy();
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'main', Key: 'tampered' })))).toMatchObject({
      status: 404,
    });
    expect(byteFiles(n)).toHaveLength(files);
  });

  it('serves virtual-hosted style requests (bucket.localhost and bucket.s3.amazonaws.com)', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'main', Key: 'vhost/key.txt', Body: 'virtual' }));
    for (const host of [`main.localhost:${new URL(n.apiUrl).port}`, 'main.s3.amazonaws.com']) {
      const res = await signedFetch(n, 'GET', '/vhost/key.txt', undefined, { host });
      expect(res.status).toBe(200);
      expect(res.body).toBe('virtual');
      const list = await signedFetch(n, 'GET', '/?list-type=2&prefix=vhost%2F', undefined, { host });
      expect(list.body).toContain('<Key>vhost/key.txt</Key>');
    }
  });

  it('answers NotImplemented for subresources Nimbus does not serve yet, changing nothing', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'main', Key: 'tagged', Body: 'keep' }));
    const res = await signedFetch(n, 'PUT', '/main/tagged?acl', '<AccessControlPolicy/>');
    expect(res.status).toBe(501);
    expect(res.body).toContain('<Code>NotImplemented</Code>');
    const got = await s3.send(new GetObjectCommand({ Bucket: 'main', Key: 'tagged' }));
    expect(await got.Body!.transformToString()).toBe('keep');
  });

  it('lets a key limited to some buckets reach only those, with AccessDenied in XML otherwise', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'private' }));
    const key = await n.client.createCredential({ name: 'uploader', buckets: ['main'] });
    const limited = new S3Client({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
    await limited.send(new PutObjectCommand({ Bucket: 'main', Key: 'by-limited', Body: 'ok' }));
    const got = await limited.send(new GetObjectCommand({ Bucket: 'main', Key: 'by-limited' }));
    expect(await got.Body!.transformToString()).toBe('ok');
    const denied = { name: 'AccessDenied', status: 403 };
    expect(
      await failure(limited.send(new PutObjectCommand({ Bucket: 'private', Key: 'k', Body: 'x' }))),
    ).toMatchObject(denied);
    expect(await failure(limited.send(new ListObjectsV2Command({ Bucket: 'private' })))).toMatchObject(
      denied,
    );
    expect(
      await failure(
        limited.send(new CopyObjectCommand({ Bucket: 'main', Key: 'stolen', CopySource: 'private/k' })),
      ),
    ).toMatchObject(denied);
    expect(await failure(limited.send(new CreateBucketCommand({ Bucket: 'newone' })))).toMatchObject(denied);
    expect(await failure(limited.send(new DeleteBucketCommand({ Bucket: 'main' })))).toMatchObject(denied);
    const buckets = await limited.send(new ListBucketsCommand({}));
    expect(buckets.Buckets?.map((b) => b.Name)).toEqual(['main']);
    expect(await failure(s3.send(new HeadObjectCommand({ Bucket: 'private', Key: 'k' })))).toMatchObject({
      status: 404,
    });
    limited.destroy();
  });

  it("creates a manifest's buckets at deploy and lets its functions reach only the ones granted", async () => {
    const res = (await n.deploy(join(FIXTURES, 'buckets'))) as { buckets: { created: string[] } };
    expect(res.buckets.created).toEqual(['private.stuff', 'uploads']);
    const names = (await s3.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name);
    expect(names).toEqual(expect.arrayContaining(['private.stuff', 'uploads']));
    const up = await fetch(`${n.gatewayUrl}/upload/hello.txt`, { method: 'POST', body: 'from a function' });
    expect(await up.json()).toEqual({ stored: 'hello.txt', read: 'from a function' });
    const got = await s3.send(new GetObjectCommand({ Bucket: 'uploads', Key: 'hello.txt' }));
    expect(await got.Body!.transformToString()).toBe('from a function');
    const snoop = await fetch(`${n.gatewayUrl}/snoop`);
    expect(snoop.status).toBe(403);
    expect(await snoop.json()).toEqual({ name: 'AccessDenied' });
    // A redeploy keeps the buckets and their objects; one left out of the manifest is not dropped.
    const again = (await n.deploy(join(FIXTURES, 'buckets'))) as { buckets: { unchanged: string[] } };
    expect(again.buckets.unchanged).toEqual(['private.stuff', 'uploads']);
    expect(
      (await s3.send(new HeadObjectCommand({ Bucket: 'uploads', Key: 'hello.txt' }))).ContentLength,
    ).toBe(15);
  });

  it('takes a chunk-signed aws-chunked upload, and refuses one whose chunk was altered, writing nothing', async () => {
    const data = [Buffer.alloc(65536, 'a'), Buffer.alloc(1024, 'b')];
    const ok = await chunkSignedPut(n, '/main/chunk-signed', data);
    expect(ok.status).toBe(200);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'main', Key: 'chunk-signed' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(data))).toBe(true);

    const files = byteFiles(n).length;
    const bad = await chunkSignedPut(n, '/main/chunk-altered', data, { alter: true });
    expect(bad.status).toBe(403);
    expect(bad.body).toContain('<Code>SignatureDoesNotMatch</Code>');
    expect(
      await failure(s3.send(new HeadObjectCommand({ Bucket: 'main', Key: 'chunk-altered' }))),
    ).toMatchObject({
      status: 404,
    });
    expect(byteFiles(n)).toHaveLength(files);
  });
});

/**
 * A PutObject with STREAMING-AWS4-HMAC-SHA256-PAYLOAD, as AWS's SigV4 documentation lays it out: the headers
 * signed by the SDK's signer, then each chunk signed in a chain from that seed signature. `alter` changes a
 * byte of the first chunk after it was signed.
 */
async function chunkSignedPut(
  n: TestNimbus,
  path: string,
  chunks: Buffer[],
  opts: { alter?: boolean } = {},
): Promise<{ status: number; body: string }> {
  const url = new URL(path, n.apiUrl);
  const decoded = chunks.reduce((t, c) => t + c.length, 0);
  const signer = new SignatureV4({
    service: 's3',
    region: 'us-east-1',
    credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
    sha256: Sha256,
    uriEscapePath: false,
  });
  const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  // The encoded length depends only on the sizes: every signature is 64 hex characters.
  const frame = (size: number) =>
    `${size.toString(16)};chunk-signature=${'0'.repeat(64)}\r\n`.length + size + 2;
  const length = chunks.reduce((t, c) => t + frame(c.length), 0) + frame(0);
  const signed = await signer.sign({
    method: 'PUT',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: {},
    headers: {
      host: url.host,
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': String(decoded),
      'content-length': String(length),
    },
  });
  const auth = String(signed.headers['authorization']);
  let prev = /Signature=([0-9a-f]{64})/.exec(auth)![1]!;
  const amzDate = String(signed.headers['x-amz-date']);
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  let key = hmac(`AWS4${n.apiKey}`, amzDate.slice(0, 8));
  for (const part of ['us-east-1', 's3', 'aws4_request']) key = hmac(key, part);
  const parts: Buffer[] = [];
  for (const c of [...chunks, Buffer.alloc(0)]) {
    const toSign = ['AWS4-HMAC-SHA256-PAYLOAD', amzDate, scope, prev, sha(''), sha(c)].join('\n');
    prev = hmac(key, toSign).toString('hex');
    const data = opts.alter && parts.length === 0 ? Buffer.from(c).fill('z', 0, 1) : c;
    parts.push(
      Buffer.from(`${c.length.toString(16)};chunk-signature=${prev}\r\n`),
      data,
      Buffer.from('\r\n'),
    );
  }
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method: 'PUT', path: url.pathname, headers: signed.headers },
      (res) => {
        const out: Buffer[] = [];
        res.on('data', (d: Buffer) => out.push(d));
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(out).toString() }));
      },
    );
    req.on('error', reject);
    req.end(Buffer.concat(parts));
  });
}

/** A request signed by hand (the SDK's signer), for what the SDK will not send: other Host headers,
 *  malformed bodies, a body that differs from the one signed. */
async function signedFetch(
  n: TestNimbus,
  method: string,
  pathAndQuery: string,
  body?: string,
  opts: { host?: string; tamper?: string } = {},
): Promise<{ status: number; body: string; headers: Headers }> {
  const url = new URL(pathAndQuery, n.apiUrl);
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signer = new SignatureV4({
    service: 's3',
    region: 'us-east-1',
    credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
    sha256: Sha256,
    uriEscapePath: false,
  });
  const host = opts.host ?? url.host;
  const signed = await signer.sign({
    method,
    protocol: 'http:',
    hostname: host.replace(/:\d+$/, ''),
    path: url.pathname,
    query,
    headers: {
      host,
      'x-amz-content-sha256': createHash('sha256')
        .update(body ?? '')
        .digest('hex'),
      ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.tamper ?? body)) } : {}),
    },
    body,
  });
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path: url.pathname + url.search,
        headers: signed.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
          resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString(), headers });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.tamper ?? body);
  });
}

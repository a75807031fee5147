// ObjectStore conformance: buckets per project, object metadata as written, overwrites handing back the ref
// they replace, listings in S3's order (UTF-8 bytes) with prefixes, delimiters and pages; tags and CORS
// rules; multipart uploads, their parts, and completion as one transaction; and the change log that storage
// triggers read: one entry per write or removal, committed with it, kept until forgotten.
import { describe, expect, it } from 'vitest';
import { BucketNotEmptyError, BucketNotFoundError, UploadNotFoundError } from '../errors.js';
import type { NewObject, ObjectListQuery, ObjectStore } from '../types.js';
import { useHarness, type HarnessFactory } from './harness.js';

let refs = 0;

/** An object with defaults, for store tests; each gets a fresh ref. */
export function newObject(bucket: string, key: string, over: Partial<NewObject> = {}): NewObject {
  return {
    bucket,
    key,
    ref: `ref-${++refs}-${Math.random().toString(36).slice(2)}`,
    size: 3,
    etag: '900150983cd24fb0d6963f7d28e17f72',
    headers: {},
    userMetadata: {},
    checksums: {},
    tags: {},
    ...over,
  };
}

/** Every key (and common prefix) of a listing, page by page. */
async function listAll(o: ObjectStore, bucket: string, q: Omit<ObjectListQuery, 'after'>) {
  const pages: { keys: string[]; prefixes: string[]; truncated: boolean }[] = [];
  let after: string | undefined;
  for (;;) {
    const p = await o.listObjects('default', bucket, { ...q, after });
    pages.push({ keys: p.objects.map((x) => x.key), prefixes: p.commonPrefixes, truncated: p.truncated });
    if (!p.truncated) return pages;
    after = p.last;
  }
}

export function objectStoreConformance(name: string, make: HarnessFactory): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const o = () => ctx.store.objects;

    it('creates, gets, lists and deletes buckets, one project apart from another', async () => {
      const t0 = ctx.clock.now();
      expect(await o().createBucket('default', 'photos', null)).toBe(true);
      expect(await o().createBucket('default', 'photos', 'svc')).toBe(false);
      await ctx.store.projects.ensure('p2');
      expect(await o().createBucket('p2', 'photos', 'svc')).toBe(true);
      await o().createBucket('default', 'archive', 'svc');
      expect(await o().getBucket('default', 'photos')).toStrictEqual({
        project: 'default',
        name: 'photos',
        service: null,
        createdAt: t0,
      });
      expect(await o().getBucket('default', 'nope')).toBeUndefined();
      expect((await o().listBuckets('default')).map((b) => b.name)).toEqual(['archive', 'photos']);
      expect(await o().deleteBucket('default', 'photos')).toBe(true);
      expect(await o().deleteBucket('default', 'photos')).toBe(false);
      expect((await o().getBucket('p2', 'photos'))?.service).toBe('svc');
    });

    it('refuses to delete a bucket that holds objects, and deletes it once emptied', async () => {
      await o().createBucket('default', 'b', null);
      await o().putObject('default', newObject('b', 'k'));
      await expect(o().deleteBucket('default', 'b')).rejects.toThrow(BucketNotEmptyError);
      expect(await o().getBucket('default', 'b')).toBeDefined();
      await o().deleteObjects('default', 'b', ['k']);
      expect(await o().deleteBucket('default', 'b')).toBe(true);
    });

    it('stores an object with all its metadata, and survives a reopen', async () => {
      await o().createBucket('default', 'b', null);
      ctx.clock.advance(1000);
      const input = newObject('b', 'dir/ünïcödé ✓.txt', {
        size: 11,
        etag: '5eb63bbbe01eeed093cb22bb8f5acdc3',
        headers: { contentType: 'text/plain', cacheControl: 'max-age=60', contentDisposition: 'inline' },
        userMetadata: { owner: 'alice', 'x-y': 'z' },
        checksums: { crc32: 'DUoRhQ==', sha256: 'uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=' },
        tags: { env: 'test' },
      });
      const { object, replaced } = await o().putObject('default', input);
      expect(replaced).toBeNull();
      expect(object).toStrictEqual({
        ...input,
        project: 'default',
        lastModified: ctx.clock.now(),
        sequencer: object.sequencer,
      });
      const store = await ctx.reopen();
      expect(await store.objects.getObject('default', 'b', input.key)).toStrictEqual(object);
      expect(await store.objects.getObject('default', 'b', 'dir/other')).toBeUndefined();
      expect(await store.objects.getObject('default', 'nobucket', input.key)).toBeUndefined();
    });

    it('replaces an object, handing back the old ref, with a sequencer that only grows', async () => {
      await o().createBucket('default', 'b', null);
      const first = await o().putObject('default', newObject('b', 'k'));
      const second = await o().putObject('default', newObject('b', 'k', { size: 5 }));
      expect(second.replaced).toBe(first.object.ref);
      expect(second.object.sequencer).toBeGreaterThan(first.object.sequencer);
      expect(await o().getObject('default', 'b', 'k')).toMatchObject({ ref: second.object.ref, size: 5 });
      expect(await o().referenced([first.object.ref, second.object.ref, 'nothing'])).toEqual(
        new Set([second.object.ref]),
      );
    });

    it('refuses objects in a missing bucket, and writes nothing', async () => {
      await expect(o().putObject('default', newObject('nope', 'k'))).rejects.toThrow(BucketNotFoundError);
      await expect(o().listObjects('default', 'nope', { limit: 10 })).rejects.toThrow(BucketNotFoundError);
      await expect(o().deleteObjects('default', 'nope', ['k'])).rejects.toThrow(BucketNotFoundError);
      await ctx.store.projects.ensure('p2');
      await o().createBucket('p2', 'theirs', null);
      await expect(o().putObject('default', newObject('theirs', 'k'))).rejects.toThrow(BucketNotFoundError);
      expect((await o().listObjects('p2', 'theirs', { limit: 10 })).objects).toEqual([]);
    });

    it('deletes the objects that exist and returns them, skipping missing keys', async () => {
      await o().createBucket('default', 'b', null);
      const a = await o().putObject('default', newObject('b', 'a'));
      await o().putObject('default', newObject('b', 'b'));
      const gone = await o().deleteObjects('default', 'b', ['a', 'missing']);
      expect(gone.map((x) => [x.key, x.ref])).toEqual([['a', a.object.ref]]);
      expect(await o().getObject('default', 'b', 'a')).toBeUndefined();
      expect(await o().getObject('default', 'b', 'b')).toBeDefined();
      expect(await o().deleteObjects('default', 'b', ['a'])).toEqual([]);
    });

    it('lists keys in UTF-8 byte order, which is not UTF-16 order', async () => {
      await o().createBucket('default', 'b', null);
      // U+FF5E sorts before U+1F600 in UTF-8 bytes, after it in JavaScript's UTF-16 comparison.
      const keys = ['b', 'a', 'A', 'a/b', 'a-b', '\u00e9', '\uff5e', '\u{1f600}', 'a b', '~'];
      for (const k of keys) await o().putObject('default', newObject('b', k));
      const expected = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      expect(expected.indexOf('\uff5e')).toBeLessThan(expected.indexOf('\u{1f600}'));
      const page = await o().listObjects('default', 'b', { limit: 1000 });
      expect(page.objects.map((x) => x.key)).toEqual(expected);
      expect(page.truncated).toBe(false);
    });

    it('lists by prefix and start-after, in pages that continue where they stopped', async () => {
      await o().createBucket('default', 'b', null);
      const keys = Array.from({ length: 25 }, (_, i) => `logs/${String(i).padStart(2, '0')}`);
      for (const k of [...keys, 'log', 'logs', 'logt/x', 'other'])
        await o().putObject('default', newObject('b', k));
      const pages = await listAll(o(), 'b', { prefix: 'logs/', limit: 10 });
      expect(pages.map((p) => p.keys.length)).toEqual([10, 10, 5]);
      expect(pages.flatMap((p) => p.keys)).toEqual(keys);
      expect(pages.map((p) => p.truncated)).toEqual([true, true, false]);
      const after = await o().listObjects('default', 'b', { prefix: 'logs/', after: 'logs/20', limit: 100 });
      expect(after.objects.map((x) => x.key)).toEqual(keys.slice(21));
      // A start before the prefix starts at the prefix; one past it lists nothing.
      const before = await o().listObjects('default', 'b', { prefix: 'logs/', after: 'a', limit: 2 });
      expect(before.objects.map((x) => x.key)).toEqual(keys.slice(0, 2));
      expect(
        (await o().listObjects('default', 'b', { prefix: 'logs/', after: 'z', limit: 5 })).objects,
      ).toEqual([]);
      const exact = await o().listObjects('default', 'b', { limit: 100, prefix: 'logs' });
      expect(exact.objects.map((x) => x.key)).toEqual(['logs', ...keys]);
    });

    it('rolls keys up into common prefixes at the delimiter, each counted once across pages', async () => {
      await o().createBucket('default', 'b', null);
      const keys = ['a/1', 'a/2', 'a/3/x', 'b', 'c/1', 'c/2', 'd', 'e/f/g', 'photos/2024/x.jpg', 'z'];
      for (const k of keys) await o().putObject('default', newObject('b', k));
      const top = await o().listObjects('default', 'b', { delimiter: '/', limit: 100 });
      expect(top.objects.map((x) => x.key)).toEqual(['b', 'd', 'z']);
      expect(top.commonPrefixes).toEqual(['a/', 'c/', 'e/', 'photos/']);
      const pages = await listAll(o(), 'b', { delimiter: '/', limit: 2 });
      expect(pages.map((p) => [...p.prefixes, ...p.keys])).toEqual([
        ['a/', 'b'],
        ['c/', 'd'],
        ['e/', 'photos/'],
        ['z'],
      ]);
      const inA = await o().listObjects('default', 'b', { prefix: 'a/', delimiter: '/', limit: 100 });
      expect(inA.objects.map((x) => x.key)).toEqual(['a/1', 'a/2']);
      expect(inA.commonPrefixes).toEqual(['a/3/']);
      const multi = await o().listObjects('default', 'b', { prefix: 'photos', delimiter: '/2', limit: 100 });
      expect(multi.commonPrefixes).toEqual(['photos/2']);
    });

    it('reads an exact limit as not truncated and a zero limit as empty', async () => {
      await o().createBucket('default', 'b', null);
      for (const k of ['a', 'b']) await o().putObject('default', newObject('b', k));
      expect(await o().listObjects('default', 'b', { limit: 2 })).toMatchObject({
        truncated: false,
        last: 'b',
      });
      expect((await o().listObjects('default', 'b', { limit: 0 })).objects).toEqual([]);
    });

    it('logs each write and each removal with its change, and keeps entries until forgotten', async () => {
      await o().createBucket('default', 'b', null);
      ctx.clock.advance(1000);
      const put = await o().putObject('default', newObject('b', 'a b/ü.txt', { size: 7, etag: 'e1' }), {
        requestId: 'req-1',
        principalId: 'AKIDTEST',
        sourceIp: '127.0.0.1',
        trace: 'Root=1-abc',
      });
      const copy = await o().putObject('default', newObject('b', 'c', { etag: 'e2' }), {
        event: 'ObjectCreated:Copy',
      });
      await o().deleteObjects('default', 'b', ['a b/ü.txt', 'missing', 'c'], { requestId: 'req-3' });
      const log = await o().changes(10);
      expect(log.map((c) => [c.event, c.key, c.size, c.etag, c.requestId])).toEqual([
        ['ObjectCreated:Put', 'a b/ü.txt', 7, 'e1', 'req-1'],
        ['ObjectCreated:Copy', 'c', 3, 'e2', null],
        ['ObjectRemoved:Delete', 'a b/ü.txt', 7, 'e1', 'req-3'],
        ['ObjectRemoved:Delete', 'c', 3, 'e2', 'req-3'],
      ]);
      expect(log[0]).toStrictEqual({
        seq: log[0]!.seq,
        project: 'default',
        bucket: 'b',
        key: 'a b/ü.txt',
        event: 'ObjectCreated:Put',
        size: 7,
        etag: 'e1',
        sequencer: put.object.sequencer,
        at: ctx.clock.now(),
        requestId: 'req-1',
        principalId: 'AKIDTEST',
        sourceIp: '127.0.0.1',
        trace: 'Root=1-abc',
      });
      expect(log[1]!.sequencer).toBe(copy.object.sequencer);
      // One DeleteObjects is one change of the bucket: its removals share a sequencer above the writes'.
      expect(log[2]!.sequencer).toBe(log[3]!.sequencer);
      expect(log[2]!.sequencer).toBeGreaterThan(copy.object.sequencer);
      const seqs = log.map((c) => c.seq);
      expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
      expect((await o().changes(2)).map((c) => c.seq)).toEqual(seqs.slice(0, 2));

      await o().forgetChanges([seqs[0]!, seqs[2]!, 999_999]);
      const store = await ctx.reopen();
      expect((await store.objects.changes(10)).map((c) => c.seq)).toEqual([seqs[1], seqs[3]]);
      await store.objects.forgetChanges([]);
      await store.objects.forgetChanges([seqs[1]!, seqs[3]!]);
      expect(await store.objects.changes(10)).toEqual([]);
    });

    it('logs nothing for a write that fails or a delete that removes nothing', async () => {
      await o().createBucket('default', 'b', null);
      await expect(o().putObject('default', newObject('nope', 'k'))).rejects.toThrow(BucketNotFoundError);
      await expect(o().deleteObjects('default', 'nope', ['k'])).rejects.toThrow(BucketNotFoundError);
      expect(await o().deleteObjects('default', 'b', ['missing'])).toEqual([]);
      expect(await o().changes(10)).toEqual([]);
    });

    it("replaces an object's tags alone, and keeps a bucket's CORS rules", async () => {
      await o().createBucket('default', 'b', null);
      await o().putObject('default', newObject('b', 'k', { tags: { a: '1' }, userMetadata: { m: 'v' } }));
      expect(await o().setObjectTags('default', 'b', 'k', { x: 'y' })).toBe(true);
      expect(await o().setObjectTags('default', 'b', 'nope', { x: 'y' })).toBe(false);
      expect(await o().getObject('default', 'b', 'k')).toMatchObject({
        tags: { x: 'y' },
        userMetadata: { m: 'v' },
      });

      expect(await o().getBucketCors('default', 'b')).toBeNull();
      expect(await o().getBucketCors('default', 'nope')).toBeUndefined();
      const rules = [
        {
          allowedMethods: ['PUT'],
          allowedOrigins: ['https://a.example'],
          allowedHeaders: ['*'],
          exposeHeaders: ['ETag'],
          maxAgeSeconds: 60,
        },
      ];
      expect(await o().setBucketCors('default', 'b', rules)).toBe(true);
      expect(await o().setBucketCors('default', 'nope', rules)).toBe(false);
      expect(await o().getBucketCors('default', 'b')).toStrictEqual(rules);
      await o().setBucketCors('default', 'b', null);
      expect(await o().getBucketCors('default', 'b')).toBeNull();
    });

    it("keeps an upload's parts, replaces a part, and completes into one object in one step", async () => {
      await o().createBucket('default', 'b', null);
      await expect(
        o().createUpload('default', {
          bucket: 'nope',
          key: 'k',
          uploadId: 'u0',
          headers: {},
          userMetadata: {},
          tags: {},
        }),
      ).rejects.toBeInstanceOf(BucketNotFoundError);
      const u = await o().createUpload('default', {
        bucket: 'b',
        key: 'big',
        uploadId: 'u1',
        headers: { contentType: 'text/plain' },
        userMetadata: { a: 'b' },
        tags: { t: '1' },
      });
      expect(await o().getUpload('default', 'b', 'u1')).toStrictEqual(u);
      expect(
        await o().putPart('default', 'b', 'u1', { partNumber: 2, ref: 'p2', size: 1, etag: 'e2' }),
      ).toEqual({ replaced: null });
      await o().putPart('default', 'b', 'u1', { partNumber: 1, ref: 'p1', size: 5, etag: 'e1' });
      expect(
        await o().putPart('default', 'b', 'u1', { partNumber: 2, ref: 'p2b', size: 2, etag: 'e2b' }),
      ).toEqual({ replaced: 'p2' });
      await expect(
        o().putPart('default', 'b', 'nope', { partNumber: 1, ref: 'px', size: 1, etag: 'e' }),
      ).rejects.toBeInstanceOf(UploadNotFoundError);
      const parts = await o().listParts('default', 'b', 'u1');
      expect(parts.map((p) => [p.partNumber, p.ref, p.size, p.etag])).toEqual([
        [1, 'p1', 5, 'e1'],
        [2, 'p2b', 2, 'e2b'],
      ]);
      expect(await o().referenced(['p1', 'p2', 'p2b'])).toEqual(new Set(['p1', 'p2b']));

      const obj = newObject('b', 'big', { size: 7, etag: 'abc-2' });
      const done = await o().completeUpload('default', 'u1', obj);
      expect(done.replaced).toBeNull();
      expect(done.parts.sort()).toEqual(['p1', 'p2b']);
      expect(await o().getUpload('default', 'b', 'u1')).toBeUndefined();
      expect(await o().getObject('default', 'b', 'big')).toMatchObject({
        etag: 'abc-2',
        size: 7,
        ref: obj.ref,
      });
      expect(await o().referenced(['p1', 'p2b', obj.ref])).toEqual(new Set([obj.ref]));
      await expect(o().completeUpload('default', 'u1', newObject('b', 'big'))).rejects.toBeInstanceOf(
        UploadNotFoundError,
      );
      await expect(o().listParts('default', 'b', 'u1')).rejects.toBeInstanceOf(UploadNotFoundError);
    });

    it('aborts an upload, lists uploads by key and id after markers, and drops them with the bucket', async () => {
      await o().createBucket('default', 'b', null);
      const mk = (key: string, uploadId: string) =>
        o().createUpload('default', { bucket: 'b', key, uploadId, headers: {}, userMetadata: {}, tags: {} });
      await mk('b/2', 'u3');
      await mk('a', 'u2');
      await mk('b/1', 'u1');
      await mk('a', 'u4');
      await o().putPart('default', 'b', 'u4', { partNumber: 1, ref: 'q1', size: 1, etag: 'e' });
      const ids = async (q: Parameters<ObjectStore['listUploads']>[2]) =>
        (await o().listUploads('default', 'b', q)).map((u) => `${u.key}:${u.uploadId}`);
      expect(await ids({ limit: 10 })).toEqual(['a:u2', 'a:u4', 'b/1:u1', 'b/2:u3']);
      expect(await ids({ limit: 2 })).toEqual(['a:u2', 'a:u4']);
      expect(await ids({ afterKey: 'a', afterUploadId: 'u2', limit: 10 })).toEqual([
        'a:u4',
        'b/1:u1',
        'b/2:u3',
      ]);
      expect(await ids({ afterKey: 'a', limit: 10 })).toEqual(['b/1:u1', 'b/2:u3']);
      expect(await ids({ prefix: 'b/', limit: 10 })).toEqual(['b/1:u1', 'b/2:u3']);
      expect(await o().abortUpload('default', 'b', 'u4')).toEqual(['q1']);
      expect(await o().abortUpload('default', 'b', 'u4')).toBeUndefined();
      expect(await o().referenced(['q1'])).toEqual(new Set());
      await expect(o().listUploads('default', 'nope', { limit: 1 })).rejects.toBeInstanceOf(
        BucketNotFoundError,
      );
      await o().putPart('default', 'b', 'u1', { partNumber: 1, ref: 'q2', size: 1, etag: 'e' });
      expect(await o().deleteBucket('default', 'b')).toBe(true);
      expect(await o().referenced(['q2'])).toEqual(new Set());
    });
  });
}

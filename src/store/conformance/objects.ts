// ObjectStore conformance: buckets per project, object metadata as written, overwrites handing back the ref
// they replace, listings in S3's order (UTF-8 bytes) with prefixes, delimiters and pages, and the change log
// that storage triggers read: one entry per write or removal, committed with it, kept until forgotten.
import { describe, expect, it } from 'vitest';
import { BucketNotEmptyError, BucketNotFoundError } from '../errors.js';
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
  });
}

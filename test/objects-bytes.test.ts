// The file ByteStore and the orphan sweep, on a real disk: bytes and digests as streamed, ranges, copies that
// outlive their source, a failed stream that keeps nothing, and a sweep that deletes only what no object
// holds and only what was written before it started.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BytesTooLargeError } from '../src/objects/bytes.js';
import { FileByteStore } from '../src/objects/file-bytes.js';
import { OrphanSweep } from '../src/objects/sweep.js';

describe('FileByteStore', () => {
  let dir: string;
  let bytes: FileByteStore;
  const files = () => readdirSync(join(dir, 'bytes')).flatMap((d) => readdirSync(join(dir, 'bytes', d)));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nimbus-bytes-'));
    bytes = new FileByteStore(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stores a stream and computes its digests on the way', async () => {
    const s = await bytes.put(Readable.from([Buffer.from('hello '), Buffer.from('world')]), {
      checksums: ['crc32', 'crc32c', 'sha1', 'sha256'],
    });
    expect(s).toEqual({
      ref: expect.stringMatching(/^[0-9a-f]{32}$/),
      size: 11,
      md5: createHash('md5').update('hello world').digest('hex'),
      checksums: {
        crc32: 'DUoRhQ==',
        crc32c: 'yZRlqg==',
        sha1: createHash('sha1').update('hello world').digest('base64'),
        sha256: createHash('sha256').update('hello world').digest('base64'),
      },
    });
    expect(await text(await bytes.get(s.ref))).toBe('hello world');
    expect(await text(await bytes.get(s.ref, { start: 6, end: 10 }))).toBe('world');
  });

  it('keeps nothing of a stream that fails, or of one over the limit', async () => {
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1000));
        this.destroy(new Error('client went away'));
      },
    });
    await expect(bytes.put(failing)).rejects.toThrow('client went away');
    await expect(bytes.put(Readable.from([Buffer.alloc(2000)]), { maxBytes: 1000 })).rejects.toThrow(
      BytesTooLargeError,
    );
    expect(files()).toEqual([]);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  it('copies by a new ref that outlives the first, and deletes idempotently', async () => {
    const s = await bytes.put(Readable.from([Buffer.from('abc')]));
    const copy = await bytes.copy(s.ref);
    expect(copy).not.toBe(s.ref);
    await bytes.delete(s.ref);
    await bytes.delete(s.ref);
    expect(await text(await bytes.get(copy))).toBe('abc');
    await expect(bytes.get(s.ref)).rejects.toThrow(/ENOENT/);
    // A ref that is not one of ours never becomes a path.
    await expect(bytes.get('../../etc/passwd')).rejects.toThrow(/not a byte ref/);
  });

  it('composes refs into a new one with the bytes in order, leaving the parts, and refuses a missing part', async () => {
    const a = await bytes.put(Readable.from([Buffer.from('multi')]));
    const b = await bytes.put(Readable.from([Buffer.from('part')]));
    const whole = await bytes.compose([a.ref, b.ref]);
    expect(whole).toMatchObject({ size: 9, md5: createHash('md5').update('multipart').digest('hex') });
    expect(await text(await bytes.get(whole.ref))).toBe('multipart');
    expect(await text(await bytes.get(a.ref))).toBe('multi');
    await bytes.delete(b.ref);
    await expect(bytes.compose([a.ref, b.ref])).rejects.toThrow();
    // Nothing of the failed compose is left: the two refs that exist, and an empty tmp/.
    expect(files().sort()).toEqual([a.ref, whole.ref].sort());
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  it('empties tmp/ when it opens: what a crash left mid-upload', () => {
    writeFileSync(join(dir, 'tmp', 'half'), 'partial');
    bytes = new FileByteStore(dir);
    expect(existsSync(join(dir, 'tmp', 'half'))).toBe(false);
  });

  it('sweeps refs no object holds, written before the sweep started', async () => {
    const held = await bytes.put(Readable.from([Buffer.from('held')]));
    await bytes.put(Readable.from([Buffer.from('orphan')]));
    const start = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 20));
    const fresh = await bytes.put(Readable.from([Buffer.from('in flight')]));
    mkdirSync(join(dir, 'bytes', 'zz'), { recursive: true });
    writeFileSync(join(dir, 'bytes', 'zz', 'not-a-ref'), 'foreign');
    const sweep = new OrphanSweep({
      bytes,
      objects: { referenced: async (refs) => new Set(refs.filter((r) => r === held.ref)) },
    });
    expect(await sweep.sweep(start)).toBe(1);
    expect(files().sort()).toEqual([held.ref, fresh.ref, 'not-a-ref'].sort());
  });
});

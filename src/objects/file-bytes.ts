// ByteStore on the local disk: <data>/objects/bytes/<2 hex>/<32 hex>, names drawn at random, so no key a user
// sends ever reaches a path. A put streams into tmp/, fsyncs the file, renames it into place and fsyncs the
// directory: once put resolves the bytes survive a power cut, and a crash before the rename leaves only a
// temporary file (tmp/ is emptied at start). A crash after the rename but before the metadata commit leaves
// an unreferenced file, which the orphan sweep deletes (see sweep.ts).
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { link, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BytesTooLargeError,
  type ByteRange,
  type ByteStore,
  type PutOptions,
  type StoredBytes,
} from './bytes.js';
import { Digests } from './digests.js';

const REF = /^[0-9a-f]{32}$/;

export class FileByteStore implements ByteStore {
  private readonly bytesDir: string;
  private readonly tmpDir: string;

  /** Creates the folders and empties tmp/ (what a crash left mid-upload). Call before anything is put. */
  constructor(readonly root: string) {
    this.bytesDir = join(root, 'bytes');
    this.tmpDir = join(root, 'tmp');
    rmSync(this.tmpDir, { recursive: true, force: true });
    mkdirSync(this.bytesDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  async put(body: Readable, opts: PutOptions = {}): Promise<StoredBytes> {
    const digests = new Digests(opts.checksums);
    const max = opts.maxBytes ?? Infinity;
    const tmp = join(this.tmpDir, randomBytes(16).toString('hex'));
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        digests.update(chunk);
        if (digests.size > max) done(new BytesTooLargeError(max));
        else done(null, chunk);
      },
    });
    const out = createWriteStream(tmp, { mode: 0o600, flush: true });
    try {
      // flush: true fsyncs the file before 'finish' (Node 20.10+); the rename below makes it visible whole.
      await pipeline(body, count, out);
      const ref = randomBytes(16).toString('hex');
      const dir = join(this.bytesDir, ref.slice(0, 2));
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      await rename(tmp, join(dir, ref));
      await fsyncDir(dir);
      const { md5, checksums } = digests.finish();
      return { ref, size: digests.size, md5, checksums };
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  async compose(refs: readonly string[]): Promise<StoredBytes> {
    // Through put: the same tmp file, fsync, rename and digests, from the parts read one after another.
    const paths = refs.map((r) => this.path(r));
    async function* concatenated(): AsyncGenerator<Buffer> {
      for (const p of paths) {
        const fh = await open(p, 'r');
        try {
          for await (const chunk of fh.createReadStream({ autoClose: false })) yield chunk as Buffer;
        } finally {
          await fh.close();
        }
      }
    }
    return this.put(Readable.from(concatenated()));
  }

  async get(ref: string, range?: ByteRange): Promise<Readable> {
    // Open first, so a missing file is an error here rather than after the response has started.
    const fh = await open(this.path(ref), 'r');
    // 256 KB reads rather than 64 KB: a quarter of the reads and socket writes for a large object.
    return fh.createReadStream({ start: range?.start, end: range?.end, highWaterMark: 256 * 1024 });
  }

  async copy(ref: string): Promise<string> {
    const next = randomBytes(16).toString('hex');
    const dir = join(this.bytesDir, next.slice(0, 2));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // A hard link: the copy costs nothing, and deleting either name leaves the other's bytes.
    await link(this.path(ref), join(dir, next));
    await fsyncDir(dir);
    return next;
  }

  async delete(ref: string): Promise<void> {
    await unlink(this.path(ref)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async *refsBefore(before: number): AsyncIterable<string> {
    for (const dir of await readdir(this.bytesDir)) {
      for (const name of await readdir(join(this.bytesDir, dir)).catch(() => [] as string[])) {
        if (!REF.test(name) || name.slice(0, 2) !== dir) continue;
        const st = await stat(join(this.bytesDir, dir, name)).catch(() => undefined);
        // ctime, not mtime: a rename or a hard link (a copy) made since is new even if its bytes are old.
        if (st && st.ctimeMs < before) yield name;
      }
    }
  }

  private path(ref: string): string {
    // Refs come from the database; one that is not ours must not become a path either.
    if (!REF.test(ref)) throw new Error(`not a byte ref: ${JSON.stringify(ref)}`);
    return join(this.bytesDir, ref.slice(0, 2), ref);
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

// Code lives in the store (so a cluster node can fetch it); this cache extracts each archive once to
// <data>/code/<sha256>/ where stem cells link it from. Directories are root-only; files inside are 0644 so a
// sandbox can read the links it is given, but cannot list or reach the cache itself.
// Beside each tree, <sha256>.v8/ holds the V8 code caches of its entry bundle that deploy checks produced (one per
// Node/V8 version and memory size, which sets the heap flag V8 checks): never linked into a sandbox, only
// handed to the runtime in the init message, so no function can write the cache its instances load.
import { existsSync, mkdirSync, promises as fsp, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { unpackArchive } from '../build/package.js';
import type { FunctionStore } from '../store/types.js';
import { scanTree, type CodeTree } from '../sandbox/code-tree.js';

/** How much V8 code cache text (base64) stays in memory for cold starts; the rest is read from disk. */
const V8_MEMORY_BYTES = 64 * 1024 * 1024;

export class CodeCache {
  private ready = new Set<string>();
  private inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly root: string,
    private readonly store: Pick<FunctionStore, 'getCode'>,
  ) {
    mkdirSync(root, { recursive: true, mode: 0o700 });
  }

  private trees = new Map<string, CodeTree>();

  /** Whether this code is extracted already (in this process or by an earlier one). */
  has(sha256: string): boolean {
    return this.ready.has(sha256) || existsSync(`${join(this.root, sha256)}.complete`);
  }

  /** Code in use by a deploy being checked or an instance being linked: collect() leaves it alone. */
  private held = new Map<string, number>();

  /** Keeps this code from collect() until the returned function is called. */
  hold(sha256: string): () => void {
    this.held.set(sha256, (this.held.get(sha256) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.held.get(sha256) ?? 1) - 1;
      if (n === 0) this.held.delete(sha256);
      else this.held.set(sha256, n);
    };
  }

  /** Whether a deploy or an instance start is using this code right now. */
  isHeld(sha256: string): boolean {
    return this.held.has(sha256);
  }

  /**
   * V8 code caches in memory (base64, as the init message carries them), null when known to be absent; the
   * least recently used go past V8_MEMORY_BYTES (they are read from disk again when needed).
   */
  private v8 = new Map<string, string | null>();
  private v8Bytes = 0;

  /** The file of a V8 code cache: the code, the entry file in it, and what V8 checks a cache against. */
  private v8File(sha256: string, key: string): string {
    const name = createHash('sha256')
      .update(`${key}\0${process.version}\0${process.versions.v8}`)
      .digest('hex')
      .slice(0, 32);
    return join(this.root, `${sha256}.v8`, name);
  }

  /** The code cache for this code and key (base64), read from disk once; undefined when there is none. */
  async v8Cache(sha256: string, key: string): Promise<string | undefined> {
    const file = this.v8File(sha256, key);
    const known = this.v8.get(file);
    if (known !== undefined) {
      this.remember(file, known);
      return known ?? undefined;
    }
    let data: string | null;
    try {
      data = (await fsp.readFile(file)).toString('base64');
    } catch {
      data = null;
    }
    this.remember(file, data);
    return data ?? undefined;
  }

  /** Most recently used last; the oldest go once the texts pass V8_MEMORY_BYTES. */
  private remember(file: string, data: string | null): void {
    const old = this.v8.get(file);
    if (typeof old === 'string') this.v8Bytes -= old.length;
    this.v8.delete(file);
    this.v8.set(file, data);
    if (typeof data === 'string') this.v8Bytes += data.length;
    for (const [f, d] of this.v8) {
      if (this.v8Bytes <= V8_MEMORY_BYTES) break;
      if (typeof d === 'string') this.v8Bytes -= d.length;
      this.v8.delete(f);
    }
  }

  /** Keeps a code cache a deploy check produced (base64), written atomically. */
  async putV8Cache(sha256: string, key: string, data: string): Promise<void> {
    const file = this.v8File(sha256, key);
    await fsp.mkdir(join(this.root, `${sha256}.v8`), { recursive: true, mode: 0o700 });
    const tmp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
    await fsp.writeFile(tmp, Buffer.from(data, 'base64'), { mode: 0o600 });
    await fsp.rename(tmp, file);
    this.remember(file, data);
  }

  /** Forgets a code cache V8 rejected (another V8, other flags, a damaged file): it is not sent again. */
  async dropV8Cache(sha256: string, key: string): Promise<void> {
    const file = this.v8File(sha256, key);
    this.remember(file, null);
    await fsp.rm(file, { force: true });
  }

  /** Removes code extracted for a deploy that was then refused, so a refusal leaves nothing behind. */
  async discard(sha256: string): Promise<void> {
    const dir = join(this.root, sha256);
    this.ready.delete(sha256);
    this.trees.delete(sha256);
    this.forgetV8(sha256);
    await fsp.rm(`${dir}.v8`, { recursive: true, force: true });
    await fsp.rm(`${dir}.complete`, { force: true });
    // Asynchronously: a large service's tree takes a while to delete, and the gateway shares this thread.
    await fsp.rm(dir, { recursive: true, force: true });
  }

  /**
   * Deletes the extracted code of every archive not in `keep` (the code the deployed versions run) and not
   * held. Running instances are unaffected: they hold hard links of the files, not the folder. Answers how
   * many were deleted.
   */
  async collect(keep: ReadonlySet<string>): Promise<number> {
    let n = 0;
    for (const name of await fsp.readdir(this.root)) {
      const sha = name.replace(/\.(complete|v8)$/, '');
      // In-progress extractions (".tmp-…") belong to whoever makes them.
      if (!/^[0-9a-f]{64}$/.test(sha) || keep.has(sha) || this.held.has(sha) || this.inflight.has(sha))
        continue;
      if (name === sha) n++;
      this.ready.delete(sha);
      this.trees.delete(sha);
      this.forgetV8(sha);
      await fsp.rm(join(this.root, name), { recursive: true, force: true });
    }
    return n;
  }

  private forgetV8(sha256: string): void {
    const prefix = join(this.root, `${sha256}.v8`);
    for (const [file, d] of this.v8) {
      if (!file.startsWith(prefix)) continue;
      if (typeof d === 'string') this.v8Bytes -= d.length;
      this.v8.delete(file);
    }
  }

  /** Synchronous answer for the hot path when the code is already extracted. */
  peek(sha256: string): string | undefined {
    return this.ready.has(sha256) ? join(this.root, sha256) : undefined;
  }

  /** The extracted code as a list of entries, scanned once per version (cold starts link from it). */
  async tree(sha256: string): Promise<CodeTree> {
    const known = this.trees.get(sha256);
    if (known) return known;
    const tree = scanTree(await this.dir(sha256));
    this.trees.set(sha256, tree);
    return tree;
  }

  async dir(sha256: string): Promise<string> {
    const known = this.peek(sha256);
    if (known) return known;
    let p = this.inflight.get(sha256);
    if (!p) {
      p = this.extract(sha256).finally(() => this.inflight.delete(sha256));
      this.inflight.set(sha256, p);
    }
    return p;
  }

  /** Extracts from an archive already in hand (deploy path), avoiding a read back from the store. */
  async put(sha256: string, archive: Buffer): Promise<string> {
    const dir = join(this.root, sha256);
    if (this.ready.has(sha256) || existsSync(`${dir}.complete`)) {
      this.ready.add(sha256);
      return dir;
    }
    // Extract beside the final place and rename, so a crash never leaves a half-written code directory in use.
    const tmp = join(this.root, `.tmp-${sha256.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    try {
      mkdirSync(tmp, { mode: 0o755 });
      await unpackArchive(archive, tmp);
      rmSync(dir, { recursive: true, force: true });
      renameSync(tmp, dir);
      writeFileSync(`${dir}.complete`, '');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    this.ready.add(sha256);
    return dir;
  }

  private async extract(sha256: string): Promise<string> {
    const dir = join(this.root, sha256);
    if (existsSync(`${dir}.complete`)) {
      this.ready.add(sha256);
      return dir;
    }
    const archive = await this.store.getCode(sha256);
    if (!archive) throw new Error(`code ${sha256} is missing from the store`);
    return this.put(sha256, archive);
  }
}

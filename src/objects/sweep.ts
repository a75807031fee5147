// Deletes bytes no object row holds: what a crash left between a put's rename and its metadata commit, or
// between a commit and the delete of the bytes it replaced. It runs in the background from start and only
// looks at refs older than its own start, so a put in flight (renamed, not yet committed) is never touched.
import type { Component } from '../component.js';
import type { ObjectStore } from '../store/types.js';
import type { ByteStore } from './bytes.js';

const BATCH = 500;

export interface OrphanSweepOptions {
  bytes: ByteStore;
  objects: Pick<ObjectStore, 'referenced'>;
  now?: () => number;
  onError?: (err: unknown) => void;
  /** Told how many refs were deleted, once a sweep ends. */
  onDone?: (deleted: number) => void;
}

export class OrphanSweep implements Component {
  readonly name = 'object orphan sweep';
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly o: OrphanSweepOptions) {}

  async start(): Promise<void> {
    this.stopped = false;
    const before = (this.o.now ?? Date.now)();
    this.running = this.sweep(before).then(
      (n) => this.o.onDone?.(n),
      (err: unknown) => this.o.onError?.(err),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** The sweep itself, for tests and start(): resolves with how many refs it deleted. */
  async sweep(before: number): Promise<number> {
    let deleted = 0;
    let batch: string[] = [];
    const flush = async (): Promise<void> => {
      const held = await this.o.objects.referenced(batch);
      for (const ref of batch) {
        if (held.has(ref)) continue;
        await this.o.bytes.delete(ref);
        deleted++;
      }
      batch = [];
    };
    for await (const ref of this.o.bytes.refsBefore(before)) {
      if (this.stopped) return deleted;
      batch.push(ref);
      if (batch.length >= BATCH) await flush();
    }
    if (batch.length > 0 && !this.stopped) await flush();
    return deleted;
  }
}

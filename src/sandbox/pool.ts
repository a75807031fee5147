// Stem cells: runtime processes booted ahead of demand, one small pool per memory size, /tmp size and network
// mode (the V8 heap limit, the memory cgroup, the /tmp tmpfs and the network namespace's NAT are fixed at spawn). A cold start takes one synchronously, so Node's ~70 ms boot stays off
// the request path. The pool is sized to the recent rate of cold starts and refilled in the background, and
// process boots are rationed so a burst cannot start a thousand Node processes at once on two cores.
import type { InstanceEnv, NetworkMode } from './instance.js';
import { SandboxInstance } from './instance.js';

export interface StemCellPoolOptions {
  env: InstanceEnv;
  /** Ready stem cells kept per memory size in use, at the least. */
  target: number;
  /** The most kept ready per memory size, however high the cold-start rate. */
  maxTarget?: number;
  /** Processes booting at once (pool refills and on-demand starts together). */
  maxBooting?: number;
  onError?: (err: Error) => void;
}

/** Tries to boot one process before giving up (see boot). */
const BOOT_ATTEMPTS = 4;
/** How long a refill waits after a take (a cold start takes a few milliseconds end to end). */
const REFILL_DELAY_MS = 25;
/** How long a refill waits after a stem cell failed to boot. */
const REFILL_RETRY_MS = 1000;
/** Cold starts are counted over this window to size the pool. */
const RATE_WINDOW_MS = 10_000;
/** Keep enough stem cells for this much time of cold starts at the recent rate (about one boot). */
const COVER_MS = 500;

/** Lambda's default ephemeral storage, the /tmp size when a caller names none. */
const DEFAULT_TMP_MB = 512;

interface SizePool {
  memoryMB: number;
  tmpMB: number;
  network: NetworkMode;
  ready: SandboxInstance[];
  starting: number;
  /** Times of recent takes (cold starts), oldest first. */
  takes: number[];
  /** Whether the latest boot for this size failed (cleared by the next that succeeds). */
  failing: boolean;
}

export class StemCellPool {
  private sizes = new Map<string, SizePool>();
  private booting = 0;
  private waiting: (() => void)[] = [];
  private closed = false;
  private readonly maxTarget: number;
  private readonly maxBooting: number;

  constructor(private readonly opts: StemCellPoolOptions) {
    this.maxTarget = opts.maxTarget ?? 64;
    this.maxBooting = opts.maxBooting ?? 8;
  }

  /** Declares that functions with this memory size exist, so stem cells of that size are kept ready. */
  ensure(memoryMB: number, tmpMB = DEFAULT_TMP_MB, network: NetworkMode = 'outbound'): void {
    this.refill(this.size(memoryMB, tmpMB, network));
  }

  /** A ready stem cell, or undefined when none is ready this instant. Never waits. */
  take(
    memoryMB: number,
    tmpMB = DEFAULT_TMP_MB,
    network: NetworkMode = 'outbound',
  ): SandboxInstance | undefined {
    const pool = this.size(memoryMB, tmpMB, network);
    const now = Date.now();
    pool.takes.push(now);
    while (pool.takes.length > 0 && pool.takes[0]! < now - RATE_WINDOW_MS) pool.takes.shift();
    let inst = pool.ready.pop();
    // One dying with the spawner is still listed until its exit is reported.
    while (inst?.dead) inst = pool.ready.pop();
    // Refill a moment later: spawning blocks the event loop for milliseconds (fork), and the cold start
    // that just took this stem cell should get its answer out first.
    setTimeout(() => this.refill(pool), REFILL_DELAY_MS).unref();
    return inst;
  }

  /** A stem cell now if one is ready, else a freshly booted one (the slow path: a full process boot). */
  async acquire(
    memoryMB: number,
    tmpMB = DEFAULT_TMP_MB,
    network: NetworkMode = 'outbound',
  ): Promise<SandboxInstance> {
    return this.take(memoryMB, tmpMB, network) ?? this.boot(memoryMB, tmpMB, network, true);
  }

  /** A process booted for one inspected instance (`nimbus dev --inspect`), never kept as a stem cell. */
  bootInspectable(
    memoryMB: number,
    tmpMB = DEFAULT_TMP_MB,
    network: NetworkMode = 'outbound',
  ): Promise<SandboxInstance> {
    return SandboxInstance.start(this.opts.env, memoryMB, tmpMB, network, { inspect: true });
  }

  /** Whether sandboxes get a network namespace of their own (bubblewrap), so `network: none` can hold. */
  get isolatesNetwork(): boolean {
    return this.opts.env.caps.bwrap !== null;
  }

  /** How many ready stem cells to keep for this memory and /tmp size now. */
  target(memoryMB: number, tmpMB = DEFAULT_TMP_MB, network: NetworkMode = 'outbound'): number {
    return this.targetOf(this.size(memoryMB, tmpMB, network));
  }

  private targetOf(pool: SizePool): number {
    const perMs = pool.takes.length / RATE_WINDOW_MS;
    return Math.min(this.maxTarget, Math.max(this.opts.target, Math.ceil(perMs * COVER_MS)));
  }

  /** Processes booting right now (at most maxBooting). */
  get bootingNow(): number {
    return this.booting;
  }

  /**
   * Whether the pool can serve cold starts: open, and no size has both no ready stem cell and a failing
   * latest boot. A size that is merely drained by a burst (its refills still booting) stays ready.
   */
  ready(): boolean {
    if (this.closed) return false;
    for (const p of this.sizes.values()) if (p.failing && p.ready.length === 0) return false;
    return true;
  }

  stats(): {
    memoryMB: number;
    tmpMB: number;
    network: NetworkMode;
    ready: number;
    starting: number;
    target: number;
  }[] {
    return [...this.sizes.values()].map((p) => ({
      memoryMB: p.memoryMB,
      tmpMB: p.tmpMB,
      network: p.network,
      ready: p.ready.length,
      starting: p.starting,
      target: this.targetOf(p),
    }));
  }

  private size(memoryMB: number, tmpMB: number, network: NetworkMode): SizePool {
    const key = `${memoryMB}/${tmpMB}/${network}`;
    let pool = this.sizes.get(key);
    if (!pool)
      this.sizes.set(
        key,
        (pool = { memoryMB, tmpMB, network, ready: [], starting: 0, takes: [], failing: false }),
      );
    return pool;
  }

  /** Boots a process once a boot slot is free; a request waiting for it goes ahead of pool refills. */
  private async boot(
    memoryMB: number,
    tmpMB: number,
    network: NetworkMode,
    urgent = false,
  ): Promise<SandboxInstance> {
    while (this.booting >= this.maxBooting && !this.closed) {
      await new Promise<void>((r) => (urgent ? this.waiting.unshift(r) : this.waiting.push(r)));
    }
    this.booting++;
    try {
      // Up to BOOT_ATTEMPTS tries before a cold start fails: bwrap's setup of a new network namespace's
      // loopback fails now and then under load ("loopback: Failed RTM_NEWADDR: No child processes", seen in 2
      // of 40 boots 4 at a time, and twice in a row once in a full test run), and a moment later it works.
      for (let attempt = 1; ; attempt++) {
        try {
          return await SandboxInstance.start(this.opts.env, memoryMB, tmpMB, network);
        } catch (err) {
          if (this.closed || attempt >= BOOT_ATTEMPTS) throw err;
          this.opts.onError?.(err as Error);
          await new Promise((r) => setTimeout(r, 20 * attempt));
        }
      }
    } finally {
      this.booting--;
      this.waiting.shift()?.();
    }
  }

  private refill(pool: SizePool): void {
    if (this.closed) return;
    const want = this.targetOf(pool);
    for (let have = pool.ready.length + pool.starting; have < want; have++) {
      pool.starting++;
      this.boot(pool.memoryMB, pool.tmpMB, pool.network).then(
        (inst) => {
          pool.starting--;
          pool.failing = false;
          if (this.closed) return inst.stop();
          pool.ready.push(inst);
          // A stem cell that dies while waiting must not be handed out.
          inst.onExitOnce(() => {
            const at = pool.ready.indexOf(inst);
            if (at >= 0) {
              pool.ready.splice(at, 1);
              this.refill(pool);
            }
          });
        },
        (err: Error) => {
          pool.starting--;
          pool.failing = true;
          this.opts.onError?.(err);
          // Try again a while later, so a boot that failed twice does not leave the pool short for good.
          setTimeout(() => this.refill(pool), REFILL_RETRY_MS).unref();
        },
      );
    }
  }

  close(): void {
    this.closed = true;
    for (const pool of this.sizes.values()) for (const inst of pool.ready.splice(0)) inst.stop();
    for (const w of this.waiting.splice(0)) w();
  }
}

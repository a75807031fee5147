// Stem cells: runtime processes booted ahead of demand, one small pool per memory size (the V8 heap limit and
// the memory cgroup are fixed at spawn). A cold start takes one synchronously, so Node's ~70 ms boot stays off
// the request path; refilling happens in the background.
import type { InstanceEnv } from './instance.js';
import { SandboxInstance } from './instance.js';

export interface StemCellPoolOptions {
  env: InstanceEnv;
  /** How many ready stem cells to keep per memory size in use. */
  target: number;
  onError?: (err: Error) => void;
}

export class StemCellPool {
  private ready = new Map<number, SandboxInstance[]>();
  private starting = new Map<number, number>();
  private closed = false;

  constructor(private readonly opts: StemCellPoolOptions) {}

  /** Declares that functions with this memory size exist, so stem cells of that size are kept ready. */
  ensure(memoryMB: number): void {
    if (!this.ready.has(memoryMB)) this.ready.set(memoryMB, []);
    this.refill(memoryMB);
  }

  /** A ready stem cell, or undefined when none is ready this instant. Never waits. */
  take(memoryMB: number): SandboxInstance | undefined {
    const list = this.ready.get(memoryMB);
    const inst = list?.pop();
    this.ensure(memoryMB);
    return inst;
  }

  /** A stem cell now if one is ready, else a freshly started one (the slow path: a full process boot). */
  async acquire(memoryMB: number): Promise<SandboxInstance> {
    return this.take(memoryMB) ?? SandboxInstance.start(this.opts.env, memoryMB);
  }

  stats(): { memoryMB: number; ready: number; starting: number }[] {
    return [...this.ready.entries()].map(([memoryMB, list]) => ({
      memoryMB,
      ready: list.length,
      starting: this.starting.get(memoryMB) ?? 0,
    }));
  }

  private refill(memoryMB: number): void {
    if (this.closed) return;
    const list = this.ready.get(memoryMB)!;
    const starting = this.starting.get(memoryMB) ?? 0;
    for (let i = list.length + starting; i < this.opts.target; i++) {
      this.starting.set(memoryMB, (this.starting.get(memoryMB) ?? 0) + 1);
      SandboxInstance.start(this.opts.env, memoryMB).then(
        (inst) => {
          this.starting.set(memoryMB, (this.starting.get(memoryMB) ?? 1) - 1);
          if (this.closed) return inst.stop();
          list.push(inst);
          // A stem cell that dies while waiting must not be handed out.
          inst.onExitOnce(() => {
            const at = list.indexOf(inst);
            if (at >= 0) list.splice(at, 1);
            this.refill(memoryMB);
          });
        },
        (err: Error) => {
          this.starting.set(memoryMB, (this.starting.get(memoryMB) ?? 1) - 1);
          this.opts.onError?.(err);
        },
      );
    }
  }

  close(): void {
    this.closed = true;
    for (const list of this.ready.values()) for (const inst of list.splice(0)) inst.stop();
  }
}

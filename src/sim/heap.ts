// A binary min-heap of simulation events in parallel typed arrays: millions of events go through it, and an
// object per event would be most of the simulator's garbage.

/** Event kinds in the order they run when their times are equal. */
export const EventKind = {
  /** An invocation ends: its instance is free before anything else happens at that instant. */
  Completion: 0,
  /** A pre-warm or provisioned start has finished initializing. */
  Started: 1,
  Arrival: 2,
} as const;
export type EventKind = (typeof EventKind)[keyof typeof EventKind];

export class EventHeap {
  private time: Float64Array;
  private kind: Uint8Array;
  private data: Int32Array;
  /** Insertion order, so equal events pop first-in first-out and every run is the same. */
  private order: Float64Array;
  private n = 0;
  private pushed = 0;

  constructor(capacity = 1024) {
    this.time = new Float64Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.data = new Int32Array(capacity);
    this.order = new Float64Array(capacity);
  }

  get size(): number {
    return this.n;
  }

  /** Time of the next event; Infinity when empty. */
  peekTime(): number {
    return this.n > 0 ? this.time[0]! : Infinity;
  }

  peekKind(): EventKind {
    return this.kind[0]! as EventKind;
  }

  peekData(): number {
    return this.data[0]!;
  }

  push(time: number, kind: EventKind, data: number): void {
    if (this.n === this.time.length) this.grow();
    let i = this.n++;
    const seq = this.pushed++;
    // Sift up with a hole instead of swaps.
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(time, kind, seq, p)) break;
      this.move(p, i);
      i = p;
    }
    this.time[i] = time;
    this.kind[i] = kind;
    this.data[i] = data;
    this.order[i] = seq;
  }

  /** Removes the top event (read it with the peek methods first). */
  pop(): void {
    const last = --this.n;
    if (last === 0) return;
    const time = this.time[last]!;
    const kind = this.kind[last]! as EventKind;
    const data = this.data[last]!;
    const seq = this.order[last]!;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const c = r < last && this.less(r, l) ? r : l;
      if (!this.after(time, kind, seq, c)) break;
      this.move(c, i);
      i = c;
    }
    this.time[i] = time;
    this.kind[i] = kind;
    this.data[i] = data;
    this.order[i] = seq;
  }

  /** (time, kind, seq) sorts before slot j. */
  private before(time: number, kind: number, seq: number, j: number): boolean {
    const t = this.time[j]!;
    if (time !== t) return time < t;
    const k = this.kind[j]!;
    if (kind !== k) return kind < k;
    return seq < this.order[j]!;
  }

  /** (time, kind, seq) sorts after slot j. */
  private after(time: number, kind: number, seq: number, j: number): boolean {
    return !this.before(time, kind, seq, j);
  }

  private less(a: number, b: number): boolean {
    return this.before(this.time[a]!, this.kind[a]!, this.order[a]!, b);
  }

  private move(from: number, to: number): void {
    this.time[to] = this.time[from]!;
    this.kind[to] = this.kind[from]!;
    this.data[to] = this.data[from]!;
    this.order[to] = this.order[from]!;
  }

  private grow(): void {
    const cap = this.time.length * 2;
    const time = new Float64Array(cap);
    time.set(this.time);
    const kind = new Uint8Array(cap);
    kind.set(this.kind);
    const data = new Int32Array(cap);
    data.set(this.data);
    const order = new Float64Array(cap);
    order.set(this.order);
    this.time = time;
    this.kind = kind;
    this.data = data;
    this.order = order;
  }
}

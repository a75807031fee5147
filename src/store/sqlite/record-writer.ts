// The invocation log's writer thread: a worker with its own SQLite connection to the same file, so the
// inserts of a batch of records (about 10 µs each on a million-row table, bench/invocation-log.mjs) run
// beside the thread that serves requests instead of on it. WAL lets the main connection read meanwhile;
// the two connections take turns for the write lock (a write waits for the other's transaction, a few ms
// at most, under the busy timeout).
//
// Batches are acknowledged in order on a message port and through a shared counter, so the main thread can
// wait for them without its event loop (a synchronous close). A batch is kept on the main thread until it
// is acknowledged: if the thread fails or does not answer, the main connection writes what is outstanding
// itself (the (request id, attempt) key makes a second write of a record a no-op), so a clean stop loses
// nothing. A crash of the process loses what was not committed yet, as it did before: the records of the
// last flush interval (50 ms) and the batch being written.
import { createRequire } from 'node:module';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

/** What the thread answers for each batch, in the order they were sent. */
export interface BatchAck {
  seq: number;
  ms: number;
  /** Rows (indexes into the batch) that could not be written, with the reason; empty when all were. */
  dropped: number[];
  error?: string;
}

/** How long a synchronous wait (close) gives the thread before the main connection writes the rest. */
const SYNC_WAIT_MS = 10_000;

// Plain JavaScript run with eval: the thread needs no file of its own in dist/ (nor a TypeScript loader
// under the test runner). It gets the driver's resolved path, the statement and the row width.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const { path, sql, width, busyTimeoutMs, port, shared } = workerData;
const acked = new Int32Array(shared);
const db = new Database(path, { timeout: busyTimeoutMs });
db.pragma('synchronous = NORMAL');
const insert = db.prepare(sql);
const rows = (flat) => flat.length / width;
const all = db.transaction((flat) => {
  for (let i = 0; i < flat.length; i += width) insert.run(flat.slice(i, i + width));
});
const salvage = db.transaction((flat) => {
  const dropped = [];
  for (let r = 0; r < rows(flat); r++) {
    try {
      insert.run(flat.slice(r * width, (r + 1) * width));
    } catch {
      dropped.push(r);
    }
  }
  return dropped;
});
port.on('message', (m) => {
  if (m.close) {
    db.close();
    Atomics.store(acked, 1, 1);
    Atomics.notify(acked, 1);
    port.close();
    return;
  }
  const t0 = performance.now();
  let dropped = [];
  let error;
  try {
    all(m.flat);
  } catch (err) {
    error = String(err && err.message);
    try {
      dropped = salvage(m.flat);
    } catch (err2) {
      error = String(err2 && err2.message);
      dropped = Array.from({ length: rows(m.flat) }, (_, i) => i);
    }
  }
  port.postMessage({ seq: m.seq, ms: performance.now() - t0, dropped, error });
  Atomics.store(acked, 0, m.seq);
  Atomics.notify(acked, 0);
});
`;

export interface RecordWriterOptions {
  path: string;
  /** The INSERT of one row, with `width` anonymous parameters. */
  sql: string;
  width: number;
  busyTimeoutMs: number;
  onAck: (ack: BatchAck) => void;
  /** The thread failed or stopped answering: the caller takes over what is outstanding. */
  onFailure: (err: Error) => void;
}

export class RecordWriter {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly acked = new Int32Array(new SharedArrayBuffer(8));
  private seq = 0;
  private lastAcked = 0;
  private failed = false;

  constructor(private readonly o: RecordWriterOptions) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        path: o.path,
        sql: o.sql,
        width: o.width,
        busyTimeoutMs: o.busyTimeoutMs,
        port: port2,
        shared: this.acked.buffer,
      },
      transferList: [port2],
    });
    this.port.on('message', (ack: BatchAck) => this.handle(ack));
    // The thread never keeps the process alive, its port only while a batch is unanswered (someone may be
    // awaiting it: a flush()).
    this.worker.unref();
    this.port.unref();
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.closing) this.fail(new Error(`the record writer thread exited (code ${code})`));
    });
  }

  private closing = false;

  /** Sends a batch (rows of `width` values, flattened); returns its sequence number. */
  send(flat: unknown[]): number {
    const seq = ++this.seq;
    if (this.lastAcked === seq - 1) this.port.ref();
    this.port.postMessage({ seq, flat });
    return seq;
  }

  get usable(): boolean {
    return !this.failed;
  }

  /** The last batch sent; every batch up to it is acknowledged once `acknowledged` reaches it. */
  get sent(): number {
    return this.seq;
  }

  get acknowledged(): number {
    return this.lastAcked;
  }

  /**
   * Blocks until every batch sent is acknowledged (close, synchronously), delivering their acks. Returns
   * false if the thread failed or did not answer in time: the caller then writes the rest itself.
   */
  waitSync(): boolean {
    const deadline = performance.now() + SYNC_WAIT_MS;
    while (!this.failed && this.lastAcked < this.seq) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      const seen = Atomics.load(this.acked, 0);
      if (seen < this.seq) Atomics.wait(this.acked, 0, seen, Math.min(left, 100));
      this.drainSync();
    }
    return !this.failed && this.lastAcked >= this.seq;
  }

  /** Closes the thread's connection (after waitSync) and ends the thread. */
  closeSync(): void {
    this.closing = true;
    if (!this.failed) {
      this.port.postMessage({ close: true });
      const deadline = performance.now() + SYNC_WAIT_MS;
      while (Atomics.load(this.acked, 1) === 0 && performance.now() < deadline) {
        Atomics.wait(this.acked, 1, 0, 100);
      }
    }
    this.port.close();
    void this.worker.terminate();
  }

  /** Ends the thread at once, as a failure would (tests: the take-over path). */
  kill(): Promise<number> {
    return this.worker.terminate();
  }

  private drainSync(): void {
    for (let m = receiveMessageOnPort(this.port); m; m = receiveMessageOnPort(this.port)) {
      this.handle(m.message as BatchAck);
    }
  }

  private handle(ack: BatchAck): void {
    if (ack.seq <= this.lastAcked) return;
    this.lastAcked = ack.seq;
    if (this.lastAcked === this.seq) this.port.unref();
    this.o.onAck(ack);
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.drainSync();
    this.failed = true;
    this.port.unref();
    this.o.onFailure(err);
  }
}

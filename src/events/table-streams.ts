// Table triggers: Lambda's DynamoDB event source mappings over the TableStore's streams. One poller per
// (function, table) reads the stream in order, invokes the function with a batch of DynamoDB Streams records,
// and moves the consumer's stored cursor past what the function handled. The stream keeps its records for 24
// hours and the cursor is in the store, so a crash or a restart loses nothing: the batch that was running is
// delivered again (at least once). As on Lambda, a failing batch holds back the records after it (order per
// table is kept), is retried (bisected on request), and is skipped only after maximumRetryAttempts: with a
// log line, and with Lambda's failure record (which records, why) sent to the trigger's onFailure queue. `batchItemFailures` (by SequenceNumber) retries from the first record that failed.
import type { TableTrigger } from '../config/manifest.js';
import { systemClock, type Clock } from '../clock/clock.js';
import { Waker } from './waker.js';
import type { Invoker, InvokeOutcome } from '../invoker/types.js';
import { timeOrderedId } from '../ids.js';
import type { FunctionRef, FunctionVersion, QueueStore, StreamRecord, TableStore } from '../store/types.js';
import { QueueNotFoundError } from '../store/errors.js';
import { compileFilters, type EventFilter } from './filter.js';
import { continueTrace } from './trace.js';
import type { TriggerSource } from './types.js';
import { sequenceNumber, streamRecordView } from '../tables/stream-records.js';

export interface TableStreamSourceOptions {
  tables: TableStore;
  /** Where onFailure records go. */
  queues?: QueueStore;
  /** Told after a failure record was sent, so the queue's consumers look at once. */
  onQueued?: (project: string, queue: string) => void;
  invoker: Invoker & { headroom(ref: FunctionRef, share: number): number };
  clock?: Clock;
  share?: number;
  /** Longest wait between reads of a stream with nothing new. Default 250 ms. */
  pollMs?: number;
  /** Resolves once ended invocations' records are written; the cursor moves only after. */
  recordsWritten?: () => Promise<void>;
  region?: string;
  accountId?: string;
  onError?: (err: unknown, context: string) => void;
}

interface Mapping {
  key: string;
  fn: FunctionRef;
  trigger: TableTrigger;
  filter: EventFilter;
  active: boolean;
  loop: Promise<void> | null;
  waker: Waker;
  /** Failed attempts of the batch that starts after the cursor. */
  failures: number;
  /** While bisecting: the most records the next batch may hold. */
  maxBatch: number;
}

export class TableStreamSource implements TriggerSource {
  readonly kind = 'stream';
  readonly name = 'table triggers';
  private readonly clock: Clock;
  private readonly pollMs: number;
  private mappings = new Map<string, Mapping>();
  private started = false;
  private stopped = false;

  constructor(private readonly o: TableStreamSourceOptions) {
    this.clock = o.clock ?? systemClock;
    this.pollMs = o.pollMs ?? 250;
  }

  sync(functions: readonly FunctionVersion[]): void {
    const next = new Map<string, Mapping>();
    for (const f of functions) {
      for (const t of f.config.tableTriggers ?? []) {
        const key = `${f.project}/${f.name}/${t.table}`;
        const old = this.mappings.get(key);
        if (old && JSON.stringify(old.trigger) === JSON.stringify(t)) {
          next.set(key, old);
          continue;
        }
        if (old) this.retire(old);
        next.set(key, {
          key,
          fn: { project: f.project, name: f.name },
          trigger: t,
          filter: compileFilters(t.filters ?? []),
          active: true,
          loop: null,
          waker: new Waker(this.clock),
          failures: 0,
          maxBatch: t.batchSize,
        });
      }
    }
    for (const [key, m] of this.mappings) if (!next.has(key)) this.retire(m);
    this.mappings = next;
    if (this.started && !this.stopped) for (const m of next.values()) this.run(m);
  }

  async start(): Promise<void> {
    this.started = true;
    this.stopped = false;
    for (const m of this.mappings.values()) this.run(m);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const m of this.mappings.values()) m.waker.wake();
    await Promise.all([...this.mappings.values()].map((m) => m.loop));
  }

  private retire(m: Mapping): void {
    m.active = false;
    m.waker.wake();
  }

  private run(m: Mapping): void {
    if (m.loop || !m.active) return;
    m.loop = this.poll(m)
      .catch((err: unknown) => this.o.onError?.(err, `table trigger ${m.key}`))
      .finally(() => {
        m.loop = null;
      });
  }

  /** The consumer's name in the store: one cursor per function and table. */
  private consumer(m: Mapping): string {
    return `function:${m.fn.name}`;
  }

  private async poll(m: Mapping): Promise<void> {
    const { project } = m.fn;
    const table = m.trigger.table;
    while (m.active && !this.stopped) {
      let after: number;
      let records: StreamRecord[];
      try {
        after = await this.cursor(m);
        records = await this.o.tables.streamRecords(
          project,
          table,
          after,
          Math.min(m.maxBatch, m.trigger.batchSize),
        );
      } catch (err) {
        this.o.onError?.(err, `table trigger ${m.key}: reading the stream`);
        await m.waker.sleep(1000);
        continue;
      }
      if (records.length === 0) {
        await m.waker.sleep(this.pollMs);
        continue;
      }
      if (this.o.invoker.headroom(m.fn, this.o.share ?? 0.8) <= 0) {
        await m.waker.sleep(100);
        continue;
      }
      const stored = await this.o.tables.getTable(project, table);
      const view = records.map((r) =>
        this.record(r, stored?.stream?.viewType ?? 'KEYS_ONLY', stored?.streamLabel ?? ''),
      );
      const matching = records.filter((_, i) => m.filter.matches(view[i]));
      const last = records[records.length - 1]!.seq;
      if (matching.length === 0) {
        await this.advance(m, last);
        continue;
      }
      const batch = view.filter((_, i) => m.filter.matches(view[i]));
      const outcome = await this.o.invoker.invoke({
        fn: m.fn,
        event: { Records: batch },
        trigger: 'stream',
        requestId: timeOrderedId(),
        traceId: continueTrace(null, `${project}/${m.fn.name}`).header,
      });
      if (outcome.status !== 'not_found') await this.o.recordsWritten?.();
      await this.settle(m, records, outcome);
    }
  }

  private async settle(m: Mapping, records: StreamRecord[], outcome: InvokeOutcome): Promise<void> {
    const last = records[records.length - 1]!.seq;
    if (outcome.status === 'throttled' || outcome.status === 'not_found') {
      // Never ran: read the same records again soon, uncounted.
      await m.waker.sleep(outcome.status === 'throttled' ? 500 : this.pollMs);
      return;
    }
    let failedFrom: number | undefined;
    if (outcome.status === 'ok') {
      failedFrom = firstFailure(outcome.payload, records);
      if (failedFrom === undefined) {
        m.failures = 0;
        m.maxBatch = m.trigger.batchSize;
        await this.advance(m, last);
        return;
      }
      // The records before the first failure are done; the rest are retried, in order.
      if (failedFrom > records[0]!.seq) {
        await this.advance(m, failedFrom - 1);
        m.failures = 0;
      }
    }
    m.failures++;
    const max = m.trigger.maximumRetryAttempts;
    if (max >= 0 && m.failures > max) {
      const from = failedFrom ?? records[0]!.seq;
      this.o.onError?.(
        new Error(
          `${m.fn.name}: skipped stream records ${sequenceNumber(from)} to ${sequenceNumber(last)} of table ${m.trigger.table} after ${m.failures} failed attempts (maximumRetryAttempts ${max})`,
        ),
        'table triggers',
      );
      await this.sendFailure(m, records, from, last, outcome);
      m.failures = 0;
      m.maxBatch = m.trigger.batchSize;
      await this.advance(m, last);
      return;
    }
    if (outcome.status !== 'ok' && m.trigger.bisectBatchOnFunctionError && records.length > 1) {
      m.maxBatch = Math.ceil(records.length / 2);
    }
    await m.waker.sleep(Math.min(10_000, 100 * 2 ** Math.min(m.failures, 7)));
  }

  /** Lambda's record for a stream batch given up on, as its OnFailure destinations receive it: it names the
   *  records (by sequence number), not their contents, which stay readable in the stream for 24 hours. */
  private async sendFailure(
    m: Mapping,
    records: StreamRecord[],
    from: number,
    last: number,
    outcome: InvokeOutcome,
  ): Promise<void> {
    const dest = m.trigger.onFailure?.queue;
    if (dest === undefined || !this.o.queues) return;
    const region = this.o.region ?? 'us-east-1';
    const account = this.o.accountId ?? '000000000000';
    const stored = await this.o.tables.getTable(m.fn.project, m.trigger.table);
    const skipped = records.filter((r) => r.seq >= from);
    const record = {
      requestContext: {
        requestId: timeOrderedId(),
        functionArn: `arn:aws:lambda:${region}:${account}:function:${m.fn.name}`,
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: m.failures,
      },
      responseContext: {
        statusCode: outcome.status === 'ok' ? 200 : 500,
        executedVersion: '$LATEST',
        // A batch the function answered with batchItemFailures ran without an error of its own.
        ...(outcome.status === 'ok' ? {} : { functionError: 'Unhandled' }),
      },
      version: '1.0',
      timestamp: new Date(this.clock.now()).toISOString(),
      DDBStreamBatchInfo: {
        shardId: 'shardId-00000000000000000000-00000001',
        startSequenceNumber: sequenceNumber(from),
        endSequenceNumber: sequenceNumber(last),
        approximateArrivalOfFirstRecord: new Date(skipped[0]!.at).toISOString(),
        approximateArrivalOfLastRecord: new Date(skipped[skipped.length - 1]!.at).toISOString(),
        batchSize: skipped.length,
        streamArn: `arn:aws:dynamodb:${region}:${account}:table/${m.trigger.table}/stream/${stored?.streamLabel ?? ''}`,
      },
    };
    try {
      await this.o.queues.send(m.fn.project, dest, [{ body: JSON.stringify(record) }]);
      this.o.onQueued?.(m.fn.project, dest);
    } catch (err) {
      if (!(err instanceof QueueNotFoundError)) throw err;
      this.o.onError?.(
        new Error(
          `${m.fn.name}: failure destination queue "${dest}" does not exist any more; the record was not sent`,
        ),
        'table triggers',
      );
    }
  }

  private async cursor(m: Mapping): Promise<number> {
    const { project } = m.fn;
    const stored = await this.o.tables.streamCursor(project, m.trigger.table, this.consumer(m));
    if (stored !== undefined) return stored;
    // A new trigger: LATEST starts after what the stream holds now, TRIM_HORIZON at its oldest record.
    const start =
      m.trigger.startingPosition === 'LATEST'
        ? ((await this.o.tables.getTable(project, m.trigger.table))?.streamSeq ?? 0)
        : 0;
    await this.o.tables.setStreamCursor(project, m.trigger.table, this.consumer(m), start);
    return start;
  }

  private advance(m: Mapping, to: number): Promise<void> {
    return this.o.tables.setStreamCursor(m.fn.project, m.trigger.table, this.consumer(m), to);
  }

  /** The record as Lambda delivers DynamoDB Streams records. */
  private record(r: StreamRecord, viewType: string, label: string): Record<string, unknown> {
    return streamLambdaRecord(
      r,
      viewType,
      label,
      this.o.region ?? 'us-east-1',
      this.o.accountId ?? '000000000000',
    );
  }
}

/** A stream record as table triggers deliver it; also what `nimbus event generate dynamodb` prints. */
export function streamLambdaRecord(
  r: StreamRecord,
  viewType: string,
  label: string,
  region: string,
  account: string,
): Record<string, unknown> {
  return {
    ...streamRecordView(r, region, viewType),
    eventSourceARN: `arn:aws:dynamodb:${region}:${account}:table/${r.table}/stream/${label}`,
    ...(r.userIdentity ? { userIdentity: r.userIdentity } : {}),
  };
}

/** The lowest sequence number a batchItemFailures response names, or undefined when every record succeeded.
 *  A malformed response fails the whole batch (its first record), as on Lambda. */
function firstFailure(payload: string | undefined, records: StreamRecord[]): number | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload ?? 'null');
  } catch {
    return undefined;
  }
  const list = (value as { batchItemFailures?: unknown } | null)?.batchItemFailures;
  if (list === undefined || list === null) return undefined;
  if (!Array.isArray(list)) return records[0]!.seq;
  if (list.length === 0) return undefined;
  const known = new Map(records.map((r) => [sequenceNumber(r.seq), r.seq]));
  let min: number | undefined;
  for (const e of list) {
    const id = (e as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    const seq = typeof id === 'string' ? known.get(id) : undefined;
    if (seq === undefined) return records[0]!.seq;
    min = min === undefined ? seq : Math.min(min, seq);
  }
  return min;
}

// Storage triggers: S3 event notifications. Every object write and removal leaves an entry in the store's
// change log in its own transaction (ObjectStore.changes); this source reads the oldest entries, puts one
// async event per matching trigger on the EventQueue (S3 invokes Lambda asynchronously, so the function's
// `async:` retries and destinations apply), and only then forgets the entries. Event ids are derived from the
// entry and the trigger, so a crash between the enqueue and the forget enqueues nothing twice. An entry no
// trigger matches is forgotten at once: a trigger sees the changes made after it was deployed.
//
// The event carries the trace of the request that made the change (a function's SDK passes its own on), so
// a function that writes into the bucket that triggers it is stopped by the async path's loop detection.
import type { StorageTrigger } from '../config/manifest.js';
import { systemClock, type Clock } from '../clock/clock.js';
import type { EventQueue, FunctionVersion, ObjectChange, ObjectStore } from '../store/types.js';
import { derivedId } from './ids.js';
import type { TriggerSource } from './types.js';
import { Waker } from './waker.js';

export interface StorageSourceOptions {
  objects: ObjectStore;
  queue: EventQueue;
  clock?: Clock;
  /** Longest wait between looks at the log, for changes made through other nodes. Default 250 ms. */
  pollMs?: number;
  /** Entries read at a time. Default 100. */
  batch?: number;
  /** Told after events were enqueued, so the async source runs them at once. */
  onEnqueued?: () => void;
  region?: string;
  accountId?: string;
  onError?: (err: unknown, context: string) => void;
}

interface Target {
  fn: string;
  /** The trigger's place among the function's storage triggers: part of its configurationId. */
  index: number;
  trigger: StorageTrigger;
}

export class StorageEventSource implements TriggerSource {
  readonly kind = 'storage';
  readonly name = 'storage triggers';
  private readonly clock: Clock;
  private readonly waker: Waker;
  /** By "project/bucket". */
  private targets = new Map<string, Target[]>();
  private loop: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly o: StorageSourceOptions) {
    this.clock = o.clock ?? systemClock;
    this.waker = new Waker(this.clock);
  }

  sync(functions: readonly FunctionVersion[]): void {
    const next = new Map<string, Target[]>();
    for (const f of functions) {
      for (const [index, trigger] of (f.config.storageTriggers ?? []).entries()) {
        const key = `${f.project}/${trigger.bucket}`;
        const list = next.get(key) ?? [];
        list.push({ fn: f.name, index, trigger });
        next.set(key, list);
      }
    }
    this.targets = next;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.loop ??= this.run().finally(() => {
      this.loop = null;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.waker.wake();
    await this.loop;
  }

  /** An object changed on this node: read the log now rather than at the next poll. */
  notify(): void {
    this.waker.wake();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let n: number;
      try {
        n = await this.readLog();
      } catch (err) {
        this.o.onError?.(err, 'storage triggers: reading the object change log');
        await this.waker.sleep(1000);
        continue;
      }
      if (n < (this.o.batch ?? 100)) await this.waker.sleep(this.o.pollMs ?? 250);
    }
  }

  /** Turns the oldest entries into events, then forgets them; returns how many entries it read. (The
   *  loop's one step; tests call it directly.) */
  async readLog(): Promise<number> {
    const changes = await this.o.objects.changes(this.o.batch ?? 100);
    if (changes.length === 0) return 0;
    const writes: Promise<boolean>[] = [];
    for (const c of changes) {
      for (const t of this.targets.get(`${c.project}/${c.bucket}`) ?? []) {
        if (!matches(t.trigger, c)) continue;
        const configurationId = `${t.fn}-storage-${t.index}`;
        // Issued together: the SQLite queue commits one turn's enqueues in one transaction.
        writes.push(
          this.o.queue.enqueue({
            id: derivedId(`storage:${c.project}:${c.seq}:${t.fn}:${t.index}`),
            project: c.project,
            functionName: t.fn,
            source: 'storage',
            payload: JSON.stringify(this.event(c, configurationId)),
            trace: c.trace,
          }),
        );
      }
    }
    if (writes.length > 0) {
      await Promise.all(writes);
      this.o.onEnqueued?.();
    }
    await this.o.objects.forgetChanges(changes.map((c) => c.seq));
    return changes.length;
  }

  /** S3's event notification (event structure version 2.1), one record per change. */
  private event(c: ObjectChange, configurationId: string): { Records: unknown[] } {
    return s3Event(c, configurationId, this.o.region ?? 'us-east-1', this.o.accountId ?? '000000000000');
  }
}

/** S3's event notification as storage triggers deliver it; also what `nimbus event generate s3` prints. */
export function s3Event(
  c: ObjectChange,
  configurationId: string,
  region: string,
  account: string,
): { Records: unknown[] } {
  const removed = c.event.startsWith('ObjectRemoved:');
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: region,
        eventTime: new Date(c.at).toISOString(),
        eventName: c.event,
        userIdentity: { principalId: c.principalId ? `AWS:${c.principalId}` : 'Anonymous' },
        requestParameters: { sourceIPAddress: c.sourceIp ?? '127.0.0.1' },
        responseElements: {
          'x-amz-request-id': c.requestId ?? '',
          'x-amz-id-2': c.requestId ?? '',
        },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId,
          bucket: {
            name: c.bucket,
            ownerIdentity: { principalId: account },
            arn: `arn:aws:s3:::${c.bucket}`,
          },
          // As S3 sends them: a removal names the key and sequencer only.
          object: removed
            ? { key: eventKey(c.key), sequencer: sequencer(c.sequencer) }
            : { key: eventKey(c.key), size: c.size, eTag: c.etag, sequencer: sequencer(c.sequencer) },
        },
      },
    ],
  };
}

function matches(t: StorageTrigger, c: ObjectChange): boolean {
  const kind = c.event.startsWith('ObjectRemoved:') ? 'removed' : 'created';
  if (!t.events.includes(kind)) return false;
  if (t.prefix !== undefined && !c.key.startsWith(t.prefix)) return false;
  if (t.suffix !== undefined && !c.key.endsWith(t.suffix)) return false;
  return true;
}

/** The key as S3 puts it in an event: form-URL-encoded (a space is "+", "+" itself "%2B", only letters,
 *  digits and "*-._" left as they are), with "/" kept. */
export function eventKey(key: string): string {
  return new URLSearchParams({ k: key }).toString().slice(2).replace(/%2F/g, '/');
}

/** S3's sequencer: hex, compared as strings by whoever orders events of a key, so of fixed width. */
function sequencer(n: number): string {
  return n.toString(16).toUpperCase().padStart(16, '0');
}

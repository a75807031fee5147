// What the SQS operations are given: their dependencies, and per request the caller's project, the queue
// URLs it is answered with, and which queues its credentials reach.
import type { UsageCounter } from '../../metering/usage-meter.js';
import type { Clock } from '../../clock/clock.js';
import type { QueueStore } from '../../store/types.js';
import type { Principal } from '../auth.js';
import type { QueueWaiters } from './long-poll.js';

export interface SqsDeps {
  store: { queues: QueueStore };
  region: string;
  accountId: string;
  clock?: Clock;
  /** Wakes the queue's triggers on this node after a send (SendMessage's waiters are woken by the service). */
  notifyQueue?: (project: string, queue: string) => void;
  /** The longest sleep of a long poll between looks at the store, for sends it is not told of. Default 1 s. */
  pollMs?: number;
  /** Told of each request that reached an action (metering; in memory). */
  usage?: UsageCounter;
}

/** SqsDeps once the service is built: the long-poll waiters are shared by every request. */
export interface SqsRuntime extends SqsDeps {
  clock: Clock;
  waiters: QueueWaiters;
  pollMs: number;
}

export interface SqsContext {
  project: string;
  principal: Principal;
  /** <origin the client called>/<account id>/<name>. */
  queueUrl(name: string): string;
  /** Whether the caller's credentials reach this queue of its project. */
  mayUse(name: string): boolean;
  /** Aborted when the client went away. */
  signal?: AbortSignal;
}

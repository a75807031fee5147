// The shape every non-HTTP trigger takes: it learns the deployed functions, starts and stops with the
// platform, and ends in the invoker. Async Event invokes are the first; schedules, queues, storage, table
// streams and e-mail join as further TriggerSources without the server learning anything new.
import type { Component } from '../component.js';
import type { FunctionVersion } from '../store/types.js';

export interface TriggerSource extends Component {
  /** What the invocation records of this source's events say in `trigger` (and its name in logs). */
  readonly kind: string;
  /** The deployed functions now: called once before start() and again after every deploy or removal. */
  sync(functions: readonly FunctionVersion[]): void;
  /** Resolves once what the last sync() asked for is in place (stored, where the source stores it). */
  synced?(): Promise<void>;
}

// What every conformance suite is given: a store over fresh data, the ManualClock it was opened with, and a
// way to close and reopen it over the same data (to check what survives a restart).
import { createHash, randomUUID } from 'node:crypto';
import { afterEach, beforeEach } from 'vitest';
import type { FunctionConfig } from '../../config/manifest.js';
import type { ManualClock } from '../../clock/clock.js';
import { gbSeconds } from '../../metering/price.js';
import {
  DEFAULT_PROJECT,
  type DeployInput,
  type FunctionRef,
  type InvocationRecord,
  type InvocationLog,
  type Store,
} from '../types.js';

export interface StoreHarness {
  store: Store;
  /** The clock the store was opened with; reopen() keeps it. */
  clock: ManualClock;
  /** Closes the current store if it is still open and opens a new one over the same data. */
  reopen(): Promise<Store>;
  /** Closes whichever store is open and deletes the data. */
  cleanup(): Promise<void>;
  /** Makes the database refuse to insert a version of the named function, so a deploy fails part way
   *  through its writes (for the all-or-nothing test). */
  injectVersionFailure(functionName: string): Promise<void>;
}

/** Store options a suite may ask for (a test-sized limit); a factory passes them to the store it opens. */
export interface HarnessOptions {
  itemCollectionLimit?: number;
}

export type HarnessFactory = (opts?: HarnessOptions) => Promise<StoreHarness>;

/** The per-test state a suite reads: the store may be replaced by reopen(). */
export interface SuiteContext {
  readonly store: Store;
  readonly clock: ManualClock;
  reopen(): Promise<Store>;
  injectVersionFailure(functionName: string): Promise<void>;
}

/** Registers beforeEach/afterEach that give every test a fresh harness. */
export function useHarness(make: HarnessFactory): SuiteContext {
  let h: StoreHarness | undefined;
  let store: Store | undefined;
  beforeEach(async () => {
    h = await make();
    store = h.store;
  });
  afterEach(async () => {
    await h?.cleanup();
    h = undefined;
  });
  return {
    get store() {
      if (!store) throw new Error('no store: used outside a test');
      return store;
    },
    get clock() {
      if (!h) throw new Error('no clock: used outside a test');
      return h.clock;
    },
    async reopen() {
      store = await h!.reopen();
      return store;
    },
    injectVersionFailure: (name) => h!.injectVersionFailure(name),
  };
}

// --- fixtures ---

export function ref(name: string, project = DEFAULT_PROJECT): FunctionRef {
  return { project, name };
}

/** A function config with defaults, for store tests. */
export function fn(name: string, over: Partial<FunctionConfig> = {}): FunctionConfig {
  return {
    name,
    handler: 'src/index.handler',
    runtime: 'nodejs',
    memory: 128,
    timeout: 3,
    environment: {},
    reservedConcurrency: undefined,
    routes: [],
    ...over,
  };
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

export function codeOf(content: string | Buffer): DeployInput['code'] {
  const archive = typeof content === 'string' ? Buffer.from(`archive:${content}`) : content;
  return { sha256: sha256(archive), archive };
}

export function deployOf(
  service: string,
  functions: FunctionConfig[],
  code: DeployInput['code'],
  project = DEFAULT_PROJECT,
): DeployInput {
  return { project, service, functions, code };
}

/** An invocation record with defaults, for store tests. */
export function record(over: Partial<InvocationRecord> = {}): InvocationRecord {
  const r: InvocationRecord = {
    requestId: randomUUID(),
    project: DEFAULT_PROJECT,
    functionName: 'fn',
    version: '1',
    trigger: 'http',
    attempt: 1,
    start: Date.now(),
    durationMs: 1.5,
    billedMs: 2,
    memoryMB: 128,
    maxRssBytes: 0,
    cold: false,
    initMs: null,
    status: 'ok',
    errorType: null,
    errorMessage: null,
    logs: '',
    requests: 1,
    gbSeconds: 0,
    costPicoUsd: 204_167,
    traceId: null,
    ...over,
  };
  // Derived from the stored fields, as the store derives it on reading.
  r.gbSeconds = gbSeconds(r.billedMs, r.memoryMB);
  return r;
}

/** Writes n records in order and returns their requestIds in that order. */
export function appendMany(
  log: InvocationLog,
  n: number,
  over: (i: number) => Partial<InvocationRecord>,
): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const rec = record(over(i));
    log.write(rec);
    ids.push(rec.requestId);
  }
  return ids;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// One invocation, with the completion semantics of RIC's Runtime/CallbackContext: promise or callback, first
// completion wins, callbackWaitsForEmptyEventLoop, legacy context.succeed/fail/done, and the "beforeExit"
// fallbacks for handlers that never complete.
//
// Waiting for an empty event loop: the host channel is the only thing of ours that keeps the loop alive, so it is
// unref'd while any invocation runs. 'beforeExit' then fires exactly when the function has no work left, which is
// when AWS would respond; the channel is ref'd again as the last running invocation's response goes out.
//
// Concurrency K > 1 (FunctionInit.concurrency): up to K invocations run at once, each with its own context,
// deadline and completion state, and each handler call runs in its own AsyncLocalStorage context so that output
// is attributed to it (logs.ts). What changes for the function:
// - callbackWaitsForEmptyEventLoop cannot mean anything for one invocation when others share the event loop, so
//   callback(null, result) answers at once, as if it were false (the property stays readable and writable, and
//   is ignored). Promises, context.succeed/fail/done and callback(err) behave as with K = 1.
// - The channel is unref'd from the moment the first of them starts until the last one answers, so 'beforeExit'
//   still fires only when no running invocation has any work left; then every one of them that has not answered
//   gets RIC's default: null for a sync handler, Runtime.NodeJsExit for an async one. A stuck invocation thus
//   waits for its siblings to finish (or its deadline), but the process never exits under a running invocation.
import type { FunctionInit, InvokeMessage, ResultMessage, SerializedError } from '../protocol/messages.js';
import { JSONStringifyError, NodeJsExit, toRapidError } from './errors.js';
import type { LoadedHandler } from './loader.js';
import {
  type Slot,
  beginInvocation,
  beginSlot,
  currentSlot,
  enableConcurrentLogs,
  endInvocation,
  endSlot,
  logError,
  logErrorFor,
  runInSlot,
} from './logs.js';

type Callback = (err?: unknown, result?: unknown) => void;

export interface LambdaContext {
  callbackWaitsForEmptyEventLoop: boolean;
  succeed(result?: unknown): void;
  fail(err?: unknown): void;
  done(err?: unknown, result?: unknown): void;
  functionVersion: string;
  functionName: string;
  memoryLimitInMB: string;
  logGroupName: string;
  logStreamName: string;
  clientContext: unknown;
  identity: undefined;
  invokedFunctionArn: string;
  awsRequestId: string;
  getRemainingTimeInMillis(): number;
}

class Invocation {
  /** A completion (callback/succeed/fail/done/promise) was accepted; later ones are ignored. */
  finished = false;
  /** The response is on its way; nothing else may be sent for this id. */
  completed = false;
  waits = true;
  /** What 'beforeExit' does for it. */
  onDrain = OnDrain.Default;
  /** The result callback() gave, for OnDrain.Complete. */
  drainResult: unknown = undefined;
  constructor(
    readonly id: string,
    /** Epoch ms; Infinity while a debugger holds the instance (suspendDeadlines). */
    public deadline: number,
    readonly initMs: number | undefined,
    /** K > 1: its output buffer and async context; null with K = 1. */
    readonly slot: Slot | null,
    /** The invocation that loaded the function: what became of its code cache. */
    readonly codeCache?: 'accepted' | 'rejected',
  ) {}
}

/** What 'beforeExit' does for a running invocation. */
const enum OnDrain {
  Nothing,
  /** The handler neither completed nor is known to have failed: RIC's default exit listener. */
  Default,
  /** callback(null, result) with callbackWaitsForEmptyEventLoop: this is what we were waiting for. */
  Complete,
}

let fn: LoadedHandler['fn'] = () => undefined;
let fnIsAsync = false;
let fnInit: FunctionInit | undefined;
let memoryLimitInMB = '';
let send: (msg: ResultMessage) => void = () => {};
let onIdle: () => void = () => {};
let channel: { ref(): void; unref(): void } = { ref() {}, unref() {} };

/** How many invocations may run at once (K); fixed when the function is loaded. */
let limit = 1;
/** The invocations started and not yet answered, in start order (at most one with K = 1). */
const running = new Set<Invocation>();

export function setupInvoker(opts: {
  send: (msg: ResultMessage) => void;
  onIdle: () => void;
  channel: { ref(): void; unref(): void };
}): void {
  send = opts.send;
  onIdle = opts.onIdle;
  channel = opts.channel;
  process.on('beforeExit', onBeforeExit);
}

/** FunctionInit.concurrency as the runtime applies it: an integer >= 1, else 1. */
export function concurrencyOf(init: FunctionInit): number {
  const k = init.concurrency;
  return typeof k === 'number' && Number.isInteger(k) && k >= 1 ? k : 1;
}

export function setFunction(init: FunctionInit, loaded: LoadedHandler): void {
  fnInit = init;
  fn = loaded.fn;
  fnIsAsync = loaded.isAsync;
  memoryLimitInMB = String(init.memoryMB);
  limit = concurrencyOf(init);
  if (limit > 1) enableConcurrentLogs();
}

/**
 * The invocation a fatal error belongs to. K = 1: the one running, whatever caused it. K > 1: the running
 * invocation whose async context the error surfaced in (uncaught exceptions run in the context of the callback
 * that threw, unhandled rejections in the rejected promise's), or null when there is none.
 */
export function currentInvocationId(): string | null {
  if (limit > 1) return currentSlot()?.id ?? null;
  for (const inv of running) return inv.id;
  return null;
}

/** No room for another invocation to start (K are running). */
export function isFull(): boolean {
  return running.size >= limit;
}

/** The process is dying (fatal error): whatever the handlers do from now on must not produce a response. */
export function abandonAll(): void {
  if (running.size === 0) return;
  for (const inv of running) {
    inv.completed = true;
    inv.finished = true;
    inv.onDrain = OnDrain.Nothing;
    inv.drainResult = undefined;
  }
  running.clear();
  channel.ref();
}

/** Back to a stem cell's state: no function (after the rehearsal, bootstrap.ts). */
export function clearFunction(): void {
  fnInit = undefined;
  fn = () => undefined;
  fnIsAsync = false;
  memoryLimitInMB = '';
  limit = 1;
}

/** A debugger is attached (DeadlineMessage): invocations have no deadline. */
let deadlinesSuspended = false;

/**
 * The host stopped (true) or restarted (false) its timeouts for a debugger: running invocations, and those
 * that start meanwhile, follow, so getRemainingTimeInMillis never counts down time a breakpoint held.
 */
export function suspendDeadlines(suspended: boolean): void {
  if (suspended === deadlinesSuspended) return;
  deadlinesSuspended = suspended;
  const deadline = suspended ? Infinity : Date.now() + (fnInit?.timeoutSec ?? 0) * 1000;
  for (const inv of running) inv.deadline = deadline;
}

export function runInvocation(
  msg: InvokeMessage,
  initMs: number | undefined,
  codeCache?: 'accepted' | 'rejected',
): void {
  const deadline = deadlinesSuspended
    ? Infinity
    : msg.timeoutMs === undefined
      ? msg.deadline
      : Date.now() + msg.timeoutMs;
  if (limit > 1) {
    const inv = new Invocation(msg.id, deadline, initMs, beginSlot(msg.id), codeCache);
    if (running.size === 0) channel.unref();
    running.add(inv);
    runInSlot(inv.slot as Slot, () => start(inv, msg));
    return;
  }
  const inv = new Invocation(msg.id, deadline, initMs, null, codeCache);
  running.add(inv);
  beginInvocation(inv.id);
  channel.unref();
  start(inv, msg);
}

/** Calls the handler; its completion, whichever way it comes, ends in finish(). */
function start(inv: Invocation, msg: InvokeMessage): void {
  // As Lambda: the AWS SDK forwards it on the calls the function makes, which lets loops be counted.
  if (msg.traceId) process.env['_X_AMZN_TRACE_ID'] = msg.traceId;
  else delete process.env['_X_AMZN_TRACE_ID'];
  const context = makeContext(inv, msg.clientContext);
  // Kept aside so a handler that overwrites context.succeed/fail cannot break its own completion.
  const succeed = context.succeed;
  const fail = context.fail;
  const callback: Callback = (err, result) => {
    if (claim(inv)) onCallback(inv, err, result);
  };

  let ret: unknown;
  try {
    ret = fn(msg.event, context, callback);
  } catch (err) {
    callback(err);
    return;
  }
  try {
    if (ret !== null && (typeof ret === 'object' || typeof ret === 'function')) {
      const then = (ret as { then?: unknown }).then;
      if (typeof then === 'function') then.call(ret, succeed, fail);
    }
  } catch (err) {
    // a thenable whose `then` throws
    fail(err);
  }
}

function makeContext(inv: Invocation, clientContext: unknown): LambdaContext {
  const init = fnInit as FunctionInit;
  const timeoutMs = init.timeoutSec * 1000;
  // Own properties in AWS's order, so logging or spreading the context looks the same as there.
  return {
    get callbackWaitsForEmptyEventLoop(): boolean {
      return inv.waits;
    },
    set callbackWaitsForEmptyEventLoop(value: boolean) {
      inv.waits = value;
    },
    succeed: (result?: unknown) => {
      if (claim(inv)) done(inv, null, result);
    },
    fail: (err?: unknown) => {
      if (claim(inv)) done(inv, err === undefined || err === null ? 'handled' : err, null);
    },
    done: (err?: unknown, result?: unknown) => {
      if (claim(inv)) done(inv, err, result);
    },
    functionVersion: init.functionVersion,
    functionName: init.functionName,
    memoryLimitInMB,
    logGroupName: init.logGroupName,
    logStreamName: init.logStreamName,
    clientContext,
    identity: undefined,
    invokedFunctionArn: init.invokedFunctionArn,
    awsRequestId: inv.id,
    // While a debugger holds the instance there is no deadline: the whole timeout is what is left.
    getRemainingTimeInMillis: () => (inv.deadline === Infinity ? timeoutMs : inv.deadline - Date.now()),
  };
}

function claim(inv: Invocation): boolean {
  if (inv.finished) return false;
  inv.finished = true;
  return true;
}

function onCallback(inv: Invocation, err: unknown, result: unknown): void {
  if (inv.completed) return alreadyDone();
  inv.onDrain = OnDrain.Nothing;
  // Errors are reported at once even when waiting for the event loop, as RIC does.
  if (err !== undefined && err !== null) return postError(inv, err, 'handled');
  // K > 1: the event loop is shared with other invocations; waiting for it to empty means nothing (see top).
  if (!inv.waits || limit > 1) return complete(inv, result);
  inv.onDrain = OnDrain.Complete;
  inv.drainResult = result;
}

function done(inv: Invocation, err: unknown, result: unknown): void {
  if (inv.completed) return alreadyDone();
  inv.onDrain = OnDrain.Nothing;
  if (err !== undefined && err !== null) postError(inv, err, 'handled');
  else complete(inv, result);
}

/** Nothing keeps the event loop alive: no running invocation can make progress on its own any more. */
function onBeforeExit(): void {
  if (running.size === 0) return;
  for (const inv of [...running]) drained(inv);
}

function drained(inv: Invocation): void {
  if (inv.completed) return;
  const action = inv.onDrain;
  const result = inv.drainResult;
  inv.onDrain = OnDrain.Nothing;
  inv.drainResult = undefined;
  if (action === OnDrain.Complete) {
    // RIC answers on the next turn, after any other beforeExit listeners had their say.
    setImmediate(() => complete(inv, result));
    return;
  }
  // Nothing left that could complete it. A sync/callback handler that forgot the callback gets null, like
  // RIC; a promise from an async handler that can no longer settle is an error.
  inv.finished = true;
  if (fnIsAsync) {
    const err = new NodeJsExit();
    postError(inv, err, 'unhandled');
  } else {
    complete(inv, null);
  }
}

function complete(inv: Invocation, result: unknown): void {
  if (inv.completed) return alreadyDone();
  let payload: string | undefined;
  try {
    payload = JSON.stringify(result === undefined ? null : result);
  } catch {
    // circular structures, BigInt, a throwing toJSON
    return postError(inv, new JSONStringifyError(), 'handled');
  }
  finish(inv, true, payload ?? 'null', undefined, undefined);
}

function postError(inv: Invocation, err: unknown, kind: 'handled' | 'unhandled'): void {
  if (inv.completed) return;
  if (inv.slot === null) logError('Invoke Error', err);
  else logErrorFor(inv.slot, 'Invoke Error', err);
  finish(inv, false, undefined, toRapidError(err), kind);
}

function finish(
  inv: Invocation,
  ok: boolean,
  payload: string | undefined,
  error: SerializedError | undefined,
  errorKind: 'handled' | 'unhandled' | undefined,
): void {
  inv.completed = true;
  inv.finished = true;
  inv.onDrain = OnDrain.Nothing;
  inv.drainResult = undefined;
  running.delete(inv);
  if (running.size === 0) channel.ref();
  send({
    t: 'result',
    id: inv.id,
    ok,
    payload,
    error,
    errorKind,
    logs: inv.slot === null ? endInvocation() : endSlot(inv.slot),
    initMs: inv.initMs,
    ...(inv.codeCache ? { codeCache: inv.codeCache } : {}),
  });
  onIdle();
}

function alreadyDone(): void {
  console.error(
    'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
  );
}

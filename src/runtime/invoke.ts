// One invocation, with the completion semantics of RIC's Runtime/CallbackContext: promise or callback, first
// completion wins, callbackWaitsForEmptyEventLoop, legacy context.succeed/fail/done, and the "beforeExit"
// fallbacks for handlers that never complete.
//
// Waiting for an empty event loop: the IPC channel is the only thing of ours that keeps the loop alive, so it is
// unref'd for the duration of every invocation. 'beforeExit' then fires exactly when the function has no work
// left, which is when AWS would respond; the channel is ref'd again as the response goes out.
import type { FunctionInit, InvokeMessage, ResultMessage, SerializedError } from '../protocol/messages.js';
import { JSONStringifyError, NodeJsExit, toRapidError } from './errors.js';
import type { LoadedHandler } from './loader.js';
import { beginInvocation, endInvocation, logError } from './logs.js';

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
  constructor(
    readonly id: string,
    readonly deadline: number,
    readonly initMs: number | undefined,
  ) {}
}

/** What 'beforeExit' does for the current invocation. */
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

let current: Invocation | null = null;
let onDrain = OnDrain.Nothing;
let drainResult: unknown;

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

export function setFunction(init: FunctionInit, loaded: LoadedHandler): void {
  fnInit = init;
  fn = loaded.fn;
  fnIsAsync = loaded.isAsync;
  memoryLimitInMB = String(init.memoryMB);
}

export function currentInvocationId(): string | null {
  return current?.id ?? null;
}

export function isInvoking(): boolean {
  return current !== null;
}

/** The process is dying (fatal error): whatever the handler does from now on must not produce a response. */
export function abandonCurrent(): void {
  if (current === null) return;
  current.completed = true;
  current.finished = true;
  current = null;
  onDrain = OnDrain.Nothing;
  drainResult = undefined;
  channel.ref();
}

export function runInvocation(msg: InvokeMessage, initMs: number | undefined): void {
  const inv = new Invocation(
    msg.id,
    msg.timeoutMs === undefined ? msg.deadline : Date.now() + msg.timeoutMs,
    initMs,
  );
  current = inv;
  onDrain = OnDrain.Default;
  beginInvocation(inv.id);
  channel.unref();

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
  const deadline = inv.deadline;
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
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
}

function claim(inv: Invocation): boolean {
  if (inv.finished) return false;
  inv.finished = true;
  return true;
}

function onCallback(inv: Invocation, err: unknown, result: unknown): void {
  if (inv.completed) return alreadyDone();
  onDrain = OnDrain.Nothing;
  // Errors are reported at once even when waiting for the event loop, as RIC does.
  if (err !== undefined && err !== null) return postError(inv, err, 'handled');
  if (!inv.waits) return complete(inv, result);
  onDrain = OnDrain.Complete;
  drainResult = result;
}

function done(inv: Invocation, err: unknown, result: unknown): void {
  if (inv.completed) return alreadyDone();
  onDrain = OnDrain.Nothing;
  if (err !== undefined && err !== null) postError(inv, err, 'handled');
  else complete(inv, result);
}

function onBeforeExit(): void {
  const inv = current;
  if (inv === null || inv.completed) return;
  const action = onDrain;
  const result = drainResult;
  onDrain = OnDrain.Nothing;
  drainResult = undefined;
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
  logError('Invoke Error', err);
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
  current = null;
  onDrain = OnDrain.Nothing;
  drainResult = undefined;
  channel.ref();
  send({
    t: 'result',
    id: inv.id,
    ok,
    payload,
    error,
    errorKind,
    logs: endInvocation(),
    initMs: inv.initMs,
    rss: process.memoryUsage.rss(),
  });
  onIdle();
}

function alreadyDone(): void {
  console.error(
    'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
  );
}

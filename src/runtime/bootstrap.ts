// The Node.js runtime inside a sandbox process: a generic "stem cell" that boots without any user code, becomes
// one function's instance on the first invocation (which carries FunctionInit), then serves invocations one at
// a time over the host channel (channel.ts) with AWS Lambda's semantics, or up to FunctionInit.concurrency at a time (see
// invoke.ts for what that changes). Invocations beyond that wait in a queue and start in arrival order.
// Protocol: src/protocol/messages.ts.
import { openInspector } from './inspect.js';
import { performance } from 'node:perf_hooks';
import { encodeLine, lineDecoder } from '../protocol/framing.js';
import {
  MAX_HANDLER_SOURCE,
  type FunctionInit,
  type HandlerShape,
  type HostMessage,
  type InvokeMessage,
  type SandboxMessage,
  type SerializedError,
} from '../protocol/messages.js';
import { installAwsRedirect, redirectAwsHosts } from './aws-redirect.js';
import { forwardEndpoint, rehearseForward } from './endpoint.js';
import { CHANNEL_FD, openChannel, type Channel } from './channel.js';
import { applyFunctionEnv } from './env.js';
import { UnhandledPromiseRejection, toRapidError } from './errors.js';
import {
  abandonAll,
  clearFunction,
  concurrencyOf,
  currentInvocationId,
  isFull,
  runInvocation,
  setFunction,
  setupInvoker,
  suspendDeadlines,
} from './invoke.js';
import { exportNamesOf, forgetModule, loadHandler, prepareLoader } from './loader.js';
import {
  beginInit,
  currentSlot,
  endAllSlots,
  endInvocation,
  forgetInvocations,
  installLogCapture,
  logError,
  setLogFormat,
  setLogLevel,
  writeToStderr,
} from './logs.js';

/** How long a fatal message may take to reach the host before the process exits regardless. */
const FATAL_FLUSH_TIMEOUT_MS = 1000;
// RIC's exit codes, so exit statuses read the same as on AWS.
const EXIT_UNCAUGHT = 129;
const EXIT_UNHANDLED_REJECTION = 128;

// The bundle is CommonJS: these are the real location of dist/runtime/bootstrap.cjs.
const RUNTIME_FILE = __filename;
/** Taken before any function's code runs, which may replace Function.prototype.toString. */
const fnToString = Function.prototype.toString;
const RUNTIME_DIR = __dirname;

type InitState =
  | { kind: 'blank' }
  | { kind: 'loading'; id: string }
  | { kind: 'ready' }
  | { kind: 'failed'; error: SerializedError };

let state: InitState = { kind: 'blank' };
let dying = false;
/** K, once the function is loaded (FunctionInit.concurrency). */
let concurrency = 1;
/** Invocations sent while K run (or during init), in arrival order. */
const queue: InvokeMessage[] = [];
let channel: Channel;
/** While the stem cell rehearses, what it would send goes here instead of to the host (see rehearse). */
let rehearsal: ((msg: SandboxMessage) => void) | null = null;

function send(msg: SandboxMessage): void {
  if (rehearsal) return rehearsal(msg);
  if (!channel.connected) return;
  if (msg.t === 'result' && msg.payload !== undefined) {
    // The result's JSON text goes after the message as it is (protocol/framing.ts), not escaped into it.
    const payload = msg.payload;
    msg.payload = undefined;
    channel.send(msg, undefined, payload);
  } else channel.send(msg);
}

function main(): void {
  try {
    // The host is gone: nobody is left to answer to.
    channel = openChannel(onHostMessage, () => process.exit(0));
  } catch {
    writeToStderr(`nimbus runtime: must be started with the host channel on fd ${CHANNEL_FD}\n`);
    process.exit(1);
  }

  installLogCapture((id, data) => send({ t: 'log', id, data }));
  setupInvoker({ send, onIdle, channel });

  process.on('uncaughtException', (err) => die(err, 'Uncaught Exception', EXIT_UNCAUGHT));
  process.on('unhandledRejection', (reason) =>
    die(new UnhandledPromiseRejection(reason), 'Unhandled Promise Rejection', EXIT_UNHANDLED_REJECTION),
  );

  prepareLoader(RUNTIME_FILE);
  installAwsRedirect();
  void rehearse().then((rehearsed) => send({ t: 'ready', pid: process.pid, rehearsed }));
}

const REHEARSAL_ID = 'nimbus-rehearsal';
const REHEARSAL_FILE = `${RUNTIME_DIR}/nimbus-rehearsal.cjs`;
const REHEARSAL_ESM = 'data:text/javascript,export%20const%20handler%20%3D%20async%20()%20%3D%3E%20null%3B';
const REHEARSAL_SOURCE = `exports.handler = async (event, context) => {
  console.log('rehearsal', event.n);
  return { n: event.n, id: context.awsRequestId, left: context.getRemainingTimeInMillis() > 0 };
};
`;

/**
 * Before the stem cell is offered, one invocation of a handler of the runtime's own runs through the real
 * decoder, init, loader, context, log capture and encoder, so that the first real cold start does not pay for
 * V8 compiling all of that lazily. What it changed is put back: the environment (applyFunctionEnv replaces it),
 * the working directory, the module cache, the log state and the loaded function; its result and log lines go
 * nowhere, so no user log or record can show it. Failing to rehearse only costs the speed-up. The ES module
 * loader is started too (one import of a data: URL), the one trace left: that URL in its module map; and a
 * listen on 127.0.0.1 is opened and closed, as the AWS endpoint's forward does at init.
 */
async function rehearse(): Promise<boolean> {
  const env = { ...process.env };
  const cwd = process.cwd();
  const saved = { state, concurrency };
  let rehearsed = false;
  try {
    const done = new Promise<void>((resolve) => {
      rehearsal = (msg) => {
        encodeLine(msg);
        if (msg.t === 'result' || msg.t === 'fatal') {
          rehearsed = msg.t === 'result' && msg.ok;
          resolve();
        }
      };
    });
    const line = encodeLine({
      t: 'invoke',
      id: REHEARSAL_ID,
      event: { n: 1 },
      deadline: Date.now() + 60_000,
      timeoutMs: 60_000,
      init: {
        functionName: 'nimbus-rehearsal',
        functionVersion: '0',
        handler: 'nimbus-rehearsal.handler',
        codeDir: cwd,
        memoryMB: 128,
        timeoutSec: 60,
        region: 'local',
        invokedFunctionArn: 'arn:aws:lambda:local:000000000000:function:nimbus-rehearsal',
        logGroupName: '/aws/lambda/nimbus-rehearsal',
        logStreamName: 'rehearsal',
        env: {},
        entry: { file: REHEARSAL_FILE, format: 'commonjs' },
      },
    } satisfies InvokeMessage);
    lineDecoder((raw) => onMessage(raw))(line);
    await done;
    // Node's ES module loader starts on the first import(): an ES module function's cold start would pay for
    // it. Its module map keeps this data: URL (no API removes one); a function can only meet it by importing
    // this very URL.
    await import(REHEARSAL_ESM);
    // A function with a network namespace of its own gets the AWS endpoint forwarded at init (endpoint.ts).
    await rehearseForward();
  } catch (err) {
    writeToStderr(`nimbus runtime: rehearsal failed: ${String(err)}\n`);
  } finally {
    rehearsal = null;
    for (const key of Object.keys(process.env)) delete process.env[key];
    Object.assign(process.env, env);
    try {
      process.chdir(cwd);
    } catch {
      // the directory it started in is gone: nothing to go back to
    }
    forgetModule(REHEARSAL_FILE);
    forgetInvocations();
    clearFunction();
    state = saved.state;
    concurrency = saved.concurrency;
    queue.length = 0;
    for (const raw of held.splice(0)) onMessage(raw);
  }
  return rehearsed;
}

/** Host messages that arrived during the rehearsal, taken in order once it is over. */
const held: unknown[] = [];

function onHostMessage(raw: unknown): void {
  if (rehearsal) held.push(raw);
  else onMessage(raw);
}

function onMessage(raw: unknown): void {
  if (typeof raw !== 'object' || raw === null) return;
  const msg = raw as HostMessage;
  if (msg.t === 'invoke') {
    if (dying) return;
    // Behind queued ones too: between a completion and the drain it schedules, a newcomer must not jump ahead.
    if (isBusy() || queue.length > 0) queue.push(msg);
    else dispatch(msg);
  } else if (msg.t === 'shutdown') {
    process.exit(0);
  } else if (msg.t === 'deadline') {
    suspendDeadlines(msg.suspended === true);
  }
}

function isBusy(): boolean {
  return state.kind === 'loading' || isFull();
}

/** A slot may have freed up. */
function onIdle(): void {
  if (queue.length > 0) setImmediate(drainQueue);
}

function drainQueue(): void {
  // K = 1 starts one per turn, as it always has; K > 1 fills every free slot.
  do {
    if (isBusy() || dying) return;
    const next = queue.shift();
    if (next === undefined) return;
    dispatch(next);
  } while (concurrency > 1);
}

function dispatch(msg: InvokeMessage): void {
  switch (state.kind) {
    case 'ready':
      if (msg.warmup) {
        replyWarm(msg.id, undefined, undefined);
        onIdle();
        return;
      }
      runInvocation(msg, undefined);
      return;
    case 'failed':
      // The host should have discarded this instance; keep answering with the reason it is unusable.
      replyInitError(msg.id, state.error, undefined, undefined);
      onIdle();
      return;
    case 'blank':
      if (msg.init === undefined) {
        const err = Object.assign(new Error('The first invocation of an instance must carry init'), {
          name: 'Runtime.NotInitialized',
        });
        replyInitError(msg.id, toRapidError(err), undefined, undefined);
        onIdle();
        return;
      }
      void initialize(msg, msg.init);
      return;
    case 'loading':
      queue.push(msg);
      return;
  }
}

async function initialize(msg: InvokeMessage, init: FunctionInit): Promise<void> {
  state = { kind: 'loading', id: msg.id };
  beginInit(msg.id);
  const t0 = performance.now();
  applyFunctionEnv(init, RUNTIME_DIR, init.handler);
  setLogLevel(process.env['AWS_LAMBDA_LOG_LEVEL']);
  setLogFormat(process.env['AWS_LAMBDA_LOG_FORMAT']);
  // Before the function's code loads, so a legacy SDK v2 it bundles reaches Nimbus (aws-redirect.ts).
  redirectAwsHosts(process.env['AWS_ENDPOINT_URL']);
  try {
    process.chdir(init.codeDir);
  } catch {
    // not fatal: the handler is resolved against codeDir, not the cwd
  }
  try {
    if (init.awsSocket) await forwardEndpoint(process.env['AWS_ENDPOINT_URL'], init.awsSocket);
    if (init.inspectSocket) openInspector(init.inspectSocket);
    const loaded = await loadHandler(init.codeDir, init.handler, RUNTIME_FILE, {
      ...(init.entry ? { entry: init.entry } : {}),
      ...(msg.id === REHEARSAL_ID && rehearsal ? { source: REHEARSAL_SOURCE } : {}),
      cache: {
        ...(typeof init.codeCache === 'string' ? { data: Buffer.from(init.codeCache, 'base64') } : {}),
        ...(init.produceCodeCache ? { produce: (data) => sendCodeCache(msg.id, data) } : {}),
      },
    });
    if (dying) return;
    setFunction(init, loaded);
    concurrency = concurrencyOf(init);
    state = { kind: 'ready' };
    if (msg.warmup) {
      const shape = init.describeHandler ? shapeOf(loaded.fn, loaded.isAsync) : undefined;
      replyWarm(msg.id, performance.now() - t0, endInvocation(), loaded.codeCache, shape);
      onIdle();
      return;
    }
    runInvocation(msg, performance.now() - t0, loaded.codeCache);
    // K > 1: what queued up during init may start beside it.
    if (concurrency > 1) onIdle();
  } catch (err) {
    if (dying) return;
    // What AWS logs when init fails; no request id exists yet, hence "undefined" in the line.
    logError('Uncaught Exception', err);
    const error = toRapidError(err);
    state = { kind: 'failed', error };
    replyInitError(msg.id, error, performance.now() - t0, endInvocation(), exportNamesOf(err));
    onIdle();
  }
}

/** Answers a warm-up (initialize-only) request: the function is loaded, no handler ran. */
function replyWarm(
  id: string,
  initMs: number | undefined,
  logs: string | undefined,
  codeCache?: 'accepted' | 'rejected',
  handler?: HandlerShape,
): void {
  send({
    t: 'result',
    id,
    ok: true,
    payload: 'null',
    logs,
    initMs,
    ...(codeCache ? { codeCache } : {}),
    ...(handler ? { handler } : {}),
  });
}

/**
 * The handler's shape for the deploy's warnings. The module's init has run by now and may have replaced
 * Function.prototype.toString or given the handler a throwing `length`: the boot's own copy is used, and
 * anything odd leaves the shape out rather than failing a load that worked.
 */
function shapeOf(fn: unknown, isAsync: boolean): HandlerShape | undefined {
  try {
    const params = Reflect.getOwnPropertyDescriptor(fn as object, 'length')?.value;
    const source = fnToString.call(fn);
    return {
      async: isAsync,
      params: typeof params === 'number' ? params : 0,
      ...(source.length <= MAX_HANDLER_SOURCE ? { source } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * The deploy check's code cache, written to its end before the function's code runs: nothing the function
 * does afterwards (it can write to the channel's descriptor too) can come before it or into it, and the host
 * takes only the first message after the init.
 */
function sendCodeCache(id: string, data: Buffer | undefined): Promise<void> {
  if (!channel.connected) return Promise.resolve();
  return new Promise((resolve) => {
    try {
      channel.send({ t: 'codecache', id, ...(data ? { data: data.toString('base64') } : {}) }, () =>
        resolve(),
      );
    } catch {
      resolve();
    }
  });
}

function replyInitError(
  id: string,
  error: SerializedError,
  initMs: number | undefined,
  logs: string | undefined,
  exportNames?: string[],
): void {
  send({
    t: 'result',
    id,
    ok: false,
    error,
    errorKind: 'init',
    logs,
    initMs,
    ...(exportNames ? { exports: exportNames } : {}),
  });
}

/**
 * An uncaught exception or unhandled rejection: report it for the invocation in flight (null between
 * invocations), then exit non-zero once the message is written, as RIC does. The exit code is set first so the
 * process cannot end with 0 whichever way it goes down; output after this point goes to stderr on exit.
 * K > 1: the fatal names the running invocation whose async context the error surfaced in, else null (the host
 * fails all running ones either way); the other running invocations' buffered lines go out as LogMessages first.
 */
function die(err: unknown, label: string, code: number): void {
  if (dying) return;
  dying = true;
  process.exitCode = code;
  const id = currentInvocationId() ?? (state.kind === 'loading' ? state.id : null);
  const slot = concurrency > 1 ? currentSlot() : null;
  logError(label, err);
  abandonAll();
  const logs = concurrency > 1 ? endAllSlots(slot) : endInvocation();
  const exit = (): void => {
    process.exit(code);
  };
  const undelivered = (): void => {
    if (logs !== undefined) writeToStderr(logs);
    exit();
  };
  setTimeout(exit, FATAL_FLUSH_TIMEOUT_MS);
  if (!channel.connected) return undelivered();
  try {
    channel.send({ t: 'fatal', id, error: toRapidError(err), logs }, (sendErr: Error | null) =>
      sendErr ? undelivered() : exit(),
    );
  } catch {
    undelivered();
  }
}

main();

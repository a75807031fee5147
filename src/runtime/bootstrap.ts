// The Node.js runtime inside a sandbox process: a generic "stem cell" that boots without any user code, becomes
// one function's instance on the first invocation (which carries FunctionInit), then serves invocations one at
// a time over the host channel (channel.ts) with AWS Lambda's semantics, or up to FunctionInit.concurrency at a time (see
// invoke.ts for what that changes). Invocations beyond that wait in a queue and start in arrival order.
// Protocol: src/protocol/messages.ts.
import { openInspector } from './inspect.js';
import { performance } from 'node:perf_hooks';
import type {
  FunctionInit,
  HostMessage,
  InvokeMessage,
  SandboxMessage,
  SerializedError,
} from '../protocol/messages.js';
import { redirectAwsHosts } from './aws-redirect.js';
import { forwardEndpoint } from './endpoint.js';
import { CHANNEL_FD, openChannel, type Channel } from './channel.js';
import { applyFunctionEnv } from './env.js';
import { UnhandledPromiseRejection, toRapidError } from './errors.js';
import {
  abandonAll,
  concurrencyOf,
  currentInvocationId,
  isFull,
  runInvocation,
  setFunction,
  setupInvoker,
} from './invoke.js';
import { exportNamesOf, loadHandler } from './loader.js';
import {
  beginInit,
  currentSlot,
  endAllSlots,
  endInvocation,
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

function send(msg: SandboxMessage): void {
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
    channel = openChannel(onMessage, () => process.exit(0));
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

  send({ t: 'ready', pid: process.pid });
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
    const loaded = await loadHandler(init.codeDir, init.handler, RUNTIME_FILE);
    if (dying) return;
    setFunction(init, loaded);
    concurrency = concurrencyOf(init);
    state = { kind: 'ready' };
    if (msg.warmup) {
      replyWarm(msg.id, performance.now() - t0, endInvocation());
      onIdle();
      return;
    }
    runInvocation(msg, performance.now() - t0);
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
function replyWarm(id: string, initMs: number | undefined, logs: string | undefined): void {
  send({ t: 'result', id, ok: true, payload: 'null', logs, initMs });
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

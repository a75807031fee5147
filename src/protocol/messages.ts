// The messages between the host and a sandboxed runtime process. They travel as JSON lines over a socket pair
// (framing.ts), one invocation at a time per process unless FunctionInit.concurrency allows more.
// This module is imported by both sides, so it holds types and tiny pure helpers only.

/** Everything a generic (stem-cell) runtime needs to become one function's instance. Sent once, with the first invoke. */
export interface FunctionInit {
  functionName: string;
  functionVersion: string;
  /** "path/file.export" as in the manifest, resolved against codeDir the way AWS's Node.js runtime does. */
  handler: string;
  /** Absolute path of the function's code as the sandboxed process sees it (e.g. /var/task). */
  codeDir: string;
  memoryMB: number;
  timeoutSec: number;
  region: string;
  /** arn:aws:lambda:<region>:<account>:function:<name> */
  invokedFunctionArn: string;
  logGroupName: string;
  logStreamName: string;
  /** AWS_LAMBDA_INITIALIZATION_TYPE: provisioned instances say so, as on AWS. Default on-demand. */
  initializationType?: 'on-demand' | 'provisioned-concurrency';
  /** The function's own environment, replacing whatever the stem cell was started with. */
  env: Record<string, string>;
  /**
   * How many invocations the instance runs at once (concurrency.perInstance; Cloud Run's containerConcurrency).
   * Absent, or anything but an integer >= 1, means 1: one at a time, with all of Lambda's semantics. Fixed by the
   * init that loads the function. Above 1, callback completion never waits for the event loop
   * (callbackWaitsForEmptyEventLoop is ignored) and output is attributed to invocations by async context.
   */
  concurrency?: number;
  /**
   * The AWS endpoint's unix socket inside the sandbox, when it has a network namespace of its own: the runtime
   * serves AWS_ENDPOINT_URL's port on its own 127.0.0.1 and forwards each connection there, before user code loads.
   */
  awsSocket?: string;
  /** `nimbus dev --inspect`: open a Node inspector on the sandbox's 127.0.0.1 and serve it on this unix socket
   *  (the host bridges its own 127.0.0.1 port to it), before user code loads. */
  inspectSocket?: string;
  /**
   * The handler's module file and format, resolved by the host from the code tree it scanned (the runtime's own
   * lookup order: .js by the package scope's "type", then .mjs, then .cjs). Absent when the host left it to the
   * runtime (an exact path, a directory, a package in node_modules, an unreadable package.json).
   */
  entry?: HandlerEntry;
  /**
   * V8 code cache for a CommonJS entry, base64: produced by the platform at deploy (see produceCodeCache) and
   * handed over by the host, so the function cannot have written it. A cache V8 rejects is ignored.
   */
  codeCache?: string;
  /**
   * Deploy check only: compile the entry and send its code cache (a CodeCacheMessage, written to the end)
   * before any of the function's code runs.
   */
  produceCodeCache?: boolean;
  /** Deploy check only: answer the warm-up with the handler's shape (ResultMessage.handler), for warnings. */
  describeHandler?: boolean;
}

/**
 * What the loaded handler looks like, for the deploy's warnings (a handler that returns nothing): reported by
 * the sandbox after the module's init ran, so it is a hint and never trusted for anything else.
 */
export interface HandlerShape {
  /** An async function (its calls return a promise). */
  async: boolean;
  /** Function.length: the declared parameters before any default or rest. */
  params: number;
  /** Function.prototype.toString of the handler, when it is at most MAX_HANDLER_SOURCE characters. */
  source?: string;
}

/**
 * The longest handler source a warm-up answer carries; a longer one is left unread. Parsing runs on the host's
 * event loop, and 8 KB parses in about 2-5 ms here: a deploy never stalls the gateway for a warning.
 */
export const MAX_HANDLER_SOURCE = 8 * 1024;

export interface HandlerEntry {
  /** Absolute path as the sandbox sees it. */
  file: string;
  format: 'commonjs' | 'module';
}

export interface InvokeMessage {
  t: 'invoke';
  /** The request id (context.awsRequestId). */
  id: string;
  /** Present on the first invocation of an instance: load this function before running the event. */
  init?: FunctionInit;
  event: unknown;
  /** Epoch ms at which the host kills the invocation; getRemainingTimeInMillis() counts down to it. */
  deadline: number;
  /**
   * When present, the deadline is counted from the moment the runtime starts this invocation (the host may
   * send more invocations than the instance runs at once; the runtime queues them and starts them in order).
   */
  timeoutMs?: number;
  /** Initialize only (provisioned or pre-warmed instances): load the function, run no handler, answer ok. */
  warmup?: boolean;
  clientContext?: unknown;
  /** The X-Ray trace header of this invocation: the runtime sets it as _X_AMZN_TRACE_ID. */
  traceId?: string;
}

export type HostMessage = InvokeMessage | { t: 'shutdown' } | DeadlineMessage;

/**
 * `nimbus dev --inspect`: a debugger attached (suspended) or detached. The host's timeouts stop and restart
 * with it, and the runtime follows so that getRemainingTimeInMillis agrees: while suspended it answers the
 * whole timeout, and on detach each running invocation's deadline is the whole timeout from then.
 */
export interface DeadlineMessage {
  t: 'deadline';
  suspended: boolean;
}

/** An error as it crosses the process boundary: serialized on purpose, never by accident. */
export interface SerializedError {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

export interface ReadyMessage {
  t: 'ready';
  pid: number;
  /** The stem cell ran its rehearsal invocation (bootstrap.ts) before saying it is ready. */
  rehearsed?: boolean;
}

export interface LogMessage {
  t: 'log';
  id: string;
  /** Already formatted lines, each ending in "\n" (Lambda format for console.*: time\tid\tLEVEL\tmessage). */
  data: string;
}

export interface ResultMessage {
  t: 'result';
  id: string;
  /** ok: payload holds the JSON text of the handler's result ("null" for undefined). */
  ok: boolean;
  payload?: string;
  /** When ok is false. kind 'init' means loading the function failed (the instance is unusable). */
  error?: SerializedError;
  errorKind?: 'handled' | 'unhandled' | 'init';
  /** Log lines not yet sent in a LogMessage, attached here to save a message on the hot path. */
  logs?: string;
  /** Duration of module load (init) in ms when this invocation loaded the function. */
  initMs?: number;
  /** A handler not found at init: the module's function-valued exports, so a deploy can suggest one. */
  exports?: string[];
  /** The invocation that loaded the function: what became of FunctionInit.codeCache (absent: none was given). */
  codeCache?: 'accepted' | 'rejected';
  /** A warm-up with FunctionInit.describeHandler: the loaded handler's shape. */
  handler?: HandlerShape;
}

/**
 * The entry's V8 code cache (base64), or none when it cannot have one (an ES module, a source map, no entry):
 * the first message after an init with produceCodeCache, sent before the function's code runs.
 */
export interface CodeCacheMessage {
  t: 'codecache';
  id: string;
  data?: string;
}

/**
 * The process is about to die from something the runtime saw (uncaught exception, unhandled rejection,
 * process.exit). Sent synchronously-as-possible before exit so the host can report the right error.
 */
export interface FatalMessage {
  t: 'fatal';
  id: string | null;
  error: SerializedError;
  logs?: string;
}

export type SandboxMessage = ReadyMessage | LogMessage | ResultMessage | FatalMessage | CodeCacheMessage;

export function serializeError(err: unknown, fallbackType = 'Error'): SerializedError {
  if (err instanceof Error) {
    return {
      errorType: err.name && err.name !== 'Error' ? err.name : (err.constructor?.name ?? fallbackType),
      errorMessage: err.message,
      trace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
    };
  }
  if (typeof err === 'object' && err !== null) {
    const o = err as Record<string, unknown>;
    return {
      errorType: typeof o['errorType'] === 'string' ? o['errorType'] : fallbackType,
      errorMessage:
        typeof o['errorMessage'] === 'string'
          ? o['errorMessage']
          : typeof o['message'] === 'string'
            ? o['message']
            : safeJson(err),
      trace: [],
    };
  }
  return { errorType: fallbackType, errorMessage: String(err), trace: [] };
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** The largest code cache a sandbox may hand over (base64 of 16 MB): a bigger one is dropped, not stored. */
const MAX_CODE_CACHE_BASE64 = Math.ceil((16 * 1024 * 1024) / 3) * 4;

/** The longest text a sandbox's error fields keep; longer ones are cut (a record must stay writable). */
const MAX_ERROR_FIELD = 64 * 1024;

/**
 * A message from a sandbox, checked field by field: the sandbox runs untrusted code, which can write to its
 * channel or patch what the runtime reports, so nothing it sends is taken on trust. Returns null for a
 * message that is not one of ours (ignored), and replaces fields of the wrong type rather than passing them on
 * to a record the store would then refuse. Memory is not taken from it: the host measures that itself.
 */
export function readSandboxMessage(raw: unknown): SandboxMessage | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const m = raw as Record<string, unknown>;
  switch (m['t']) {
    case 'ready':
      return { t: 'ready', pid: typeof m['pid'] === 'number' ? m['pid'] : 0 };
    case 'log':
      if (typeof m['id'] !== 'string' || typeof m['data'] !== 'string') return null;
      return { t: 'log', id: m['id'], data: m['data'] };
    case 'result': {
      if (typeof m['id'] !== 'string') return null;
      const logs = typeof m['logs'] === 'string' ? m['logs'] : undefined;
      const initMs = finiteMs(m['initMs']);
      const cc = m['codeCache'];
      const codeCache = cc === 'accepted' || cc === 'rejected' ? (cc as 'accepted' | 'rejected') : undefined;
      if (m['ok'] === true && (m['payload'] === undefined || typeof m['payload'] === 'string')) {
        // Every warm invocation's answer: one object, no spreads.
        const ok: ResultMessage = {
          t: 'result',
          id: m['id'],
          ok: true,
          payload: (m['payload'] as string | undefined) ?? 'null',
        };
        if (logs) ok.logs = logs;
        if (initMs) ok.initMs = initMs;
        if (codeCache) ok.codeCache = codeCache;
        const handler = readShape(m['handler']);
        if (handler) ok.handler = handler;
        return ok;
      }
      const base = {
        t: 'result' as const,
        id: m['id'],
        ...(logs ? { logs } : {}),
        ...(initMs ? { initMs } : {}),
        ...(codeCache ? { codeCache } : {}),
      };
      const kind = m['errorKind'];
      const exportNames = readNames(m['exports']);
      return {
        ...base,
        ...(exportNames ? { exports: exportNames } : {}),
        ok: false,
        errorKind: kind === 'init' || kind === 'unhandled' ? kind : 'handled',
        error:
          m['ok'] === true
            ? {
                errorType: 'Runtime.InvalidResponse',
                errorMessage: 'the runtime sent a result that is not text',
                trace: [],
              }
            : readError(m['error']),
      };
    }
    case 'codecache':
      if (typeof m['id'] !== 'string') return null;
      return {
        t: 'codecache',
        id: m['id'],
        ...(typeof m['data'] === 'string' && m['data'].length <= MAX_CODE_CACHE_BASE64
          ? { data: m['data'] }
          : {}),
      };
    case 'fatal': {
      const id = typeof m['id'] === 'string' ? m['id'] : null;
      const logs = typeof m['logs'] === 'string' ? m['logs'] : undefined;
      return { t: 'fatal', id, error: readError(m['error']), ...(logs ? { logs } : {}) };
    }
    default:
      return null;
  }
}

/** A handler-not-found's export names: strings only, and few and short enough to keep a message small. */
function readNames(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  return v.filter((n): n is string => typeof n === 'string' && n.length <= 256).slice(0, 1000);
}

function readShape(v: unknown): HandlerShape | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const params = o['params'];
  if (
    typeof o['async'] !== 'boolean' ||
    typeof params !== 'number' ||
    !Number.isInteger(params) ||
    params < 0
  )
    return undefined;
  const source = o['source'];
  return {
    async: o['async'],
    params: Math.min(params, 1000),
    ...(typeof source === 'string' && source.length <= MAX_HANDLER_SOURCE ? { source } : {}),
  };
}

function readError(v: unknown): SerializedError {
  const o = typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  const text = (x: unknown, fallback: string): string =>
    typeof x === 'string' ? x.slice(0, MAX_ERROR_FIELD) : fallback;
  return {
    errorType: text(o['errorType'], 'Error'),
    errorMessage: text(o['errorMessage'], 'unknown error'),
    trace: Array.isArray(o['trace'])
      ? o['trace']
          .filter((l): l is string => typeof l === 'string')
          .slice(0, 200)
          .map((l) => l.slice(0, 4096))
      : [],
  };
}

/** A duration in ms the host may record: finite, not negative, at most a day; anything else is dropped. */
function finiteMs(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 86_400_000 ? v : undefined;
}

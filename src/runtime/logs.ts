// Log capture. console.* becomes Lambda-format lines and raw stdout/stderr writes are kept as-is; everything
// goes into one in-memory buffer that rides on the invocation's result message, so a handler that logs still
// costs one channel message when it finishes within the tick. Longer invocations get a debounced LogMessage.
//
// With concurrency K > 1 (several invocations overlap), each running invocation has its own buffer (a Slot), and
// output is attributed by AsyncLocalStorage: the invocation whose async work wrote it. Output with no such
// context (a timer or socket set up at module scope, a library that loses the context), or whose invocation has
// already answered, goes to the most recently started invocation still running, or between invocations to the
// idle buffer that the next invocation to start takes over (as K = 1 does). A line's id is its own invocation's
// when the context knows one, even if that invocation already answered (as AWS tags late timer output), else
// the id of the invocation it is attached to. K = 1 keeps the single buffer and never touches AsyncLocalStorage.
//
// AWS_LAMBDA_LOG_FORMAT=JSON (set by the host for `logFormat: JSON`) swaps the line formatter for RIC's JSON one;
// the Text formatter is not touched by it, so Text costs what it did.
import { AsyncLocalStorage } from 'node:async_hooks';
import { writeSync } from 'node:fs';
import { format } from 'node:util';
import { toFormatted } from './errors.js';

type Level = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';
const PRIORITY: Record<Level, number> = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };

/** Long enough that an invocation doing one fast I/O round trip still sends a single message. */
const FLUSH_DELAY_MS = 10;
/** An invocation that logs this much in one go is flushed at once rather than held in memory. */
const HIGH_WATER = 256 * 1024;
/** Output between invocations waits for the next one; a chatty background timer must not grow it forever. */
const IDLE_CAP = 1024 * 1024;

// RIC publishes the current request id here; some libraries read it.
const REQUEST_ID_SYMBOL = Symbol.for('aws.lambda.runtime.requestId');

let buf = '';
/** The id printed in lines. AWS prints "undefined" during init and keeps the last id after an invocation. */
let tag: string | undefined;
/** The invocation that buffered output belongs to, or null between invocations. */
let activeId: string | null = null;
let minPriority = 1;
let droppedBytes = 0;
let sink: (id: string, data: string) => void = () => {};
let flushTimer: NodeJS.Timeout | undefined;
let flushArmed = false;

/** K > 1: one running invocation's output. */
export interface Slot {
  readonly id: string;
  buf: string;
  /** Answered: its output now goes wherever output without a context goes. */
  ended: boolean;
}

/** Set once, when a function with K > 1 is loaded; until then (and forever with K = 1) the single buffer rules. */
let als: AsyncLocalStorage<Slot> | undefined;
/** K > 1: the running invocations, in start order. */
const slots = new Set<Slot>();
/** K > 1: the most recently started running invocation, where output without a context goes. */
let latest: Slot | null = null;

export function installLogCapture(send: (id: string, data: string) => void): void {
  sink = send;
  const emitter = (level: Level) =>
    function (...args: unknown[]): void {
      if (PRIORITY[level] >= minPriority) line(level, args);
    };
  const info = emitter('INFO');
  console.trace = emitter('TRACE');
  console.debug = emitter('DEBUG');
  console.info = info;
  console.log = info;
  console.warn = emitter('WARN');
  console.error = emitter('ERROR');
  // Non-standard, but RIC adds it and functions written for Lambda may call it.
  Object.assign(console, { fatal: emitter('FATAL') });
  patchWrite(process.stdout);
  patchWrite(process.stderr);

  // One timer for the life of the process, re-armed with refresh(): no allocation per flush. Unref'd so it never
  // holds the event loop open (callbackWaitsForEmptyEventLoop must only wait for the function's own work).
  flushArmed = true;
  flushTimer = setTimeout(onFlushTimer, FLUSH_DELAY_MS);
  flushTimer.unref();

  // process.exit() from user code: nothing asynchronous runs after this, so hand the lines to the host via stderr.
  process.on('exit', writeRemainingToStderr);
}

/** Honour AWS_LAMBDA_LOG_FORMAT as RIC does: "JSON" makes every console line a JSON record, else Text. */
export function setLogFormat(value: string | undefined): void {
  const json = value?.toUpperCase() === 'JSON';
  record = json ? jsonRecord : textRecord;
  errorArgs = json ? jsonErrorArgs : textErrorArgs;
}

/** Honour AWS_LAMBDA_LOG_LEVEL as RIC does (unknown values mean everything). */
export function setLogLevel(value: string | undefined): void {
  const key = value?.toUpperCase() as Level | undefined;
  minPriority = key !== undefined && key in PRIORITY ? PRIORITY[key] : 1;
}

/** Module init: output belongs to the first invocation but is tagged "undefined", as on AWS. */
export function beginInit(id: string): void {
  activeId = id;
}

/** Forgets the last invocation's id, as a stem cell that never ran one (after the rehearsal, bootstrap.ts). */
export function forgetInvocations(): void {
  activeId = null;
  tag = undefined;
  buf = '';
  droppedBytes = 0;
  minPriority = 1;
  delete (globalThis as Record<symbol, unknown>)[REQUEST_ID_SYMBOL];
}

export function beginInvocation(id: string): void {
  activeId = id;
  tag = id;
  (globalThis as Record<symbol, unknown>)[REQUEST_ID_SYMBOL] = id;
}

/**
 * Switches to per-invocation buffers attributed by async context (K > 1). Called once, after the function
 * loaded and before its first invocation runs; init output stays in the single buffer until then.
 */
export function enableConcurrentLogs(): void {
  if (als !== undefined) return;
  const storage = new AsyncLocalStorage<Slot>();
  als = storage;
  // The global RIC publishes can only be right per invocation if it asks the context.
  Object.defineProperty(globalThis, REQUEST_ID_SYMBOL, {
    configurable: true,
    get: () => storage.getStore()?.id ?? tag,
    set: () => {},
  });
}

/** K > 1: a running invocation's buffer. It takes over what was written while nothing ran (or during init). */
export function beginSlot(id: string): Slot {
  tag = id;
  activeId = null;
  const slot: Slot = { id, buf: takeLogs() ?? '', ended: false };
  slots.add(slot);
  latest = slot;
  if (slot.buf !== '') armFlush();
  return slot;
}

/** K > 1: runs fn (the handler call) in the invocation's async context; everything it schedules inherits it. */
export function runInSlot<T>(slot: Slot, fn: () => T): T {
  return (als as AsyncLocalStorage<Slot>).run(slot, fn);
}

/** K > 1: the running invocation whose async context this is, if any. */
export function currentSlot(): Slot | null {
  const slot = als?.getStore();
  return slot !== undefined && !slot.ended ? slot : null;
}

/** K > 1: the invocation answered; hands over its buffered output (undefined when none). */
export function endSlot(slot: Slot): string | undefined {
  slot.ended = true;
  slots.delete(slot);
  if (latest === slot) {
    latest = null;
    for (const s of slots) latest = s;
  }
  const data = slot.buf;
  slot.buf = '';
  return data === '' ? undefined : data;
}

/**
 * K > 1, the process is dying: every running invocation but `keep` gets its buffered output now, as LogMessages;
 * returns keep's (with anything written between invocations) to ride on the fatal message.
 */
export function endAllSlots(keep: Slot | null): string | undefined {
  let kept = keep === null ? '' : keep.buf;
  if (keep !== null) keep.buf = '';
  for (const slot of slots) {
    if (slot !== keep) flushSlot(slot);
    slot.ended = true;
  }
  slots.clear();
  latest = null;
  kept += takeLogs() ?? '';
  return kept === '' ? undefined : kept;
}

/** Hands over what is buffered (undefined when nothing is) and detaches output from the invocation. */
export function endInvocation(): string | undefined {
  activeId = null;
  return takeLogs();
}

export function takeLogs(): string | undefined {
  if (droppedBytes > 0) {
    const n = droppedBytes;
    droppedBytes = 0;
    buf += `[nimbus runtime] ${n} bytes of output written between invocations were dropped\n`;
  }
  if (buf === '') return undefined;
  const data = buf;
  buf = '';
  return data;
}

/** RIC's structuredConsole.logError: "<label> \t{errorType,errorMessage,stack...}" at ERROR level. */
export function logError(label: string, err: unknown): void {
  if (PRIORITY.ERROR >= minPriority) line('ERROR', errorArgs(label, err));
}

/** logError for an invocation known by its slot (K > 1), whatever the async context of the caller. */
export function logErrorFor(slot: Slot, label: string, err: unknown): void {
  if (PRIORITY.ERROR >= minPriority) appendTo(slot, record(slot.id, 'ERROR', errorArgs(label, err)));
}

export function writeRemainingToStderr(): void {
  let data = '';
  for (const slot of slots) {
    data += slot.buf;
    slot.buf = '';
  }
  data += takeLogs() ?? '';
  if (data !== '') writeToStderr(data);
}

/** Straight to fd 2, synchronously, bypassing the capture hook: for when the host channel can no longer be used. */
export function writeToStderr(data: string): void {
  try {
    writeSync(2, data);
  } catch {
    // stderr gone: nowhere left to put it
  }
}

function line(level: Level, args: unknown[]): void {
  if (als !== undefined) {
    const own = als.getStore();
    const slot = own !== undefined && !own.ended ? own : latest;
    appendTo(slot, record(own?.id ?? slot?.id ?? tag, level, args));
    return;
  }
  append(record(tag, level, args));
}

type Formatter = (id: string | undefined, level: Level, args: unknown[]) => string;

function safeFormat(args: unknown[]): string {
  try {
    return format(...args);
  } catch (err) {
    // util.format runs user code (inspect hooks, getters); a broken object must not break the caller.
    return `[unformattable log message: ${err instanceof Error ? err.message : typeof err}]`;
  }
}

/** Text: "<time>\t<id>\t<LEVEL>\t<message>", one line. */
const textRecord: Formatter = (id, level, args) => {
  const msg = safeFormat(args);
  let text = `${new Date().toISOString()}\t${id}\t${level}\t${msg}`;
  // One record per call: AWS turns embedded newlines into \r so a stack trace stays one CloudWatch event.
  if (text.includes('\n')) text = text.replace(/\n/g, '\r');
  return text + '\n';
};

/**
 * JSON, as RIC writes it: {"timestamp","level","requestId","message"}. One argument keeps its structure (an
 * object stays an object, an Error becomes {errorType, errorMessage, stackTrace}); several are formatted to one
 * string as in Text, and the first Error among them lends its errorType, errorMessage and stackTrace to the
 * record. JSON.stringify escapes newlines, so a record is always one line.
 */
const jsonRecord: Formatter = (id, level, args) => {
  const rec: Record<string, unknown> = { timestamp: new Date().toISOString(), level, requestId: id };
  if (args.length === 1) {
    rec['message'] = args[0];
    try {
      const text = JSON.stringify(rec, errorReplacer);
      if (text !== undefined) return text + '\n';
    } catch {
      // circular, BigInt, a throwing toJSON: formatted as text instead, as RIC does
    }
    rec['message'] = safeFormat(args);
    return JSON.stringify(rec) + '\n';
  }
  rec['message'] = safeFormat(args);
  try {
    const err = args.find((a): a is Error => a instanceof Error);
    if (err !== undefined) Object.assign(rec, errorFields(err));
  } catch {
    // a hostile Error (throwing getters): the formatted message is still there
  }
  return JSON.stringify(rec) + '\n';
};

let record: Formatter = textRecord;

function errorFields(err: Error): { errorType: string; errorMessage: string; stackTrace: string[] } {
  return {
    errorType: (err.constructor as { name?: string } | undefined)?.name ?? 'UnknownError',
    errorMessage: err.message,
    stackTrace: typeof err.stack === 'string' ? err.stack.split('\n') : [],
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  // Own enumerable properties (a code, a cause's fields) follow, as RIC's Object.assign keeps them.
  return value instanceof Error ? { ...errorFields(value), ...value } : value;
}

/** RIC's logError arguments: Text formats the error for the line; JSON passes it so its fields are kept. */
const textErrorArgs = (label: string, err: unknown): unknown[] => [label, toFormatted(err)];
const jsonErrorArgs = (label: string, err: unknown): unknown[] => [
  label,
  err instanceof Error ? err : toFormatted(err),
];
let errorArgs = textErrorArgs;

/** K > 1: raw output goes where a console line without its own id would. */
function appendRaw(s: string): void {
  const own = (als as AsyncLocalStorage<Slot>).getStore();
  appendTo(own !== undefined && !own.ended ? own : latest, s);
}

function appendTo(slot: Slot | null, s: string): void {
  if (slot === null) return append(s);
  slot.buf += s;
  if (slot.buf.length >= HIGH_WATER) flushSlot(slot);
  else armFlush();
}

function armFlush(): void {
  if (!flushArmed) {
    flushArmed = true;
    flushTimer?.refresh();
  }
}

function append(s: string): void {
  if (activeId === null) {
    if (buf.length + s.length > IDLE_CAP) {
      droppedBytes += s.length;
      return;
    }
    buf += s;
    return;
  }
  buf += s;
  if (buf.length >= HIGH_WATER) flush();
  else if (!flushArmed) {
    flushArmed = true;
    flushTimer?.refresh();
  }
}

function onFlushTimer(): void {
  flushArmed = false;
  if (activeId !== null && buf !== '') flush();
  for (const slot of slots) flushSlot(slot);
}

function flushSlot(slot: Slot): void {
  if (slot.buf === '') return;
  const data = slot.buf;
  slot.buf = '';
  try {
    sink(slot.id, data);
  } catch {
    // the channel is gone; the process is about to be replaced
  }
}

function flush(): void {
  const id = activeId;
  const data = takeLogs();
  if (id === null || data === undefined) return;
  try {
    sink(id, data);
  } catch {
    // the channel is gone; the process is about to be replaced
  }
}

type WriteCallback = (err?: Error | null) => void;

function patchWrite(stream: NodeJS.WriteStream): void {
  const write = function (chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
    try {
      if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      if (als === undefined) append(chunkToString(chunk, encoding));
      else appendRaw(chunkToString(chunk, encoding));
    } catch {
      // never let logging throw
    }
    if (typeof cb === 'function') process.nextTick(cb as WriteCallback, null);
    return true;
  };
  stream.write = write as NodeJS.WriteStream['write'];
}

function chunkToString(chunk: unknown, encoding: unknown): string {
  if (typeof chunk === 'string') {
    return typeof encoding === 'string' &&
      encoding !== 'utf8' &&
      encoding !== 'utf-8' &&
      Buffer.isEncoding(encoding)
      ? Buffer.from(chunk, encoding).toString('utf8')
      : chunk;
  }
  if (chunk instanceof Uint8Array) {
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  }
  return String(chunk);
}

// Runtime error types and their wire shape, mirroring aws-lambda-nodejs-runtime-interface-client (RIC) so that
// functions moved from AWS see the same errorType/errorMessage they are written (and tested) against.
import { types } from 'node:util';
import type { SerializedError } from '../protocol/messages.js';

// Each class's name lives on its prototype, as in RIC, so it is not an own property: the JSON in "Invoke Error"
// log lines then has exactly AWS's fields.
export class MalformedHandlerName extends Error {}

export class HandlerNotFound extends Error {}

/** Keeps the original's text ("Error: Cannot find module 'x'...") as the message, as AWS does. */
export class ImportModuleError extends Error {
  constructor(original: unknown) {
    super(safeString(original));
  }
}

export class UserCodeSyntaxError extends Error {
  constructor(original: SyntaxError) {
    super(safeString(original));
    // The original stack points at the offending file and line; ours would point at the loader.
    if (typeof original.stack === 'string') this.stack = original.stack;
  }
}

export class UnhandledPromiseRejection extends Error {
  constructor(reason: unknown) {
    const message = safeString(reason);
    super(message);
    // AWS's trace shows only runtime frames; the reason's frames are what a user can act on.
    const reasonStack = reason instanceof Error && typeof reason.stack === 'string' ? reason.stack : '';
    const frames = reasonStack.split('\n').filter((l) => l.startsWith('    at '));
    this.stack = [`${this.name}: ${message}`, ...frames].join('\n');
  }
}

export class NodeJsExit extends Error {
  constructor() {
    super(
      'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes',
    );
  }
}

export class JSONStringifyError extends Error {
  constructor() {
    super('Unable to stringify response body');
  }
}

// Names spelled out: bundling may rename the classes.
const names: Array<[{ prototype: Error }, string]> = [
  [MalformedHandlerName, 'MalformedHandlerName'],
  [HandlerNotFound, 'HandlerNotFound'],
  [ImportModuleError, 'ImportModuleError'],
  [UserCodeSyntaxError, 'UserCodeSyntaxError'],
  [UnhandledPromiseRejection, 'UnhandledPromiseRejection'],
  [NodeJsExit, 'NodeJsExit'],
  [JSONStringifyError, 'JSONStringifyError'],
];
for (const [cls, name] of names) cls.prototype.name = `Runtime.${name}`;

interface ErrorLike {
  name: string;
  message: string;
  stack: string;
}

function isErrorLike(v: unknown): v is ErrorLike {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o['name'] === 'string' &&
    o['name'] !== '' &&
    typeof o['message'] === 'string' &&
    o['message'] !== '' &&
    typeof o['stack'] === 'string' &&
    o['stack'] !== ''
  );
}

/**
 * RIC's toRapidResponse: errors by name/message/stack, anything else as {typeof, toString()} — so
 * `callback('boom')` is {errorType:'string', errorMessage:'boom'} and `context.fail()` is 'string'/'handled'.
 * Never throws: getters and toString() are user code.
 */
export function toRapidError(err: unknown): SerializedError {
  try {
    if (types.isNativeError(err) || isErrorLike(err)) {
      const e = err as Error;
      return {
        errorType: String(e.name),
        errorMessage: String(e.message),
        trace: typeof e.stack === 'string' ? e.stack.split('\n') : [],
      };
    }
    return { errorType: typeof err, errorMessage: String(err), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
      trace: [],
    };
  }
}

/** The "\t{json}" tail of AWS's "Invoke Error" / "Uncaught Exception" log lines (RIC's Errors.toFormatted). */
export function toFormatted(err: unknown): string {
  const e = err instanceof Error ? err : new Error(safeString(err));
  try {
    return '\t' + JSON.stringify(e, (_k, v: unknown) => withEnumerableProperties(v));
  } catch {
    return '\t' + JSON.stringify(toRapidError(e));
  }
}

function withEnumerableProperties(v: unknown): unknown {
  if (!(v instanceof Error)) return v;
  const ret: Record<string, unknown> = {
    errorType: v.name,
    errorMessage: v.message,
    code: (v as Error & { code?: unknown }).code,
  };
  Object.assign(ret, v);
  if (typeof v.stack === 'string') ret['stack'] = v.stack.split('\n');
  return ret;
}

export function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

// The deploy's warning for a handler that cannot answer what its caller expects: the sandbox that checked the
// load reports the handler's source (HandlerShape), and acorn reads it here. Only the cases Lambda's completion
// rules make certain are named, so that a warning is never noise:
//
// - a function that is not async returns a plain value (an object, a literal): Lambda ignores what a
//   non-async handler returns unless it is a promise, and the caller gets null;
// - a handler behind an HTTP route never returns a value and takes no callback: every request answers null.
//
// Anything the reading cannot be sure of (a callback parameter, rest parameters, `arguments`, context.succeed,
// a returned expression that may be a promise, a class, a generator, a bound or native function, source that
// does not parse) gives no warning.
import { parse, type Node } from 'acorn';
import type { HandlerShape } from '../protocol/messages.js';

interface Fn {
  type: 'FunctionExpression' | 'ArrowFunctionExpression' | 'FunctionDeclaration';
  async: boolean;
  generator: boolean;
  expression?: boolean;
  params: Node[];
  body: Node;
}

/** What reading the handler found: how it completes, as far as its own source tells. */
type Reading =
  | { kind: 'unknown' }
  /** Completes with a value or a promise, or through a callback: nothing to say. */
  | { kind: 'answers' }
  /** Returns only plain values (object, array, literal, template): fine if async, dropped if not. */
  | { kind: 'plain' }
  /** Never returns a value. */
  | { kind: 'nothing' };

/**
 * The warning for one function's handler, or undefined. `where` names it for the user ("src/api.js's handler").
 * `http`: the function serves HTTP routes, whose callers wait for the value.
 */
export function handlerWarning(shape: HandlerShape, where: string, http: boolean): string | undefined {
  if (shape.source === undefined || shape.params >= 3) return undefined;
  let reading: Reading;
  try {
    reading = read(shape.source);
  } catch {
    // Source nested deeper than the walk's stack: the sandbox's report is a hint, never a failure.
    return undefined;
  }
  if (reading.kind === 'plain' && !shape.async) {
    return (
      `${where} returns a value but is not async: Lambda ignores the return value of a handler that is ` +
      'neither async nor returns a promise, and every invocation answers null; declare it async, or take ' +
      '(event, context, callback) and call callback(null, result)'
    );
  }
  if (reading.kind === 'nothing' && http) {
    return shape.async
      ? `${where} is async but never returns a value: every HTTP request it serves answers null; ` +
          'return the response, e.g. { statusCode: 200, body: JSON.stringify(result) }'
      : `${where} neither returns a value nor takes a callback: every HTTP request it serves answers null; ` +
          'make it async and return the response, or take (event, context, callback)';
  }
  return undefined;
}

function read(source: string): Reading {
  const fn = functionOf(source);
  if (!fn || fn.generator || fn.params.length >= 3) return { kind: 'unknown' };
  if (fn.params.some((p) => p.type === 'RestElement')) return { kind: 'unknown' };
  if (fn.expression) return classify([fn.body]);
  const found = { returns: [] as Node[], escapes: false };
  walk(fn.body, found);
  if (found.escapes) return { kind: 'unknown' };
  // A body that ends by throwing means to fail; one with no statements is a placeholder.
  const body = (fn.body as Node & { body: Node[] }).body;
  const last = body[body.length - 1];
  if (!last || last.type === 'ThrowStatement') return { kind: 'unknown' };
  if (found.returns.length === 0) return { kind: 'nothing' };
  return classify(found.returns);
}

/** Parses Function.prototype.toString's text: a function or arrow expression, or a method of an object. */
function functionOf(source: string): Fn | undefined {
  // Native and bound functions read "function () { [native code] }"; a class is not callable as a handler.
  if (/\{\s*\[native code\]\s*\}$/.test(source) || /^class\b/.test(source)) return undefined;
  for (const text of [`(${source})`, `({${source}})`]) {
    for (const sourceType of ['script', 'module'] as const) {
      let program: Node;
      try {
        program = parse(text, { ecmaVersion: 'latest', sourceType });
      } catch {
        continue;
      }
      const stmt = (program as Node & { body: Node[] }).body;
      if (stmt.length !== 1 || stmt[0]!.type !== 'ExpressionStatement') continue;
      let expr = (stmt[0] as Node & { expression: Node }).expression;
      if (expr.type === 'ObjectExpression') {
        const props = (expr as Node & { properties: (Node & { value?: Node; kind?: string })[] }).properties;
        if (props.length !== 1 || props[0]!.kind !== 'init' || !props[0]!.value) continue;
        expr = props[0]!.value;
      }
      if (expr.type === 'FunctionExpression' || expr.type === 'ArrowFunctionExpression')
        return expr as Node & Fn;
    }
  }
  return undefined;
}

/**
 * Collects the function's own valued returns and notes anything that may complete it some other way:
 * `arguments`, or context.succeed / done / fail anywhere, nested functions included (a callback that calls
 * context.succeed completes the handler). A nested function's or class's returns are its own.
 */
function walk(node: unknown, found: { returns: Node[]; escapes: boolean }, nested = false): void {
  if (found.escapes || typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const n of node) walk(n, found, nested);
    return;
  }
  const n = node as Node & Record<string, unknown>;
  if (typeof n.type !== 'string') return;
  switch (n.type) {
    case 'FunctionExpression':
    case 'FunctionDeclaration':
    case 'ArrowFunctionExpression':
    case 'ClassExpression':
    case 'ClassDeclaration':
      nested = true;
      break;
    case 'ReturnStatement':
      if (n['argument'] && !nested) found.returns.push(n['argument'] as Node);
      break;
    case 'Identifier':
      if (n['name'] === 'arguments' && !nested) found.escapes = true;
      return;
    case 'MemberExpression':
      if (completes(n)) found.escapes = true;
      break;
    default:
      break;
  }
  for (const key of Object.keys(n)) {
    if (key === 'type' || key === 'start' || key === 'end') continue;
    walk(n[key], found, nested);
  }
}

function completes(member: Node & Record<string, unknown>): boolean {
  const prop = member['property'] as (Node & { name?: string; value?: unknown }) | undefined;
  const name = member['computed'] ? prop?.value : prop?.name;
  return name === 'succeed' || name === 'done' || name === 'fail';
}

/** Plain when every returned expression is a value that cannot be a promise. */
function classify(returns: Node[]): Reading {
  return returns.every(plain) ? { kind: 'plain' } : { kind: 'answers' };
}

function plain(node: Node): boolean {
  switch (node.type) {
    case 'ObjectExpression': {
      // An object with a `then` method is a thenable: the runtime waits for it.
      const props = (
        node as Node & { properties: (Node & { key?: Node & { name?: string; value?: unknown } })[] }
      ).properties;
      return !props.some(
        (p) => p.type === 'SpreadElement' || p.key?.name === 'then' || p.key?.value === 'then',
      );
    }
    case 'ArrayExpression':
    case 'Literal':
    case 'TemplateLiteral':
      return true;
    default:
      return false;
  }
}

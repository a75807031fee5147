// Lambda event filtering: the FilterCriteria of an event source mapping, whose patterns use the EventBridge event
// pattern language. Each filter is compiled once into a tree of closures, so matching a record walks only the
// fields its patterns name, with set look-ups for exact values. A record passes when any filter matches it; with
// no filters every record passes.
//
// Semantics, following the Lambda and EventBridge documentation and the event-ruler library behind them:
// - An object pattern matches when every field in it matches (AND). Its "$or" key takes two or more object
//   patterns, of which one must match the same object.
// - A leaf is an array of alternatives (OR): exact strings, numbers, booleans or null, and operator objects.
//   Types never cross: "5" does not match 5; numbers compare by value, so 5 matches 5.0.
// - When the event holds an array, a leaf matches when any of its elements does, and a nested pattern matches
//   when any one element matches all of it.
// - Value operators look only at leaf values (strings, numbers, booleans, null) that are present. A missing field
//   matches nothing but { "exists": false }; so does a field holding an object or an empty array, which has no
//   leaf value there. A field holding null exists.
// - A nested pattern needs an object (or an array of objects) there. A missing or null field counts as an object
//   with no fields; a string, number or boolean fails it, as Lambda drops a record whose data is not JSON when the
//   filter expects JSON.
import { BlockList, isIP } from 'node:net';

/** Lambda's default limit on filters per event source mapping (a quota increase allows up to 10). */
export const MAX_FILTERS = 5;
/** Lambda's limit on the length of one filter's Pattern string. */
export const MAX_PATTERN_LENGTH = 4096;

export interface CompileFiltersOptions {
  /** Most filters allowed; default MAX_FILTERS (5). */
  maxFilters?: number;
}

export interface EventFilter {
  /** How many filters were compiled. */
  readonly size: number;
  /** True when any filter matches the record, or when there are no filters. */
  matches(record: unknown): boolean;
}

/** A filter pattern Lambda would refuse, naming the filter (its index in Filters) and where in it the fault is. */
export class FilterPatternError extends Error {
  override readonly name = 'FilterPatternError';
  constructor(
    /** Index of the faulty filter in the list given to compileFilters. */
    readonly filterIndex: number,
    /** Where in the pattern, e.g. `detail.state[1]`; empty for the pattern as a whole. */
    readonly path: string,
    /** What is wrong and how to fix it. */
    readonly problem: string,
  ) {
    super(`FilterCriteria.Filters[${filterIndex}]${path ? ` at ${JSON.stringify(path)}` : ''}: ${problem}`);
  }
}

/**
 * Compiles the filter patterns of an event source mapping. Each entry is a Pattern: a JSON string, as in
 * `FilterCriteria.Filters[i].Pattern`, or the object it parses to. Throws FilterPatternError for the first
 * invalid pattern.
 */
export function compileFilters(
  patterns: readonly unknown[],
  options: CompileFiltersOptions = {},
): EventFilter {
  const maxFilters = options.maxFilters ?? MAX_FILTERS;
  if (patterns.length > maxFilters) {
    throw new FilterPatternError(
      maxFilters,
      '',
      `at most ${maxFilters} filters are allowed per event source mapping, got ${patterns.length}; ` +
        'merge some (alternatives in one leaf array, or "$or" between objects)',
    );
  }
  const compiled = patterns.map((pattern, index) => compilePattern(pattern, index));
  const size = compiled.length;
  const matches =
    size === 0
      ? () => true
      : size === 1
        ? compiled[0]!
        : (record: unknown) => {
            for (const m of compiled) if (m(record)) return true;
            return false;
          };
  return { size, matches };
}

/**
 * The record as SQS filter patterns see it: `body` parsed when it is a JSON object or array, so a pattern's
 * `body: { ... }` matches its fields; any other body (plain text, or a bare JSON scalar such as `42`) stays the
 * string it is, for `body: [ ... ]` leaf patterns. The record itself is not changed. Typed loosely (an SQS
 * record, `{ body: string; ... }`, or any record-like object) since a record without a string body is returned
 * as it is.
 */
export function sqsFilterView(record: { readonly body?: unknown }): unknown {
  const body = record.body;
  if (typeof body !== 'string') return record;
  const first = body.trimStart()[0];
  if (first !== '{' && first !== '[') return record;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return record;
  }
  return { ...record, body: parsed };
}

// ---- compilation -------------------------------------------------------------------------------------------

/** Matches the value found at a place in the record; undefined means the field is missing. */
type Node = (value: unknown) => boolean;
type Leaf = string | number | boolean | null;
type Test<T> = (value: T) => boolean;

const OPERATORS = [
  'prefix',
  'suffix',
  'equals-ignore-case',
  'wildcard',
  'anything-but',
  'numeric',
  'exists',
  'cidr',
] as const;
const OPERATOR_LIST = OPERATORS.join(', ');
const isOperatorName = (key: string) => (OPERATORS as readonly string[]).includes(key) || key === '$or';

/** Where compilation is, for error messages. */
class Ctx {
  constructor(
    readonly filterIndex: number,
    readonly path: string,
  ) {}
  key(name: string): Ctx {
    return new Ctx(this.filterIndex, this.path ? `${this.path}.${name}` : name);
  }
  index(i: number): Ctx {
    return new Ctx(this.filterIndex, `${this.path}[${i}]`);
  }
  fail(problem: string): never {
    throw new FilterPatternError(this.filterIndex, this.path, problem);
  }
}

function compilePattern(pattern: unknown, index: number): Node {
  const ctx: Ctx = new Ctx(index, '');
  let parsed: unknown = pattern;
  if (typeof pattern === 'string') {
    if (pattern.length > MAX_PATTERN_LENGTH) {
      ctx.fail(
        `the pattern is ${pattern.length} characters long; Lambda allows at most ${MAX_PATTERN_LENGTH}`,
      );
    }
    try {
      parsed = JSON.parse(pattern);
    } catch (err) {
      ctx.fail(
        `the pattern is not valid JSON (${(err as Error).message}); ` +
          'write it as a JSON object such as {"body": {"type": ["order"]}}',
      );
    }
  } else if (isPlainObject(pattern)) {
    let text: string;
    try {
      text = JSON.stringify(pattern);
    } catch (err) {
      ctx.fail(`the pattern cannot be written as JSON (${(err as Error).message})`);
    }
    if (text.length > MAX_PATTERN_LENGTH) {
      ctx.fail(
        `the pattern is ${text.length} characters long as JSON; Lambda allows at most ${MAX_PATTERN_LENGTH}`,
      );
    }
  }
  if (!isPlainObject(parsed)) {
    ctx.fail(
      `a pattern must be a JSON object of fields to match, such as {"body": {"type": ["order"]}}; got ${describe(parsed)}`,
    );
  }
  if (Object.keys(parsed).length === 1 && typeof parsed.Pattern === 'string') {
    ctx.fail('this is a Filter object; pass its Pattern string instead ({ Pattern: "..." } -> "...")');
  }
  return compileObject(parsed, ctx);
}

function compileObject(pattern: Record<string, unknown>, ctx: Ctx): Node {
  const keys = Object.keys(pattern);
  if (keys.length === 0) {
    ctx.fail('an empty object matches nothing; name at least one field, or remove it');
  }
  const fields: [string, Node][] = [];
  const ors: Node[][] = [];
  for (const key of keys) {
    const value = pattern[key];
    const at = ctx.key(key);
    if (key === '$or') {
      ors.push(compileOr(value, at));
    } else if (Array.isArray(value)) {
      fields.push([key, compileLeaf(value, at)]);
    } else if (isPlainObject(value)) {
      fields.push([key, compileObject(value, at)]);
    } else {
      const hint = isOperatorName(key)
        ? `; "${key}" is an operator, which goes inside the field's array: "field": [{ "${key}": ... }]`
        : `; write "${key}": [${JSON.stringify(value) ?? 'value'}] to match that value`;
      at.fail(
        `a field must hold an array of values to match or an object of nested fields, got ${describe(value)}${hint}`,
      );
    }
  }
  const matchObject = (obj: Record<string, unknown> | undefined): boolean => {
    for (const [key, node] of fields) {
      if (!node(obj !== undefined && Object.hasOwn(obj, key) ? obj[key] : undefined)) return false;
    }
    for (const alternatives of ors) {
      let any = false;
      for (const alt of alternatives) {
        if (alt(obj)) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
    return true;
  };
  const node: Node = (value) => {
    if (value === undefined || value === null) return matchObject(undefined);
    if (Array.isArray(value)) {
      if (value.length === 0) return matchObject(undefined);
      for (const element of value) if (node(element)) return true;
      return false;
    }
    return typeof value === 'object' ? matchObject(value as Record<string, unknown>) : false;
  };
  return node;
}

function compileOr(value: unknown, ctx: Ctx): Node[] {
  if (!Array.isArray(value) || value.length < 2) {
    ctx.fail(
      `"$or" takes an array of two or more object patterns, such as "$or": [{"a": [1]}, {"b": [2]}]; got ${describe(value)}`,
    );
  }
  return value.map((alt, i) => {
    const at: Ctx = ctx.index(i);
    if (!isPlainObject(alt))
      at.fail(`each "$or" alternative must be an object pattern, got ${describe(alt)}`);
    return compileObject(alt, at);
  });
}

function compileLeaf(values: readonly unknown[], ctx: Ctx): Node {
  if (values.length === 0) {
    ctx.fail('an empty array matches nothing; list at least one value, e.g. ["a"] or [{"exists": true}]');
  }
  const strings = new Set<string>();
  const numbers = new Set<number>();
  let matchTrue = false;
  let matchFalse = false;
  let matchNull = false;
  let existsTrue = false;
  let existsFalse = false;
  const stringTests: Test<string>[] = [];
  const numberTests: Test<number>[] = [];
  const anyTests: Test<Leaf>[] = [];
  values.forEach((v, i) => {
    const at = ctx.index(i);
    if (typeof v === 'string') strings.add(v);
    else if (typeof v === 'number') numbers.add(finite(v, at));
    else if (v === true) matchTrue = true;
    else if (v === false) matchFalse = true;
    else if (v === null) matchNull = true;
    else if (Array.isArray(v)) at.fail('arrays cannot nest inside a leaf; list the values in one array');
    else if (isPlainObject(v)) {
      const [op, operand] = singleOperator(v, at);
      const opAt = at.key(op);
      switch (op) {
        case 'exists':
          if (typeof operand !== 'boolean')
            opAt.fail(`"exists" takes true or false, got ${describe(operand)}`);
          if (operand) existsTrue = true;
          else existsFalse = true;
          break;
        case 'prefix':
        case 'suffix':
          stringTests.push(affixTest(op, operand, opAt));
          break;
        case 'equals-ignore-case': {
          const lower = stringOperand(op, operand, opAt).toLowerCase();
          stringTests.push((s) => s.toLowerCase() === lower);
          break;
        }
        case 'wildcard':
          stringTests.push(wildcardTest(stringOperand(op, operand, opAt), opAt));
          break;
        case 'numeric':
          numberTests.push(numericTest(operand, opAt));
          break;
        case 'cidr':
          stringTests.push(cidrTest(operand, opAt));
          break;
        case 'anything-but':
          anyTests.push(anythingButTest(operand, opAt));
          break;
      }
    } else {
      at.fail(`a leaf value must be a string, number, boolean, null or operator object, got ${describe(v)}`);
    }
  });

  const test = (v: unknown): boolean => {
    switch (typeof v) {
      case 'string':
        if (strings.has(v)) return true;
        for (const t of stringTests) if (t(v)) return true;
        break;
      case 'number':
        if (numbers.has(v)) return true;
        for (const t of numberTests) if (t(v)) return true;
        break;
      case 'boolean':
        if (v ? matchTrue : matchFalse) return true;
        break;
      case 'object':
        if (v !== null) return false;
        if (matchNull) return true;
        break;
      default:
        return false; // not a JSON value
    }
    for (const t of anyTests) if (t(v as Leaf)) return true;
    return false;
  };
  const isLeaf = (v: unknown): boolean =>
    v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
  /** Whether an array holds any leaf value, and whether one of them matches. */
  const scan = (arr: readonly unknown[]): 'match' | 'present' | 'absent' => {
    let present = false;
    for (const el of arr) {
      if (Array.isArray(el)) {
        const r = scan(el);
        if (r === 'match') return r;
        if (r === 'present') present = true;
      } else if (isLeaf(el)) {
        if (existsTrue || test(el)) return 'match';
        present = true;
      }
    }
    return present ? 'present' : 'absent';
  };
  return (value) => {
    if (Array.isArray(value)) {
      const r = scan(value);
      return r === 'match' || (r === 'absent' && existsFalse);
    }
    if (!isLeaf(value)) return existsFalse; // missing, or an object (not a leaf)
    return existsTrue || test(value);
  };
}

function singleOperator(v: Record<string, unknown>, ctx: Ctx): [(typeof OPERATORS)[number], unknown] {
  const keys = Object.keys(v);
  if (keys.length !== 1) {
    ctx.fail(
      keys.length === 0
        ? `an empty object is not an operator; use one of ${OPERATOR_LIST}`
        : `an operator object holds exactly one operator, got ${keys.map((k) => JSON.stringify(k)).join(', ')}; ` +
            'put each in its own array element (they are alternatives)',
    );
  }
  const op = keys[0]!;
  if (!(OPERATORS as readonly string[]).includes(op)) {
    const hint =
      op === '$or' ? '; "$or" goes in an object pattern, beside the fields, not in a leaf array' : '';
    ctx.fail(`unknown operator ${JSON.stringify(op)}; supported: ${OPERATOR_LIST}${hint}`);
  }
  return [op as (typeof OPERATORS)[number], v[op]];
}

function stringOperand(op: string, operand: unknown, ctx: Ctx): string {
  if (typeof operand !== 'string') ctx.fail(`"${op}" takes a string, got ${describe(operand)}`);
  return operand;
}

/** prefix / suffix, with a string or { "equals-ignore-case": string }. */
function affixTest(op: 'prefix' | 'suffix', operand: unknown, ctx: Ctx): Test<string> {
  if (isPlainObject(operand)) {
    const keys = Object.keys(operand);
    if (keys.length !== 1 || keys[0] !== 'equals-ignore-case') {
      ctx.fail(`"${op}" takes a string or {"equals-ignore-case": "..."}, got ${describe(operand)}`);
    }
    const lower = stringOperand(
      'equals-ignore-case',
      operand['equals-ignore-case'],
      ctx.key('equals-ignore-case'),
    );
    const lowered = lower.toLowerCase();
    return op === 'prefix'
      ? (s) => s.toLowerCase().startsWith(lowered)
      : (s) => s.toLowerCase().endsWith(lowered);
  }
  if (typeof operand !== 'string') {
    ctx.fail(`"${op}" takes a string or {"equals-ignore-case": "..."}, got ${describe(operand)}`);
  }
  return op === 'prefix' ? (s) => s.startsWith(operand) : (s) => s.endsWith(operand);
}

/** `*` matches any run of characters; `\*` is a literal star and `\\` a literal backslash. */
function wildcardTest(pattern: string, ctx: Ctx): Test<string> {
  const parts: string[] = [];
  let current = '';
  let lastWasStar = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next !== '*' && next !== '\\') {
        ctx.fail(
          'in a wildcard a backslash may only escape "*" or "\\"; write "\\\\" for a literal backslash',
        );
      }
      current += next;
      i++;
      lastWasStar = false;
    } else if (c === '*') {
      if (lastWasStar) ctx.fail('a wildcard cannot have consecutive "*"; one "*" already matches any run');
      parts.push(current);
      current = '';
      lastWasStar = true;
    } else {
      current += c;
      lastWasStar = false;
    }
  }
  parts.push(current);
  if (parts.length === 1) return (s) => s === current;
  const head = parts[0]!;
  const tail = parts[parts.length - 1]!;
  const middle = parts.slice(1, -1).filter((p) => p !== '');
  const fixed = head.length + tail.length;
  // Greedy leftmost placement of each middle part is exact for "*"-only globs, and linear in the string.
  return (s) => {
    if (s.length < fixed || !s.startsWith(head) || !s.endsWith(tail)) return false;
    let pos = head.length;
    const end = s.length - tail.length;
    for (const part of middle) {
      const at = s.indexOf(part, pos);
      if (at < 0 || at + part.length > end) return false;
      pos = at + part.length;
    }
    return true;
  };
}

const LOWER = new Set(['>', '>=']);
const UPPER = new Set(['<', '<=']);

function numericTest(operand: unknown, ctx: Ctx): Test<number> {
  const usage = 'e.g. ["=", 5], [">", 0], or [">", 0, "<=", 5]';
  if (!Array.isArray(operand) || (operand.length !== 2 && operand.length !== 4)) {
    ctx.fail(`"numeric" takes one comparison or a range, ${usage}; got ${describe(operand)}`);
  }
  const terms: [string, number][] = [];
  for (let i = 0; i < operand.length; i += 2) {
    const op: unknown = operand[i];
    const n: unknown = operand[i + 1];
    if (op !== '=' && !LOWER.has(op as string) && !UPPER.has(op as string)) {
      ctx.index(i).fail(`unknown numeric operator ${describe(op)}; use =, >, >=, < or <=`);
    }
    const nAt: Ctx = ctx.index(i + 1);
    if (typeof n !== 'number') nAt.fail(`a numeric bound must be a number, got ${describe(n)}`);
    terms.push([op as string, finite(n, nAt)]);
  }
  const [first, second] = terms as [[string, number], [string, number] | undefined];
  if (!second) {
    const [op, n] = first;
    if (op === '=') return (v) => v === n;
    if (op === '>') return (v) => v > n;
    if (op === '>=') return (v) => v >= n;
    if (op === '<') return (v) => v < n;
    return (v) => v <= n;
  }
  const [loOp, lo] = first;
  const [hiOp, hi] = second;
  if (!LOWER.has(loOp) || !UPPER.has(hiOp)) {
    ctx.fail(`a numeric range is a lower bound (> or >=) then an upper bound (< or <=), ${usage}`);
  }
  if (!(lo < hi))
    ctx.fail(`the numeric range is empty: its lower bound ${lo} must be below its upper bound ${hi}`);
  const loInc = loOp === '>=';
  const hiInc = hiOp === '<=';
  return (v) => (loInc ? v >= lo : v > lo) && (hiInc ? v <= hi : v < hi);
}

function cidrTest(operand: unknown, ctx: Ctx): Test<string> {
  const usage = 'an IPv4 or IPv6 block such as "10.0.0.0/24" or "2001:db8::/32"';
  if (typeof operand !== 'string') ctx.fail(`"cidr" takes ${usage}, got ${describe(operand)}`);
  const slash = operand.indexOf('/');
  const address = slash < 0 ? operand : operand.slice(0, slash);
  const family = isIP(address);
  const max = family === 6 ? 128 : 32;
  const bitsText = slash < 0 ? String(max) : operand.slice(slash + 1);
  const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
  if (family === 0 || !(bits <= max)) ctx.fail(`"cidr" takes ${usage}, got ${JSON.stringify(operand)}`);
  const block = new BlockList();
  block.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4');
  return (s) => {
    const f = isIP(s);
    return f !== 0 && block.check(s, f === 6 ? 'ipv6' : 'ipv4');
  };
}

/**
 * anything-but: a string, a number, a list of strings or of numbers, or one of prefix / suffix /
 * equals-ignore-case / wildcard (each with a string or a list of strings). It matches any present leaf value
 * that is not excluded, including values of another type (anything but "a" matches 5 and null).
 */
function anythingButTest(operand: unknown, ctx: Ctx): Test<Leaf> {
  const usage = 'a string, a number, a list of strings or of numbers, or {"prefix": "..."}';
  if (typeof operand === 'string') return (v) => v !== operand;
  if (typeof operand === 'number') {
    const n = finite(operand, ctx);
    return (v) => v !== n;
  }
  if (Array.isArray(operand)) {
    if (operand.length === 0) ctx.fail('"anything-but" needs at least one value to exclude');
    if (operand.every((x) => typeof x === 'string')) {
      const set = new Set<string>(operand);
      return (v) => typeof v !== 'string' || !set.has(v);
    }
    if (operand.every((x) => typeof x === 'number')) {
      const set = new Set<number>(operand.map((x, i) => finite(x, ctx.index(i))));
      return (v) => typeof v !== 'number' || !set.has(v);
    }
    ctx.fail(`an "anything-but" list must hold only strings or only numbers, got ${JSON.stringify(operand)}`);
  }
  if (isPlainObject(operand)) {
    const keys = Object.keys(operand);
    const inner = keys[0];
    if (
      keys.length !== 1 ||
      (inner !== 'prefix' && inner !== 'suffix' && inner !== 'equals-ignore-case' && inner !== 'wildcard')
    ) {
      ctx.fail(
        `"anything-but" takes ${usage}, {"suffix": ...}, {"equals-ignore-case": ...} or {"wildcard": ...}; ` +
          `got ${describe(operand)}`,
      );
    }
    const at = ctx.key(inner);
    const raw = operand[inner];
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0) at.fail(`"${inner}" needs at least one string`);
    const tests = list.map((x, i) => {
      const s = stringOperand(inner, x, Array.isArray(raw) ? at.index(i) : at);
      if (inner === 'prefix') return (v: string) => v.startsWith(s);
      if (inner === 'suffix') return (v: string) => v.endsWith(s);
      if (inner === 'wildcard') return wildcardTest(s, Array.isArray(raw) ? at.index(i) : at);
      const lower = s.toLowerCase();
      return (v: string) => v.toLowerCase() === lower;
    });
    return (v) => typeof v !== 'string' || !tests.some((t) => t(v));
  }
  ctx.fail(`"anything-but" takes ${usage}; got ${describe(operand)}`);
}

function finite(n: number, ctx: Ctx): number {
  if (!Number.isFinite(n)) ctx.fail(`numbers must be finite, got ${n}`);
  return n;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array ${truncate(JSON.stringify(v))}`;
  if (typeof v === 'object') return `an object ${truncate(JSON.stringify(v))}`;
  if (typeof v === 'string') return `the string ${truncate(JSON.stringify(v))}`;
  if (v === undefined) return 'nothing';
  return `${typeof v} ${String(v)}`;
}

function truncate(s: string | undefined): string {
  if (s === undefined) return '';
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

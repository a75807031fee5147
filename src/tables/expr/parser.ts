// Recursive-descent parsers for DynamoDB's condition (also filter and key condition), update and projection
// expressions, over the tokens of tokenizer.ts.
//
// Like DynamoDB, a parser first reads the whole expression: the first token that does not fit the grammar is a
// syntax error. Only an expression that parses is checked further (reserved words, undefined placeholders,
// function names and arities, operand types, overlapping paths); those errors are collected while parsing and
// the one DynamoDB reports first is thrown at the end. Every message is prefixed "Invalid <Kind>: ".
//
// Condition grammar (precedence NOT > AND > OR; comparisons, BETWEEN and IN bind tighter than all three):
//   condition  := or
//   or         := and ( OR and )*
//   and        := not ( AND not )*
//   not        := NOT not | primary
//   primary    := '(' condition ')' | operand comparator operand | operand BETWEEN operand AND operand
//               | operand IN '(' operand ( ',' operand )* ')' | function '(' operand ( ',' operand )* ')'
//   operand    := path | :value | function '(' operand ( ',' operand )* ')' | '(' operand ')'
//   path       := ( identifier | #name ) ( '.' ( identifier | #name ) | '[' digits ']' )*
//
// Update grammar:
//   update     := section+        (each of SET, REMOVE, ADD, DELETE at most once, in any order)
//   section    := SET path '=' value ( ',' path '=' value )* | REMOVE path ( ',' path )*
//               | ADD path :value ( ',' path :value )* | DELETE path :value ( ',' path :value )*
//   value      := operand ( ( '+' | '-' ) operand )? | '(' value ')'
//   operand    := path | :value | function '(' operand ( ',' operand )* ')' | '(' operand ')'
//
// Projection grammar:  projection := path ( ',' path )*

import type { AttributeValue } from '../types.js';
import { ATTRIBUTE_TYPE_NAMES, attributeType, compareValues, type AttributeTypeName } from '../values.js';
import {
  formatPath,
  type Comparator,
  type Condition,
  type DocumentPath,
  type Operand,
  type PathElement,
  type SetValue,
  type UpdateAst,
} from './ast.js';
import type { ExpressionContext } from './context.js';
import { DynamoValidationError } from './errors.js';
import { isReservedWord } from './reserved-words.js';
import { tokenize, type Token } from './tokenizer.js';

export type ExpressionKind =
  | 'ConditionExpression'
  | 'FilterExpression'
  | 'KeyConditionExpression'
  | 'UpdateExpression'
  | 'ProjectionExpression';

/** DynamoDB refuses an expression longer than this many bytes (UTF-8). */
export const MAX_EXPRESSION_BYTES = 4096;
/** DynamoDB refuses a condition with more operators (comparisons, functions, AND, OR, NOT) than this. */
export const MAX_OPERATORS = 300;
/** IN accepts at most this many operands, the left-hand one included. */
export const MAX_IN_OPERANDS = 100;

// The error categories, in the order DynamoDB reports them when an expression has several problems.
const CONDITION_ORDER = [
  'operators',
  'parens',
  'unknownFunction',
  'misusedFunction',
  'reserved',
  'condition',
];
// Within one primitive condition, these are reported in this order; the first condition with any wins.
const CONDITION_SCOPED = ['attrNameVal', 'operand', 'distinct', 'function'];
const UPDATE_ORDER = [
  'reserved',
  'unknownFunction',
  'misusedFunction',
  'section',
  'attrName',
  'attrVal',
  'pathOverlap',
  'pathConflict',
  'operand',
  'function',
];
const PROJECTION_ORDER = ['reserved', 'attrName', 'pathOverlap', 'pathConflict'];

const CONDITION_KEYWORDS = new Set(['AND', 'OR', 'NOT', 'BETWEEN', 'IN']);
const UPDATE_KEYWORDS = new Set(['SET', 'REMOVE', 'ADD', 'DELETE']);
const NO_KEYWORDS = new Set<string>();

const COMPARATORS = new Set<string>(['=', '<>', '<', '<=', '>', '>=']);
const ORDERED_TYPES = new Set<string>(['N', 'S', 'B']);
const CONDITION_FUNCTIONS = new Set([
  'attribute_exists',
  'attribute_not_exists',
  'attribute_type',
  'begins_with',
  'contains',
  'size',
]);
const UPDATE_FUNCTIONS = new Set(['if_not_exists', 'list_append']);
/** attribute_type's valid type names, in the order DynamoDB lists them in its error message. */
const TYPE_NAMES_FOR_MESSAGE = '{B,NULL,SS,BOOL,L,BS,N,NS,S,M}';
/** What DynamoDB names as attribute_type's operand type when its second operand is a path. */
const ANY_TYPE_FOR_MESSAGE = '{NS,SS,L,BS,N,M,B,BOOL,NULL,S}';

const UPDATE_TYPE_WORDS: Record<AttributeTypeName, string> = {
  S: 'STRING',
  N: 'NUMBER',
  B: 'BINARY',
  NULL: 'NULL',
  BOOL: 'BOOLEAN',
  L: 'LIST',
  M: 'MAP',
  SS: 'SS',
  NS: 'NS',
  BS: 'BS',
};

const PLACEHOLDER_VALUE: AttributeValue = { NULL: true };

/** Collects the semantic errors of one expression; the first of each category is kept. */
class Diagnostics {
  private readonly first = new Map<string, string>();
  private readonly scoped: { category: string; message: string }[] = [];

  record(category: string, message: string): void {
    if (CONDITION_SCOPED.includes(category)) {
      this.scoped.push({ category, message });
    } else if (!this.first.has(category)) {
      this.first.set(category, message);
    }
  }

  /** A mark to pass to endCondition for the errors of the primitive condition starting here. */
  mark(): number {
    return this.scoped.length;
  }

  /** Closes a primitive condition: its most important error, if any, becomes the condition error. */
  endCondition(mark: number): void {
    if (this.first.has('condition')) return;
    const mine = this.scoped.slice(mark);
    for (const category of CONDITION_SCOPED) {
      const found = mine.find((e) => e.category === category);
      if (found) {
        this.first.set('condition', found.message);
        return;
      }
    }
  }

  /** Errors recorded in a scoped category but outside any condition (update expressions use these). */
  flushScoped(): void {
    for (const e of this.scoped) if (!this.first.has(e.category)) this.first.set(e.category, e.message);
  }

  throwFirst(order: readonly string[], prefix: string): void {
    for (const category of order) {
      const message = this.first.get(category);
      if (message !== undefined) throw new DynamoValidationError(`${prefix}${message}`);
    }
  }
}

function incorrectOperandType(fn: string, type: string): string {
  return `Incorrect operand type for operator or function; operator or function: ${fn}, operand type: ${type}`;
}

function wrongOperandCount(fn: string, count: number): string {
  return `Incorrect number of operands for operator or function; operator or function: ${fn}, number of operands: ${count}`;
}

function requiresPath(fn: string): string {
  return `Operator or function requires a document path; operator or function: ${fn}`;
}

function misused(fn: string): string {
  return `The function is not allowed to be used this way in an expression; function: ${fn}`;
}

function pathsEqual(a: DocumentPath, b: DocumentPath): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

function describeValue(value: AttributeValue): string {
  const type = attributeType(value);
  const raw = (value as Record<string, unknown>)[type];
  return `AttributeValue: {${type}:${Array.isArray(raw) ? `[${raw.join(', ')}]` : String(raw)}}`;
}

/** Token access, syntax errors and document paths: what all three parsers share. */
class ParserBase {
  protected pos = 0;
  protected readonly tokens: Token[];
  protected readonly diagnostics = new Diagnostics();
  protected readonly prefix: string;

  constructor(
    protected readonly source: string,
    protected readonly kind: ExpressionKind,
    protected readonly context: ExpressionContext,
    private readonly keywords: ReadonlySet<string>,
    /** The categories undefined #names and :values are recorded under. */
    private readonly nameCategory: string,
    private readonly valueCategory: string,
  ) {
    this.prefix = `Invalid ${kind}: `;
    this.tokens = tokenize(source);
  }

  protected peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)] as Token;
  }

  protected advance(): Token {
    const token = this.peek();
    if (this.pos < this.tokens.length - 1) this.pos++;
    return token;
  }

  protected atEnd(): boolean {
    return this.peek().type === 'eof';
  }

  protected isPunct(text: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.type === 'punct' && t.text === text;
  }

  protected isKeywordToken(token: Token): boolean {
    return token.type === 'identifier' && this.keywords.has(token.text.toUpperCase());
  }

  protected isKeyword(word: string): boolean {
    const t = this.peek();
    return t.type === 'identifier' && t.text.toUpperCase() === word;
  }

  protected expectPunct(text: string): Token {
    if (!this.isPunct(text)) this.syntaxError();
    return this.advance();
  }

  protected expectEnd(): void {
    if (!this.atEnd()) this.syntaxError();
  }

  /** DynamoDB's syntax error: the offending token and the source from the token before it to the one after. */
  protected syntaxError(token: Token = this.peek()): never {
    const index = this.tokens.indexOf(token);
    const prev = index > 0 ? this.tokens[index - 1] : undefined;
    const next = this.tokens[index + 1];
    const from = prev ?? token;
    const to = next && next.type !== 'eof' ? next : token.type !== 'eof' ? token : (prev ?? token);
    const near = this.source.slice(from.start, to.end);
    throw new DynamoValidationError(`${this.prefix}Syntax error; token: "${token.text}", near: "${near}"`);
  }

  protected recordError(category: string, message: string): void {
    this.diagnostics.record(category, message);
  }

  /** One name of a document path: a bare identifier (not a reserved word) or a #placeholder. */
  protected parsePathName(): string {
    const t = this.peek();
    if (t.type === 'identifier' && !this.isKeywordToken(t)) {
      this.advance();
      if (isReservedWord(t.text)) {
        this.recordError('reserved', `Attribute name is a reserved keyword; reserved keyword: ${t.text}`);
      }
      return t.text;
    }
    if (t.type === 'name') {
      this.advance();
      const name = this.context.lookupName(t.text);
      if (name === undefined) {
        this.recordError(
          this.nameCategory,
          `An expression attribute name used in the document path is not defined; attribute name: ${t.text}`,
        );
        return t.text;
      }
      return name;
    }
    this.syntaxError(t);
  }

  protected parsePath(): DocumentPath {
    const path: PathElement[] = [this.parsePathName()];
    for (;;) {
      if (this.isPunct('.')) {
        this.advance();
        path.push(this.parsePathName());
      } else if (this.isPunct('[')) {
        this.advance();
        const t = this.peek();
        if (t.type !== 'number') this.syntaxError(t);
        this.advance();
        this.expectPunct(']');
        path.push(Number(t.text));
      } else {
        return path;
      }
    }
  }

  /** A :placeholder's value; an undefined one is recorded and stands in as NULL so parsing can go on. */
  protected resolveValue(token: Token): AttributeValue {
    const value = this.context.lookupValue(token.text);
    if (value === undefined) {
      this.recordError(
        this.valueCategory,
        `An expression attribute value used in expression is not defined; attribute value: ${token.text}`,
      );
      return PLACEHOLDER_VALUE;
    }
    return value;
  }

  /** Records overlapping or conflicting paths among `paths`, in order (update and projection expressions). */
  protected checkPathSet(paths: readonly DocumentPath[]): void {
    for (let j = 1; j < paths.length; j++) {
      for (let i = 0; i < j; i++) {
        const one = paths[i] as DocumentPath;
        const two = paths[j] as DocumentPath;
        const n = Math.min(one.length, two.length);
        let k = 0;
        while (k < n && one[k] === two[k]) k++;
        if (k === n) {
          this.recordError(
            'pathOverlap',
            `Two document paths overlap with each other; must remove or rewrite one of these paths; path one: ${formatPath(one)}, path two: ${formatPath(two)}`,
          );
        } else if (typeof one[k] !== typeof two[k]) {
          this.recordError(
            'pathConflict',
            `Two document paths conflict with each other; must remove or rewrite one of these paths; path one: ${formatPath(one)}, path two: ${formatPath(two)}`,
          );
        }
      }
    }
  }
}

// -----------------------------------------------------------------------------------------------------------
// Conditions

/** An operand as parsed, before it is known where it is used. */
type Term =
  | { readonly t: 'path'; readonly path: DocumentPath; parens: number; readonly mark: number }
  | {
      readonly t: 'value';
      readonly value: AttributeValue;
      readonly ref: string;
      parens: number;
      readonly mark: number;
    }
  | {
      readonly t: 'call';
      readonly name: string;
      readonly args: readonly Term[];
      parens: number;
      readonly mark: number;
    };

/** An operand not (yet) followed by a comparator, while it is unclear what a parenthesis encloses. */
interface Bare {
  readonly bare: Term;
}

function isBare(x: Condition | Bare): x is Bare {
  return 'bare' in x;
}

const PLACEHOLDER_CONDITION: Condition = { kind: 'attribute_exists', path: ['?'] };

class ConditionParser extends ParserBase {
  private operators = 0;
  private readonly parenthesized = new WeakSet<Condition>();

  constructor(source: string, kind: ExpressionKind, context: ExpressionContext) {
    super(source, kind, context, CONDITION_KEYWORDS, 'attrNameVal', 'attrNameVal');
  }

  parse(): Condition {
    const condition = this.parseOr(false) as Condition;
    this.expectEnd();
    if (this.operators > MAX_OPERATORS) {
      this.recordError(
        'operators',
        `The expression contains too many operators; operator count: ${this.operators}`,
      );
    }
    this.diagnostics.throwFirst(CONDITION_ORDER, this.prefix);
    return condition;
  }

  private parseOr(allowBare: boolean): Condition | Bare {
    let left = this.parseAnd(allowBare);
    if (isBare(left)) {
      if (!this.isKeyword('OR')) return left;
      left = this.bareToCondition(left);
    }
    while (this.isKeyword('OR')) {
      this.advance();
      this.operators++;
      const right = this.parseAnd(false) as Condition;
      left = { kind: 'or', left, right };
    }
    return left;
  }

  private parseAnd(allowBare: boolean): Condition | Bare {
    let left = this.parseNot(allowBare);
    if (isBare(left)) {
      if (!this.isKeyword('AND')) return left;
      left = this.bareToCondition(left);
    }
    while (this.isKeyword('AND')) {
      this.advance();
      this.operators++;
      const right = this.parseNot(false) as Condition;
      left = { kind: 'and', left, right };
    }
    return left;
  }

  private parseNot(allowBare: boolean): Condition | Bare {
    if (this.isKeyword('NOT')) {
      this.advance();
      this.operators++;
      return { kind: 'not', condition: this.parseNot(false) as Condition };
    }
    return this.parsePrimary(allowBare);
  }

  private parsePrimary(allowBare: boolean): Condition | Bare {
    if (this.isPunct('(')) {
      this.advance();
      const inner = this.parseOr(true);
      this.expectPunct(')');
      if (isBare(inner)) {
        const term = inner.bare;
        term.parens++;
        if (term.parens > 1) this.redundantParens();
        return this.continueComparison(term, allowBare);
      }
      if (this.parenthesized.has(inner)) this.redundantParens();
      this.parenthesized.add(inner);
      return inner;
    }
    return this.continueComparison(this.parseTerm(), allowBare);
  }

  private redundantParens(): void {
    this.recordError('parens', 'The expression has redundant parentheses;');
  }

  /** After an operand: a comparison, BETWEEN or IN; or the operand alone (a function call, or undecided). */
  private continueComparison(left: Term, allowBare: boolean): Condition | Bare {
    const t = this.peek();
    if (t.type === 'punct' && COMPARATORS.has(t.text)) {
      this.advance();
      this.operators++;
      const right = this.parseTerm();
      return this.buildComparison(t.text as Comparator, left, right);
    }
    if (this.isKeyword('BETWEEN')) {
      this.advance();
      this.operators++;
      const lower = this.parseTerm();
      if (!this.isKeyword('AND')) this.syntaxError();
      this.advance();
      const upper = this.parseTerm();
      return this.buildBetween(left, lower, upper);
    }
    if (this.isKeyword('IN')) {
      this.advance();
      this.operators++;
      this.expectPunct('(');
      const list = [this.parseTerm()];
      while (this.isPunct(',')) {
        this.advance();
        list.push(this.parseTerm());
      }
      this.expectPunct(')');
      return this.buildIn(left, list);
    }
    if (allowBare) return { bare: left };
    if (left.t === 'call') return this.callToCondition(left);
    this.syntaxError(t);
  }

  private bareToCondition(bare: Bare): Condition {
    if (bare.bare.t === 'call') return this.callToCondition(bare.bare);
    this.syntaxError();
  }

  private parseTerm(): Term {
    const mark = this.diagnostics.mark();
    const t = this.peek();
    if (t.type === 'punct' && t.text === '(') {
      this.advance();
      const inner = this.parseTerm();
      this.expectPunct(')');
      inner.parens++;
      if (inner.parens > 1) this.redundantParens();
      return inner;
    }
    if (t.type === 'value') {
      this.advance();
      return { t: 'value', value: this.resolveValue(t), ref: t.text, parens: 0, mark };
    }
    if (t.type === 'identifier' && !this.isKeywordToken(t) && this.isPunct('(', 1)) {
      this.advance();
      this.advance();
      this.operators++;
      const args = [this.parseTerm()];
      while (this.isPunct(',')) {
        this.advance();
        args.push(this.parseTerm());
      }
      this.expectPunct(')');
      return { t: 'call', name: t.text, args, parens: 0, mark };
    }
    return { t: 'path', path: this.parsePath(), parens: 0, mark };
  }

  /** The type DynamoDB knows an operand has before reading the item: a value's, or N for size(). */
  private immediateType(term: Term): AttributeTypeName | undefined {
    if (term.t === 'value') return attributeType(term.value);
    if (term.t === 'call' && term.name === 'size') return 'N';
    return undefined;
  }

  /** Records the error for a function call used as a value (only size() may be). */
  private checkCallAsOperand(term: Term): void {
    if (term.t !== 'call' || term.name === 'size') return;
    if (CONDITION_FUNCTIONS.has(term.name)) {
      this.recordError('misusedFunction', misused(term.name));
    } else {
      this.unknownFunction(term.name);
    }
  }

  private unknownFunction(name: string): void {
    this.recordError(
      'unknownFunction',
      UPDATE_FUNCTIONS.has(name)
        ? `The function is not allowed in a condition expression; function: ${name}`
        : `Invalid function name; function: ${name}`,
    );
  }

  private toOperand(term: Term): Operand {
    if (term.t === 'path') return { kind: 'path', path: term.path };
    if (term.t === 'value') return { kind: 'value', value: term.value, ref: term.ref };
    if (term.name !== 'size') return { kind: 'value', value: PLACEHOLDER_VALUE };
    term.args.forEach((a) => this.checkCallAsOperand(a));
    if (term.args.length !== 1) this.recordError('operand', wrongOperandCount('size', term.args.length));
    const arg = term.args[0] as Term;
    const type = this.immediateType(arg);
    if (type === 'N' || type === 'BOOL' || type === 'NULL') {
      this.recordError('function', incorrectOperandType('size', type));
    }
    return { kind: 'size', operand: this.toOperand(arg) };
  }

  private checkDistinct(name: string, first: Term, rest: readonly Term[]): void {
    if (first.t !== 'path') return;
    for (const other of rest) {
      if (other.t === 'path' && pathsEqual(first.path, other.path)) {
        this.recordError(
          'distinct',
          `The first operand must be distinct from the remaining operands for this operator or function; operator: ${name}, first operand: ${formatPath(first.path)}`,
        );
        return;
      }
    }
  }

  private buildComparison(op: Comparator, left: Term, right: Term): Condition {
    this.checkCallAsOperand(left);
    this.checkCallAsOperand(right);
    const l = this.toOperand(left);
    const r = this.toOperand(right);
    this.checkDistinct(op, left, [right]);
    if (op !== '=' && op !== '<>') {
      for (const term of [left, right]) {
        const type = this.immediateType(term);
        if (type && !ORDERED_TYPES.has(type)) this.recordError('function', incorrectOperandType(op, type));
      }
    }
    this.diagnostics.endCondition(left.mark);
    return { kind: 'compare', op, left: l, right: r };
  }

  private buildBetween(operand: Term, lower: Term, upper: Term): Condition {
    for (const term of [operand, lower, upper]) this.checkCallAsOperand(term);
    const result: Condition = {
      kind: 'between',
      operand: this.toOperand(operand),
      lower: this.toOperand(lower),
      upper: this.toOperand(upper),
    };
    for (const term of [operand, lower, upper]) {
      const type = this.immediateType(term);
      if (type && !ORDERED_TYPES.has(type))
        this.recordError('function', incorrectOperandType('BETWEEN', type));
    }
    if (lower.t === 'value' && upper.t === 'value') {
      const lt = attributeType(lower.value);
      const ut = attributeType(upper.value);
      const bounds = `lower bound operand: ${describeValue(lower.value)}, upper bound operand: ${describeValue(upper.value)}`;
      if (lt !== ut) {
        this.recordError(
          'function',
          `The BETWEEN operator requires same data type for lower and upper bounds; ${bounds}`,
        );
      } else if (ORDERED_TYPES.has(lt) && (compareValues(lower.value, upper.value) ?? 0) > 0) {
        this.recordError(
          'function',
          `The BETWEEN operator requires upper bound to be greater than or equal to lower bound; ${bounds}`,
        );
      }
    }
    this.diagnostics.endCondition(operand.mark);
    return result;
  }

  private buildIn(operand: Term, list: readonly Term[]): Condition {
    this.checkCallAsOperand(operand);
    list.forEach((t) => this.checkCallAsOperand(t));
    const count = list.length + 1;
    if (count > MAX_IN_OPERANDS) {
      this.recordError(
        'operand',
        `The IN operator is provided with too many operands; number of operands: ${count}`,
      );
    }
    const result: Condition = {
      kind: 'in',
      operand: this.toOperand(operand),
      list: list.map((t) => this.toOperand(t)),
    };
    this.diagnostics.endCondition(operand.mark);
    return result;
  }

  /** A function call used as a condition: one of the boolean functions. */
  private callToCondition(call: Extract<Term, { t: 'call' }>): Condition {
    const { name, args } = call;
    if (name === 'size') {
      this.recordError('misusedFunction', misused(name));
      return PLACEHOLDER_CONDITION;
    }
    if (!CONDITION_FUNCTIONS.has(name)) {
      this.unknownFunction(name);
      return PLACEHOLDER_CONDITION;
    }
    args.forEach((a) => this.checkCallAsOperand(a));
    const arity = name === 'attribute_exists' || name === 'attribute_not_exists' ? 1 : 2;
    let result: Condition = PLACEHOLDER_CONDITION;
    if (args.length !== arity) {
      this.recordError('operand', wrongOperandCount(name, args.length));
    } else {
      if (arity === 2) this.checkDistinct(name, args[0] as Term, [args[1] as Term]);
      result = this.buildFunction(name, args);
    }
    this.diagnostics.endCondition(call.mark);
    return result;
  }

  private buildFunction(name: string, args: readonly Term[]): Condition {
    const first = args[0] as Term;
    const second = args[1] as Term;
    switch (name) {
      case 'attribute_exists':
      case 'attribute_not_exists':
        if (first.t !== 'path') {
          this.recordError('function', requiresPath(name));
          return PLACEHOLDER_CONDITION;
        }
        return { kind: name, path: first.path };
      case 'attribute_type': {
        const type = this.immediateType(second);
        if (type !== 'S' || second.t !== 'value') {
          this.recordError('function', incorrectOperandType(name, type ?? ANY_TYPE_FOR_MESSAGE));
          return PLACEHOLDER_CONDITION;
        }
        const typeName = (second.value as { S: string }).S;
        if (!(ATTRIBUTE_TYPE_NAMES as readonly string[]).includes(typeName)) {
          this.recordError(
            'function',
            `Invalid attribute type name found; type: ${typeName}, valid types: ${TYPE_NAMES_FOR_MESSAGE}`,
          );
          return PLACEHOLDER_CONDITION;
        }
        return {
          kind: 'attribute_type',
          operand: this.toOperand(first),
          type: typeName as AttributeTypeName,
        };
      }
      case 'begins_with':
        for (const term of args) {
          const type = this.immediateType(term);
          if (type && type !== 'S' && type !== 'B') {
            this.recordError('function', incorrectOperandType(name, type));
            return PLACEHOLDER_CONDITION;
          }
        }
        return { kind: 'begins_with', operand: this.toOperand(first), prefix: this.toOperand(second) };
      default:
        return { kind: 'contains', operand: this.toOperand(first), value: this.toOperand(second) };
    }
  }
}

// -----------------------------------------------------------------------------------------------------------
// Updates

class UpdateParser extends ParserBase {
  constructor(source: string, context: ExpressionContext) {
    super(source, 'UpdateExpression', context, UPDATE_KEYWORDS, 'attrName', 'attrVal');
  }

  parse(): UpdateAst {
    const set: { path: DocumentPath; value: SetValue }[] = [];
    const remove: DocumentPath[] = [];
    const add: { path: DocumentPath; value: AttributeValue }[] = [];
    const del: { path: DocumentPath; value: AttributeValue }[] = [];
    const paths: DocumentPath[] = [];
    const seen = new Set<string>();
    do {
      const t = this.peek();
      if (!this.isKeywordToken(t)) this.syntaxError(t);
      this.advance();
      const section = t.text.toUpperCase();
      if (seen.has(section)) {
        this.recordError(
          'section',
          `The "${section}" section can only be used once in an update expression;`,
        );
      }
      seen.add(section);
      for (;;) {
        const path = this.parsePath();
        paths.push(path);
        if (section === 'SET') {
          this.expectPunct('=');
          set.push({ path, value: this.parseSetValue() });
        } else if (section === 'REMOVE') {
          remove.push(path);
        } else {
          const v = this.peek();
          if (v.type !== 'value') this.syntaxError(v);
          this.advance();
          const value = this.resolveValue(v);
          this.checkAddDeleteOperand(section, value, v);
          (section === 'ADD' ? add : del).push({ path, value });
        }
        if (!this.isPunct(',')) break;
        this.advance();
      }
    } while (!this.atEnd());
    this.checkPathSet(paths);
    this.diagnostics.flushScoped();
    this.diagnostics.throwFirst(UPDATE_ORDER, this.prefix);
    return { set, remove, add, delete: del };
  }

  private checkAddDeleteOperand(section: string, value: AttributeValue, token: Token): void {
    if (this.context.lookupValue(token.text) === undefined) return;
    const type = attributeType(value);
    const allowed = type === 'SS' || type === 'NS' || type === 'BS' || (section === 'ADD' && type === 'N');
    if (!allowed) {
      this.recordError(
        'operand',
        `Incorrect operand type for operator or function; operator: ${section}, operand type: ${UPDATE_TYPE_WORDS[type]}`,
      );
    }
  }

  private parseSetValue(): SetValue {
    if (this.isPunct('(')) {
      // Either a parenthesized whole value, or a parenthesized first operand of + or -.
      this.advance();
      const inner = this.parseSetValueInner();
      this.expectPunct(')');
      if (inner.kind === 'plus' || inner.kind === 'minus' || !(this.isPunct('+') || this.isPunct('-'))) {
        return inner;
      }
      return this.parseArithmetic(inner);
    }
    return this.parseSetValueInner();
  }

  private parseSetValueInner(): SetValue {
    const left = this.parseOperand();
    if (this.isPunct('+') || this.isPunct('-')) return this.parseArithmetic(left);
    return left;
  }

  private parseArithmetic(left: Operand): SetValue {
    const op = this.advance().text;
    const right = this.parseOperand();
    for (const operand of [left, right]) {
      if (operand.kind === 'value') {
        const type = attributeType(operand.value);
        if (type !== 'N') this.recordError('function', incorrectOperandType(op, type));
      }
    }
    return op === '+' ? { kind: 'plus', left, right } : { kind: 'minus', left, right };
  }

  private parseOperand(): Operand {
    const t = this.peek();
    if (t.type === 'punct' && t.text === '(') {
      this.advance();
      const inner = this.parseOperand();
      this.expectPunct(')');
      return inner;
    }
    if (t.type === 'value') {
      this.advance();
      return { kind: 'value', value: this.resolveValue(t), ref: t.text };
    }
    if (t.type === 'identifier' && !this.isKeywordToken(t) && this.isPunct('(', 1)) {
      this.advance();
      this.advance();
      const args = [this.parseOperand()];
      while (this.isPunct(',')) {
        this.advance();
        args.push(this.parseOperand());
      }
      this.expectPunct(')');
      return this.buildFunction(t.text, args);
    }
    return { kind: 'path', path: this.parsePath() };
  }

  private buildFunction(name: string, args: readonly Operand[]): Operand {
    const placeholder: Operand = { kind: 'value', value: PLACEHOLDER_VALUE };
    if (!UPDATE_FUNCTIONS.has(name)) {
      this.recordError(
        'unknownFunction',
        CONDITION_FUNCTIONS.has(name)
          ? `The function is not allowed in an update expression; function: ${name}`
          : `Invalid function name; function: ${name}`,
      );
      return placeholder;
    }
    if (args.length !== 2) {
      this.recordError('function', wrongOperandCount(name, args.length));
      return placeholder;
    }
    const [first, second] = args as [Operand, Operand];
    if (name === 'if_not_exists') {
      if (first.kind !== 'path') {
        this.recordError('function', requiresPath(name));
        return placeholder;
      }
      return { kind: 'if_not_exists', path: first.path, fallback: second };
    }
    for (const operand of args) {
      if (operand.kind === 'list_append') this.recordError('misusedFunction', misused(name));
      if (operand.kind === 'value') {
        const type = attributeType(operand.value);
        if (type !== 'L') this.recordError('function', incorrectOperandType(name, type));
      }
    }
    return { kind: 'list_append', left: first, right: second };
  }
}

// -----------------------------------------------------------------------------------------------------------
// Projections

class ProjectionParser extends ParserBase {
  constructor(source: string, context: ExpressionContext) {
    super(source, 'ProjectionExpression', context, NO_KEYWORDS, 'attrName', 'attrName');
  }

  parse(): DocumentPath[] {
    const paths = [this.parsePath()];
    while (this.isPunct(',')) {
      this.advance();
      paths.push(this.parsePath());
    }
    this.expectEnd();
    this.checkPathSet(paths);
    this.diagnostics.throwFirst(PROJECTION_ORDER, this.prefix);
    return paths;
  }
}

// -----------------------------------------------------------------------------------------------------------

function checkSource(source: string, kind: ExpressionKind): void {
  if (source.trim() === '')
    throw new DynamoValidationError(`Invalid ${kind}: The expression can not be empty;`);
  const bytes = Buffer.byteLength(source, 'utf8');
  if (bytes > MAX_EXPRESSION_BYTES) {
    throw new DynamoValidationError(
      `Invalid ${kind}: Expression size has exceeded the maximum allowed size; expression size: ${bytes}`,
    );
  }
}

/** Parses a ConditionExpression, FilterExpression or (before its key checks) a KeyConditionExpression. */
export function parseConditionExpression(
  source: string,
  context: ExpressionContext,
  kind: 'ConditionExpression' | 'FilterExpression' | 'KeyConditionExpression' = 'ConditionExpression',
): Condition {
  checkSource(source, kind);
  return new ConditionParser(source, kind, context).parse();
}

export function parseUpdateExpression(source: string, context: ExpressionContext): UpdateAst {
  checkSource(source, 'UpdateExpression');
  return new UpdateParser(source, context).parse();
}

export function parseProjectionExpression(source: string, context: ExpressionContext): DocumentPath[] {
  checkSource(source, 'ProjectionExpression');
  return new ProjectionParser(source, context).parse();
}

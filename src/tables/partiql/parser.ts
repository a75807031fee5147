// A recursive-descent parser for DynamoDB's PartiQL subset, over the tokens of tokenizer.ts. It produces the
// statement with its parameters already substituted, and WHERE and SET in the expression engine's shapes.
//
// Grammar (keywords case-insensitive; a name is a bare word or a "double-quoted" identifier):
//   statement  := select | insert | update | delete
//   select     := SELECT ( '*' | path ( ',' path )* ) FROM name [ '.' name ] [ WHERE cond ]
//                 [ ORDER BY path [ ASC | DESC ] ]
//   insert     := INSERT INTO name VALUE ( map | '?' )
//   update     := UPDATE name ( SET assign ( ',' assign )* | REMOVE path ( ',' path )* )+ WHERE cond
//                 [ RETURNING ( ALL | MODIFIED ) ( OLD | NEW ) '*' ]
//   delete     := DELETE FROM name WHERE cond [ RETURNING ALL OLD '*' ]
//   cond       := and ( OR and )*        and := not ( AND not )*        not := NOT not | primary
//   primary    := '(' cond ')' | function '(' args ')' | operand comparator operand
//               | operand [ NOT ] BETWEEN operand AND operand | operand [ NOT ] IN ( '(' | '[' ) operands
//               | operand IS [ NOT ] ( MISSING | NULL )
//   operand    := '?' | literal | SIZE '(' operand ')' | path
//   literal    := 'string' | [ '-' ] number | TRUE | FALSE | NULL | '<<' values '>>' | '[' values ']'
//               | '{' 'key' ':' value ( ',' … )* '}'
//   path       := name ( '.' name | '[' digits ']' | '[' 'key' ']' )*
//   assign     := path '=' term [ ( '+' | '-' ) term ]
//   term       := LIST_APPEND '(' term ',' term ')' | IF_NOT_EXISTS '(' path ',' term ')'
//               | SET_ADD '(' path ',' value ')' | SET_DELETE '(' path ',' value ')' | operand

import type {
  AddAction,
  Comparator,
  Condition,
  DeleteAction,
  DocumentPath,
  Operand,
  PathElement,
  SetAction,
  SetValue,
  UpdateAst,
} from '../expr/ast.js';
import { formatPath } from '../expr/ast.js';
import type { AttributeValue } from '../types.js';
import { ATTRIBUTE_TYPE_NAMES, parseNumber, setOwn, type AttributeTypeName } from '../values.js';
import type { Returning, Statement } from './ast.js';
import { invalid, syntaxError } from './errors.js';
import { tokenize, type Token } from './tokenizer.js';

/** Words that end a path or a clause, so they cannot be bare attribute names (quote them: "value"). */
const KEYWORDS = new Set([
  'SELECT',
  'FROM',
  'WHERE',
  'AND',
  'OR',
  'NOT',
  'IN',
  'BETWEEN',
  'IS',
  'MISSING',
  'NULL',
  'TRUE',
  'FALSE',
  'INSERT',
  'INTO',
  'VALUE',
  'UPDATE',
  'SET',
  'REMOVE',
  'DELETE',
  'RETURNING',
  'ORDER',
  'BY',
  'ASC',
  'DESC',
]);

const COMPARATORS: Record<string, Comparator> = {
  '=': '=',
  '<>': '<>',
  '!=': '<>',
  '<': '<',
  '<=': '<=',
  '>': '>',
  '>=': '>=',
};

/** Parses a statement; `parameters` are the request's, one per `?` in order. */
export function parseStatement(source: string, parameters: readonly AttributeValue[] = []): Statement {
  const tokens = tokenize(source);
  const placeholders = tokens.filter((t) => t.type === 'param').length;
  if (placeholders !== parameters.length) {
    throw invalid("Number of parameters in request and statement don't match.");
  }
  return new Parser(source, tokens, parameters).statement();
}

/** How deep conditions and values may nest: DynamoDB's documents nest 32 levels; the bound also keeps a
 *  crafted statement (thousands of "(" or "[") from exhausting the stack. */
const MAX_NESTING = 64;

class Parser {
  private pos = 0;
  private nextParam = 0;
  private depth = 0;

  constructor(
    private readonly source: string,
    private readonly tokens: readonly Token[],
    private readonly parameters: readonly AttributeValue[],
  ) {}

  statement(): Statement {
    const t = this.peek();
    let s: Statement;
    if (this.isWord('SELECT')) s = this.select();
    else if (this.isWord('INSERT')) s = this.insert();
    else if (this.isWord('UPDATE')) s = this.update();
    else if (this.isWord('DELETE')) s = this.delete();
    else throw this.unexpected(t, 'expected SELECT, INSERT, UPDATE or DELETE');
    if (this.peek().type !== 'eof') throw this.unexpected(this.peek());
    return s;
  }

  // --- statements ---

  private select(): Statement {
    this.expectWord('SELECT');
    let projection: DocumentPath[] | undefined;
    if (this.isPunct('*')) this.pos++;
    else {
      projection = [this.path()];
      while (this.eatPunct(',')) projection.push(this.path());
    }
    this.expectWord('FROM');
    const table = this.name();
    const index = this.eatPunct('.') ? this.name() : undefined;
    const where = this.eatWord('WHERE') ? this.condition() : undefined;
    let orderBy: { path: DocumentPath; descending: boolean } | undefined;
    if (this.eatWord('ORDER')) {
      this.expectWord('BY');
      const path = this.path();
      const descending = this.eatWord('DESC') ? true : (this.eatWord('ASC'), false);
      orderBy = { path, descending };
    }
    return {
      kind: 'select',
      table,
      ...(index !== undefined ? { index } : {}),
      ...(projection ? { projection } : {}),
      ...(where ? { where } : {}),
      ...(orderBy ? { orderBy } : {}),
    };
  }

  private insert(): Statement {
    this.expectWord('INSERT');
    this.expectWord('INTO');
    const table = this.name();
    this.expectWord('VALUE');
    const at = this.peek();
    const v = this.value();
    if (!('M' in v)) throw this.unexpected(at, 'expected a map of the item');
    return { kind: 'insert', table, item: v.M };
  }

  private update(): Statement {
    this.expectWord('UPDATE');
    const table = this.name();
    const set: SetAction[] = [];
    const remove: DocumentPath[] = [];
    const add: AddAction[] = [];
    const del: DeleteAction[] = [];
    for (;;) {
      if (this.eatWord('SET')) {
        do this.assignment(set, add, del);
        while (this.eatPunct(','));
      } else if (this.eatWord('REMOVE')) {
        do remove.push(this.path());
        while (this.eatPunct(','));
      } else break;
    }
    if (set.length + remove.length + add.length + del.length === 0) {
      throw this.unexpected(this.peek(), 'expected SET or REMOVE');
    }
    this.expectWord('WHERE');
    const where = this.condition();
    let returning: Returning | undefined;
    if (this.eatWord('RETURNING')) {
      const which = this.eatWord('ALL') ? 'ALL' : this.eatWord('MODIFIED') ? 'MODIFIED' : undefined;
      if (!which) throw this.unexpected(this.peek(), 'expected ALL or MODIFIED');
      const when = this.eatWord('OLD') ? 'OLD' : this.eatWord('NEW') ? 'NEW' : undefined;
      if (!when) throw this.unexpected(this.peek(), 'expected OLD or NEW');
      this.expectPunct('*');
      returning = `${which}_${when}`;
    }
    const update: UpdateAst = { set, remove, add, delete: del };
    checkOverlaps(update);
    return { kind: 'update', table, update, where, ...(returning ? { returning } : {}) };
  }

  private delete(): Statement {
    this.expectWord('DELETE');
    this.expectWord('FROM');
    const table = this.name();
    this.expectWord('WHERE');
    const where = this.condition();
    if (this.eatWord('RETURNING')) {
      this.expectWord('ALL');
      this.expectWord('OLD');
      this.expectPunct('*');
      return { kind: 'delete', table, where, returning: 'ALL_OLD' };
    }
    return { kind: 'delete', table, where };
  }

  private assignment(set: SetAction[], add: AddAction[], del: DeleteAction[]): void {
    const path = this.path();
    this.expectPunct('=');
    const fn = this.functionName();
    if (fn === 'SET_ADD' || fn === 'SET_DELETE') {
      // set_add(s, <<…>>) is DynamoDB's ADD of set members, set_delete(s, <<…>>) its DELETE.
      this.pos += 2;
      const at = this.peek();
      const source = this.path();
      if (formatPath(source) !== formatPath(path)) {
        throw this.unexpected(at, `expected ${fn.toLowerCase()} of the attribute it assigns`);
      }
      this.expectPunct(',');
      const valueAt = this.peek();
      const value = this.value();
      if (!('SS' in value || 'NS' in value || 'BS' in value)) {
        throw this.unexpected(valueAt, `expected a set for ${fn.toLowerCase()}`);
      }
      this.expectPunct(')');
      (fn === 'SET_ADD' ? add : del).push({ path, value });
      return;
    }
    const left = this.term();
    let value: SetValue = left;
    if (this.isPunct('+') || this.isPunct('-')) {
      const op = this.next().text === '+' ? 'plus' : 'minus';
      value = { kind: op, left, right: this.term() };
    }
    set.push({ path, value });
  }

  private term(): Operand {
    const fn = this.functionName();
    if (fn === 'LIST_APPEND') {
      this.pos += 2;
      const left = this.term();
      this.expectPunct(',');
      const right = this.term();
      this.expectPunct(')');
      return { kind: 'list_append', left, right };
    }
    if (fn === 'IF_NOT_EXISTS') {
      this.pos += 2;
      const path = this.path();
      this.expectPunct(',');
      const fallback = this.term();
      this.expectPunct(')');
      return { kind: 'if_not_exists', path, fallback };
    }
    return this.operand();
  }

  // --- conditions ---

  private condition(): Condition {
    let left = this.and();
    while (this.eatWord('OR')) left = { kind: 'or', left, right: this.and() };
    return left;
  }

  private and(): Condition {
    let left = this.not();
    while (this.eatWord('AND')) left = { kind: 'and', left, right: this.not() };
    return left;
  }

  private not(): Condition {
    const at = this.peek();
    if (this.eatWord('NOT')) return { kind: 'not', condition: this.deeper(at, () => this.not()) };
    return this.primary();
  }

  private primary(): Condition {
    const at = this.peek();
    if (this.eatPunct('(')) {
      const c = this.deeper(at, () => this.condition());
      this.expectPunct(')');
      return c;
    }
    const fn = this.functionName();
    if (fn && fn !== 'SIZE') return this.conditionFunction(fn);
    const operand = this.operand();
    const t = this.peek();
    if (t.type === 'punct' && Object.hasOwn(COMPARATORS, t.text)) {
      this.pos++;
      return { kind: 'compare', op: COMPARATORS[t.text]!, left: operand, right: this.operand() };
    }
    if (this.eatWord('IS')) {
      const negated = this.eatWord('NOT');
      let c: Condition;
      if (this.eatWord('MISSING')) c = { kind: 'attribute_not_exists', path: this.pathOf(operand, t) };
      else if (this.eatWord('NULL')) c = { kind: 'attribute_type', operand, type: 'NULL' };
      else throw this.unexpected(this.peek(), 'expected MISSING or NULL');
      return negated ? { kind: 'not', condition: c } : c;
    }
    const negated = this.eatWord('NOT');
    let c: Condition;
    if (this.eatWord('BETWEEN')) {
      const lower = this.operand();
      this.expectWord('AND');
      c = { kind: 'between', operand, lower, upper: this.operand() };
    } else if (this.eatWord('IN')) {
      const close = this.eatPunct('(') ? ')' : (this.expectPunct('['), ']');
      const list = [this.operand()];
      while (this.eatPunct(',')) list.push(this.operand());
      this.expectPunct(close);
      c = { kind: 'in', operand, list };
    } else {
      throw this.unexpected(this.peek(), negated ? 'expected BETWEEN or IN' : 'expected a comparison');
    }
    return negated ? { kind: 'not', condition: c } : c;
  }

  private conditionFunction(fn: string): Condition {
    const at = this.next();
    this.pos++; // (
    let c: Condition;
    switch (fn) {
      case 'BEGINS_WITH':
      case 'CONTAINS': {
        const operand = this.operand();
        this.expectPunct(',');
        const arg = this.operand();
        c =
          fn === 'BEGINS_WITH'
            ? { kind: 'begins_with', operand, prefix: arg }
            : { kind: 'contains', operand, value: arg };
        break;
      }
      case 'ATTRIBUTE_EXISTS':
      case 'ATTRIBUTE_NOT_EXISTS':
      case 'EXISTS':
      case 'MISSING': {
        const path = this.path();
        c = {
          kind: fn === 'ATTRIBUTE_EXISTS' || fn === 'EXISTS' ? 'attribute_exists' : 'attribute_not_exists',
          path,
        };
        break;
      }
      case 'ATTRIBUTE_TYPE': {
        const operand = this.operand();
        this.expectPunct(',');
        const type = this.value();
        if (!('S' in type) || !ATTRIBUTE_TYPE_NAMES.includes(type.S as AttributeTypeName)) {
          throw invalid(
            `Invalid attribute type name found; type: ${'S' in type ? type.S : JSON.stringify(type)}, valid types: ${ATTRIBUTE_TYPE_NAMES.join(', ')}`,
          );
        }
        c = { kind: 'attribute_type', operand, type: type.S as AttributeTypeName };
        break;
      }
      default:
        throw this.unexpected(at, 'unknown function');
    }
    this.expectPunct(')');
    return c;
  }

  // --- operands, values, paths ---

  private operand(): Operand {
    if (this.functionName() === 'SIZE') {
      this.pos += 2;
      const operand = this.operand();
      this.expectPunct(')');
      return { kind: 'size', operand };
    }
    const t = this.peek();
    if (t.type === 'word' && !KEYWORDS.has(t.text.toUpperCase())) return { kind: 'path', path: this.path() };
    if (t.type === 'quoted') return { kind: 'path', path: this.path() };
    return { kind: 'value', value: this.value() };
  }

  /** A literal or a parameter. */
  private value(): AttributeValue {
    const t = this.next();
    if (t.type === 'param') return this.parameters[this.nextParam++]!;
    if (t.type === 'string') return { S: t.text };
    if (t.type === 'number') return number(t.text);
    if (t.type === 'punct' && t.text === '-' && this.peek().type === 'number') {
      return number(`-${this.next().text}`);
    }
    if (t.type === 'word') {
      const w = t.text.toUpperCase();
      if (w === 'TRUE' || w === 'FALSE') return { BOOL: w === 'TRUE' };
      if (w === 'NULL') return { NULL: true };
    }
    if (t.type === 'punct' && t.text === '[') {
      const list: AttributeValue[] = [];
      if (!this.eatPunct(']')) {
        do list.push(this.deeper(t, () => this.value()));
        while (this.eatPunct(','));
        this.expectPunct(']');
      }
      return { L: list };
    }
    if (t.type === 'punct' && t.text === '{') {
      const map: Record<string, AttributeValue> = {};
      if (!this.eatPunct('}')) {
        do {
          const k = this.next();
          if (k.type !== 'string') throw this.unexpected(k, 'expected a string key');
          this.expectPunct(':');
          setOwn(
            map,
            k.text,
            this.deeper(t, () => this.value()),
          );
        } while (this.eatPunct(','));
        this.expectPunct('}');
      }
      return { M: map };
    }
    if (t.type === 'punct' && t.text === '<<') return this.set(t);
    throw this.unexpected(t, 'expected a value');
  }

  private set(open: Token): AttributeValue {
    const members: AttributeValue[] = [];
    if (!this.isPunct('>>')) {
      do members.push(this.value());
      while (this.eatPunct(','));
    }
    this.expectPunct('>>');
    if (members.length === 0) {
      throw invalid('One or more parameter values were invalid: An string set  may not be empty');
    }
    const type = Object.keys(members[0]!)[0];
    if (type !== 'S' && type !== 'N' && type !== 'B') {
      throw this.unexpected(open, 'expected a set of strings, numbers or binaries');
    }
    if (members.some((m) => !(type in m))) {
      throw this.unexpected(open, 'expected set members of one type');
    }
    const texts = members.map((m) => (m as Record<string, string>)[type]!);
    if (new Set(texts).size !== texts.length) {
      throw invalid(
        `One or more parameter values were invalid: Input collection ${JSON.stringify(texts)} contains duplicates.`,
      );
    }
    return type === 'S' ? { SS: texts } : type === 'N' ? { NS: texts } : { BS: texts };
  }

  private path(): DocumentPath {
    const path: PathElement[] = [this.name(true)];
    for (;;) {
      if (this.isPunct('.') && this.peek(1).type !== 'eof') {
        this.pos++;
        // After a dot a word can only be a map key, keywords included (meta.by).
        const t = this.peek();
        if (t.type === 'word') path.push(this.next().text);
        else path.push(this.name(true));
      } else if (this.eatPunct('[')) {
        const t = this.next();
        if (t.type === 'number' && /^\d+$/.test(t.text)) path.push(Number(t.text));
        else if (t.type === 'string') path.push(t.text);
        else throw this.unexpected(t, 'expected a list index or a map key');
        this.expectPunct(']');
      } else return path;
    }
  }

  /** The path an operand is, for IS MISSING, which tests an attribute. */
  private pathOf(operand: Operand, at: Token): DocumentPath {
    if (operand.kind !== 'path') throw this.unexpected(at, 'expected an attribute before IS MISSING');
    return operand.path;
  }

  /** A table, index or attribute name. */
  private name(attribute = false): string {
    const t = this.next();
    if (t.type === 'quoted' && t.text !== '') return t.text;
    if (t.type === 'word' && !KEYWORDS.has(t.text.toUpperCase())) return t.text;
    throw this.unexpected(t, attribute ? 'expected an attribute name' : 'expected a name');
  }

  /** The upper-cased name of a function call that starts here (a word followed by "("), if any. */
  private functionName(): string | undefined {
    const t = this.peek();
    if (t.type !== 'word' || this.peek(1).type !== 'punct' || this.peek(1).text !== '(') return undefined;
    return t.text.toUpperCase();
  }

  // --- tokens ---

  private peek(k = 0): Token {
    return this.tokens[Math.min(this.pos + k, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== 'eof') this.pos++;
    return t;
  }

  private isWord(w: string): boolean {
    const t = this.peek();
    return t.type === 'word' && t.text.toUpperCase() === w;
  }

  private eatWord(w: string): boolean {
    if (!this.isWord(w)) return false;
    this.pos++;
    return true;
  }

  private expectWord(w: string): void {
    if (!this.eatWord(w)) throw this.unexpected(this.peek(), `expected ${w}`);
  }

  private isPunct(p: string): boolean {
    const t = this.peek();
    return t.type === 'punct' && t.text === p;
  }

  private eatPunct(p: string): boolean {
    if (!this.isPunct(p)) return false;
    this.pos++;
    return true;
  }

  private expectPunct(p: string): void {
    if (!this.eatPunct(p)) throw this.unexpected(this.peek(), `expected "${p}"`);
  }

  /** Parses one level deeper, refusing to go past MAX_NESTING. */
  private deeper<T>(at: Token, parse: () => T): T {
    if (this.depth >= MAX_NESTING) {
      throw syntaxError(`Nesting deeper than ${MAX_NESTING} levels is not supported`, this.source, at.start);
    }
    this.depth++;
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private unexpected(t: Token, expected?: string) {
    const what =
      t.type === 'eof'
        ? 'Unexpected end of statement'
        : `Unexpected ${t.type === 'string' ? 'string' : t.type === 'quoted' ? 'identifier' : 'token'} ${JSON.stringify(t.text)}`;
    return syntaxError(expected ? `${what}, ${expected}` : what, this.source, t.start);
  }
}

function number(text: string): AttributeValue {
  parseNumber(text);
  return { N: text };
}

/** DynamoDB refuses an update that writes a path and another inside it (or the same one twice). */
function checkOverlaps(u: UpdateAst): void {
  const paths = [
    ...u.set.map((a) => a.path),
    ...u.remove,
    ...u.add.map((a) => a.path),
    ...u.delete.map((a) => a.path),
  ];
  for (let i = 0; i < paths.length; i++) {
    for (let j = i + 1; j < paths.length; j++) {
      const a = paths[i]!;
      const b = paths[j]!;
      const n = Math.min(a.length, b.length);
      if (a.slice(0, n).every((e, k) => e === b[k])) {
        throw invalid(
          `Two document paths overlap with each other; must remove or rewrite one of these paths; path one: ${formatPath(a)}, path two: ${formatPath(b)}`,
        );
      }
    }
  }
}

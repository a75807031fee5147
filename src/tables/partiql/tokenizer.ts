// The lexer of DynamoDB's PartiQL subset. Keywords are not told apart here (the parser recognises SELECT,
// WHERE, … among words, case-insensitively); what a token cannot be is a syntax error at once, with its
// position, since PartiQL's quoting (strings in '…', names in "…") leaves nothing to recover from.

import { syntaxError } from './errors.js';

export type TokenType =
  | 'word' // a bare identifier or keyword: a letter or _, then letters, digits and underscores
  | 'quoted' // a double-quoted identifier ("" inside stands for one ")
  | 'string' // a single-quoted string literal ('' inside stands for one ')
  | 'number' // digits with an optional fraction and exponent (a sign is the parser's)
  | 'param' // ?
  | 'punct' // ( ) [ ] { } , . : * + - = <> != < <= > >= << >>
  | 'eof';

export interface Token {
  readonly type: TokenType;
  /** The text as meant: quotes removed and doubled quotes undone for 'quoted' and 'string'. */
  readonly text: string;
  /** Offset into the statement, for messages. */
  readonly start: number;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
const isWordStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_';
const isWordPart = (c: string | undefined): boolean => c !== undefined && (isWordStart(c) || isDigit(c));

const PUNCT2 = new Set(['<>', '!=', '<=', '>=', '<<', '>>']);
const PUNCT1 = new Set(['(', ')', '[', ']', '{', '}', ',', '.', ':', '*', '+', '-', '=', '<', '>']);

/** Splits a statement into tokens; the last is always `eof`. */
export function tokenize(source: string): Token[] {
  const out: Token[] = [];
  const n = source.length;
  let i = 0;
  while (i < n) {
    const c = source[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    // PartiQL's comments: -- to the end of the line.
    if (c === '-' && source[i + 1] === '-') {
      while (i < n && source[i] !== '\n') i++;
      continue;
    }
    const start = i;
    if (isWordStart(c)) {
      while (isWordPart(source[i])) i++;
      out.push({ type: 'word', text: source.slice(start, i), start });
    } else if (isDigit(c) || (c === '.' && isDigit(source[i + 1]))) {
      while (isDigit(source[i])) i++;
      if (source[i] === '.') {
        i++;
        while (isDigit(source[i])) i++;
      }
      if (source[i] === 'e' || source[i] === 'E') {
        let j = i + 1;
        if (source[j] === '+' || source[j] === '-') j++;
        if (isDigit(source[j])) {
          i = j;
          while (isDigit(source[i])) i++;
        }
      }
      out.push({ type: 'number', text: source.slice(start, i), start });
    } else if (c === "'" || c === '"') {
      const { text, end } = quoted(source, i, c);
      out.push({ type: c === "'" ? 'string' : 'quoted', text, start });
      i = end;
    } else if (c === '?') {
      i++;
      out.push({ type: 'param', text: '?', start });
    } else if (PUNCT2.has(source.slice(i, i + 2))) {
      i += 2;
      out.push({ type: 'punct', text: source.slice(start, i), start });
    } else if (PUNCT1.has(c)) {
      i++;
      out.push({ type: 'punct', text: c, start });
    } else {
      throw syntaxError(`Unexpected character ${JSON.stringify(c)}`, source, start);
    }
  }
  out.push({ type: 'eof', text: '<EOF>', start: n });
  return out;
}

function quoted(source: string, from: number, q: string): { text: string; end: number } {
  let text = '';
  let i = from + 1;
  for (;;) {
    const next = source.indexOf(q, i);
    if (next < 0) {
      throw syntaxError(
        q === "'" ? 'Unterminated string literal' : 'Unterminated quoted identifier',
        source,
        from,
      );
    }
    text += source.slice(i, next);
    if (source[next + 1] === q) {
      text += q;
      i = next + 2;
    } else {
      return { text, end: next + 1 };
    }
  }
}

// The lexer shared by every expression kind. It never fails: a character that starts no token becomes a
// one-character "unknown" token, so the parser reports it as DynamoDB does ("Syntax error; token: "_", near:
// "SET _123""). Keywords are not told apart here: the parser recognises AND, OR, SET, … among identifiers.

export type TokenType =
  | 'identifier' // a bare name: a letter, then letters, digits and underscores
  | 'name' // an expression attribute name: # followed by letters, digits and underscores
  | 'value' // an expression attribute value: : followed by letters, digits and underscores
  | 'number' // a run of digits (a list index)
  | 'punct' // ( ) [ ] , . = <> < <= > >= + -
  | 'unknown' // any other character
  | 'eof';

export interface Token {
  readonly type: TokenType;
  readonly text: string;
  /** Offsets into the expression: text === source.slice(start, end). */
  readonly start: number;
  readonly end: number;
}

function isLetter(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function isWordPart(c: string): boolean {
  return isLetter(c) || isDigit(c) || c === '_';
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

const TWO_CHAR_PUNCT = new Set(['<>', '<=', '>=']);
const ONE_CHAR_PUNCT = new Set(['(', ')', '[', ']', ',', '.', '=', '<', '>', '+', '-']);

/** Splits an expression into tokens; the last token is always `eof` (text "<EOF>"). */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = source.length;
  const wordEnd = (from: number): number => {
    let j = from;
    while (j < n && isWordPart(source[j] as string)) j++;
    return j;
  };
  while (i < n) {
    const c = source[i] as string;
    if (isSpace(c)) {
      i++;
      continue;
    }
    const start = i;
    let type: TokenType;
    if (isLetter(c)) {
      i = wordEnd(i + 1);
      type = 'identifier';
    } else if (isDigit(c)) {
      while (i < n && isDigit(source[i] as string)) i++;
      type = 'number';
    } else if ((c === '#' || c === ':') && i + 1 < n && isWordPart(source[i + 1] as string)) {
      i = wordEnd(i + 1);
      type = c === '#' ? 'name' : 'value';
    } else if (TWO_CHAR_PUNCT.has(source.slice(i, i + 2))) {
      i += 2;
      type = 'punct';
    } else if (ONE_CHAR_PUNCT.has(c)) {
      i++;
      type = 'punct';
    } else {
      // One UTF-16 unit would split a surrogate pair; take the whole code point.
      i += (c.codePointAt(0) as number) > 0xffff ? 2 : 1;
      type = 'unknown';
    }
    tokens.push({ type, text: source.slice(start, i), start, end: i });
  }
  tokens.push({ type: 'eof', text: '<EOF>', start: n, end: n });
  return tokens;
}

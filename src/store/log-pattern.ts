// The --filter / ?q= pattern for invocation logs, parsed once (where the request arrives) and matched in the
// store's query on both backends. Modelled on CloudWatch's filter patterns, kept small:
//   word            the log text must contain it (every such term is required)
//   "exact phrase"  the same, for text with spaces (quotes inside are written \")
//   -word, -"..."   the log text must NOT contain it
//   ?word, ?"..."   at least one of the ?-terms must be there
//   { $.key = "v" } a JSON term, for Lambda's JSON log format: a JSON line has the field with that value
//                   (a string, number, true, false or null); -{...} and ?{...} work as for words
// Matching is a case-sensitive substring test of the record's log text, as CloudWatch's is. A JSON term is one
// too: it becomes the text `"key":value` exactly as JSON.stringify writes it (as the runtime does), so it finds
// the field at any depth of a line; `$.a.b` looks for "b" (the last name of the path).

export interface LogPattern {
  /** Every one must appear. */
  all: string[];
  /** At least one must appear (when there are any). */
  any: string[];
  /** None may appear. */
  none: string[];
}

/** Thrown for a pattern that cannot be parsed; the message reads as a sentence fragment. */
export class LogPatternError extends Error {
  override name = 'LogPatternError';
}

export const MAX_PATTERN_TERMS = 20;

export function parseLogPattern(text: string): LogPattern {
  const p: LogPattern = { all: [], any: [], none: [] };
  let i = 0;
  const n = text.length;
  while (i < n) {
    if (/\s/.test(text[i]!)) {
      i++;
      continue;
    }
    let into = p.all;
    const prefix = text[i];
    if (prefix === '-' || prefix === '?') {
      into = prefix === '-' ? p.none : p.any;
      i++;
      if (i >= n || /\s/.test(text[i]!)) throw new LogPatternError(`"${prefix}" must be followed by a term`);
    }
    let term = '';
    if (text[i] === '{') {
      const close = text.indexOf('}', i);
      if (close < 0) throw new LogPatternError('a JSON term is not closed (a } is missing)');
      term = jsonTerm(text.slice(i + 1, close));
      i = close + 1;
    } else if (text[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = text[i]!;
        if (c === '\\' && i + 1 < n) {
          term += text[i + 1];
          i += 2;
          continue;
        }
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        term += c;
        i++;
      }
      if (!closed) throw new LogPatternError('a quoted phrase is not closed (a " is missing)');
      if (term === '') throw new LogPatternError('a quoted phrase is empty');
    } else {
      while (i < n && !/\s/.test(text[i]!)) term += text[i++];
    }
    into.push(term);
  }
  if (p.all.length + p.any.length + p.none.length > MAX_PATTERN_TERMS) {
    throw new LogPatternError(`it has more than ${MAX_PATTERN_TERMS} terms`);
  }
  return p;
}

/** `$.level = "ERROR"` as the text a JSON line holds when it matches: `"level":"ERROR"`. */
function jsonTerm(body: string): string {
  const m = /^\s*\$((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*=\s*(.+?)\s*$/.exec(body);
  if (!m) {
    throw new LogPatternError(
      `"{${body}}" is not a JSON term; write it like { $.level = "ERROR" } (a field, "=", a value)`,
    );
  }
  const key = m[1]!.split('.').at(-1)!;
  const raw = m[2]!;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new LogPatternError(
      `the value in "{${body}}" must be a "quoted string", a number, true, false or null`,
    );
  }
  if (typeof value === 'object' && value !== null) {
    throw new LogPatternError(
      `the value in "{${body}}" must be a "quoted string", a number, true, false or null`,
    );
  }
  return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
}

/** The same test in memory (for tests and anything filtering records already read). */
export function matchesLogPattern(p: LogPattern, logs: string): boolean {
  return (
    p.all.every((t) => logs.includes(t)) &&
    (p.any.length === 0 || p.any.some((t) => logs.includes(t))) &&
    !p.none.some((t) => logs.includes(t))
  );
}

export function isEmptyPattern(p: LogPattern): boolean {
  return p.all.length === 0 && p.any.length === 0 && p.none.length === 0;
}

// Variables in nimbus.yaml, resolved by the CLI when it reads the manifest and before the schema checks it:
// ${env:NAME}, ${env:NAME, default}, ${self:dot.path}, ${stage}, ${file(./x.json):key}. ${secret:NAME} is left
// as written (the host resolves it at an instance's start). "$${" is a literal "${". A variable that is the
// whole value keeps its type; one inside other text is stringified. Errors name the field it is written in.
import { readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ManifestError } from './manifest.js';

export interface VariableContext {
  /** The CLI's environment. */
  env: NodeJS.ProcessEnv;
  /** What ${stage} becomes. */
  stage: string;
  /** The service folder: ${file(...)} paths are relative to it and must stay inside it. */
  dir: string;
  /** The manifest's name in messages. */
  file: string;
}

/** What ${stage} is when no --stage is given. */
export const DEFAULT_STAGE = 'default';

const KINDS = '${env:NAME}, ${env:NAME, default}, ${self:path}, ${file(./x.json):key} or ${stage}';

type Piece = { text: string } | { token: string };

/** Splits a string into text and ${...} tokens (nested ${} kept inside a token); undefined when it has none. */
function split(value: string, file: string, field: string): Piece[] | undefined {
  if (!value.includes('${')) return undefined;
  const pieces: Piece[] = [];
  let text = '';
  let i = 0;
  while (i < value.length) {
    if (value.startsWith('$${', i)) {
      text += '${';
      i += 3;
      continue;
    }
    if (!value.startsWith('${', i)) {
      text += value[i];
      i++;
      continue;
    }
    let depth = 1;
    let j = i + 2;
    for (; j < value.length && depth > 0; j++) {
      if (value.startsWith('${', j)) {
        depth++;
        j++;
      } else if (value[j] === '}') depth--;
    }
    if (depth > 0) {
      throw new ManifestError(
        file,
        field,
        `"${value}" has a "\${" with no closing "}"; close it, or write $\${ for a literal "\${"`,
      );
    }
    if (text) pieces.push({ text });
    text = '';
    pieces.push({ token: value.slice(i + 2, j - 1) });
    i = j;
  }
  if (text) pieces.push({ text });
  return pieces;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function child(node: unknown, seg: string): { found: boolean; value?: unknown } {
  if (!isObject(node) || !Object.prototype.hasOwnProperty.call(node, seg)) return { found: false };
  return { found: true, value: (node as Record<string, unknown>)[seg] };
}

class Resolver {
  private readonly memo = new Map<string, unknown>();
  /** Raw paths being resolved, outermost first, with the field that asked for each (for cycle messages). */
  private readonly active: string[] = [];

  constructor(
    private readonly raw: unknown,
    private readonly ctx: VariableContext,
  ) {}

  private fail(field: string, problem: string): never {
    throw new ManifestError(this.ctx.file, field, problem);
  }

  /** The resolved value at a path of the raw manifest (which must exist). */
  resolvePath(segs: string[]): unknown {
    const key = JSON.stringify(segs);
    if (this.memo.has(key)) return this.memo.get(key);
    const at = this.active.indexOf(key);
    if (at >= 0) {
      const chain = [...this.active.slice(at), key].map((k) => (JSON.parse(k) as string[]).join('.'));
      this.fail(chain[chain.length - 2]!, `\${self:...} references form a cycle: ${chain.join(' → ')}`);
    }
    let node: unknown = this.raw;
    for (const s of segs) node = (node as Record<string, unknown>)[s];
    this.active.push(key);
    try {
      const value = this.resolveNode(node, segs);
      this.memo.set(key, value);
      return value;
    } finally {
      this.active.pop();
    }
  }

  private resolveNode(node: unknown, segs: string[]): unknown {
    if (typeof node === 'string') return this.resolveString(node, segs.join('.'));
    if (Array.isArray(node)) return node.map((_, i) => this.resolvePath([...segs, String(i)]));
    if (isObject(node)) {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(node)) out[k] = this.resolvePath([...segs, k]);
      return out;
    }
    return node;
  }

  /** A string with its variables resolved: the value itself when it is one whole variable. */
  resolveString(value: string, field: string): unknown {
    const pieces = split(value, this.ctx.file, field);
    if (!pieces) return value;
    if (pieces.length === 1 && 'token' in pieces[0]!) return this.resolveToken(pieces[0].token, field);
    let out = '';
    for (const p of pieces) {
      if ('text' in p) {
        out += p.text;
        continue;
      }
      const v = this.resolveToken(p.token, field);
      if (v === null || v === undefined || typeof v === 'object') {
        this.fail(
          field,
          `\${${p.token}} is ${v === null || v === undefined ? 'empty' : Array.isArray(v) ? 'a list' : 'a mapping'} and cannot be part of a string; make it the whole value`,
        );
      }
      out += String(v as string | number | boolean);
    }
    return out;
  }

  /** Inner variables (${env:A, ${self:b}}) resolved to text first. */
  private inner(text: string, field: string): string {
    const v = this.resolveString(text, field);
    return typeof v === 'string' ? v : JSON.stringify(v);
  }

  private resolveToken(token: string, field: string): unknown {
    if (token.startsWith('secret:')) return `\${${token}}`;
    if (token.trim() === 'stage') return this.ctx.stage;
    if (token.startsWith('env:')) {
      const body = token.slice(4);
      const comma = topLevelComma(body);
      const name = this.inner(comma < 0 ? body : body.slice(0, comma), field).trim();
      const fallback = comma < 0 ? undefined : body.slice(comma + 1).trim();
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        this.fail(field, `\${env:${name}}: "${name}" is not an environment variable name`);
      }
      const set = this.ctx.env[name];
      if (set !== undefined) return set;
      if (fallback !== undefined) return this.resolveString(fallback, field);
      this.fail(field, `\${env:${name}} is not set; set it or give a default: \${env:${name}, value}`);
    }
    if (token.startsWith('self:')) {
      const path = this.inner(token.slice(5), field).trim();
      const segs = path.split('.');
      if (!path || segs.some((s) => s === '')) {
        this.fail(field, `\${self:${path}}: write a dot path to another value, e.g. \${self:service}`);
      }
      return this.self(segs, field);
    }
    const f = /^file\(([^)]*)\)(?::(.*))?$/s.exec(token);
    if (f)
      return this.file(
        this.inner(f[1]!, field).trim(),
        f[2] === undefined ? undefined : this.inner(f[2], field).trim(),
        field,
      );
    const kind = /^([A-Za-z_][\w-]*)[:(]/.exec(token)?.[1] ?? token;
    this.fail(
      field,
      `\${${token}}: unknown variable "${kind}"; use ${KINDS} (${'${secret:NAME}'} stays for the host), or $\${ for a literal "\${"`,
    );
  }

  private self(segs: string[], field: string): unknown {
    let node: unknown = this.raw;
    let inRaw = true;
    const walked: string[] = [];
    for (const seg of segs) {
      if (inRaw && typeof node === 'string') {
        node = this.resolvePath(walked);
        inRaw = false;
      }
      const c = child(node, seg);
      if (!c.found)
        this.fail(
          field,
          `\${self:${segs.join('.')}}: nothing at ${[...walked, seg].join('.')} in the manifest`,
        );
      node = c.value;
      walked.push(seg);
    }
    return inRaw ? this.resolvePath(walked) : node;
  }

  private file(path: string, key: string | undefined, field: string): unknown {
    const show = `\${file(${path})${key === undefined ? '' : `:${key}`}}`;
    if (!path) this.fail(field, `${show}: name a file, e.g. \${file(./config.json):key}`);
    const root = realpathSync(this.ctx.dir);
    const target = resolve(root, path);
    const inside = (p: string): boolean => {
      const rel = relative(root, p);
      return rel !== '' && rel !== '..' && !rel.startsWith('..' + sep) && !isAbsolute(rel);
    };
    if (!inside(target))
      this.fail(field, `${show}: ${path} is outside the service folder; move the file into it`);
    let real: string;
    try {
      real = realpathSync(target);
    } catch {
      this.fail(field, `${show}: file ${path} not found in the service folder`);
    }
    if (!inside(real))
      this.fail(field, `${show}: ${path} is outside the service folder; move the file into it`);
    let data: unknown;
    try {
      data = parseYaml(readFileSync(real, 'utf8'));
    } catch (e) {
      const first = (e as Error).message.split('\n')[0]!;
      this.fail(field, `${show}: ${path} is not valid JSON or YAML: ${first}`);
    }
    if (key === undefined || key === '') return data;
    let node = data;
    for (const seg of key.split('.')) {
      const c = child(node, seg);
      if (!c.found) this.fail(field, `${show}: ${path} has no ${key}`);
      node = c.value;
    }
    return node;
  }
}

/** The first comma not inside a nested ${...}. */
function topLevelComma(s: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (s.startsWith('${', i)) {
      depth++;
      i++;
    } else if (s[i] === '}') depth--;
    else if (s[i] === ',' && depth === 0) return i;
  }
  return -1;
}

/** The manifest (as parsed from YAML) with every variable resolved. Keys are taken as written. */
export function resolveVariables(raw: unknown, ctx: VariableContext): unknown {
  return new Resolver(raw, ctx).resolvePath([]);
}

// The X-Ray trace header as Lambda passes it along a chain of invocations (_X_AMZN_TRACE_ID in the
// function's environment, X-Amzn-Trace-Id on the requests the AWS SDK makes from there), with a Lineage
// field that counts how often the chain has passed through each function. Nimbus reads it to stop
// recursive loops: an event that would pass through the same function more than MAX_LINEAGE times is not run.
// Root and Parent are the W3C trace's ids in X-Ray's form (observability/tracing.ts).
import { createHash } from 'node:crypto';
import { randomHex } from '../ids.js';

export const MAX_LINEAGE = 16;

/** The header for a run of `fn` that continues `incoming` (or starts a trace), and how often `fn` is now in
 *  the chain, this run included. */
export function continueTrace(
  incoming: string | null | undefined,
  fn: string,
): { header: string; count: number } {
  const fields = parse(incoming ?? '');
  const root = fields.get('Root') ?? newRoot();
  const lineage = new Map<string, number>();
  for (const entry of (fields.get('Lineage') ?? '').split('|')) {
    const m = /^([0-9a-f]{8}):(\d{1,4})$/.exec(entry);
    if (m) lineage.set(m[1]!, Number(m[2]));
  }
  const key = lineageKey(fn);
  const count = (lineage.get(key) ?? 0) + 1;
  lineage.set(key, count);
  // The caller's span stays the parent (with tracing on, the invocation's span is its child); a new trace
  // has none, which tells tracing to start a root there.
  const parent = fields.get('Parent');
  const parts = [`Root=${root}`];
  if (parent !== undefined && /^[0-9a-f]{16}$/.test(parent)) {
    parts.push(`Parent=${parent}`, `Sampled=${fields.get('Sampled') === '1' ? 1 : 0}`);
  } else parts.push('Sampled=0');
  parts.push(`Lineage=${[...lineage].map(([k, n]) => `${k}:${n}`).join('|')}`);
  return { header: parts.join(';'), count };
}

function parse(header: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of header.slice(0, 4096).split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return out;
}

function newRoot(): string {
  return `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomHex(12)}`;
}

const keys = new Map<string, string>();

/** The 8 hex digits that stand for a function in Lineage; kept, since every event of a function asks. */
function lineageKey(fn: string): string {
  let key = keys.get(fn);
  if (key === undefined) {
    key = createHash('sha256').update(fn).digest('hex').slice(0, 8);
    if (keys.size >= 10_000) keys.clear();
    keys.set(fn, key);
  }
  return key;
}

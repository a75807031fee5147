// Deploy decides "changed or not" by comparing stored config text, so equal configs must serialize to equal
// text whatever order their keys were built in (environment maps come from YAML in user order).
import type { FunctionConfig } from '../config/manifest.js';

/** JSON with object keys sorted at every depth; undefined-valued keys are dropped, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  // A null prototype so an environment variable named "__proto__" stays an own key instead of hitting the setter.
  const out = Object.create(null) as Record<string, unknown>;
  const src = value as Record<string, unknown>;
  for (const key of Object.keys(src).sort()) out[key] = sortKeys(src[key]);
  return out;
}

/** The stored config text is canonical JSON; only the key JSON cannot carry (an undefined value) is restored. */
export function parseConfig(text: string): FunctionConfig {
  const parsed = JSON.parse(text) as FunctionConfig;
  return { ...parsed, reservedConcurrency: parsed.reservedConcurrency ?? undefined };
}

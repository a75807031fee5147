// Checks every backend makes before a deploy writes anything, so they refuse the same inputs the same way.
import { createHash } from 'node:crypto';
import { checkQueueConfigs } from './queue-rules.js';
import type { DeployInput } from './types.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Project names: lowercase, so they can later serve as host labels and schema-safe identifiers. */
export const PROJECT_NAME = /^[a-z][a-z0-9-]{0,62}$/;

export async function checkDeployInput({
  project,
  service,
  functions,
  queues,
  code,
}: DeployInput): Promise<void> {
  if (!PROJECT_NAME.test(project)) throw new Error(`project name "${project}" is not valid`);
  if (!SHA256_HEX.test(code.sha256)) throw new Error('code.sha256 must be 64 lowercase hex digits');
  // Code is deduplicated by this key, so a wrong one would silently serve another deploy's archive. In 1 MB
  // steps with a turn of the event loop between: hashing 15 MB at once holds the gateway about 50 ms.
  const hash = createHash('sha256');
  const STEP = 1024 * 1024;
  for (let at = 0; at < code.archive.length; at += STEP) {
    hash.update(code.archive.subarray(at, at + STEP));
    if (at + STEP < code.archive.length) await new Promise<void>((r) => setImmediate(r));
  }
  const actual = hash.digest('hex');
  if (actual !== code.sha256) {
    throw new Error(`code.sha256 ${code.sha256} does not match the archive (${actual})`);
  }
  const names = new Set<string>();
  for (const f of functions) {
    if (names.has(f.name))
      throw new Error(`function "${f.name}" appears twice in the deploy of "${service}"`);
    names.add(f.name);
  }
  checkQueueConfigs(service, queues ?? []);
}

/** Whether a deployed function's latest version already runs the code of this deploy: the same archive, or
 *  the caller asked to keep exactly that version (DeployInput.keep). The config is compared apart. */
export function sameCode(
  input: DeployInput,
  name: string,
  latestVersion: number,
  latestSha256: string,
): boolean {
  return latestSha256 === input.code.sha256 || input.keep?.[name] === latestVersion;
}

/** The query limit every backend applies: 100 by default, 0 to 1000. */
export function queryLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(max, Math.max(0, Math.floor(limit)));
}

// Whether a project's functions fit its quotas: what a deploy (and a quota change) is checked against, so a
// reservation is never a promise the project's quota breaks. Pure, over the functions' settings.
import type { FunctionConfig } from './manifest.js';

export interface QuotaCaps {
  concurrency: number | null;
  memoryMB: number | null;
}

type Fn = Pick<
  FunctionConfig,
  'name' | 'memory' | 'reservedConcurrency' | 'provisionedConcurrency' | 'perInstanceConcurrency'
>;

/** What does not fit, naming the function and its field; undefined when everything does. */
export interface QuotaMisfit {
  function: string;
  /** The manifest field, e.g. "concurrency.reserved". */
  field: string;
  message: string;
  hint: string;
}

/**
 * The project's reservations together fit its concurrency quota; each reserved function's instances at its
 * reservation (reserved / perInstance of them, each of its memory) fit its memory quota, and so do all its
 * provisioned instances together, which are always running.
 */
export function quotaMisfit(
  project: string,
  caps: QuotaCaps,
  functions: readonly Fn[],
): QuotaMisfit | undefined {
  const reserved = functions.filter((f) => (f.reservedConcurrency ?? 0) > 0);
  if (caps.concurrency !== null) {
    const total = reserved.reduce((n, f) => n + f.reservedConcurrency!, 0);
    if (total > caps.concurrency) {
      const largest = [...reserved].sort((a, b) => b.reservedConcurrency! - a.reservedConcurrency!)[0]!;
      return {
        function: largest.name,
        field: 'concurrency.reserved',
        message:
          `reservations would total ${total} (${reserved.map((f) => `${f.name} ${f.reservedConcurrency}`).join(', ')}), ` +
          `more than project "${project}"'s concurrency quota of ${caps.concurrency}`,
        hint: `lower concurrency.reserved, or have the operator raise the quota with \`nimbus project quota ${project} --concurrency <n>\``,
      };
    }
  }
  if (caps.memoryMB !== null) {
    for (const f of reserved) {
      const mb = Math.ceil(f.reservedConcurrency! / (f.perInstanceConcurrency ?? 1)) * f.memory;
      if (mb > caps.memoryMB) {
        return {
          function: f.name,
          field: 'concurrency.reserved',
          message:
            `${f.name} reserves ${f.reservedConcurrency} concurrent executions of ${f.memory} MB (${mb} MB of ` +
            `instances), more than project "${project}"'s memory quota of ${caps.memoryMB} MB`,
          hint: `lower concurrency.reserved or memory, or have the operator raise the quota with \`nimbus project quota ${project} --memory <MB>\``,
        };
      }
    }
    const provisioned = functions.filter((f) => (f.provisionedConcurrency ?? 0) > 0);
    const mb = provisioned.reduce(
      (n, f) => n + Math.ceil(f.provisionedConcurrency! / (f.perInstanceConcurrency ?? 1)) * f.memory,
      0,
    );
    if (mb > caps.memoryMB) {
      return {
        function: provisioned[0]!.name,
        field: 'concurrency.provisioned',
        message: `provisioned instances would hold ${mb} MB, more than project "${project}"'s memory quota of ${caps.memoryMB} MB`,
        hint: `lower concurrency.provisioned, or have the operator raise the quota with \`nimbus project quota ${project} --memory <MB>\``,
      };
    }
  }
  return undefined;
}

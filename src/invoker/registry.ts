// The deployed functions as the hot path sees them: the latest version of each, per project, in memory,
// refreshed from the store after every deploy or removal. Listeners (the gateway's route table, the invoker,
// trigger sources) hear which functions changed.
import type { FunctionRef, FunctionStore, FunctionVersion } from '../store/types.js';

export function refKey(ref: FunctionRef): string {
  return `${ref.project}/${ref.name}`;
}

export class FunctionRegistry {
  private latest = new Map<string, FunctionVersion>();
  private listeners: ((changed: FunctionRef[]) => void)[] = [];

  constructor(private readonly functions: FunctionStore) {}

  async load(): Promise<void> {
    const all = await this.functions.listFunctions();
    const next = new Map(all.map((f) => [refKey(f), f]));
    const changed: FunctionRef[] = [];
    for (const key of new Set([...this.latest.keys(), ...next.keys()])) {
      const before = this.latest.get(key);
      const after = next.get(key);
      if (before?.version !== after?.version || before?.deployedAt !== after?.deployedAt) {
        const f = (after ?? before)!;
        changed.push({ project: f.project, name: f.name });
      }
    }
    this.latest = next;
    if (changed.length > 0) for (const fn of this.listeners) fn(changed);
  }

  get(ref: FunctionRef): FunctionVersion | undefined {
    return this.latest.get(refKey(ref));
  }

  /** Every function, or one project's. */
  all(project?: string): FunctionVersion[] {
    const all = [...this.latest.values()];
    return project === undefined ? all : all.filter((f) => f.project === project);
  }

  onChange(fn: (changed: FunctionRef[]) => void): void {
    this.listeners.push(fn);
  }
}

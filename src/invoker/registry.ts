// The deployed functions as the hot path sees them: the latest version of each, in memory, refreshed from
// the store after every deploy or removal. Listeners (the gateway's route table, the invoker) hear of changes.
import type { FunctionVersion, Store } from '../store/types.js';

export class FunctionRegistry {
  private latest = new Map<string, FunctionVersion>();
  private listeners: ((changed: string[]) => void)[] = [];

  constructor(private readonly store: Store) {}

  async load(): Promise<void> {
    const all = await this.store.listFunctions();
    const next = new Map(all.map((f) => [f.name, f]));
    const changed = [...new Set([...this.latest.keys(), ...next.keys()])].filter(
      (n) =>
        this.latest.get(n)?.version !== next.get(n)?.version ||
        this.latest.get(n)?.deployedAt !== next.get(n)?.deployedAt,
    );
    this.latest = next;
    if (changed.length > 0) for (const fn of this.listeners) fn(changed);
  }

  get(name: string): FunctionVersion | undefined {
    return this.latest.get(name);
  }

  all(): FunctionVersion[] {
    return [...this.latest.values()];
  }

  onChange(fn: (changed: string[]) => void): void {
    this.listeners.push(fn);
  }
}

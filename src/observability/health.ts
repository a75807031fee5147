// Liveness and readiness, answered on both listeners without a key. The bodies say a status and, when not
// ready, which part is not, in fixed words: nothing about keys, paths, versions or the store's address.

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';

/** How long the store may take to answer the readiness query before it counts as unreachable (default). */
const STORE_TIMEOUT_MS = 2000;

export interface ReadinessChecks {
  /** A cheap store query; rejects (or hangs) when the store is unreachable. */
  store(): Promise<unknown>;
  /** Whether the stem-cell pool can serve cold starts. */
  pool(): boolean;
  /** Whether the node is stopping (its listeners are still draining). */
  stopping?(): boolean;
}

export interface HealthReply {
  status: number;
  body: string;
}

const OK: HealthReply = { status: 200, body: JSON.stringify({ status: 'ok' }) };

export class Health {
  constructor(
    private readonly checks: ReadinessChecks,
    private readonly storeTimeoutMs = STORE_TIMEOUT_MS,
  ) {}

  /** The reply for a health path, or undefined when the path is not one. */
  async answer(path: string): Promise<HealthReply | undefined> {
    if (path === HEALTH_PATH) return OK;
    if (path === READY_PATH) return this.ready();
    return undefined;
  }

  private async ready(): Promise<HealthReply> {
    if (this.checks.stopping?.()) return unavailable('shutting down');
    if (!this.checks.pool()) return unavailable('sandbox pool not ready');
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), this.storeTimeoutMs);
      });
      await Promise.race([this.checks.store(), timeout]);
    } catch {
      return unavailable('store unreachable');
    } finally {
      clearTimeout(timer);
    }
    return OK;
  }
}

export function isHealthPath(path: string): boolean {
  return path === HEALTH_PATH || path === READY_PATH;
}

function unavailable(reason: string): HealthReply {
  return { status: 503, body: JSON.stringify({ status: 'unavailable', reason }) };
}

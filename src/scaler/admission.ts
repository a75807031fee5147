// Pure admission and keep-alive decisions. The invoker asks; processes obey. No I/O here, so the scaling
// engine can replay traces against exactly this code in simulated time.

export interface AdmissionInput {
  /** Invocations of this function running or starting now. */
  functionInFlight: number;
  /** concurrency.reserved from the manifest; undefined means only the global limit applies. */
  reserved: number | undefined;
  globalInFlight: number;
  globalLimit: number;
}

export type Admission =
  | { ok: true }
  | {
      ok: false;
      reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' | 'ConcurrentInvocationLimitExceeded';
    };

export function admit(a: AdmissionInput): Admission {
  if (a.reserved !== undefined && a.functionInFlight >= a.reserved) {
    return { ok: false, reason: 'ReservedFunctionConcurrentInvocationLimitExceeded' };
  }
  if (a.globalInFlight >= a.globalLimit) return { ok: false, reason: 'ConcurrentInvocationLimitExceeded' };
  return { ok: true };
}

export interface KeepAlivePolicy {
  readonly name: string;
  /** Whether an instance idle since `lastUsed` should stop at `now`. */
  shouldStop(lastUsed: number, now: number): boolean;
}

/** AWS-like: an idle instance lives for a fixed window after its last invocation. */
export function fixedKeepAlive(ms: number): KeepAlivePolicy {
  return { name: `fixed ${Math.round(ms / 1000)}s`, shouldStop: (lastUsed, now) => now - lastUsed >= ms };
}

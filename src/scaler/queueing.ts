// When every instance of a function is busy, a new invocation either starts another instance (a cold start)
// or waits for a busy one. Lambda always starts one; for invocations far shorter than a cold start, waiting
// is faster for the caller and keeps far fewer processes competing for the CPU. The rule: wait only when the
// expected wait is shorter than the cold start it replaces.

/** Most invocations that may wait behind one running invocation. */
export const MAX_QUEUE_PER_INSTANCE = 8;

/**
 * How many invocations may wait on one busy instance: the number of warm durations that fit in one cold
 * start (so the expected wait stays under the cold-start time). 0 until both have been measured.
 */
export function queueSlots(warmMs: number, coldMs: number): number {
  if (warmMs <= 0 || coldMs <= 0) return 0;
  return Math.max(0, Math.min(MAX_QUEUE_PER_INSTANCE, Math.floor(coldMs / warmMs - 0.5)));
}

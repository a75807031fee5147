// Limits and names that several modules must agree on, defined once. They follow AWS Lambda's.

/** Largest synchronous request or response payload. */
export const MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024;
/** Largest asynchronous (Event) payload. */
export const MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024;
/** Largest deploy upload. */
export const MAX_DEPLOY_BYTES = 250 * 1024 * 1024;
/** Largest secret value (`nimbus secret set`); Lambda's whole environment is 4 KB, but certificates and keys
 *  are longer, and Nimbus does not cap the environment. */
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;

export function functionArn(region: string, accountId: string, name: string): string {
  return `arn:aws:lambda:${region}:${accountId}:function:${name}`;
}

/**
 * Concurrency that reservations must leave to the functions without one, out of the node's limit L: a tenth
 * of it, at least 1 (Lambda keeps 100 of an account's 1,000). A deploy that would reserve more is refused.
 */
export function minUnreservedConcurrency(limit: number): number {
  return Math.max(1, Math.ceil(limit / 10));
}

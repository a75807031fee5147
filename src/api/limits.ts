// How much body each API route reads. The caps themselves live in config/limits.ts, shared with the gateway
// and the invoker, so the documented numbers cannot drift apart.
import { MAX_DEPLOY_BYTES, MAX_SECRET_VALUE_BYTES, MAX_SYNC_PAYLOAD_BYTES } from '../config/limits.js';

export { MAX_ASYNC_PAYLOAD_BYTES, MAX_DEPLOY_BYTES, MAX_SYNC_PAYLOAD_BYTES } from '../config/limits.js';

/** How much of a request body is read, and the limit a 413 names. */
export interface BodyLimit {
  readonly maxBytes: number;
  readonly statedBytes: number;
}

// The slack lets a payload just over 6 MB through the reader, so the Invoke handler can refuse it with the
// message that names its invocation type.
export const DEFAULT_BODY: BodyLimit = {
  maxBytes: MAX_SYNC_PAYLOAD_BYTES + 1024,
  statedBytes: MAX_SYNC_PAYLOAD_BYTES,
};
export const DEPLOY_BODY: BodyLimit = { maxBytes: MAX_DEPLOY_BYTES, statedBytes: MAX_DEPLOY_BYTES };

export const SECRET_VALUE_BYTES = MAX_SECRET_VALUE_BYTES;
// One byte of slack, so that the handler refuses a value just over the cap with a message about secrets.
export const SECRET_BODY: BodyLimit = {
  maxBytes: MAX_SECRET_VALUE_BYTES + 1,
  statedBytes: MAX_SECRET_VALUE_BYTES,
};

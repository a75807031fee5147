// Who is calling: one step from a request to a Principal, whether it carries a bearer key or a SigV4
// signature. The API key is the admin credential: the bearer token, and the secret of access key id "nimbus".
// Issued access keys (`nimbus credentials`, and each function's own) are SigV4-only and looked up in the store.
import { timingSafeEqual } from 'node:crypto';
import type { IssuedKey } from '../security/access-keys.js';
import { DEFAULT_PROJECT, type Permissions } from '../store/types.js';
import { ApiError } from './errors.js';
import {
  credentialScope,
  verifySigV4,
  type ClaimedSignature,
  type SigV4Request,
  type SigV4Seed,
} from './sigv4.js';

export interface Principal {
  project: string;
  keyId: string;
  /** admin: the API key; user: a key issued by `nimbus credentials create`; function: a function's own key. */
  role: 'admin' | 'user' | 'function';
  /** What it may touch in its project; null: everything there. */
  permissions: Permissions | null;
}

/** A SigV4 access key: the secret it signs with and whom it authenticates. */
export interface AccessKey {
  secret: string;
  principal: Principal;
}

/** The key of an access key id, or undefined when there is none (never issued, or removed). */
export type AccessKeyLookup = (accessKeyId: string) => Promise<AccessKey | undefined>;

export interface Credentials {
  /** The principal of a bearer token, or undefined. Compares in constant time. */
  bearer(token: string): Principal | undefined;
  accessKey: AccessKeyLookup;
}

export const API_KEY_ID = 'nimbus';

const SIGN_HINT =
  'sign with an access key from `nimbus credentials create`, or with access key id "nimbus" and the API key as the secret';

/**
 * The API key as bearer token and as the secret of access key id "nimbus" (both admin); every other access
 * key id is asked of `issued` (the store's keys), when given.
 */
export function apiKeyCredentials(apiKey: string, issued?: AccessKeyLookup): Credentials {
  const key = Buffer.from(apiKey);
  const principal: Principal = {
    project: DEFAULT_PROJECT,
    keyId: API_KEY_ID,
    role: 'admin',
    permissions: null,
  };
  const admin: AccessKey = { secret: apiKey, principal };
  return {
    bearer: (token) => {
      const given = Buffer.from(token);
      return given.length === key.length && timingSafeEqual(given, key) ? principal : undefined;
    },
    accessKey: async (id) => (id === API_KEY_ID ? admin : issued?.(id)),
  };
}

/** Issued keys as access keys: a user key or a function key, in its project, with its permissions. */
export function issuedKeyLookup(keys: {
  lookup(accessKeyId: string): Promise<IssuedKey | undefined>;
}): AccessKeyLookup {
  return async (id) => {
    const k = await keys.lookup(id);
    if (!k) return undefined;
    const c = k.credential;
    return {
      secret: k.secretAccessKey,
      principal: { project: c.project, keyId: c.accessKeyId, role: c.kind, permissions: c.permissions },
    };
  };
}

/** Whether the principal may read and write this table of its project. */
export function canUseTable(principal: Principal, table: string): boolean {
  return principal.permissions === null || principal.permissions.tables.includes(table);
}

/** Whether the principal may use this queue of its project: a function's key only the queues its manifest
 *  grants; the admin key and user keys every queue there. */
export function canUseQueue(principal: Principal, queue: string): boolean {
  if (principal.role !== 'function' || principal.permissions === null) return true;
  return (principal.permissions.queues ?? []).includes(queue);
}

/** Whether the principal may read and write the objects of this bucket of its project. */
export function canUseBucket(principal: Principal, bucket: string): boolean {
  return principal.permissions === null || (principal.permissions.buckets ?? []).includes(bucket);
}

/** AWS's refusal of an authenticated caller (403 AccessDeniedException), naming who, what and on what. */
export function accessDenied(principal: Principal, action: string, resource?: string): ApiError {
  return new ApiError(
    403,
    'AccessDeniedException',
    `User: ${principal.keyId} is not authorized to perform: ${action}${resource ? ` on resource: ${resource}` : ''}`,
    principal.role === 'function'
      ? "a function's key reaches the tables its manifest grants (permissions: { tables: [...] })"
      : 'ask for a key that is granted it',
  );
}

/** The control API's operations on credentials are the admin's (the API key) only. */
export function requireAdmin(principal: Principal, what: string): void {
  if (principal.role !== 'admin') {
    throw new ApiError(
      403,
      'AccessDenied',
      `only the admin key may ${what}`,
      'use the API key in <data dir>/api-key',
    );
  }
}

/** The answer for an access key id nobody issued (or one removed since): DynamoDB's and Lambda's words. */
export function unrecognizedClient(): ApiError {
  return new ApiError(
    403,
    'UnrecognizedClientException',
    'The security token included in the request is invalid.',
    SIGN_HINT,
  );
}

/**
 * The principal of a request's bearer key, from its headers alone: it runs before the body is read, so nobody
 * without the key makes Nimbus buffer an upload. `missingCode` is the code of the 401 without any key.
 * Only the API key is a bearer token; issued access keys sign with SigV4.
 */
export function authenticateBearer(
  creds: Credentials,
  authorization: string | undefined,
  missingCode = 'Unauthorized',
): Principal {
  if (authorization?.startsWith('Bearer ')) {
    const principal = creds.bearer(authorization.slice(7).trim());
    if (principal) return principal;
    throw new ApiError(401, 'Unauthorized', 'the API key is wrong', 'use the key in <data dir>/api-key');
  }
  throw new ApiError(
    401,
    missingCode,
    'this request has no API key',
    'send "Authorization: Bearer <key>" with the key from <data dir>/api-key, or sign it with SigV4',
  );
}

/** The principal of a SigV4-signed request; the body is part of what is signed, so it is read first. */
export async function authenticateSigV4(
  creds: Credentials,
  req: SigV4Request,
  now: number = Date.now(),
  claimed?: ClaimedSignature,
): Promise<Principal> {
  return (await authenticateSigV4Headers(creds, req, now, claimed)).principal;
}

/**
 * The principal of a SigV4-signed request, and the seed its body is checked with: with body 'streaming' the
 * headers are verified now and the body later, as it streams (sigv4-payload.ts).
 */
export async function authenticateSigV4Headers(
  creds: Credentials,
  req: SigV4Request,
  now: number = Date.now(),
  claimed?: ClaimedSignature,
): Promise<{ principal: Principal; seed: SigV4Seed }> {
  const scope = claimed ?? credentialScope(req);
  const key = scope.ok ? await creds.accessKey(scope.scope.accessKeyId) : undefined;
  const v = verifySigV4(
    req,
    key && scope.ok ? { accessKeyId: scope.scope.accessKeyId, secretAccessKey: key.secret } : () => undefined,
    now,
    scope.ok ? scope : undefined,
  );
  // A verified signature means the lookup found the key it was made with.
  if (v.ok && key) return { principal: key.principal, seed: v.seed };
  if (v.ok) throw unrecognizedClient();
  if (v.code === 'UnrecognizedClientException') throw unrecognizedClient();
  // AWS answers 403 for every signature problem but a missing one.
  const status = v.code === 'MissingAuthenticationToken' ? 401 : 403;
  throw new ApiError(status, v.code, v.message, SIGN_HINT);
}

// Who is calling: one step from a request to a Principal, whether it carries a bearer key or a SigV4
// signature. The API key is the admin credential: the bearer token, and the secret of access key id "nimbus".
// Issued access keys (`nimbus credentials`, and each function's own) are SigV4-only and looked up in the store.
import { timingSafeEqual } from 'node:crypto';
import type { IssuedKey } from '../security/access-keys.js';
import type { ApiKeys } from '../security/api-keys.js';
import { DEFAULT_PROJECT, type KeyRole, type Permissions } from '../store/types.js';
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
  /** A bearer API key's role in its project (admin for the data dir's key); user: an access key issued by
   *  `nimbus credentials create`; function: a function's own key. */
  role: KeyRole | 'user' | 'function';
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
  bearer(token: string): Promise<Principal | undefined>;
  accessKey: AccessKeyLookup;
}

export const API_KEY_ID = 'nimbus';

const SIGN_HINT =
  'sign with an access key from `nimbus credentials create`, or with access key id "nimbus" and the API key as the secret';

/**
 * The API key as bearer token and as the secret of access key id "nimbus" (both admin of `default`); projects'
 * API keys (`apiKeys`) as bearer tokens and, by their id, as SigV4 keys; every other access key id is asked of
 * `issued` (the store's access keys), when given.
 */
export function apiKeyCredentials(
  apiKey: string,
  issued?: AccessKeyLookup,
  apiKeys?: Pick<ApiKeys, 'verify' | 'sigV4'>,
): Credentials {
  const key = Buffer.from(apiKey);
  const principal: Principal = {
    project: DEFAULT_PROJECT,
    keyId: API_KEY_ID,
    role: 'admin',
    permissions: null,
  };
  const admin: AccessKey = { secret: apiKey, principal };
  return {
    bearer: async (token) => {
      const given = Buffer.from(token);
      if (given.length === key.length && timingSafeEqual(given, key)) return principal;
      const row = await apiKeys?.verify(token);
      return row && { project: row.project, keyId: row.id, role: row.role, permissions: null };
    },
    accessKey: async (id) => {
      if (id === API_KEY_ID) return admin;
      const k = await apiKeys?.sigV4(id);
      if (k) {
        const p: Principal = { project: k.row.project, keyId: k.row.id, role: k.row.role, permissions: null };
        return { secret: k.secret, principal: p };
      }
      return issued?.(id);
    },
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

const RANK: Record<Principal['role'], number> = {
  read: 0,
  invoke: 1,
  // Access keys from `nimbus credentials create` use the data APIs as they always have, within their grants.
  user: 2,
  function: 2,
  deploy: 2,
  admin: 3,
};

/** Whether the principal's role includes `role` (admin > deploy > invoke > read). */
export function hasRole(principal: Principal, role: KeyRole): boolean {
  return RANK[principal.role] >= RANK[role];
}

/** Refuses a principal whose role does not include `role`, saying which role it takes. */
export function requireRole(principal: Principal, role: KeyRole, what: string): void {
  if (!hasRole(principal, role)) {
    throw new ApiError(
      403,
      'AccessDenied',
      `key ${principal.keyId} has role ${principal.role}; to ${what} takes role ${role}`,
      role === 'admin'
        ? 'use an admin key of the project (`nimbus key create --role admin` with one)'
        : `use a key with role ${role} or above (\`nimbus key create --role ${role}\`)`,
    );
  }
}

/** The control API's operations on keys, credentials and secrets are an admin key's of the project. */
export function requireAdmin(principal: Principal, what: string): void {
  requireRole(principal, 'admin', what);
}

/** Whether the principal may only read: a key of role read, on every API (data APIs included). */
export function readOnly(principal: Principal): boolean {
  return principal.role === 'read';
}

/** Operations on other projects (creating, listing, removing them; acting in one with --project) are the
 *  `default` project's admins' only. */
export function isOperator(principal: Principal): boolean {
  return principal.project === DEFAULT_PROJECT && principal.role === 'admin';
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
 * Bearer tokens are the data dir's key and projects' API keys; issued access keys sign with SigV4 only.
 */
export async function authenticateBearer(
  creds: Credentials,
  authorization: string | undefined,
  missingCode = 'Unauthorized',
): Promise<Principal> {
  if (authorization?.startsWith('Bearer ')) {
    const principal = await creds.bearer(authorization.slice(7).trim());
    if (principal) return principal;
    throw new ApiError(
      401,
      'Unauthorized',
      'the API key is wrong, revoked or rotated',
      'use the key in <data dir>/api-key, or a project key from `nimbus key create`',
    );
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

// Who is calling: one step from a request to a Principal, whether it carries a bearer key or a SigV4
// signature. Today there is one credential (the API key, access key id "nimbus"); per-project keys and issued
// access keys replace `Credentials`, and nothing downstream changes.
import { timingSafeEqual } from 'node:crypto';
import { DEFAULT_PROJECT } from '../store/types.js';
import { ApiError } from './errors.js';
import { verifySigV4, type SigV4Request } from './sigv4.js';

export interface Principal {
  project: string;
  keyId: string;
  role: 'admin';
}

/** A SigV4 access key: the secret it signs with and whom it authenticates. */
export interface AccessKey {
  secret: string;
  principal: Principal;
}

export type AccessKeyLookup = (accessKeyId: string) => AccessKey | undefined;

export interface Credentials {
  /** The principal of a bearer token, or undefined. Compares in constant time. */
  bearer(token: string): Principal | undefined;
  accessKey: AccessKeyLookup;
}

export const API_KEY_ID = 'nimbus';

/** The single-tenant setup: the API key as bearer token, and as the secret of access key id "nimbus". */
export function apiKeyCredentials(apiKey: string): Credentials {
  const key = Buffer.from(apiKey);
  const principal: Principal = { project: DEFAULT_PROJECT, keyId: API_KEY_ID, role: 'admin' };
  return {
    bearer: (token) => {
      const given = Buffer.from(token);
      return given.length === key.length && timingSafeEqual(given, key) ? principal : undefined;
    },
    accessKey: (id) => (id === API_KEY_ID ? { secret: apiKey, principal } : undefined),
  };
}

/**
 * The principal of a request's bearer key, from its headers alone: it runs before the body is read, so nobody
 * without the key makes Nimbus buffer an upload. `missingCode` is the code of the 401 without any key.
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
export function authenticateSigV4(
  creds: Credentials,
  req: SigV4Request,
  now: number = Date.now(),
): Principal {
  const used: { key?: AccessKey | undefined } = {};
  const v = verifySigV4(req, (id) => (used.key = creds.accessKey(id))?.secret, now);
  // A verified signature means the lookup found the key it was made with.
  if (v.ok) return used.key!.principal;
  // AWS answers 403 for every signature problem but a missing one.
  const status = v.code === 'MissingAuthenticationToken' ? 401 : 403;
  throw new ApiError(
    status,
    v.code,
    v.message,
    'sign with access key id "nimbus" and the API key as the secret',
  );
}

// The control API's credentials (/v1/credentials): issue an access key (its secret is answered once and then
// only stored encrypted), list them without secrets, remove one. The admin's (the API key's) operations only.
import { TABLE_NAME } from '../config/manifest.js';
import { bucketNameProblem } from './s3/names.js';
import type { AccessKeys } from '../security/access-keys.js';
import type { Permissions, StoredCredential } from '../store/types.js';
import { API_KEY_ID, requireAdmin, type Principal } from './auth.js';
import { ApiError, badRequest, notFound } from './errors.js';

export interface CredentialDeps {
  accessKeys?: Pick<AccessKeys, 'create' | 'list' | 'remove' | 'describe' | 'lookup'>;
}

interface Req {
  principal: Principal;
  params: Record<string, string>;
  body: Buffer;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.@+=,:/-]{0,127}$/;

export async function createCredential(d: CredentialDeps, c: Req): Promise<unknown> {
  const keys = issued(d, c.principal, 'issue access keys');
  const { name, permissions } = parseCreate(c.body);
  const k = await keys.create({
    project: c.principal.project,
    name,
    kind: 'user',
    functionName: null,
    permissions,
  });
  return { ...view(k.credential), secretAccessKey: k.secretAccessKey };
}

export async function listCredentials(d: CredentialDeps, c: Req): Promise<unknown> {
  const keys = issued(d, c.principal, 'list access keys');
  return { credentials: (await keys.list(c.principal.project)).map(view) };
}

export async function removeCredential(d: CredentialDeps, c: Req): Promise<unknown> {
  const keys = issued(d, c.principal, 'remove access keys');
  const id = c.params['accessKeyId']!;
  if (id === API_KEY_ID) {
    throw badRequest(
      'access key id "nimbus" is the API key itself and cannot be removed',
      'to change it, replace <data dir>/api-key and restart',
    );
  }
  const found = await keys.describe(id);
  // Another project's key is as absent as one that never existed.
  if (!found || found.project !== c.principal.project) {
    throw notFound(`access key ${id}`, 'see `nimbus credentials ls`');
  }
  if (found.kind === 'function') {
    throw new ApiError(
      409,
      'FunctionKey',
      `access key ${id} belongs to function ${found.functionName ?? '?'} and is removed with it`,
      'remove the function (`nimbus rm`), or change what it may use in its manifest',
    );
  }
  if (!(await keys.remove(c.principal.project, id))) throw notFound(`access key ${id}`);
  return { removed: id };
}

function issued(
  d: CredentialDeps,
  principal: Principal,
  what: string,
): NonNullable<CredentialDeps['accessKeys']> {
  requireAdmin(principal, what);
  if (!d.accessKeys) {
    throw new ApiError(501, 'NotImplemented', 'this server does not issue access keys');
  }
  return d.accessKeys;
}

/** What the API shows of a key: never its secret. */
function view(c: StoredCredential): Record<string, unknown> {
  return {
    accessKeyId: c.accessKeyId,
    name: c.name,
    kind: c.kind,
    functionName: c.functionName,
    permissions: c.permissions,
    createdAt: c.createdAt,
  };
}

function parseCreate(body: Buffer): { name: string; permissions: Permissions | null } {
  let input: unknown;
  try {
    input = JSON.parse(body.length === 0 ? '{}' : body.toString('utf8'));
  } catch {
    throw badRequest('the body is not valid JSON', 'send {"name": "ci", "tables": ["items"]}');
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw badRequest('the body must be a JSON object', 'send {"name": "ci", "tables": ["items"]}');
  }
  const { name, tables, buckets, ...rest } = input as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) {
    throw badRequest(
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`,
      'send name, tables and buckets',
    );
  }
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw badRequest(
      'name must be 1 to 128 letters, digits, spaces or _.@+=,:/- starting with a letter or digit',
      'for example {"name": "ci"}',
    );
  }
  if (name.startsWith('function:')) {
    throw badRequest('names starting with "function:" are those of function keys', 'choose another name');
  }
  // Naming neither: every table and bucket of the project. Naming one: only what is named.
  if ((tables === undefined || tables === null) && (buckets === undefined || buckets === null)) {
    return { name, permissions: null };
  }
  const bucketList = bucketsOf(buckets);
  if (tables === undefined || tables === null)
    return { name, permissions: { tables: [], buckets: bucketList } };
  if (!Array.isArray(tables) || tables.some((t) => typeof t !== 'string' || !TABLE_NAME.test(t))) {
    throw badRequest(
      'tables must be a list of table names (3 to 255 letters, digits, "_", "-" or ".")',
      'for example {"tables": ["items"]}; leave it out for every table of the project',
    );
  }
  const permissions: Permissions = { tables: [...new Set(tables as string[])].sort() };
  if (buckets !== undefined && buckets !== null) permissions.buckets = bucketList;
  return { name, permissions };
}

function bucketsOf(buckets: unknown): string[] {
  if (buckets === undefined || buckets === null) return [];
  if (
    !Array.isArray(buckets) ||
    buckets.some((b) => typeof b !== 'string' || bucketNameProblem(b) !== undefined)
  ) {
    throw badRequest(
      'buckets must be a list of S3 bucket names (3 to 63 lower-case letters, digits, "." or "-")',
      'for example {"buckets": ["uploads"]}',
    );
  }
  return [...new Set(buckets as string[])].sort();
}

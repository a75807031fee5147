// The control API's secrets (/v1/secrets): set one (the body is the value), list them (names and dates, which
// functions use each), remove one. The admin's (the API key's) operations only, in the caller's project. No
// answer, error or log line carries a value: it goes from the body to the encryption and nowhere else.
import { secretNameProblem, secretRefs, SECRET_NAME_RULE } from '../config/secret-refs.js';
import type { FunctionRegistry } from '../invoker/registry.js';
import type { ProjectSecrets } from '../security/stored-secrets.js';
import type { FunctionRef, StoredSecret } from '../store/types.js';
import { requireAdmin, type Principal } from './auth.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { SECRET_BODY, SECRET_VALUE_BYTES } from './limits.js';

export interface SecretDeps {
  secrets?: Pick<ProjectSecrets, 'set' | 'list' | 'remove' | 'exists'>;
  registry: Pick<FunctionRegistry, 'all'>;
  /** Retires the idle instances of these functions, so their next invocations start with the new value. */
  recycle?: (refs: FunctionRef[]) => void;
}

interface Req {
  principal: Principal;
  params: Record<string, string>;
  body: Buffer;
}

export { SECRET_BODY };

export async function putSecret(d: SecretDeps, c: Req): Promise<unknown> {
  const secrets = enabled(d, c.principal, 'set secrets');
  const name = nameOf(c);
  const value = valueOf(c.body);
  const { secret, created } = await secrets.set(c.principal.project, name, value);
  const users = usersOf(d, c.principal.project, name);
  if (users.length > 0) d.recycle?.(users.map((f) => ({ project: c.principal.project, name: f })));
  return { ...view(secret), created, restarted: users };
}

export async function listSecrets(d: SecretDeps, c: Req): Promise<unknown> {
  const secrets = enabled(d, c.principal, 'list secrets');
  const all = await secrets.list(c.principal.project);
  return {
    secrets: all.map((s) => ({ ...view(s), usedBy: usersOf(d, c.principal.project, s.name) })),
  };
}

export async function removeSecret(d: SecretDeps, c: Req): Promise<unknown> {
  const secrets = enabled(d, c.principal, 'remove secrets');
  const name = nameOf(c);
  if (!(await secrets.exists(c.principal.project, name))) {
    throw notFound(`secret "${name}"`, 'see `nimbus secret ls`');
  }
  // Removing it would fail every cold start of these functions: refuse, and say who still needs it.
  const users = usersOf(d, c.principal.project, name);
  if (users.length > 0) {
    throw new ApiError(
      409,
      'SecretInUse',
      `secret "${name}" is referenced by function${users.length > 1 ? 's' : ''} ${users.join(', ')}`,
      'remove the ${secret:...} reference from their environment and deploy, or remove the functions (`nimbus rm`), first',
    );
  }
  if (!(await secrets.remove(c.principal.project, name))) throw notFound(`secret "${name}"`);
  return { removed: name };
}

function enabled(d: SecretDeps, principal: Principal, what: string): NonNullable<SecretDeps['secrets']> {
  requireAdmin(principal, what);
  if (!d.secrets) throw new ApiError(501, 'NotImplemented', 'this server does not keep secrets');
  return d.secrets;
}

function nameOf(c: Req): string {
  const name = c.params['name']!;
  const problem = secretNameProblem(name);
  if (problem) throw badRequest(problem, `for example db-password or app/db.password (${SECRET_NAME_RULE})`);
  return name;
}

/** The body as the value: UTF-8 text without NUL (an environment variable cannot hold one), 1 byte to 64 KB. */
function valueOf(body: Buffer): string {
  if (body.length === 0) {
    throw badRequest('the secret value is empty', 'send the value as the request body');
  }
  if (body.length > SECRET_VALUE_BYTES) {
    throw new ApiError(
      413,
      'SecretTooLarge',
      `a secret value is at most ${SECRET_VALUE_BYTES} bytes; this one has ${body.length}`,
      'keep large material (certificate bundles, files) in a bucket and the key to it in a secret',
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw badRequest('the secret value is not UTF-8 text', 'encode binary values, with base64 for example');
  }
  if (text.includes('\u0000')) {
    throw badRequest(
      'the secret value contains a NUL byte, which an environment variable cannot hold',
      'encode binary values, with base64 for example',
    );
  }
  return text;
}

/** The deployed functions of the project whose environment references the secret, by name. */
function usersOf(d: SecretDeps, project: string, secret: string): string[] {
  return d.registry
    .all(project)
    .filter((f) => secretRefs(f.config.environment).some((r) => r.secret === secret))
    .map((f) => f.name)
    .sort();
}

/** What the API shows of a secret: never its value or ciphertext. */
function view(s: StoredSecret): Record<string, unknown> {
  return { name: s.name, createdAt: s.createdAt, updatedAt: s.updatedAt };
}

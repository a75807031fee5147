// The control API's projects (/v1/projects), API keys (/v1/keys) and audit log (/v1/audit). A project's admin
// keys manage its keys; the `default` project's admin keys manage projects. A key's text is answered once, when
// it is created or rotated, and only its hash is kept.
import type { FunctionConfig } from '../config/manifest.js';
import { quotaMisfit } from '../config/quota-fit.js';
import { ProjectNotEmptyError, ProjectNotFoundError } from '../store/errors.js';
import {
  KEY_ROLES,
  NO_QUOTA,
  type AuditEntry,
  type KeyRole,
  type ProjectQuota,
  type ProjectQuotaUsage,
  type Store,
  type StoredApiKey,
} from '../store/types.js';
import type { ApiKeys } from '../security/api-keys.js';
import { API_KEY_ID, isOperator, requireAdmin, type Principal } from './auth.js';
import { ApiError, badRequest, notFound } from './errors.js';

export interface KeyDeps {
  apiKeys?: Pick<ApiKeys, 'create' | 'rotate' | 'list' | 'get' | 'remove'>;
  store: Pick<Store, 'projects' | 'audit' | 'quotas'>;
  /** This node's scaler: where concurrency and memory quotas are enforced, and what it runs per project. */
  nodeQuotas?: {
    apply(project: string, limits: { concurrency: number | null; memoryMB: number | null }): void;
    usage(project: string): { inFlight: number; instanceMemoryMB: number };
  };
  /** The project's deployed functions, which a lowered quota must still fit. */
  registry?: { all(project?: string): readonly { config: FunctionConfig }[] };
}

interface Req {
  principal: Principal;
  params: Record<string, string>;
  url: URL;
  body: Buffer;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.@+=,:/-]{0,127}$/;

export async function createProject(d: KeyDeps, c: Req): Promise<unknown> {
  operator(c.principal, 'create projects');
  const keys = keysOf(d);
  const { name } = objectBody(c.body, ['name'], '{"name": "team-a"}');
  if (typeof name !== 'string') throw badRequest('name must be a string', 'send {"name": "team-a"}');
  if (await d.store.projects.get(name)) {
    throw new ApiError(409, 'ProjectExists', `project ${name} exists already`, 'see `nimbus project ls`');
  }
  try {
    await d.store.projects.ensure(name);
  } catch (err) {
    throw badRequest(err instanceof Error ? err.message : String(err), 'for example "team-a"');
  }
  const first = await keys.create(name, 'first admin key', 'admin');
  return { project: name, key: { ...keyView(first.stored), key: first.key } };
}

export async function listProjects(d: KeyDeps, c: Req): Promise<unknown> {
  operator(c.principal, 'list projects');
  const [projects, quotas] = await Promise.all([d.store.projects.list(), d.store.quotas.list()]);
  const byName = new Map(quotas.map((q) => [q.project, q]));
  return {
    projects: projects.map((p) => {
      const q = byName.get(p.name);
      return { ...p, ...quotaView(d, q ?? { project: p.name, quota: NO_QUOTA, storageBytes: 0 }) };
    }),
  };
}

/** A project's quota and usage: its own keys may look, only the operator may change it. */
export async function getQuota(d: KeyDeps, c: Req): Promise<unknown> {
  const name = c.params['name']!;
  if (!isOperator(c.principal) && c.principal.project !== name) {
    // Another project is as absent to a tenant's key as one that never existed.
    throw notFound(`project ${name}`, 'a key sees its own project only');
  }
  return { project: name, ...quotaView(d, await quotaOf(d, name)) };
}

export async function setQuota(d: KeyDeps, c: Req): Promise<unknown> {
  operator(c.principal, 'set project quotas');
  const name = c.params['name']!;
  const patch = quotaPatch(c.body);
  const current = await quotaOf(d, name);
  const next = { ...current.quota, ...patch };
  const misfit = quotaMisfit(name, next, d.registry?.all(name).map((f) => f.config) ?? []);
  if (misfit) {
    throw new ApiError(
      409,
      'QuotaBelowReservations',
      `${misfit.message} (function ${misfit.function}, ${misfit.field})`,
      `lower ${misfit.field} of ${misfit.function} and deploy first, or choose a larger quota`,
    );
  }
  const saved = await d.store.quotas.set(name, patch);
  d.nodeQuotas?.apply(name, { concurrency: saved.quota.concurrency, memoryMB: saved.quota.memoryMB });
  return { project: name, ...quotaView(d, saved) };
}

async function quotaOf(d: KeyDeps, name: string): Promise<ProjectQuotaUsage> {
  try {
    return await d.store.quotas.get(name);
  } catch (err) {
    if (err instanceof ProjectNotFoundError) throw notFound(`project ${name}`, 'see `nimbus project ls`');
    throw err;
  }
}

/** Concurrency and memory are this node's (where they are enforced); storage is the store's, exact. */
function quotaView(d: KeyDeps, q: ProjectQuotaUsage): Record<string, unknown> {
  const node = d.nodeQuotas?.usage(q.project);
  return {
    quota: q.quota,
    usage: {
      concurrency: node?.inFlight ?? 0,
      memoryMB: node?.instanceMemoryMB ?? 0,
      storageBytes: q.storageBytes,
    },
  };
}

const QUOTA_EXAMPLE = '{"concurrency": 10, "memoryMB": 2048, "storageBytes": 1073741824}';
const QUOTA_FIELDS = ['concurrency', 'memoryMB', 'storageBytes'] as const;

/** The fields given, each a whole number of at least 1 or null (no limit); at least one of them. */
function quotaPatch(body: Buffer): Partial<ProjectQuota> {
  const input = objectBody(body, [...QUOTA_FIELDS], QUOTA_EXAMPLE);
  const patch: Partial<ProjectQuota> = {};
  for (const field of QUOTA_FIELDS) {
    if (!(field in input)) continue;
    const v = input[field];
    if (v !== null && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)) {
      throw badRequest(
        `${field} must be a whole number of at least 1, or null for no limit`,
        `send for example ${QUOTA_EXAMPLE}`,
      );
    }
    patch[field] = v;
  }
  if (Object.keys(patch).length === 0) {
    throw badRequest(`give at least one of ${QUOTA_FIELDS.join(', ')}`, `send for example ${QUOTA_EXAMPLE}`);
  }
  return patch;
}

export async function removeProject(d: KeyDeps, c: Req): Promise<unknown> {
  operator(c.principal, 'remove projects');
  const name = c.params['name']!;
  if (name === 'default') {
    throw badRequest('the default project cannot be removed', 'remove its functions with `nimbus rm`');
  }
  try {
    if (!(await d.store.projects.remove(name))) {
      throw notFound(`project ${name}`, 'see `nimbus project ls`');
    }
  } catch (err) {
    if (err instanceof ProjectNotEmptyError) {
      throw new ApiError(
        409,
        'ProjectNotEmpty',
        err.message,
        `act in it with --project ${name} to remove them`,
      );
    }
    throw err;
  }
  return { removed: name };
}

export async function createKey(d: KeyDeps, c: Req): Promise<unknown> {
  requireAdmin(c.principal, 'create API keys');
  const keys = keysOf(d);
  const { role, name } = objectBody(c.body, ['role', 'name'], '{"role": "deploy", "name": "ci"}');
  if (typeof role !== 'string' || !KEY_ROLES.includes(role as KeyRole)) {
    throw badRequest(`role must be one of ${KEY_ROLES.join(', ')}`, 'for example {"role": "deploy"}');
  }
  if (name !== undefined && (typeof name !== 'string' || !NAME.test(name))) {
    throw badRequest(
      'name must be 1 to 128 letters, digits, spaces or _.@+=,:/- starting with a letter or digit',
      'for example {"name": "ci"}',
    );
  }
  const k = await keys.create(c.principal.project, (name as string | undefined) ?? role, role as KeyRole);
  return { ...keyView(k.stored), key: k.key };
}

export async function listKeys(d: KeyDeps, c: Req): Promise<unknown> {
  requireAdmin(c.principal, 'list API keys');
  const keys = (await keysOf(d).list(c.principal.project)).map(keyView);
  // The data dir's key is default's first admin key; it lives in a file, not the store.
  if (c.principal.project === 'default') {
    keys.unshift({
      id: API_KEY_ID,
      name: '<data dir>/api-key',
      role: 'admin',
      createdAt: null,
      rotatedAt: null,
    });
  }
  return { keys };
}

export async function revokeKey(d: KeyDeps, c: Req): Promise<unknown> {
  requireAdmin(c.principal, 'revoke API keys');
  const id = idParam(c);
  if (id === c.principal.keyId) {
    throw badRequest(
      `key ${id} is the key making this request`,
      'revoke it with another admin key, so the project is never left without one',
    );
  }
  if (!(await keysOf(d).remove(c.principal.project, id))) throw keyNotFound(id);
  return { revoked: id };
}

export async function rotateKey(d: KeyDeps, c: Req): Promise<unknown> {
  requireAdmin(c.principal, 'rotate API keys');
  const id = idParam(c);
  const k = await keysOf(d).rotate(c.principal.project, id);
  if (!k) throw keyNotFound(id);
  return { ...keyView(k.stored), key: k.key };
}

export async function listAudit(d: KeyDeps, c: Req): Promise<unknown> {
  requireAdmin(c.principal, 'read the audit log');
  const since = c.url.searchParams.get('since');
  const limit = c.url.searchParams.get('limit');
  const action = c.url.searchParams.get('action');
  const sinceMs = since === null ? undefined : Number(since);
  const n = limit === null ? 100 : Number(limit);
  if (sinceMs !== undefined && !Number.isFinite(sinceMs)) {
    throw badRequest('since must be a time in epoch milliseconds', 'for example ?since=1764633600000');
  }
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw badRequest('limit must be 1 to 1000');
  const entries: AuditEntry[] = await d.store.audit.list({
    project: c.principal.project,
    ...(sinceMs !== undefined ? { since: sinceMs } : {}),
    ...(action ? { action } : {}),
    limit: n,
  });
  return { entries };
}

/** What the API shows of a key: never its hash or sealed SigV4 secret. */
function keyView(k: StoredApiKey): Record<string, unknown> {
  return { id: k.id, name: k.name, role: k.role, createdAt: k.createdAt, rotatedAt: k.rotatedAt };
}

function operator(principal: Principal, what: string): void {
  if (!isOperator(principal)) {
    throw new ApiError(
      403,
      'AccessDenied',
      `only an admin key of project "default" may ${what}`,
      'use the key in <data dir>/api-key, or another admin key of "default"',
    );
  }
}

function keysOf(d: KeyDeps): NonNullable<KeyDeps['apiKeys']> {
  if (!d.apiKeys) throw new ApiError(501, 'NotImplemented', 'this server does not issue API keys');
  return d.apiKeys;
}

function idParam(c: Req): string {
  const id = c.params['id']!;
  if (id === API_KEY_ID) {
    throw badRequest(
      'key "nimbus" is the data dir\'s key and lives in <data dir>/api-key',
      'to change it, replace that file and restart',
    );
  }
  return id;
}

function keyNotFound(id: string): ApiError {
  // Another project's key is as absent as one that never existed.
  return notFound(`API key ${id}`, 'see `nimbus key ls`');
}

export function objectBody(body: Buffer, fields: string[], example: string): Record<string, unknown> {
  let input: unknown;
  try {
    input = JSON.parse(body.length === 0 ? '{}' : body.toString('utf8'));
  } catch {
    throw badRequest('the body is not valid JSON', `send ${example}`);
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw badRequest('the body must be a JSON object', `send ${example}`);
  }
  const unknown = Object.keys(input).filter((k) => !fields.includes(k));
  if (unknown.length > 0) throw badRequest(`unknown field ${unknown.join(', ')}`, `send ${example}`);
  return input as Record<string, unknown>;
}

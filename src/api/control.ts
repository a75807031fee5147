// The control API (/v1/...): one handler per operation, each acting in the caller's project. Handlers return
// the JSON body of a 200 and throw ApiErrors; the listener does authentication, body limits and the wire.
import { PackageError } from '../build/package.js';
import { DEFAULT_EPHEMERAL_MB, ManifestError } from '../config/manifest.js';
import type { FunctionRegistry } from '../invoker/registry.js';
import type { FunctionScaleStats } from '../scaler/scaler.js';
import type {
  FunctionRef,
  FunctionVersion,
  Store,
  StoredInvocation,
  StoredSchedule,
  EventQueueStats,
} from '../store/types.js';
import { requireRole, type Principal } from './auth.js';
import type { KeyRole } from '../store/types.js';
import {
  createKey,
  createProject,
  listAudit,
  listKeys,
  listProjects,
  getQuota,
  setQuota,
  removeProject,
  revokeKey,
  rotateKey,
  type KeyDeps,
} from './keys.js';
import type { DeployOptions, DeployResponse } from './deploy.js';
import { LoadCheckError } from './deploy-check.js';
import { createGatewayKey, listGatewayKeys, removeGatewayKey, type GatewayKeyDeps } from './gateway-keys.js';
import { ApiError, badRequest, functionNotFound, notFound } from './errors.js';
import { getEvent, listEvents, replayEvent, type EventDeps } from './events.js';
import { getQueue, listQueues, peekMessages, purgeQueue, sendMessages, type QueueDeps } from './queues.js';
import { dropTable, getItemView, listTablesView, scanItems, type TableDeps } from './tables.js';
import { createCredential, listCredentials, removeCredential, type CredentialDeps } from './credentials.js';
import { DEPLOY_BODY } from './limits.js';
import type { InspectSessions } from './inspect.js';
import { listSecrets, putSecret, removeSecret, SECRET_BODY, type SecretDeps } from './secrets.js';
import type { Route } from './routes.js';
import { costReport, when, type CostDeps } from './cost.js';
import { getInvocationTrace, getTrace, type TraceDeps } from './traces.js';
import { invocationStats } from './stats.js';
import { LogPatternError, isEmptyPattern, parseLogPattern } from '../store/log-pattern.js';
import { INVOCATION_STATUSES, type InvocationQuery, type InvocationStatus } from '../store/types.js';

export interface ControlDeps
  extends
    Omit<CostDeps, 'store'>,
    EventDeps,
    QueueDeps,
    TableDeps,
    CredentialDeps,
    SecretDeps,
    Omit<KeyDeps, 'store'>,
    Omit<GatewayKeyDeps, 'registry'>,
    Omit<TraceDeps, 'store'> {
  store: Pick<
    Store,
    | 'functions'
    | 'invocations'
    | 'spans'
    | 'events'
    | 'schedules'
    | 'queues'
    | 'tables'
    | 'projects'
    | 'audit'
    | 'quotas'
    | 'sessions'
    | 'usage'
  >;
  logger?: { error(obj: object, msg: string): void };
  registry: Pick<FunctionRegistry, 'get' | 'all' | 'load'>;
  invoker: {
    stats(): (FunctionScaleStats & { project: string; version: number })[];
    policyName(ref: FunctionRef): string;
  };
  deployer: {
    deploy(archive: Buffer, project: string, opts?: DeployOptions): Promise<DeployResponse>;
    /** Deletes the code no deployed version runs any more (store and data dir), after a removal. */
    collectCode?(): Promise<void>;
  };
  /** Resolves once the triggers and function keys have taken in the latest change (a removal). */
  synced?: () => Promise<void>;

  status: () => Record<string, unknown>;
  stemCells: () => unknown;
  region: string;
  accountId: string;
  /** Where the gateway serves a project's routes. */
  gatewayUrl?: (project: string) => string;
  /** `nimbus dev --inspect` (api/inspect.ts); absent, inspection is refused as outside dev mode. */
  inspector?: Pick<InspectSessions, 'openOrRenew' | 'close'>;
}

export interface ControlRequest {
  principal: Principal;
  params: Record<string, string>;
  url: URL;
  body: Buffer;
}

export type ControlHandler = (c: ControlRequest) => Promise<unknown>;

export function controlRoutes(d: ControlDeps): Route<ControlHandler>[] {
  return [
    { method: 'GET', path: '/v1/health', handler: async () => ({ status: 'ok', ...d.status() }) },
    {
      method: 'POST',
      path: '/v1/deploy',
      body: DEPLOY_BODY,
      handler: acts(d, 'deploy', 'deploy', (c) => deploy(d, c), {
        action: 'deploy',
        target: (_, r) => (r as DeployResponse).service,
        detail: (_, r) => {
          const res = r as DeployResponse;
          return {
            functions: res.functions.filter((f) => f.changed).map((f) => `${f.name}:${f.version}`),
            removed: res.removed,
          };
        },
      }),
    },
    { method: 'GET', path: '/v1/functions', handler: (c) => listFunctions(d, c) },
    { method: 'GET', path: '/v1/functions/{name}', handler: (c) => getFunction(d, c) },
    {
      method: 'DELETE',
      path: '/v1/functions/{name}',
      handler: acts(d, 'deploy', 'remove functions', (c) => removeFunction(d, c), {
        action: 'function.remove',
        target: (c) => c.params['name']!,
      }),
    },
    { method: 'GET', path: '/v1/functions/{name}/logs', handler: (c) => logs(d, c) },
    {
      method: 'POST',
      path: '/v1/functions/{name}/inspect',
      // A debugger runs any code in the function: the role that may deploy it.
      handler: acts(d, 'deploy', 'inspect functions', (c) => openInspector(d, c), {
        action: 'function.inspect',
        target: (c) => c.params['name']!,
      }),
    },
    {
      method: 'DELETE',
      path: '/v1/functions/{name}/inspect',
      handler: acts(d, 'deploy', 'inspect functions', async (c) => ({
        closed: d.inspector?.close({ project: c.principal.project, name: c.params['name']! }) ?? false,
      })),
    },
    { method: 'GET', path: '/v1/invocations', handler: (c) => invocations(d, c) },
    { method: 'GET', path: '/v1/invocations/stats', handler: (c) => invocationStats(d, c) },
    { method: 'GET', path: '/v1/invocations/{requestId}', handler: (c) => getInvocation(d, c) },
    { method: 'GET', path: '/v1/invocations/{requestId}/trace', handler: (c) => getInvocationTrace(d, c) },
    { method: 'GET', path: '/v1/traces/{traceId}', handler: (c) => getTrace(d, c) },
    { method: 'GET', path: '/v1/cost', handler: (c) => costReport(d, c) },
    { method: 'GET', path: '/v1/events', handler: (c) => listEvents(d, c) },
    { method: 'GET', path: '/v1/events/{id}', handler: (c) => getEvent(d, c) },
    {
      method: 'POST',
      path: '/v1/events/{id}/replay',
      handler: acts(d, 'invoke', 'replay events', (c) => replayEvent(d, c), {
        action: 'event.replay',
        target: (c) => c.params['id']!,
      }),
    },
    { method: 'GET', path: '/v1/queues', handler: (c) => listQueues(d, c) },
    { method: 'GET', path: '/v1/queues/{name}', handler: (c) => getQueue(d, c) },
    {
      method: 'POST',
      path: '/v1/queues/{name}/messages',
      handler: acts(d, 'invoke', 'send messages', (c) => sendMessages(d, c)),
    },
    { method: 'GET', path: '/v1/queues/{name}/messages', handler: (c) => peekMessages(d, c) },
    {
      method: 'DELETE',
      path: '/v1/queues/{name}/messages',
      handler: acts(d, 'deploy', 'purge queues', (c) => purgeQueue(d, c), {
        action: 'queue.purge',
        target: (c) => c.params['name']!,
      }),
    },
    { method: 'GET', path: '/v1/tables', handler: (c) => listTablesView(d, c) },
    { method: 'GET', path: '/v1/tables/{name}/items', handler: (c) => scanItems(d, c) },
    { method: 'GET', path: '/v1/tables/{name}/item', handler: (c) => getItemView(d, c) },
    {
      method: 'DELETE',
      path: '/v1/tables/{name}',
      handler: acts(d, 'deploy', 'drop tables', (c) => dropTable(d, c), {
        action: 'table.drop',
        target: (c) => c.params['name']!,
      }),
    },
    {
      method: 'POST',
      path: '/v1/credentials',
      handler: acts(d, 'admin', 'issue access keys', (c) => createCredential(d, c), {
        action: 'credential.create',
        target: (_, r) => String((r as { accessKeyId: string }).accessKeyId),
      }),
    },
    { method: 'GET', path: '/v1/credentials', handler: (c) => listCredentials(d, c) },
    {
      method: 'DELETE',
      path: '/v1/credentials/{accessKeyId}',
      handler: acts(d, 'admin', 'remove access keys', (c) => removeCredential(d, c), {
        action: 'credential.remove',
        target: (c) => c.params['accessKeyId']!,
      }),
    },
    {
      method: 'POST',
      path: '/v1/projects',
      handler: acts(d, 'admin', 'create projects', (c) => createProject(d, c), {
        action: 'project.create',
        target: (_, r) => (r as { project: string }).project,
      }),
    },
    { method: 'GET', path: '/v1/projects', handler: (c) => listProjects(d, c) },
    { method: 'GET', path: '/v1/projects/{name}/quota', handler: (c) => getQuota(d, c) },
    {
      method: 'PUT',
      path: '/v1/projects/{name}/quota',
      handler: acts(d, 'admin', 'set project quotas', (c) => setQuota(d, c), {
        action: 'project.quota',
        target: (c) => c.params['name']!,
        detail: (_, r) => (r as { quota: Record<string, unknown> }).quota,
      }),
    },
    {
      method: 'DELETE',
      path: '/v1/projects/{name}',
      handler: acts(d, 'admin', 'remove projects', (c) => removeProject(d, c), {
        action: 'project.remove',
        target: (c) => c.params['name']!,
      }),
    },
    {
      method: 'POST',
      path: '/v1/keys',
      handler: acts(d, 'admin', 'create API keys', (c) => createKey(d, c), {
        action: 'key.create',
        target: (_, r) => (r as { id: string }).id,
        detail: (_, r) => ({ role: (r as { role: string }).role }),
      }),
    },
    { method: 'GET', path: '/v1/keys', handler: (c) => listKeys(d, c) },
    {
      method: 'DELETE',
      path: '/v1/keys/{id}',
      handler: acts(
        d,
        'admin',
        'revoke API keys',
        endingSessions(d, (c) => revokeKey(d, c)),
        {
          action: 'key.revoke',
          target: (c) => c.params['id']!,
        },
      ),
    },
    {
      method: 'POST',
      path: '/v1/keys/{id}/rotate',
      handler: acts(
        d,
        'admin',
        'rotate API keys',
        endingSessions(d, (c) => rotateKey(d, c)),
        {
          action: 'key.rotate',
          target: (c) => c.params['id']!,
        },
      ),
    },
    {
      method: 'PUT',
      path: '/v1/secrets/{name}',
      body: SECRET_BODY,
      handler: acts(d, 'admin', 'set secrets', (c) => putSecret(d, c), {
        action: 'secret.set',
        target: (c) => c.params['name']!,
      }),
    },
    { method: 'GET', path: '/v1/secrets', handler: (c) => listSecrets(d, c) },
    {
      method: 'DELETE',
      path: '/v1/secrets/{name}',
      handler: acts(d, 'admin', 'remove secrets', (c) => removeSecret(d, c), {
        action: 'secret.remove',
        target: (c) => c.params['name']!,
      }),
    },
    {
      method: 'POST',
      path: '/v1/api-keys',
      handler: acts(d, 'deploy', 'create gateway API keys', (c) => createGatewayKey(d, c), {
        action: 'apikey.create',
        target: (_, r) => (r as { id: string }).id,
        detail: (_, r) => ({ plan: (r as { plan: string }).plan }),
      }),
    },
    { method: 'GET', path: '/v1/api-keys', handler: (c) => listGatewayKeys(d, c) },
    {
      method: 'DELETE',
      path: '/v1/api-keys/{id}',
      handler: acts(d, 'deploy', 'revoke gateway API keys', (c) => removeGatewayKey(d, c), {
        action: 'apikey.revoke',
        target: (c) => c.params['id']!,
      }),
    },
    { method: 'GET', path: '/v1/audit', handler: (c) => listAudit(d, c) },
  ];
}

/** What the audit log keeps of an action that succeeded. */
interface Audited {
  action: string;
  target?: (c: ControlRequest, result: unknown) => string;
  detail?: (c: ControlRequest, result: unknown) => Record<string, unknown>;
}

/**
 * A changing operation: refused unless the key's role includes `role`, and written to the audit log once it
 * succeeded (who: the key, in which project). The action has happened by then, so an audit write that fails
 * is logged as a platform error rather than answered as a failure of the action.
 */
export function acts(
  d: Pick<ControlDeps, 'store' | 'logger'>,
  role: KeyRole,
  what: string,
  handler: ControlHandler,
  audited?: Audited,
): ControlHandler {
  return async (c) => {
    requireRole(c.principal, role, what);
    const result = await handler(c);
    if (audited) {
      const entry = {
        project: c.principal.project,
        actor: c.principal.keyId,
        action: audited.action,
        target: audited.target?.(c, result) ?? null,
        detail: audited.detail?.(c, result) ?? null,
      };
      await Promise.resolve()
        .then(() => d.store.audit.append(entry))
        .catch((err: unknown) => {
          d.logger?.error({ err, entry }, 'the audit log could not be written');
        });
    }
    return result;
  };
}

/** A key revoked or rotated ends the console sessions opened with it (docs/console.md). */
function endingSessions(d: Pick<ControlDeps, 'store'>, handler: ControlHandler): ControlHandler {
  return async (c) => {
    const result = await handler(c);
    await d.store.sessions.removeForKey(c.params['id']!);
    return result;
  };
}

async function listFunctions(d: ControlDeps, c: ControlRequest): Promise<unknown> {
  const extras = await extrasOf(d, c.principal.project);
  return {
    functions: d.registry.all(c.principal.project).map((f) => view(d, f, extras)),
    stemCells: d.stemCells(),
    ...gatewayUrlOf(d, c.principal.project),
  };
}

async function openInspector(d: ControlDeps, c: ControlRequest): Promise<unknown> {
  const fn = existing(d, c);
  if (!d.inspector) {
    throw new ApiError(
      403,
      'InspectorRefused',
      'this server is not in dev mode, and never opens an inspector outside it',
      'let `nimbus dev` start the server, or start it with NIMBUS_DEV=1 (refused under NODE_ENV=production)',
    );
  }
  const raw = c.url.searchParams.get('port');
  const port = raw === null ? undefined : Number(raw);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw badRequest(`query parameter port must be a port number (0 to 65535)`, `got "${raw}"`);
  }
  return d.inspector.openOrRenew({ project: fn.project, name: fn.name }, port);
}

async function getFunction(d: ControlDeps, c: ControlRequest): Promise<unknown> {
  return view(d, existing(d, c), await extrasOf(d, c.principal.project));
}

interface Extras {
  schedules: StoredSchedule[];
  queue: EventQueueStats[];
}

async function extrasOf(d: ControlDeps, project: string): Promise<Extras> {
  const [schedules, queue] = await Promise.all([
    d.store.schedules.list(project),
    d.store.events.stats(project),
  ]);
  return { schedules, queue };
}

async function removeFunction(d: ControlDeps, c: ControlRequest): Promise<unknown> {
  const name = c.params['name']!;
  if (!(await d.store.functions.removeFunction({ project: c.principal.project, name }))) {
    throw functionNotFound(d.region, d.accountId, name);
  }
  await d.registry.load();
  // What `nimbus rm` answers is what comes next: the function's key and triggers are gone too.
  await d.synced?.();
  await d.deployer.collectCode?.();
  return { removed: name };
}

async function getInvocation(d: ControlDeps, c: ControlRequest): Promise<unknown> {
  const id = c.params['requestId']!;
  await d.store.invocations.flush();
  const rec = await d.store.invocations.get(id);
  // Another project's record is as absent as one that never existed.
  if (!rec || rec.project !== c.principal.project) throw notFound(`invocation ${id}`);
  return rec;
}

/** The function named in the path, in the caller's project. */
function existing(d: ControlDeps, c: ControlRequest): FunctionVersion {
  const name = c.params['name']!;
  const f = d.registry.get({ project: c.principal.project, name });
  if (!f) throw functionNotFound(d.region, d.accountId, name);
  return f;
}

function view(d: ControlDeps, f: FunctionVersion, extras: Extras): Record<string, unknown> {
  const mine = extras.schedules.filter((s) => s.functionName === f.name);
  const q = extras.queue.find((s) => s.functionName === f.name);
  return {
    ...summary(f),
    scaling: scaling(d, f),
    events: {
      pending: q?.pending ?? 0,
      inFlight: q?.inFlight ?? 0,
      dead: q?.dead ?? 0,
      oldestPendingAt: q?.oldestPendingAt ?? null,
    },
    schedules: mine.map((s) => ({
      expression: s.expression,
      timezone: s.timezone,
      // A cron whose year range is over never fires again.
      nextFireAt: s.nextFireAt >= Number.MAX_SAFE_INTEGER ? null : s.nextFireAt,
    })),
  };
}

async function deploy(d: ControlDeps, c: ControlRequest): Promise<DeployResponse> {
  if (c.body.length === 0)
    throw badRequest('the deploy body is empty', 'send a tar.gz of the service folder');
  const verify = c.url.searchParams.get('verify');
  if (verify !== null && verify !== 'true' && verify !== 'false') {
    throw badRequest(`verify must be true or false, not "${verify}"`, 'leave it out to check the handlers');
  }
  const keep = keepParam(c.url.searchParams.get('keep'));
  try {
    const res = await d.deployer.deploy(c.body, c.principal.project, {
      verify: verify !== 'false',
      ...(keep ? { keep } : {}),
    });
    return { ...res, ...gatewayUrlOf(d, c.principal.project) };
  } catch (err) {
    throw deployError(err);
  }
}

/** ?keep=a:3,b:1: functions that keep the named deployed version while their config is unchanged. */
function keepParam(value: string | null): Record<string, number> | undefined {
  if (value === null || value === '') return undefined;
  // No prototype: a function may be called __proto__.
  const keep = Object.create(null) as Record<string, number>;
  for (const item of value.split(',')) {
    const m = /^([A-Za-z0-9_-]{1,64}):([1-9][0-9]{0,9})$/.exec(item);
    if (!m) {
      throw badRequest(
        `keep must be a list of name:version pairs (a:3,b:1), and "${item.slice(0, 80)}" is not one`,
        'leave it out to deploy every function whose code or config changed',
      );
    }
    keep[m[1]!] = Number(m[2]);
  }
  return keep;
}

/** { gatewayUrl }: where the project's routes are served, when the server knows its gateway. */
function gatewayUrlOf(d: ControlDeps, project: string): { gatewayUrl?: string } {
  return d.gatewayUrl ? { gatewayUrl: d.gatewayUrl(project) } : {};
}

/** The refusals of a deploy, as the client sees them; anything else stays an internal error. */
function deployError(err: unknown): unknown {
  if (err instanceof LoadCheckError) {
    return new ApiError(
      400,
      'HandlerLoadFailed',
      err.message,
      'fix the code and deploy again, or deploy with --no-verify to skip the check',
      undefined,
      undefined,
      { failures: err.failures },
    );
  }
  if (err instanceof ManifestError) {
    return new ApiError(
      400,
      'InvalidManifest',
      err.message,
      err.hint ?? 'fix the field named and deploy again',
    );
  }
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  if (err instanceof Error && code === 'FunctionOwnedByOtherService') {
    return new ApiError(
      409,
      'FunctionOwnedByOtherService',
      err.message,
      'rename the function or remove it first',
    );
  }
  if (err instanceof Error && code === 'ProjectNotFound') {
    return new ApiError(404, 'ProjectNotFound', err.message, 'check the project of your API key');
  }
  if (err instanceof PackageError) {
    return badRequest(`the uploaded archive was refused: ${err.message}`, err.hint);
  }
  if (
    err instanceof Error &&
    /TAR_|zlib|incorrect header|unexpected end/i.test(`${String(code)} ${err.message}`)
  ) {
    return badRequest(
      `the deploy body is not a valid tar.gz archive (${err.message})`,
      'deploy with `nimbus deploy`',
    );
  }
  return err;
}

async function logs(d: ControlDeps, c: ControlRequest): Promise<unknown> {
  existing(d, c);
  const q = invocationFilters(c.url);
  await d.store.invocations.flush();
  const records = await d.store.invocations.query({
    ...q,
    project: c.principal.project,
    functionName: c.params['name']!,
    ascending: true,
    limit: q.limit ?? 1000,
  });
  const cursor = records.length > 0 ? records[records.length - 1]!.seq : (q.after ?? 0);
  return { records: records.map(logRecord), cursor };
}

/** Newest first unless order=asc; the cursor is the seq to pass as after (asc) or before (desc) next. */
async function invocations(d: ControlDeps, c: ControlRequest): Promise<unknown> {
  const q = invocationFilters(c.url);
  const functions = c.url.searchParams
    .getAll('function')
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  const order = c.url.searchParams.get('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc') {
    throw badRequest('query parameter order must be "asc" or "desc"', `got "${order}"`);
  }
  await d.store.invocations.flush();
  const records = await d.store.invocations.query({
    ...q,
    project: c.principal.project,
    ...(functions.length > 0 ? { functionNames: functions } : {}),
    ascending: order === 'asc',
  });
  const last = records.at(-1);
  const cursor = last ? last.seq : order === 'asc' ? (q.after ?? 0) : (q.before ?? null);
  return { invocations: records, cursor };
}

/** The filters both record listings take, each parsed (and refused with a 400 naming it) once, here. */
function invocationFilters(url: URL): InvocationQuery {
  const p = url.searchParams;
  const now = Date.now();
  const q: InvocationQuery = {};
  const statuses = p
    .getAll('status')
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  for (const s of statuses) {
    if (!(INVOCATION_STATUSES as readonly string[]).includes(s)) {
      throw badRequest(
        `query parameter status must be one of ${INVOCATION_STATUSES.join(', ')}`,
        `got "${s}"`,
      );
    }
  }
  if (statuses.length > 0) q.status = statuses as InvocationStatus[];
  const text = p.get('q');
  if (text !== null && text.trim() !== '') {
    try {
      const pattern = parseLogPattern(text);
      if (!isEmptyPattern(pattern)) q.pattern = pattern;
    } catch (err) {
      if (!(err instanceof LogPatternError)) throw err;
      throw badRequest(`query parameter q is not a filter pattern: ${err.message}`, `got "${text}"`);
    }
  }
  const requestId = p.get('requestId');
  if (requestId !== null && requestId !== '') q.requestId = requestId;
  const since = when(p.get('since'), 'since', now);
  const until = when(p.get('until'), 'until', now);
  if (since !== undefined) q.since = since;
  if (until !== undefined) q.until = until;
  if (since !== undefined && until !== undefined && since >= until) {
    throw badRequest('query parameter since must be before until', `got since=${since} until=${until}`);
  }
  for (const k of ['after', 'before', 'limit'] as const) {
    const v = numberParam(url, k);
    if (v !== undefined) {
      if (!Number.isInteger(v) || v < 0) {
        throw badRequest(`query parameter ${k} must be a whole number`, `got "${p.get(k)}"`);
      }
      q[k] = v;
    }
  }
  return q;
}

type Counter =
  'busy' | 'idle' | 'starting' | 'provisioned' | 'cold' | 'warm' | 'throttled' | 'evicted' | 'queued';

/** Instance counts and counters of a function, summed over its versions still holding instances. */
function scaling(d: ControlDeps, f: FunctionVersion): Record<string, number | string> {
  const rows = d.invoker.stats().filter((s) => s.project === f.project && s.name === f.name);
  const sum = (k: Counter): number => rows.reduce((n, r) => n + r[k], 0);
  return {
    busy: sum('busy'),
    idle: sum('idle'),
    starting: sum('starting'),
    provisioned: sum('provisioned'),
    cold: sum('cold'),
    warm: sum('warm'),
    queued: sum('queued'),
    throttled: sum('throttled'),
    evicted: sum('evicted'),
    keepAlive: rows[0]?.policy ?? d.invoker.policyName({ project: f.project, name: f.name }),
  };
}

function summary(f: FunctionVersion): Record<string, unknown> {
  return {
    name: f.name,
    service: f.service,
    version: f.version,
    handler: f.config.handler,
    runtime: f.config.runtime,
    memory: f.config.memory,
    ephemeralStorage: f.config.ephemeralStorage ?? DEFAULT_EPHEMERAL_MB,
    network: f.config.network ?? 'outbound',
    timeout: f.config.timeout,
    // As stored: a secret's reference (${secret:NAME}), never its value.
    environment: f.config.environment,
    reservedConcurrency: f.config.reservedConcurrency ?? null,
    // Lambda's LoggingConfig, with its defaults filled in (levels apply to JSON only).
    logging: {
      logFormat: f.config.logFormat ?? 'Text',
      ...(f.config.logFormat === 'JSON'
        ? {
            applicationLogLevel: f.config.applicationLogLevel ?? 'INFO',
            systemLogLevel: f.config.systemLogLevel ?? 'INFO',
          }
        : {}),
    },
    routes: f.config.routes.map((r) => `${r.method} ${r.path}`),
    codeSize: f.codeSize,
    codeSha256: f.codeSha256,
    deployedAt: f.deployedAt,
  };
}

/** The logs view: the project stays in the full records. */
function logRecord(r: StoredInvocation): Record<string, unknown> {
  return {
    seq: r.seq,
    requestId: r.requestId,
    version: r.version,
    trigger: r.trigger,
    attempt: r.attempt,
    start: r.start,
    durationMs: r.durationMs,
    billedMs: r.billedMs,
    memoryMB: r.memoryMB,
    maxRssBytes: r.maxRssBytes,
    initMs: r.initMs,
    requests: r.requests,
    gbSeconds: r.gbSeconds,
    costPicoUsd: r.costPicoUsd,
    status: r.status,
    cold: r.cold,
    errorType: r.errorType,
    errorMessage: r.errorMessage,
    logs: r.logs,
  };
}

function numberParam(url: URL, name: string): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw badRequest(`query parameter ${name} must be a number`, `got "${v}"`);
  return n;
}

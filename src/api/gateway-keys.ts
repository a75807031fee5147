// The control API's gateway API keys (/v1/api-keys): keys callers send to the gateway in x-api-key, issued in
// the caller's project under one of its usage plans (http.usagePlans of a deployed service). A key's text is
// answered once, at creation; only its hash is kept. Listing shows each key's usage against its plan's quota.
import type { Clock } from '../clock/clock.js';
import { usagePlansOf, type UsagePlan } from '../config/manifest.js';
import type { FunctionRegistry } from '../invoker/registry.js';
import { periodOf } from '../gateway/quotas.js';
import type { GatewayKeys } from '../security/gateway-keys.js';
import type { GatewayKeyStore, StoredGatewayKey } from '../store/types.js';
import { requireRole, type Principal } from './auth.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { objectBody } from './keys.js';

export interface GatewayKeyDeps {
  gatewayKeys?: Pick<GatewayKeys, 'create' | 'list' | 'remove'>;
  gatewayKeyUsage?: Pick<GatewayKeyStore, 'usage'>;
  /** Settles this node's counted requests, so a listing includes them. */
  quotas?: { flush(): Promise<void> };
  registry: Pick<FunctionRegistry, 'all'>;
  clock?: Clock;
}

interface Req {
  principal: Principal;
  params: Record<string, string>;
  body: Buffer;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 _.@+=,:/-]{0,127}$/;

export async function createGatewayKey(d: GatewayKeyDeps, c: Req): Promise<unknown> {
  const keys = keysOf(d);
  const { plan, name } = objectBody(c.body, ['plan', 'name'], '{"plan": "free", "name": "partner-a"}');
  const plans = usagePlansOf(d.registry.all(c.principal.project));
  const declared = [...plans.keys()].sort();
  const hint =
    declared.length > 0
      ? `the project's plans: ${declared.join(', ')}`
      : 'declare one under http.usagePlans in a service manifest and deploy it';
  if (typeof plan !== 'string' || plan === '') throw badRequest('plan must be a usage plan name', hint);
  if (!plans.has(plan)) {
    throw badRequest(
      `usage plan "${plan}" is not declared by any service of project ${c.principal.project}`,
      hint,
    );
  }
  if (name !== undefined && (typeof name !== 'string' || !NAME.test(name))) {
    throw badRequest(
      'name must be 1 to 128 letters, digits, spaces or _.@+=,:/- starting with a letter or digit',
      'for example {"name": "partner-a"}',
    );
  }
  const k = await keys.create(c.principal.project, (name as string | undefined) ?? plan, plan);
  return { ...(await views(d, c.principal.project, [k.stored]))[0], key: k.key };
}

export async function listGatewayKeys(d: GatewayKeyDeps, c: Req): Promise<unknown> {
  requireRole(c.principal, 'deploy', 'list gateway API keys');
  const keys = await keysOf(d).list(c.principal.project);
  await d.quotas?.flush();
  return { apiKeys: await views(d, c.principal.project, keys) };
}

export async function removeGatewayKey(d: GatewayKeyDeps, c: Req): Promise<unknown> {
  const id = c.params['id']!;
  // Another project's key is as absent as one that never existed.
  if (!(await keysOf(d).remove(c.principal.project, id))) {
    throw notFound(`gateway API key ${id}`, 'see `nimbus apikey ls`');
  }
  return { revoked: id };
}

/** What the API shows of a key (never its hash): its plan's limits and this period's usage. */
async function views(d: GatewayKeyDeps, project: string, keys: StoredGatewayKey[]) {
  const plans = usagePlansOf(d.registry.all(project));
  const usage = (await d.gatewayKeyUsage?.usage(project)) ?? [];
  const now = d.clock?.now() ?? Date.now();
  return keys.map((k) => {
    const plan: UsagePlan | undefined = plans.get(k.plan)?.plan;
    const q = plan?.quota;
    const period = q ? periodOf(q.period, now) : undefined;
    const row = period ? usage.find((u) => u.keyId === k.id && u.period === period) : undefined;
    return {
      id: k.id,
      name: k.name,
      plan: k.plan,
      createdAt: k.createdAt,
      // null when no deployed service declares the key's plan any more: its requests get 403.
      throttle: plan ? (plan.throttle ?? null) : null,
      quota: q
        ? { limit: q.limit, period: q.period, used: row?.used ?? 0, reserved: row?.reserved ?? 0 }
        : null,
      planDeclared: plan !== undefined,
    };
  });
}

function keysOf(d: GatewayKeyDeps): NonNullable<GatewayKeyDeps['gatewayKeys']> {
  if (!d.gatewayKeys)
    throw new ApiError(501, 'NotImplemented', 'this server does not issue gateway API keys');
  return d.gatewayKeys;
}

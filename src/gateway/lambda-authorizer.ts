// API Gateway's Lambda authorizer (REQUEST type, payload format 2.0): the authorizer function gets the
// request's event with its identity sources and answers a simple response ({isAuthorized, context}) or an
// IAM policy. Answers are cached by identity source values for resultTtl seconds, allows and denies alike.
import type { Clock } from '../clock/clock.js';
import type { AuthorizerConfig } from '../config/manifest.js';
import type { Invoker } from '../invoker/types.js';
import type { HttpApiEventV2 } from './events.js';
import { timeOrderedId } from '../ids.js';

type LambdaAuthorizer = Extract<AuthorizerConfig, { type: 'lambda' }>;

export type LambdaOutcome =
  | { ok: true; context: Record<string, unknown> }
  /** 401: identity source missing; 403: denied; 500: the authorizer failed or answered nonsense. */
  | { ok: false; status: 401 | 403 | 500; why: string };

interface Cached {
  expires: number;
  outcome: LambdaOutcome;
}

/** Bounds the cache; the oldest entry goes first (a Map iterates in insertion order). */
const MAX_CACHED = 10_000;

export interface AuthorizeRequest {
  project: string;
  service: string;
  authorizerName: string;
  authorizer: LambdaAuthorizer;
  /** The event the route's function would get, in format 2.0. */
  event: HttpApiEventV2;
  routeArn: string;
}

export class LambdaAuthorizers {
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<LambdaOutcome>>();

  constructor(
    private readonly invoker: Invoker,
    private readonly clock: Clock,
  ) {}

  async authorize(r: AuthorizeRequest): Promise<LambdaOutcome> {
    const a = r.authorizer;
    const identity: string[] = [];
    for (const source of a.identitySource) {
      const v = identityValue(r.event, source);
      if (v === undefined || v === '') return { ok: false, status: 401, why: `${source} is missing` };
      identity.push(v);
    }
    const key = a.resultTtl > 0 ? JSON.stringify([r.project, r.service, r.authorizerName, identity]) : '';
    if (key !== '') {
      const hit = this.cache.get(key);
      if (hit && hit.expires > this.clock.now()) return hit.outcome;
      if (hit) this.cache.delete(key);
    }
    if (key === '') return this.invoke(r, identity);
    // Requests with the same identity that arrive while the authorizer runs wait for its one answer.
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = this.invoke(r, identity)
      .then((outcome) => {
        // A failure is not an answer: the next request asks the authorizer again.
        if (outcome.ok || outcome.status === 403) {
          if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
          this.cache.set(key, { expires: this.clock.now() + a.resultTtl * 1000, outcome });
        }
        return outcome;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async invoke(r: AuthorizeRequest, identitySource: string[]): Promise<LambdaOutcome> {
    const { body: _body, isBase64Encoded: _b64, ...rest } = r.event;
    const event = { ...rest, type: 'REQUEST', routeArn: r.routeArn, identitySource };
    const out = await this.invoker.invoke({
      fn: { project: r.project, name: r.authorizer.function },
      event,
      trigger: 'authorizer',
      // Its own id, as on AWS: the request's id belongs to the route's invocation (one record per id).
      requestId: timeOrderedId(),
    });
    if (out.status !== 'ok') return { ok: false, status: 500, why: `authorizer ${out.status}` };
    let result: unknown;
    try {
      result = JSON.parse(out.payload ?? 'null');
    } catch {
      return { ok: false, status: 500, why: 'authorizer returned invalid JSON' };
    }
    return decide(result, r.routeArn);
  }
}

/** "$request.header.Authorization" or "$request.querystring.token" of a format 2.0 event. */
export function identityValue(ev: HttpApiEventV2, source: string): string | undefined {
  if (source.startsWith('$request.header.')) {
    const name = source.slice('$request.header.'.length).toLowerCase();
    return Object.hasOwn(ev.headers, name) ? ev.headers[name] : undefined;
  }
  if (source.startsWith('$request.querystring.')) {
    const q = ev.queryStringParameters;
    const name = source.slice('$request.querystring.'.length);
    return q && Object.hasOwn(q, name) ? q[name] : undefined;
  }
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A simple response, or an IAM policy allowing execute-api:Invoke on the route with no Deny that matches. */
export function decide(result: unknown, routeArn: string): LambdaOutcome {
  if (!isRecord(result)) return { ok: false, status: 500, why: 'authorizer returned no object' };
  const context = isRecord(result['context']) ? result['context'] : {};
  if (typeof result['isAuthorized'] === 'boolean') {
    return result['isAuthorized'] ? { ok: true, context } : { ok: false, status: 403, why: 'denied' };
  }
  const policy = result['policyDocument'];
  if (!isRecord(policy) || !Array.isArray(policy['Statement'])) {
    return {
      ok: false,
      status: 500,
      why: 'authorizer answered neither {isAuthorized} nor {principalId, policyDocument}',
    };
  }
  let allowed = false;
  for (const st of policy['Statement'] as unknown[]) {
    if (!isRecord(st)) continue;
    const actions = list(st['Action']);
    const resources = list(st['Resource']);
    const applies =
      actions.some((x) => wildcard(x, 'execute-api:Invoke')) && resources.some((x) => wildcard(x, routeArn));
    if (!applies) continue;
    if (st['Effect'] === 'Deny') return { ok: false, status: 403, why: 'denied by policy' };
    if (st['Effect'] === 'Allow') allowed = true;
  }
  if (!allowed) return { ok: false, status: 403, why: 'no statement of the policy allows the route' };
  const principalId = result['principalId'];
  return {
    ok: true,
    context: typeof principalId === 'string' ? { ...context, principalId } : context,
  };
}

function list(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** IAM's wildcards: "*" any run of characters, "?" one character. */
function wildcard(pattern: string, value: string): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === value;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(value);
}

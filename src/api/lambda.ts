// The Lambda API (REST JSON, "2015-03-31" paths) as an AwsService: what @aws-sdk/client-lambda and
// `aws lambda invoke` send. Errors always take Lambda's shape, also when the caller used the bearer key.
import type { FunctionRegistry } from '../invoker/registry.js';
import type { InvokeOutcome, InvokeTarget, Invoker, ThrottleReason } from '../invoker/types.js';
import type { FunctionVersion } from '../store/types.js';
import { accessDenied, hasRole, type Principal } from './auth.js';
import type { AwsRequest, AwsResponse, AwsService } from './aws.js';
import { functionArn } from '../config/limits.js';
import { ApiError, functionNotFound, routeError } from './errors.js';
import { DEFAULT_BODY, MAX_ASYNC_PAYLOAD_BYTES, MAX_SYNC_PAYLOAD_BYTES } from './limits.js';
import { continueTrace } from '../events/trace.js';
import { reportLine } from '../metering/report-line.js';
import { RouteTable } from './routes.js';
import {
  EVENT_INVOKE_CONFIG_PATH,
  eventInvokeConfig,
  type EventInvokeConfigDeps,
} from './event-invoke-config.js';

export interface LambdaDeps extends EventInvokeConfigDeps {
  registry: Pick<FunctionRegistry, 'get'>;
  invoker: Invoker;
  events: EventInvokeConfigDeps['events'] & {
    enqueue(ref: InvokeTarget, payload: string, requestId: string, trace?: string): Promise<string>;
  };
  region: string;
  accountId: string;
}

type Operation = (
  req: AwsRequest,
  params: Record<string, string>,
  principal: Principal,
) => Promise<AwsResponse>;

type InvocationType = 'RequestResponse' | 'Event' | 'DryRun';

const TAIL_BYTES = 4096;

export function createLambdaService(d: LambdaDeps): AwsService {
  const routes = new RouteTable<Operation>([
    {
      method: 'POST',
      path: '/2015-03-31/functions/{name}/invocations',
      handler: (req, p, principal) => invoke(d, req, p['name']!, principal),
    },
    ...(['put', 'update', 'get', 'delete'] as const).map((mode) => ({
      method: ({ put: 'PUT', update: 'POST', get: 'GET', delete: 'DELETE' } as const)[mode],
      path: EVENT_INVOKE_CONFIG_PATH,
      handler: (req: AwsRequest, p: Record<string, string>, principal: Principal) =>
        eventInvokeConfig(d, mode, req, p['name']!, principal),
    })),
  ]);
  return {
    service: 'lambda',
    title: 'Lambda',
    body: DEFAULT_BODY,
    ownsBearerPath: (pathname) => routes.hasPath(pathname),
    async handle(req, principal) {
      // A function's own key reaches the tables its manifest grants, not the Lambda API (until a manifest can
      // grant invoking other functions). The admin key and issued user keys use all of it.
      const m = routes.match(req.method, req.url.pathname);
      if (principal.role === 'function') throw functionKeyDenied(d, principal, m);
      if (m.kind !== 'found') {
        throw routeError(m, req.method, req.url.pathname, {
          notFound: 'UnknownOperationException',
          methodNotAllowed: 'MethodNotAllowedException',
          badEncoding: 'InvalidParameterValueException',
        });
      }
      // Reading is every key's; invoking takes role invoke; changing a function's configuration, deploy.
      if (req.method !== 'GET') {
        const invoking = m.route === '/2015-03-31/functions/{name}/invocations';
        if (!hasRole(principal, invoking ? 'invoke' : 'deploy')) {
          throw accessDenied(
            principal,
            invoking ? 'lambda:InvokeFunction' : 'lambda:PutFunctionEventInvokeConfig',
            functionArn(d.region, d.accountId, m.params['name'] ?? '*'),
          );
        }
      }
      return m.handler(req, m.params, principal);
    },
    error: lambdaError,
  };
}

function functionKeyDenied(
  d: LambdaDeps,
  principal: Principal,
  m: ReturnType<RouteTable<Operation>['match']>,
): ApiError {
  if (m.kind !== 'found') return accessDenied(principal, 'lambda:*');
  const action = m.route.endsWith('/invocations') ? 'lambda:InvokeFunction' : 'lambda:*EventInvokeConfig';
  return accessDenied(principal, action, functionArn(d.region, d.accountId, m.params['name'] ?? '*'));
}

/** Lambda's error shape: the code in x-amzn-errortype, {Type, message, Reason?} as the body. */
export function lambdaError(e: ApiError, requestId: string): AwsResponse {
  const body = { Type: e.status >= 500 ? 'Service' : 'User', message: e.message, ...e.extra };
  return {
    status: e.status,
    headers: {
      ...e.headers,
      'x-amzn-errortype': e.code,
      'x-amzn-requestid': requestId,
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
  };
}

async function invoke(
  d: LambdaDeps,
  req: AwsRequest,
  rawName: string,
  principal: Principal,
): Promise<AwsResponse> {
  const { fv, qualifier } = resolveFunction(
    d,
    principal.project,
    rawName,
    req.url.searchParams.get('Qualifier'),
  );
  const type = invocationType(req.headers['x-amz-invocation-type']);
  const text = payloadText(req.body, type);
  const event = parseEvent(text);
  const headers: Record<string, string> = { 'x-amzn-requestid': req.requestId };
  if (type === 'DryRun') return { status: 204, headers, body: '' };
  const ref = { project: principal.project, name: fv.name };
  if (type === 'Event') {
    await d.events.enqueue(qualifier ? { ...ref, qualifier } : ref, text, req.requestId, traceHeader(req));
    return { status: 202, headers, body: '' };
  }
  const clientContext = req.headers['x-amz-client-context'];
  // The invoker checks the qualifier again: a deploy between this check and the run must not run a new version.
  const outcome = await d.invoker.invoke({
    fn: qualifier ? { ...ref, qualifier } : ref,
    traceId: continueTrace(traceHeader(req), `${ref.project}/${ref.name}`).header,
    event,
    trigger: 'invoke',
    requestId: req.requestId,
    ...(typeof clientContext === 'string' ? { clientContext: decodeClientContext(clientContext) } : {}),
  });
  if (outcome.status === 'not_found') throw functionNotFound(d.region, d.accountId, fv.name);
  if (outcome.status === 'throttled') {
    // A project quota is the account's limit to the SDK (its Reason), and the message says which quota.
    const message = isProjectQuota(outcome.throttleReason) ? outcome.error!.errorMessage : 'Rate Exceeded.';
    throw new ApiError(429, 'TooManyRequestsException', message, undefined, {
      Reason: throttleReason(outcome.throttleReason),
    });
  }
  headers['x-amz-executed-version'] = outcome.version;
  if (String(req.headers['x-amz-log-type'] ?? '') === 'Tail') headers['x-amz-log-result'] = tail(outcome, fv);
  headers['content-type'] = 'application/json';
  if (outcome.status === 'ok') return { status: 200, headers, body: outcome.payload ?? 'null' };
  // A function error is still a 200 on Lambda; the header tells SDKs the payload is the error.
  headers['x-amz-function-error'] = 'Unhandled';
  return { status: 200, headers, body: JSON.stringify(outcome.error) };
}

/** The function a FunctionName (and Qualifier) names, if it exists in the caller's project. */
function resolveFunction(
  d: LambdaDeps,
  project: string,
  rawName: string,
  queryQualifier: string | null,
): { fv: FunctionVersion; qualifier: string | null } {
  const { name, qualifier: nameQualifier } = parseFunctionName(rawName);
  const qualifier = queryQualifier ?? nameQualifier;
  const fv = d.registry.get({ project, name });
  if (!fv || (qualifier && qualifier !== '$LATEST' && qualifier !== String(fv.version))) {
    throw functionNotFound(d.region, d.accountId, qualifier ? `${name}:${qualifier}` : name);
  }
  return { fv, qualifier };
}

const NAME_FORMS = /^(?:arn:[^:]+:lambda:[^:]*:[^:]*:function:|\d{12}:function:)?([^:]+)(?::([^:]+))?$/;

/** A name, "name:qualifier", a full ARN or a partial ARN, as Lambda accepts in FunctionName. */
export function parseFunctionName(raw: string): { name: string; qualifier: string | null } {
  const m = NAME_FORMS.exec(raw);
  return m ? { name: m[1]!, qualifier: m[2] ?? null } : { name: raw, qualifier: null };
}

function invocationType(header: string | string[] | undefined): InvocationType {
  const type = String(header ?? 'RequestResponse');
  if (type === 'RequestResponse' || type === 'Event' || type === 'DryRun') return type;
  throw new ApiError(400, 'InvalidParameterValueException', `X-Amz-Invocation-Type "${type}" is not valid`);
}

function payloadText(body: Buffer, type: InvocationType): string {
  const limit = type === 'Event' ? MAX_ASYNC_PAYLOAD_BYTES : MAX_SYNC_PAYLOAD_BYTES;
  if (body.length > limit) {
    throw new ApiError(
      413,
      'RequestTooLargeException',
      `Request must be smaller than ${limit} bytes for the ${type} invocation type`,
    );
  }
  return body.length === 0 ? '{}' : body.toString('utf8');
}

function parseEvent(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(
      400,
      'InvalidRequestContentException',
      `Could not parse request body into json: ${(e as Error).message}`,
    );
  }
}

/** Lambda tells a function's own reserved limit apart; every other limit is the account's. */
export function throttleReason(reason: ThrottleReason | undefined): string {
  return reason === 'ReservedFunctionConcurrentInvocationLimitExceeded'
    ? 'ReservedFunctionConcurrentInvocationLimitExceeded'
    : 'ConcurrentInvocationLimitExceeded';
}

export function isProjectQuota(reason: ThrottleReason | undefined): boolean {
  return reason === 'ProjectConcurrencyQuotaExceeded' || reason === 'ProjectMemoryQuotaExceeded';
}

/** START/logs/END/REPORT like CloudWatch, last 4 KB, base64: what X-Amz-Log-Result carries. */
function tail(o: InvokeOutcome, f: FunctionVersion): string {
  const r = o.record;
  // JSON format: the record's logs already hold platform.start and platform.report, as CloudWatch's do.
  if (f.config.logFormat === 'JSON' && r !== undefined) return lastBytes(r.logs);
  const report = `${reportLine(
    r ?? {
      requestId: o.requestId,
      durationMs: o.durationMs,
      billedMs: 0,
      memoryMB: f.config.memory,
      maxRssBytes: 0,
      initMs: null,
      costPicoUsd: 0,
      status: o.status,
      errorType: o.error?.errorType ?? null,
      errorMessage: o.error?.errorMessage ?? null,
    },
  )}\n`;
  const text = `START RequestId: ${o.requestId} Version: ${o.version}\n${o.logs}END RequestId: ${o.requestId}\n${report}`;
  return lastBytes(text);
}

function lastBytes(text: string): string {
  const buf = Buffer.from(text);
  return buf.subarray(Math.max(0, buf.length - TAIL_BYTES)).toString('base64');
}

function decodeClientContext(b64: string): unknown {
  try {
    return JSON.parse(Buffer.from(b64, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The trace a caller passed on (the AWS SDK inside a function sends its _X_AMZN_TRACE_ID as this header). */
function traceHeader(req: AwsRequest): string | undefined {
  const h = req.headers['x-amzn-trace-id'];
  return typeof h === 'string' ? h : undefined;
}

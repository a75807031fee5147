// Lambda's Put/Update/Get/DeleteFunctionEventInvokeConfig ("2019-09-25" paths): retries and destinations of
// a function's async invocations set through the AWS API. What is set here applies instead of the
// manifest's `async:` block until it is deleted; Get shows whichever applies.
import { ASYNC_DEFAULTS, type AsyncConfig, type Destination } from '../config/manifest.js';
import { functionArn } from '../config/limits.js';
import type { FunctionRegistry } from '../invoker/registry.js';
import type { FunctionRef, FunctionStore, FunctionVersion, QueueStore } from '../store/types.js';
import type { Principal } from './auth.js';
import type { AwsRequest, AwsResponse } from './aws.js';
import { ApiError, functionNotFound } from './errors.js';

export interface EventInvokeConfigDeps {
  registry: Pick<FunctionRegistry, 'get'>;
  store: {
    functions: Pick<FunctionStore, 'setAsyncConfig' | 'listAsyncConfigs'>;
    queues: Pick<QueueStore, 'getQueue'>;
  };
  /** Tells the async event source, so the next attempt already follows the new configuration. */
  events: { setAsyncOverride(ref: FunctionRef, config: AsyncConfig | null): void };
  region: string;
  accountId: string;
}

export const EVENT_INVOKE_CONFIG_PATH = '/2019-09-25/functions/{name}/event-invoke-config';

type Mode = 'put' | 'update' | 'get' | 'delete';

export async function eventInvokeConfig(
  d: EventInvokeConfigDeps,
  mode: Mode,
  req: AwsRequest,
  rawName: string,
  principal: Principal,
): Promise<AwsResponse> {
  const fv = target(d, principal.project, rawName, req.url.searchParams.get('Qualifier'));
  const ref = { project: fv.project, name: fv.name };
  const current = await stored(d, ref);
  if (mode === 'delete') {
    if (!current) throw noConfig(d, fv);
    await d.store.functions.setAsyncConfig(ref, null);
    d.events.setAsyncOverride(ref, null);
    return { status: 204, headers: { 'x-amzn-requestid': req.requestId }, body: '' };
  }
  if (mode === 'get') {
    if (current) return answer(d, fv, current.config, current.updatedAt, req);
    if (fv.config.async) return answer(d, fv, fv.config.async, fv.deployedAt, req);
    throw noConfig(d, fv);
  }
  const given = await parseConfig(d, principal.project, req.body);
  // Update changes only what it names; Put replaces the whole configuration, as on AWS.
  const base = mode === 'update' ? (current?.config ?? fv.config.async ?? {}) : {};
  const config: AsyncConfig = { ...base, ...given.values };
  for (const key of given.cleared) delete config[key];
  if (!(await d.store.functions.setAsyncConfig(ref, config)))
    throw functionNotFound(d.region, d.accountId, fv.name);
  d.events.setAsyncOverride(ref, config);
  const now = (await stored(d, ref))?.updatedAt ?? Date.now();
  return answer(d, fv, config, now, req);
}

function target(
  d: EventInvokeConfigDeps,
  project: string,
  rawName: string,
  qualifier: string | null,
): FunctionVersion {
  const name = rawName.replace(/^arn:[^:]+:lambda:[^:]*:[^:]*:function:/, '').split(':')[0]!;
  if (qualifier && qualifier !== '$LATEST') {
    throw new ApiError(
      400,
      'InvalidParameterValueException',
      `Qualifier ${qualifier} is not supported: Nimbus keeps one event invoke configuration per function ($LATEST)`,
    );
  }
  const fv = d.registry.get({ project, name });
  if (!fv) throw functionNotFound(d.region, d.accountId, name);
  return fv;
}

async function stored(d: EventInvokeConfigDeps, ref: FunctionRef) {
  return (await d.store.functions.listAsyncConfigs(ref.project)).find((c) => c.name === ref.name);
}

interface Given {
  values: AsyncConfig;
  /** Destinations the request empties (a DestinationConfig entry without a Destination). */
  cleared: ('onSuccess' | 'onFailure')[];
}

async function parseConfig(d: EventInvokeConfigDeps, project: string, body: Buffer): Promise<Given> {
  let input: Record<string, unknown>;
  try {
    const parsed: unknown = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    input = parsed as Record<string, unknown>;
  } catch {
    throw invalid('The request body must be a JSON object');
  }
  const values: AsyncConfig = {};
  const cleared: Given['cleared'] = [];
  const retries = input['MaximumRetryAttempts'];
  if (retries !== undefined) values.maximumRetryAttempts = int(retries, 'MaximumRetryAttempts', 0, 2);
  const age = input['MaximumEventAgeInSeconds'];
  if (age !== undefined) values.maximumEventAgeInSeconds = int(age, 'MaximumEventAgeInSeconds', 60, 21600);
  const rawDest = input['DestinationConfig'] ?? {};
  if (!isObject(rawDest)) throw invalid('DestinationConfig must be an object with OnSuccess and OnFailure');
  const dest = rawDest as Record<string, unknown>;
  for (const [field, key] of [
    ['OnSuccess', 'onSuccess'],
    ['OnFailure', 'onFailure'],
  ] as const) {
    const entry = dest[field];
    if (entry === undefined) continue;
    if (!isObject(entry)) throw invalid(`DestinationConfig.${field} must be an object with a Destination`);
    const arn = (entry as { Destination?: unknown }).Destination;
    if (arn === undefined || arn === null) cleared.push(key);
    else values[key] = await destination(d, project, arn, field);
  }
  return { values, cleared };
}

async function destination(
  d: EventInvokeConfigDeps,
  project: string,
  arn: unknown,
  field: string,
): Promise<Destination> {
  const text = typeof arn === 'string' ? arn : '';
  const fn = /^arn:aws:lambda:([^:]*):(\d{12}):function:([A-Za-z0-9_-]+)(?::\$LATEST)?$/.exec(text);
  if (fn) {
    const name = fn[3]!;
    if (!d.registry.get({ project, name }))
      throw invalid(`The destination function ${String(arn)} does not exist`);
    return { function: name };
  }
  const queue = /^arn:aws:sqs:([^:]*):(\d{12}):([A-Za-z0-9_.-]{1,80})$/.exec(text);
  if (queue) {
    const q = await d.store.queues.getQueue(project, queue[3]!);
    if (!q) throw invalid(`The destination queue ${text} does not exist`);
    if (q.fifo)
      throw invalid(`The destination queue ${text} is a FIFO queue; destinations must be standard queues`);
    return { queue: q.name };
  }
  throw invalid(
    `DestinationConfig.${field}.Destination must be the ARN of a Lambda function or an SQS queue of this account (topics and event buses are not supported yet)`,
  );
}

function answer(
  d: EventInvokeConfigDeps,
  fv: FunctionVersion,
  c: AsyncConfig,
  updatedAt: number,
  req: AwsRequest,
): AwsResponse {
  const arn = (name: string) => functionArn(d.region, d.accountId, name);
  const destArn = (dest: Destination) =>
    dest.queue !== undefined ? `arn:aws:sqs:${d.region}:${d.accountId}:${dest.queue}` : arn(dest.function);
  const body = {
    FunctionArn: `${arn(fv.name)}:$LATEST`,
    MaximumRetryAttempts: c.maximumRetryAttempts ?? ASYNC_DEFAULTS.maximumRetryAttempts,
    MaximumEventAgeInSeconds: c.maximumEventAgeInSeconds ?? ASYNC_DEFAULTS.maximumEventAgeInSeconds,
    LastModified: updatedAt / 1000,
    DestinationConfig: {
      OnSuccess: c.onSuccess ? { Destination: destArn(c.onSuccess) } : {},
      OnFailure: c.onFailure ? { Destination: destArn(c.onFailure) } : {},
    },
  };
  return {
    status: 200,
    headers: { 'x-amzn-requestid': req.requestId, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(`${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(v)}`);
  }
  return v;
}

function invalid(message: string): ApiError {
  return new ApiError(400, 'InvalidParameterValueException', message);
}

function noConfig(d: EventInvokeConfigDeps, fv: FunctionVersion): ApiError {
  return new ApiError(
    404,
    'ResourceNotFoundException',
    `The function ${functionArn(d.region, d.accountId, fv.name)} doesn't have an EventInvokeConfig`,
  );
}

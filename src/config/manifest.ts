// The nimbus.yaml manifest: one zod schema is the truth for what users may write (ManifestInput) and what
// the platform uses (Manifest). Every failure becomes one readable error naming the file, the field and the fix.
import { z } from 'zod';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { parseEnvValue } from './secret-refs.js';
import { parseSchedule, ScheduleError } from './schedule.js';
import { compileFilters, FilterPatternError } from '../events/filter.js';
import type { IndexDef, KeyAttribute, KeySchema, Projection, TableDef } from '../tables/types.js';

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'ANY'] as const;
export type RouteMethod = (typeof METHODS)[number];

/** "GET /items/{id}" → method and path, checked against API Gateway's rules; a string is the problem found. */
export function parseRouteKey(key: string): { method: RouteMethod; path: string } | string {
  const m = /^([A-Za-z]+)\s+(\/\S*)$/.exec(key.trim());
  if (!m) return `route "${key}" is not "METHOD /path" (for example "GET /items/{id}")`;
  const method = m[1]!.toUpperCase();
  const path = m[2]!;
  if (!(METHODS as readonly string[]).includes(method))
    return `method "${m[1]}" is not one of ${METHODS.join(', ')}`;
  const segments = path.split('/').slice(1);
  for (const [i, seg] of segments.entries()) {
    const param = /^\{([A-Za-z0-9_.-]+)(\+)?\}$/.exec(seg);
    if (seg.includes('{') && !param)
      return `path segment "${seg}" in "${key}" must be a whole {param} or {param+}`;
    if (param?.[2] && i !== segments.length - 1) {
      return `greedy parameter {${param[1]}+} must be the last segment of "${key}"`;
    }
  }
  return { method: method as RouteMethod, path };
}

/** Token bucket: steady requests per second and how many may come at once (API Gateway's rate and burst). */
const ThrottleSchema = z.strictObject({
  rate: z.number().min(0).max(1_000_000),
  burst: z.number().int().min(0).max(1_000_000),
});

const HttpEventSchema = z.union([
  z.string(),
  z.strictObject({
    route: z.string(),
    payload: z.enum(['1.0', '2.0']).default('2.0'),
    /** A name under the service's http.authorizers. */
    authorizer: z.string().optional(),
    /** JWT authorizers: the token must carry at least one of these scopes. */
    authorizationScopes: z.array(z.string().min(1)).min(1).optional(),
    throttle: ThrottleSchema.optional(),
    /** Callers must send a key of one of the service's usage plans in x-api-key (API Gateway's). */
    apiKeyRequired: z.boolean().optional(),
  }),
]);

export const QUOTA_PERIODS = ['DAY', 'WEEK', 'MONTH'] as const;
export type QuotaPeriod = (typeof QUOTA_PERIODS)[number];

/** API Gateway's usage plan: a token bucket per key, and a number of requests per key per period. */
const UsagePlanSchema = z.strictObject({
  throttle: ThrottleSchema.optional(),
  quota: z
    .strictObject({
      limit: z.number().int().min(0).max(1_000_000_000),
      period: z.enum(QUOTA_PERIODS),
    })
    .optional(),
});

const HEADER_NAME = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name or "*"');
const CorsSchema = z.strictObject({
  allowOrigins: z.array(z.string().min(1)).min(1),
  allowMethods: z.array(z.enum([...METHODS.filter((m) => m !== 'ANY'), '*'])).optional(),
  allowHeaders: z.array(HEADER_NAME).optional(),
  exposeHeaders: z.array(HEADER_NAME).optional(),
  /** Seconds a browser may cache a preflight answer (API Gateway: at most 86400). */
  maxAge: z.number().int().min(0).max(86400).optional(),
  allowCredentials: z.boolean().optional(),
});

const IDENTITY_SOURCE_HINT = 'an identity source is $request.header.<Name> or $request.querystring.<name>';
const IDENTITY_SOURCE = /^\$(request\.header\.[!#$%&'*+.^_`|~0-9A-Za-z-]+|request\.querystring\.[^\s]+)$/;
const AuthorizerSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('jwt'),
    issuer: z.string(),
    audience: z.array(z.string().min(1)).min(1),
    jwksUrl: z.string(),
    /** One source; a list of one is accepted too, as API Gateway's own configuration spells it. */
    identitySource: z
      .union([
        z.string().regex(IDENTITY_SOURCE, IDENTITY_SOURCE_HINT),
        z.array(z.string().regex(IDENTITY_SOURCE, IDENTITY_SOURCE_HINT)).length(1),
      ])
      .optional(),
  }),
  z.strictObject({
    type: z.literal('lambda'),
    function: z.string(),
    /** Seconds an answer is reused for the same identity source values; 0 turns caching off. */
    resultTtl: z.number().int().min(0).max(3600).optional(),
    identitySource: z.array(z.string().regex(IDENTITY_SOURCE, IDENTITY_SOURCE_HINT)).optional(),
  }),
]);

const ServiceHttpSchema = z.strictObject({
  cors: CorsSchema.optional(),
  authorizers: z
    .record(
      z.string().regex(NAME, 'authorizer names start with a letter and use letters, digits, "-" or "_"'),
      AuthorizerSchema,
    )
    .default({}),
  throttle: ThrottleSchema.optional(),
  /** Plans that API keys (`nimbus apikey create --plan <name>`) are issued under. */
  usagePlans: z
    .record(
      z.string().regex(NAME, 'usage plan names start with a letter and use letters, digits, "-" or "_"'),
      UsagePlanSchema,
    )
    .default({}),
});

const ScheduleEventSchema = z.union([
  z.string(),
  z.strictObject({
    expression: z.string(),
    /** IANA zone for cron expressions; UTC when left out. */
    timezone: z.string().optional(),
    /** What the function receives instead of the EventBridge event. */
    input: z.unknown().optional(),
  }),
]);

/** An exact address, or "*@domain" for every address of a domain. */
const EMAIL_ADDRESS =
  /^(\*|[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+)@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const EmailEventSchema = z.strictObject({
  address: z
    .string()
    .regex(
      EMAIL_ADDRESS,
      'address must be an e-mail address such as "orders@example.test", or "*@example.test"',
    ),
});

/** SQS's queue names: 1..80 of letters, digits, "-" and "_"; a FIFO queue's name ends in ".fifo". */
export const QUEUE_NAME = /^[A-Za-z0-9_-]{1,75}(\.fifo)?$|^[A-Za-z0-9_-]{76,80}$/;
const QUEUE_NAME_HINT =
  'queue names use 1 to 80 letters, digits, "-" or "_" (a FIFO queue\'s name ends in ".fifo")';

/** DynamoDB's table names: 3 to 255 of letters, digits, "_", "-" and ".". */
export const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;
const TABLE_NAME_HINT = 'table names use 3 to 255 letters, digits, "_", "-" or "."';
/** S3's bucket names (the S3 API checks the reserved prefixes and suffixes too). */
export const BUCKET_NAME = /^(?!.*\.\.)(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const BUCKET_NAME_HINT =
  'bucket names use 3 to 63 lower-case letters, digits, "." or "-", begin and end with a letter or digit';

const QueueEventSchema = z.union([
  z.string(),
  z.strictObject({
    name: z.string(),
    /** Messages per invocation: 1..10000 (a FIFO queue: 1..10), Lambda's default 10. */
    batchSize: z.number().int().min(1).max(10000).optional(),
    /** Seconds to gather a fuller batch before invoking (0..300). */
    maximumBatchingWindow: z.number().int().min(0).max(300).optional(),
    /** Batches of this queue running at once for the function (2..1000, as Lambda). */
    maximumConcurrency: z.number().int().min(2).max(1000).optional(),
    filterCriteria: z
      .strictObject({ filters: z.array(z.strictObject({ pattern: z.unknown() })).max(5) })
      .optional(),
    /** Lambda's switch for partial batch responses; Nimbus honours batchItemFailures either way. */
    functionResponseTypes: z.array(z.literal('ReportBatchItemFailures')).optional(),
  }),
]);

const TableEventSchema = z.union([
  z.string(),
  z.strictObject({
    name: z.string(),
    /** Stream records per invocation: 1..10000, Lambda's default 100. */
    batchSize: z.number().int().min(1).max(10000).optional(),
    /** Where a new trigger starts reading: records from now on (LATEST) or every record kept (TRIM_HORIZON). */
    startingPosition: z.enum(['LATEST', 'TRIM_HORIZON']).optional(),
    /** Retries of a failing batch before it is skipped: -1 (default) retries until the records expire. */
    maximumRetryAttempts: z.number().int().min(-1).max(10000).optional(),
    /** On an error, retry with half the batch, to find the record that fails. */
    bisectBatchOnFunctionError: z.boolean().optional(),
    filterCriteria: z
      .strictObject({ filters: z.array(z.strictObject({ pattern: z.unknown() })).max(5) })
      .optional(),
    functionResponseTypes: z.array(z.literal('ReportBatchItemFailures')).optional(),
    /** Where a batch skipped after maximumRetryAttempts is described (Lambda's OnFailure destination). */
    onFailure: z.strictObject({ queue: z.string().regex(QUEUE_NAME, QUEUE_NAME_HINT) }).optional(),
  }),
]);

/** S3 event notifications to the function: `storage: uploads` (objects created) or the long form. */
const StorageEventSchema = z.union([
  z.string(),
  z.strictObject({
    bucket: z.string(),
    /** What invokes: objects created (Put, Copy, CompleteMultipartUpload) and/or removed. Default [created]. */
    events: z
      .array(z.enum(['created', 'removed'], { message: 'storage events are "created" or "removed"' }))
      .min(1)
      .optional(),
    /** Only keys that start with this (S3's prefix filter rule). */
    prefix: z.string().min(1).max(1024).optional(),
    /** Only keys that end with this (S3's suffix filter rule). */
    suffix: z.string().min(1).max(1024).optional(),
  }),
]);

const EventSchema = z
  .strictObject({
    http: HttpEventSchema.optional(),
    schedule: ScheduleEventSchema.optional(),
    email: EmailEventSchema.optional(),
    queue: QueueEventSchema.optional(),
    table: TableEventSchema.optional(),
    storage: StorageEventSchema.optional(),
  })
  .superRefine((e, ctx) => {
    const kinds = [e.http, e.schedule, e.email, e.queue, e.table, e.storage].filter(
      (k) => k !== undefined,
    ).length;
    if (kinds !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          'each event is exactly one of "http", "schedule", "email", "queue", "table" or "storage", e.g. - http: GET /items, - schedule: rate(5 minutes), - email: { address: orders@example.test }, - queue: orders, - table: items or - storage: { bucket: uploads }',
      });
    }
  });

/** Where an async invocation's outcome is sent (AWS's destinations): a function or a queue. */
const DestinationSchema = z
  .strictObject({
    function: z
      .string()
      .regex(NAME, 'function names start with a letter and use letters, digits, "-" or "_" (max 64)')
      .optional(),
    queue: z.string().regex(QUEUE_NAME, QUEUE_NAME_HINT).optional(),
  })
  .superRefine((d, ctx) => {
    if ((d.function === undefined) === (d.queue === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'must name one function or one queue: { function: <name> } or { queue: <name> }',
      });
    }
  });

const KEY_TYPE = z.enum(['S', 'N', 'B'], { message: "a key attribute's type is S, N or B" });
/** One attribute of a key: `{ id: S }`. */
const KeyAttributeSchema = z
  .record(z.string().min(1).max(255), KEY_TYPE)
  .refine((k) => Object.keys(k).length === 1, 'name exactly one attribute and its type, e.g. { id: S }');

const TableIndexSchema = z.strictObject({
  key: KeyAttributeSchema,
  sort: KeyAttributeSchema.optional(),
  /** A local index shares the table's partition key and sorts by another attribute. */
  local: z.boolean().optional(),
  /** ALL (default), KEYS_ONLY, or the non-key attributes to keep. */
  projection: z.union([z.enum(['ALL', 'KEYS_ONLY']), z.array(z.string().min(1))]).optional(),
});

const TableSchema = z.strictObject({
  key: KeyAttributeSchema,
  sort: KeyAttributeSchema.optional(),
  indexes: z
    .record(
      z
        .string()
        .regex(/^[A-Za-z0-9_.-]{3,255}$/, 'index names use 3 to 255 letters, digits, "_", "-" or "."'),
      TableIndexSchema,
    )
    .default({}),
  /** true (NEW_AND_OLD_IMAGES) or a StreamViewType. */
  stream: z
    .union([z.boolean(), z.enum(['KEYS_ONLY', 'NEW_IMAGE', 'OLD_IMAGE', 'NEW_AND_OLD_IMAGES'])])
    .optional(),
  /** The attribute holding each item's expiry time, in epoch seconds. */
  ttl: z.string().min(1).max(255).optional(),
});

const QueueSchema = z.strictObject({
  fifo: z.boolean().optional(),
  contentBasedDeduplication: z.boolean().optional(),
  visibilityTimeout: z.number().int().min(0).max(43200).optional(),
  messageRetentionPeriod: z.number().int().min(60).max(1_209_600).optional(),
  delaySeconds: z.number().int().min(0).max(900).optional(),
  /** Seconds a ReceiveMessage through the SQS API waits for messages when it names no WaitTimeSeconds. */
  receiveMessageWaitTimeSeconds: z.number().int().min(0).max(20).optional(),
  maximumMessageSize: z.number().int().min(1024).max(1_048_576).optional(),
  maxReceiveCount: z.number().int().min(1).max(1000).optional(),
  deadLetterQueue: z.string().regex(QUEUE_NAME, QUEUE_NAME_HINT).optional(),
});

/** Lambda's EventInvokeConfig: retries and destinations of Event (async) invocations. */
const AsyncSchema = z.strictObject({
  maximumRetryAttempts: z.number().int().min(0).max(2).optional(),
  maximumEventAgeInSeconds: z.number().int().min(60).max(21600).optional(),
  onSuccess: DestinationSchema.optional(),
  onFailure: DestinationSchema.optional(),
});

/**
 * Why a handler path would point outside the service folder, or undefined when it stays inside. Judged on
 * the text alone (never the host's files), so the answer is the same whether or not the target exists.
 */
export function handlerEscape(h: string): string | undefined {
  if ([...h].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
    return 'contains a control character (such as NUL)';
  if (h.includes('\\')) return 'contains a backslash; use "/" between folders';
  if (h.startsWith('/')) return 'is an absolute path; give it relative to the service folder';
  let depth = 0;
  for (const seg of h.split('/')) {
    if (seg === '..') depth--;
    else if (seg !== '' && seg !== '.') depth++;
    if (depth < 0) return 'leaves the service folder ("..")';
  }
  if (h.split('/').includes('..')) return 'must not contain ".." segments';
  return undefined;
}

/** Lambda's default ephemeral storage (MB); stored only when a function asks for another size, so the
 *  config text (and version) of functions deployed before the setting existed stays the same. */
export const DEFAULT_EPHEMERAL_MB = 512;

/** Lambda's LoggingConfig values, spelt as AWS spells them. */
export const LOG_FORMATS = ['Text', 'JSON'] as const;
export const APPLICATION_LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'] as const;
export const SYSTEM_LOG_LEVELS = ['DEBUG', 'INFO', 'WARN'] as const;
export type ApplicationLogLevel = (typeof APPLICATION_LOG_LEVELS)[number];
export type SystemLogLevel = (typeof SYSTEM_LOG_LEVELS)[number];

/** What a function's sandbox may reach beyond its own loopback and the Nimbus endpoint (AWS_ENDPOINT_URL). */
export type NetworkMode = 'outbound' | 'none';

const FunctionSchema = z.strictObject({
  handler: z
    .string()
    .regex(/^[^\s]+\.[^./\s]+$/, 'handler must be "path/file.export", for example "src/items.get"')
    .superRefine((h, ctx) => {
      const why = handlerEscape(h);
      if (why) ctx.addIssue({ code: 'custom', message: `handler ${JSON.stringify(h)} ${why}` });
    }),
  runtime: z
    .literal('nodejs', { message: 'runtime must be "nodejs" (the only runtime for now)' })
    .default('nodejs'),
  memory: z.number().int().min(128).max(10240).default(128),
  /** MB of /tmp (Lambda's EphemeralStorage.Size). */
  ephemeralStorage: z.number().int().min(512).max(10240).default(DEFAULT_EPHEMERAL_MB),
  timeout: z.number().int().min(1).max(900).default(3),
  /** "outbound" (the default): connections out through user-mode NAT; "none": no network but the endpoint. */
  network: z
    .enum(['outbound', 'none'], { message: 'network must be "outbound" (the default) or "none"' })
    .default('outbound'),
  environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.coerce.string()).default({}),
  concurrency: z
    .strictObject({
      reserved: z.number().int().min(0).max(100000).optional(),
      provisioned: z.number().int().min(0).max(10000).optional(),
      perInstance: z.number().int().min(1).max(1000).optional(),
      /** New instances per 10 seconds (AWS: 1,000); a burst may use them all at once. */
      scaleOut: z.number().int().min(1).max(100000).optional(),
    })
    .default({}),
  /** "fixed" (the platform's window), "hybrid" (histogram policy), or a fixed window in seconds. */
  keepAlive: z.union([z.enum(['fixed', 'hybrid']), z.number().int().min(0).max(86400)]).optional(),
  /** Lambda's LoggingConfig: "Text" (the default) or "JSON" lines; the levels filter JSON logs only. */
  logFormat: z.enum(LOG_FORMATS).optional(),
  applicationLogLevel: z.enum(APPLICATION_LOG_LEVELS).optional(),
  systemLogLevel: z.enum(SYSTEM_LOG_LEVELS).optional(),
  async: AsyncSchema.optional(),
  /** What the function's own AWS credentials may reach; nothing that is not listed. */
  permissions: z
    .strictObject({
      tables: z.array(z.string().regex(TABLE_NAME, TABLE_NAME_HINT)).default([]),
      queues: z.array(z.string().regex(QUEUE_NAME, QUEUE_NAME_HINT)).default([]),
      buckets: z.array(z.string().regex(BUCKET_NAME, BUCKET_NAME_HINT)).default([]),
    })
    .optional(),
  events: z.array(EventSchema).default([]),
});

export const ManifestSchema = z.strictObject({
  /** S3 buckets, created at deploy and never dropped by it; nothing to configure yet. */
  buckets: z
    .record(z.string().regex(BUCKET_NAME, BUCKET_NAME_HINT), z.union([z.strictObject({}), z.null()]))
    .default({}),
  /** Values of the user's own, for ${self:custom...} variables to refer to; nothing else reads them. */
  custom: z.record(z.string(), z.unknown()).optional(),
  /** The service's gateway settings: CORS, authorizers and a service-wide throttle. */
  http: ServiceHttpSchema.optional(),
  tables: z.record(z.string().regex(TABLE_NAME, TABLE_NAME_HINT), TableSchema).default({}),
  queues: z
    .record(z.string().regex(QUEUE_NAME, QUEUE_NAME_HINT), z.union([QueueSchema, z.null()]))
    .default({}),
  service: z
    .string()
    .regex(NAME, 'service must start with a letter and use letters, digits, "-" or "_" (max 64)'),
  functions: z
    .record(
      z
        .string()
        .regex(NAME, 'function names start with a letter and use letters, digits, "-" or "_" (max 64)'),
      FunctionSchema,
    )
    .refine((fns) => Object.keys(fns).length > 0, 'declare at least one function under "functions"'),
});

export type ManifestInput = z.input<typeof ManifestSchema>;

export interface Route {
  method: RouteMethod;
  path: string;
  payload: '1.0' | '2.0';
  /** What the gateway checks before invoking; absent when the route and its service declare nothing. */
  protection?: RouteProtection;
}

/**
 * Resolved per route at parse time, so it travels inside the function's stored config (no store part of its
 * own) and the gateway needs no lookups by service: service-wide settings are copied onto each route.
 */
export interface RouteProtection {
  service: string;
  cors?: CorsConfig;
  /** The authorizer's name and settings; the name keys its cache. */
  authorizer?: { name: string } & AuthorizerConfig;
  authorizationScopes?: string[];
  throttle?: ThrottleConfig;
  /** One bucket shared by every route of the service. */
  serviceThrottle?: ThrottleConfig;
  /** The service's usage plans by name (on every route of a service that declares any). */
  usagePlans?: Record<string, UsagePlan>;
  /** The request must carry a live key, in x-api-key, of one of usagePlans. */
  apiKeyRequired?: true;
}

export interface UsagePlan {
  throttle?: ThrottleConfig;
  quota?: { limit: number; period: QuotaPeriod };
}

/** The usage plans the functions' services declare, by name, with the service that declares each (a deploy
 *  refuses a name two services of a project declare differently, so the first found is the one). */
export function usagePlansOf(
  functions: readonly { service: string; config: Pick<FunctionConfig, 'routes'> }[],
): Map<string, { plan: UsagePlan; service: string }> {
  const out = new Map<string, { plan: UsagePlan; service: string }>();
  for (const f of functions) {
    for (const r of f.config.routes) {
      for (const [name, plan] of Object.entries(r.protection?.usagePlans ?? {})) {
        if (!out.has(name)) out.set(name, { plan, service: f.service });
      }
    }
  }
  return out;
}

export interface ThrottleConfig {
  rate: number;
  burst: number;
}

export interface CorsConfig {
  allowOrigins: string[];
  allowMethods: string[];
  /** Lowercase. */
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAge?: number;
  allowCredentials: boolean;
}

export type AuthorizerConfig =
  | {
      type: 'jwt';
      issuer: string;
      audience: string[];
      jwksUrl: string;
      identitySource: string;
    }
  | { type: 'lambda'; function: string; resultTtl: number; identitySource: string[] };

export interface FunctionConfig {
  name: string;
  handler: string;
  runtime: 'nodejs';
  memory: number;
  /** MB of /tmp; absent means DEFAULT_EPHEMERAL_MB. */
  ephemeralStorage?: number | undefined;
  /** Stored only when "none", so functions deployed before the setting keep their config text. */
  network?: NetworkMode | undefined;
  timeout: number;
  environment: Record<string, string>;
  reservedConcurrency: number | undefined;
  /** Initialized instances kept ready at all times. */
  provisionedConcurrency?: number | undefined;
  /** Invocations one instance serves at once (1, the Lambda model, unless set). */
  perInstanceConcurrency?: number | undefined;
  /** New instances allowed per 10 seconds, overriding the platform's setting. */
  scaleOutPer10s?: number | undefined;
  keepAlive?: 'fixed' | 'hybrid' | number | undefined;
  /** "JSON": console output and platform lines as JSON records (Lambda's JSON log format); absent: Text. */
  logFormat?: 'JSON' | undefined;
  /** JSON only: console lines below it are dropped (AWS_LAMBDA_LOG_LEVEL); absent: INFO. */
  applicationLogLevel?: ApplicationLogLevel | undefined;
  /** JSON only: platform records below it are dropped; absent: INFO. */
  systemLogLevel?: SystemLogLevel | undefined;
  /** Retries and destinations of async invocations; Lambda's defaults apply to what is left out. */
  async?: AsyncConfig | undefined;
  /** Schedules that invoke the function asynchronously (EventBridge's scheduled rules). */
  schedules?: ScheduleConfig[] | undefined;
  /** Addresses (lowercase; "*@domain" for a whole domain) whose incoming mail invokes the function. */
  emails?: string[] | undefined;
  /** Queues whose messages invoke the function in batches (Lambda's SQS event source mappings). */
  queueTriggers?: QueueTrigger[] | undefined;
  /** What the function's own credentials may reach (least privilege: nothing else). */
  permissions?: { tables: string[]; queues?: string[]; buckets?: string[] } | undefined;
  /** Tables whose stream invokes the function in batches (Lambda's DynamoDB event source mappings). */
  tableTriggers?: TableTrigger[] | undefined;
  /** Buckets whose object changes invoke the function asynchronously (S3 event notifications). */
  storageTriggers?: StorageTrigger[] | undefined;
  routes: Route[];
}

export interface StorageTrigger {
  bucket: string;
  events: ('created' | 'removed')[];
  prefix?: string;
  suffix?: string;
}

export interface TableTrigger {
  table: string;
  batchSize: number;
  startingPosition: 'LATEST' | 'TRIM_HORIZON';
  /** -1: until the records expire. */
  maximumRetryAttempts: number;
  bisectBatchOnFunctionError: boolean;
  filters?: string[];
  /** The queue that gets Lambda's failure record for each batch skipped after maximumRetryAttempts. */
  onFailure?: { queue: string };
}

export interface QueueTrigger {
  queue: string;
  batchSize: number;
  /** Seconds to gather a fuller batch (0: invoke with what one receive returns). */
  maximumBatchingWindow: number;
  /** Batches running at once; undefined: as many as the function's concurrency allows. */
  maximumConcurrency?: number;
  /** Lambda filter patterns as JSON text; a message that matches none is deleted without an invocation. */
  filters?: string[];
}

export interface ScheduleConfig {
  expression: string;
  timezone: string;
  /** JSON text of a constant input, when one was given. */
  input?: string;
}

export type Destination = { function: string; queue?: undefined } | { queue: string; function?: undefined };

export interface AsyncConfig {
  /** 0..2; default 2. */
  maximumRetryAttempts?: number;
  /** 60..21600; default 21600 (six hours). */
  maximumEventAgeInSeconds?: number;
  onSuccess?: Destination;
  onFailure?: Destination;
}

export const ASYNC_DEFAULTS = { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 21600 } as const;

/** A queue as declared (the manifest's `queues:`), with SQS's attribute names, units and defaults. */
export interface QueueConfig {
  name: string;
  /** FIFO queues keep order per message group and drop duplicates within 5 minutes; names end in ".fifo". */
  fifo: boolean;
  /** FIFO only: a message without a deduplication id is deduplicated by the SHA-256 of its body. */
  contentBasedDeduplication: boolean;
  /** Seconds a received message stays hidden from other receivers (0..43200; default 30). */
  visibilityTimeout: number;
  /** Seconds a message is kept, counted from when it was first sent (60..1209600; default 345600, 4 days). */
  messageRetentionPeriod: number;
  /** Seconds every new message waits before it can be received (0..900; default 0). */
  delaySeconds: number;
  /** Largest body plus attributes in bytes (1024..1048576; default 262144). */
  maximumMessageSize: number;
  /** Long polling by default: seconds an SQS ReceiveMessage without WaitTimeSeconds waits (0..20; left out: 0). */
  receiveMessageWaitTimeSeconds?: number;
  /** After this many receives without a delete, the next receive moves the message to deadLetterQueue. */
  maxReceiveCount?: number;
  deadLetterQueue?: string;
}

export const QUEUE_DEFAULTS = {
  visibilityTimeout: 30,
  messageRetentionPeriod: 345_600,
  delaySeconds: 0,
  maximumMessageSize: 262_144,
  /** When deadLetterQueue is given without maxReceiveCount. */
  maxReceiveCount: 5,
} as const;

export interface Manifest {
  service: string;
  functions: FunctionConfig[];
  /** The service's DynamoDB tables (created or updated at deploy, never dropped by it). */
  tables: TableDef[];
  /** The queues the service declares, by name. */
  queues: QueueConfig[];
  /** The S3 buckets the service declares (created at deploy if missing, never dropped by it). */
  buckets: string[];
}

/** A user's mistake in a manifest: names the file, the field and how to fix it. */
export class ManifestError extends Error {
  override name = 'ManifestError';
  constructor(
    readonly file: string,
    readonly field: string,
    readonly problem: string,
    /** How to fix it, when more can be said than "fix the field named". */
    readonly hint?: string,
  ) {
    super(`${file}: ${field ? `${field}: ` : ''}${problem}`);
  }
}

// Set by the runtime; AWS_LAMBDA_LOG_LEVEL stays the user's, as on AWS, to filter console output by level.
const RESERVED_ENV = /^(?!AWS_LAMBDA_LOG_LEVEL$)(AWS_|_HANDLER$|LAMBDA_|NODE_OPTIONS$)/;

export function parseManifest(text: string, file = 'nimbus.yaml'): Manifest {
  return manifestFromValue(parseManifestYaml(text, file), file);
}

/** The manifest's YAML as a value, before any check of its fields (variables are resolved on this). */
export function parseManifestYaml(text: string, file = 'nimbus.yaml'): unknown {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? `line ${e.linePos[0].line}` : '';
    const first = (e as Error).message.split('\n')[0]!.replace(/[:.\s]+$/, '');
    throw new ManifestError(file, where, `is not valid YAML: ${first}`);
  }
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) {
    throw new ManifestError(
      file,
      '',
      `must be a mapping with "service" and "functions", not ${describe(raw)}`,
    );
  }
  return raw;
}

/** Checks a parsed (and resolved) manifest against the schema and the rules between its fields. */
export function manifestFromValue(raw: unknown, file = 'nimbus.yaml'): Manifest {
  const result = ManifestSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!result.success) {
    // An unknown field explains the other complaints it causes (a missing "http" next to a misspelt one).
    const issue = result.error.issues.find((i) => i.code === 'unrecognized_keys') ?? result.error.issues[0]!;
    const field = issue.path.map(String).join('.');
    throw new ManifestError(file, field, describeIssue(issue));
  }
  const m = result.data;
  const queues = Object.entries(m.queues).map(([name, q]) => queueConfig(file, name, q ?? {}));
  const tables = Object.entries(m.tables).map(([name, t]) => tableDef(file, name, t));
  const queueByName = new Map(queues.map((q) => [q.name, q]));
  for (const q of queues) {
    const dlq = q.deadLetterQueue === undefined ? undefined : queueByName.get(q.deadLetterQueue);
    if (dlq && dlq.fifo !== q.fifo) {
      throw new ManifestError(
        file,
        `queues.${q.name}.deadLetterQueue`,
        `names "${dlq.name}", a ${dlq.fifo ? 'FIFO' : 'standard'} queue; the dead-letter queue of a ${q.fifo ? 'FIFO' : 'standard'} queue must be ${q.fifo ? 'FIFO' : 'standard'} too`,
      );
    }
  }
  const http = serviceHttp(file, m);
  const functions: FunctionConfig[] = [];
  const seenRoutes = new Map<string, string>();
  for (const [name, f] of Object.entries(m.functions)) {
    const { reserved, provisioned } = f.concurrency;
    if (reserved !== undefined && provisioned !== undefined && provisioned > reserved) {
      throw new ManifestError(
        file,
        `functions.${name}.concurrency.provisioned`,
        `is ${provisioned} but reserved is ${reserved}; provisioned instances cannot exceed reserved concurrency`,
      );
    }
    checkLogging(file, name, f);
    for (const [key, value] of Object.entries(f.environment)) {
      if (RESERVED_ENV.test(key)) {
        throw new ManifestError(
          file,
          `functions.${name}.environment.${key}`,
          'is reserved by the runtime; rename it',
        );
      }
      const v = parseEnvValue(value);
      if (v.kind === 'invalid')
        throw new ManifestError(file, `functions.${name}.environment.${key}`, v.problem);
    }
    const routes: Route[] = [];
    const schedules: ScheduleConfig[] = [];
    const emails: string[] = [];
    const queueTriggers: QueueTrigger[] = [];
    const tableTriggers: TableTrigger[] = [];
    const storageTriggers: StorageTrigger[] = [];
    for (const [i, ev] of f.events.entries()) {
      if (ev.storage !== undefined) {
        const field = `functions.${name}.events.${i}.storage`;
        const trigger = storageTrigger(file, field, ev.storage, m.buckets);
        const same = storageTriggers.find(
          (t) => t.bucket === trigger.bucket && t.prefix === trigger.prefix && t.suffix === trigger.suffix,
        );
        if (same) {
          // S3 refuses overlapping configurations too: one change would invoke the function twice.
          throw new ManifestError(
            file,
            field,
            `bucket "${trigger.bucket}" already triggers this function with the same prefix and suffix; list both kinds in one event's events: [created, removed]`,
          );
        }
        storageTriggers.push(trigger);
        continue;
      }
      if (ev.table !== undefined) {
        const field = `functions.${name}.events.${i}.table`;
        const trigger = tableTrigger(file, field, ev.table);
        const declared = m.tables[trigger.table];
        if (declared && (declared.stream === undefined || declared.stream === false)) {
          throw new ManifestError(
            file,
            field,
            `table "${trigger.table}" has no stream; add stream: true to tables.${trigger.table}`,
          );
        }
        if (trigger.onFailure) {
          const dest = queueByName.get(trigger.onFailure.queue);
          if (!dest || dest.fifo) {
            throw new ManifestError(
              file,
              `${field}.onFailure.queue`,
              dest
                ? `names "${dest.name}", a FIFO queue; a table trigger's failure destination must be a standard queue`
                : `queue "${trigger.onFailure.queue}" is not declared; add it under queues:`,
            );
          }
        }
        if (tableTriggers.some((t) => t.table === trigger.table)) {
          throw new ManifestError(file, field, `table "${trigger.table}" already triggers this function`);
        }
        tableTriggers.push(trigger);
        continue;
      }
      if (ev.queue !== undefined) {
        const field = `functions.${name}.events.${i}.queue`;
        const trigger = queueTrigger(file, field, ev.queue);
        const q = queueByName.get(trigger.queue);
        if (q) checkTrigger(file, field, trigger, q, f.timeout);
        if (queueTriggers.some((t) => t.queue === trigger.queue)) {
          throw new ManifestError(file, field, `queue "${trigger.queue}" already triggers this function`);
        }
        queueTriggers.push(trigger);
        continue;
      }
      if (ev.email !== undefined) {
        emails.push(ev.email.address.toLowerCase());
        continue;
      }
      if (ev.schedule !== undefined) {
        schedules.push(scheduleConfig(file, `functions.${name}.events.${i}.schedule`, ev.schedule));
        continue;
      }
      if (ev.http === undefined) continue;
      const key = typeof ev.http === 'string' ? ev.http : ev.http.route;
      const payload = typeof ev.http === 'string' ? '2.0' : ev.http.payload;
      const field = `functions.${name}.events.${i}.http`;
      const route = parseRouteKey(key);
      if (typeof route === 'string') throw new ManifestError(file, field, route);
      const norm = `${route.method} ${route.path.replace(/\{[^}]+?\+?\}/g, (p) => (p.endsWith('+}') ? '{+}' : '{}'))}`;
      const other = seenRoutes.get(norm);
      if (other)
        throw new ManifestError(file, field, `route "${key}" is already used by function "${other}"`);
      seenRoutes.set(norm, name);
      const protection = routeProtection(file, field, m.service, http, ev.http);
      routes.push({ ...route, payload, ...(protection ? { protection } : {}) });
    }
    functions.push({
      name,
      handler: f.handler,
      runtime: f.runtime,
      memory: f.memory,
      ...(f.ephemeralStorage !== DEFAULT_EPHEMERAL_MB ? { ephemeralStorage: f.ephemeralStorage } : {}),
      ...(f.network !== 'outbound' ? { network: f.network } : {}),
      timeout: f.timeout,
      environment: f.environment,
      reservedConcurrency: f.concurrency.reserved,
      ...(f.concurrency.provisioned !== undefined
        ? { provisionedConcurrency: f.concurrency.provisioned }
        : {}),
      ...(f.concurrency.perInstance !== undefined
        ? { perInstanceConcurrency: f.concurrency.perInstance }
        : {}),
      ...(f.concurrency.scaleOut !== undefined ? { scaleOutPer10s: f.concurrency.scaleOut } : {}),
      ...(f.keepAlive !== undefined ? { keepAlive: f.keepAlive } : {}),
      // Text is the default and stored as nothing, so functions deployed before the setting keep their version.
      ...(f.logFormat === 'JSON' ? { logFormat: 'JSON' as const } : {}),
      ...(f.applicationLogLevel !== undefined ? { applicationLogLevel: f.applicationLogLevel } : {}),
      ...(f.systemLogLevel !== undefined ? { systemLogLevel: f.systemLogLevel } : {}),
      ...(f.async !== undefined ? { async: asyncConfig(file, name, f.async) } : {}),
      ...(schedules.length > 0 ? { schedules } : {}),
      ...(emails.length > 0 ? { emails } : {}),
      ...(queueTriggers.length > 0 ? { queueTriggers } : {}),
      ...(tableTriggers.length > 0 ? { tableTriggers } : {}),
      ...(storageTriggers.length > 0 ? { storageTriggers } : {}),
      ...(f.permissions !== undefined ? { permissions: permissionsOf(f.permissions) } : {}),
      routes,
    });
  }
  return { service: m.service, functions, queues, tables, buckets: Object.keys(m.buckets).sort() };
}

/** Levels filter JSON records only (as AWS requires), and with JSON the level is the platform's to set. */
function checkLogging(
  file: string,
  name: string,
  f: { logFormat?: string; applicationLogLevel?: string; systemLogLevel?: string; environment: object },
): void {
  if (f.logFormat === 'JSON') {
    if ('AWS_LAMBDA_LOG_LEVEL' in f.environment) {
      throw new ManifestError(
        file,
        `functions.${name}.environment.AWS_LAMBDA_LOG_LEVEL`,
        'is set by the platform from applicationLogLevel when logFormat is JSON',
        `remove it and set functions.${name}.applicationLogLevel instead`,
      );
    }
    return;
  }
  for (const field of ['applicationLogLevel', 'systemLogLevel'] as const) {
    if (f[field] !== undefined) {
      throw new ManifestError(
        file,
        `functions.${name}.${field}`,
        'filters JSON logs only, and the log format is Text',
        `add \`logFormat: JSON\` to functions.${name}, or remove ${field}`,
      );
    }
  }
}

/** Sorted and deduplicated; queues only when granted, so a function granted tables alone keeps the config
 *  text (and version) it had before queues could be granted. */
/** Queues and buckets only when given, so a function without them keeps the config (and version) it had. */
function permissionsOf(p: { tables: string[]; queues: string[]; buckets: string[] }): {
  tables: string[];
  queues?: string[];
  buckets?: string[];
} {
  const sorted = (names: string[]) => [...new Set(names)].sort();
  return {
    tables: sorted(p.tables),
    ...(p.queues.length > 0 ? { queues: sorted(p.queues) } : {}),
    ...(p.buckets.length > 0 ? { buckets: sorted(p.buckets) } : {}),
  };
}

interface ServiceHttp {
  cors?: CorsConfig;
  authorizers: Map<string, AuthorizerConfig>;
  throttle?: ThrottleConfig;
  usagePlans?: Record<string, UsagePlan>;
}

/** The top-level http: section, checked as a whole: what API Gateway refuses at deploy is refused here. */
function serviceHttp(file: string, m: z.output<typeof ManifestSchema>): ServiceHttp {
  const out: ServiceHttp = { authorizers: new Map() };
  const h = m.http;
  if (!h) return out;
  if (h.cors) {
    const c = h.cors;
    for (const [i, o] of c.allowOrigins.entries()) {
      if (o !== '*' && !/^https?:\/\/(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$/.test(o)) {
        throw new ManifestError(
          file,
          `http.cors.allowOrigins.${i}`,
          `"${o}" is not an origin; write scheme and host without a path, e.g. "https://app.example", "https://*.example.com" or "*"`,
        );
      }
    }
    if (c.allowCredentials && c.allowOrigins.includes('*')) {
      throw new ManifestError(
        file,
        'http.cors.allowCredentials',
        'cannot be true when allowOrigins contains "*" (browsers refuse credentials with a wildcard origin); list the origins instead',
      );
    }
    out.cors = {
      allowOrigins: c.allowOrigins,
      allowMethods: c.allowMethods ?? ['*'],
      allowHeaders: (c.allowHeaders ?? []).map((x) => x.toLowerCase()),
      exposeHeaders: c.exposeHeaders ?? [],
      ...(c.maxAge !== undefined ? { maxAge: c.maxAge } : {}),
      allowCredentials: c.allowCredentials ?? false,
    };
  }
  for (const [name, a] of Object.entries(h.authorizers)) {
    const field = `http.authorizers.${name}`;
    if (a.type === 'jwt') {
      checkUrl(file, `${field}.issuer`, a.issuer);
      checkUrl(file, `${field}.jwksUrl`, a.jwksUrl);
      out.authorizers.set(name, {
        type: 'jwt',
        issuer: a.issuer,
        audience: a.audience,
        jwksUrl: a.jwksUrl,
        identitySource:
          (Array.isArray(a.identitySource) ? a.identitySource[0] : a.identitySource) ??
          '$request.header.Authorization',
      });
    } else {
      if (!Object.hasOwn(m.functions, a.function)) {
        throw new ManifestError(
          file,
          `${field}.function`,
          `function "${a.function}" is not declared in this service; add it under functions:`,
        );
      }
      const resultTtl = a.resultTtl ?? 300;
      const identitySource = a.identitySource ?? ['$request.header.Authorization'];
      if (resultTtl > 0 && identitySource.length === 0) {
        throw new ManifestError(
          file,
          `${field}.identitySource`,
          'is needed to cache results (resultTtl > 0); name at least one source or set resultTtl: 0',
        );
      }
      out.authorizers.set(name, { type: 'lambda', function: a.function, resultTtl, identitySource });
    }
  }
  if (h.throttle) out.throttle = h.throttle;
  if (Object.keys(h.usagePlans).length > 0) {
    const plans: Record<string, UsagePlan> = {};
    for (const [name, plan] of Object.entries(h.usagePlans)) {
      plans[name] = {
        ...(plan.throttle ? { throttle: plan.throttle } : {}),
        ...(plan.quota ? { quota: plan.quota } : {}),
      };
    }
    out.usagePlans = plans;
  }
  return out;
}

/** An issuer or key set URL: https, or http to a loopback host (a local identity provider). */
function checkUrl(file: string, field: string, text: string): void {
  let u: URL | undefined;
  try {
    u = new URL(text);
  } catch {
    u = undefined;
  }
  const loopback = u !== undefined && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
  if (!u || !(u.protocol === 'https:' || (u.protocol === 'http:' && loopback))) {
    throw new ManifestError(
      file,
      field,
      `"${text}" is not an https URL (http is accepted for 127.0.0.1 and localhost only), e.g. "https://issuer.example"`,
    );
  }
}

function routeProtection(
  file: string,
  field: string,
  service: string,
  http: ServiceHttp,
  ev: z.output<typeof HttpEventSchema>,
): RouteProtection | undefined {
  const spec = typeof ev === 'string' ? undefined : ev;
  const p: RouteProtection = { service };
  if (http.cors) p.cors = http.cors;
  if (http.throttle) p.serviceThrottle = http.throttle;
  if (spec?.throttle) p.throttle = spec.throttle;
  if (http.usagePlans) p.usagePlans = http.usagePlans;
  if (spec?.apiKeyRequired) {
    if (!http.usagePlans) {
      throw new ManifestError(
        file,
        `${field}.apiKeyRequired`,
        'needs a usage plan to issue keys under; declare one under http.usagePlans, e.g. free: { quota: { limit: 1000, period: DAY } }',
      );
    }
    p.apiKeyRequired = true;
  }
  if (spec?.authorizer !== undefined) {
    const a = http.authorizers.get(spec.authorizer);
    if (!a) {
      const known = [...http.authorizers.keys()];
      throw new ManifestError(
        file,
        `${field}.authorizer`,
        `authorizer "${spec.authorizer}" is not declared under http.authorizers${known.length > 0 ? ` (declared: ${known.join(', ')})` : ''}`,
      );
    }
    p.authorizer = { name: spec.authorizer, ...a };
  }
  if (spec?.authorizationScopes) {
    if (p.authorizer?.type !== 'jwt') {
      throw new ManifestError(
        file,
        `${field}.authorizationScopes`,
        'apply to routes with a jwt authorizer only; add authorizer: <a jwt authorizer> or drop the scopes',
      );
    }
    p.authorizationScopes = spec.authorizationScopes;
  }
  return Object.keys(p).length > 1 ? p : undefined;
}

function keyAttribute(k: Record<string, 'S' | 'N' | 'B'>): KeyAttribute {
  const [name, type] = Object.entries(k)[0]!;
  return { name, type };
}

function tableDef(file: string, name: string, t: z.output<typeof TableSchema>): TableDef {
  const key: KeySchema = {
    partition: keyAttribute(t.key),
    ...(t.sort ? { sort: keyAttribute(t.sort) } : {}),
  };
  if (key.sort && key.sort.name === key.partition.name) {
    throw new ManifestError(file, `tables.${name}.sort`, 'must be another attribute than the partition key');
  }
  const types = new Map<string, string>([[key.partition.name, key.partition.type]]);
  if (key.sort) types.set(key.sort.name, key.sort.type);
  const indexes: IndexDef[] = [];
  for (const [indexName, ix] of Object.entries(t.indexes)) {
    const field = `tables.${name}.indexes.${indexName}`;
    const local = ix.local === true;
    const partition = keyAttribute(ix.key);
    if (local && partition.name !== key.partition.name) {
      throw new ManifestError(
        file,
        `${field}.key`,
        `a local index shares the table's partition key; use { ${key.partition.name}: ${key.partition.type} } or drop "local"`,
      );
    }
    if (local && !ix.sort)
      throw new ManifestError(file, `${field}.sort`, 'a local index needs a sort key of its own');
    for (const a of [partition, ...(ix.sort ? [keyAttribute(ix.sort)] : [])]) {
      const known = types.get(a.name);
      if (known !== undefined && known !== a.type) {
        throw new ManifestError(
          file,
          field,
          `attribute "${a.name}" is ${known} elsewhere in this table and ${a.type} here; one attribute has one type`,
        );
      }
      types.set(a.name, a.type);
    }
    const projection: Projection =
      ix.projection === undefined || ix.projection === 'ALL'
        ? { type: 'ALL' }
        : ix.projection === 'KEYS_ONLY'
          ? { type: 'KEYS_ONLY' }
          : { type: 'INCLUDE', attributes: ix.projection };
    indexes.push({
      name: indexName,
      kind: local ? 'local' : 'global',
      key: { partition, ...(ix.sort ? { sort: keyAttribute(ix.sort) } : {}) },
      projection,
    });
  }
  if (indexes.filter((i) => i.kind === 'local').length > 5) {
    throw new ManifestError(file, `tables.${name}.indexes`, 'a table has at most 5 local indexes');
  }
  if (indexes.filter((i) => i.kind === 'global').length > 20) {
    throw new ManifestError(file, `tables.${name}.indexes`, 'a table has at most 20 global indexes');
  }
  const stream =
    t.stream === undefined || t.stream === false
      ? undefined
      : t.stream === true
        ? 'NEW_AND_OLD_IMAGES'
        : t.stream;
  return {
    name,
    key,
    indexes,
    ...(stream ? { stream: { viewType: stream } } : {}),
    ...(t.ttl !== undefined ? { ttlAttribute: t.ttl } : {}),
    billingMode: 'PAY_PER_REQUEST',
  };
}

function queueConfig(file: string, name: string, q: z.output<typeof QueueSchema>): QueueConfig {
  const field = `queues.${name}`;
  const named = name.endsWith('.fifo');
  if (q.fifo === true && !named) {
    throw new ManifestError(
      file,
      `${field}.fifo`,
      `a FIFO queue's name must end in ".fifo"; rename it "${name}.fifo"`,
    );
  }
  if (q.fifo === false && named) {
    throw new ManifestError(
      file,
      `${field}.fifo`,
      'is false, but names ending in ".fifo" are FIFO queues; rename the queue or drop "fifo: false"',
    );
  }
  if (q.contentBasedDeduplication && !named) {
    throw new ManifestError(
      file,
      `${field}.contentBasedDeduplication`,
      'applies to FIFO queues only (names ending in ".fifo")',
    );
  }
  if (q.maxReceiveCount !== undefined && q.deadLetterQueue === undefined) {
    throw new ManifestError(
      file,
      `${field}.maxReceiveCount`,
      'needs a deadLetterQueue to move messages to; add deadLetterQueue: <queue>',
    );
  }
  if (q.deadLetterQueue === name) {
    throw new ManifestError(
      file,
      `${field}.deadLetterQueue`,
      'names the queue itself; a dead-letter queue must be another queue',
    );
  }
  return {
    name,
    fifo: named,
    contentBasedDeduplication: q.contentBasedDeduplication ?? false,
    visibilityTimeout: q.visibilityTimeout ?? QUEUE_DEFAULTS.visibilityTimeout,
    messageRetentionPeriod: q.messageRetentionPeriod ?? QUEUE_DEFAULTS.messageRetentionPeriod,
    delaySeconds: q.delaySeconds ?? QUEUE_DEFAULTS.delaySeconds,
    maximumMessageSize: q.maximumMessageSize ?? QUEUE_DEFAULTS.maximumMessageSize,
    ...(q.receiveMessageWaitTimeSeconds
      ? { receiveMessageWaitTimeSeconds: q.receiveMessageWaitTimeSeconds }
      : {}),
    ...(q.deadLetterQueue !== undefined
      ? {
          deadLetterQueue: q.deadLetterQueue,
          maxReceiveCount: q.maxReceiveCount ?? QUEUE_DEFAULTS.maxReceiveCount,
        }
      : {}),
  };
}

function tableTrigger(file: string, field: string, ev: z.output<typeof TableEventSchema>): TableTrigger {
  const spec = typeof ev === 'string' ? { name: ev } : ev;
  if (!TABLE_NAME.test(spec.name)) {
    throw new ManifestError(file, typeof ev === 'string' ? field : `${field}.name`, TABLE_NAME_HINT);
  }
  return {
    table: spec.name,
    batchSize: spec.batchSize ?? 100,
    startingPosition: spec.startingPosition ?? 'LATEST',
    maximumRetryAttempts: spec.maximumRetryAttempts ?? -1,
    bisectBatchOnFunctionError: spec.bisectBatchOnFunctionError ?? false,
    ...filterPatterns(file, field, spec.filterCriteria),
    ...(typeof ev !== 'string' && ev.onFailure ? { onFailure: { queue: ev.onFailure.queue } } : {}),
  };
}

function storageTrigger(
  file: string,
  field: string,
  ev: z.output<typeof StorageEventSchema>,
  buckets: Record<string, unknown>,
): StorageTrigger {
  const spec = typeof ev === 'string' ? { bucket: ev } : ev;
  if (!Object.hasOwn(buckets, spec.bucket)) {
    throw new ManifestError(
      file,
      typeof ev === 'string' ? field : `${field}.bucket`,
      `bucket "${spec.bucket}" is not declared; add it under buckets: (a storage trigger reads a bucket of this service)`,
    );
  }
  return {
    bucket: spec.bucket,
    // Sorted and unique, so the same trigger written two ways is the same config (and version).
    events: [...new Set(spec.events ?? (['created'] as const))].sort(),
    ...(spec.prefix !== undefined ? { prefix: spec.prefix } : {}),
    ...(spec.suffix !== undefined ? { suffix: spec.suffix } : {}),
  };
}

/** Lambda filter patterns as JSON text, each compiled once here so a bad one is refused at deploy. */
function filterPatterns(
  file: string,
  field: string,
  criteria: { filters: { pattern?: unknown }[] } | undefined,
): { filters?: string[] } {
  const filters: string[] = [];
  for (const [i, f] of (criteria?.filters ?? []).entries()) {
    const text = typeof f.pattern === 'string' ? f.pattern : JSON.stringify(f.pattern ?? null);
    try {
      compileFilters([text]);
    } catch (err: unknown) {
      const why = err instanceof FilterPatternError ? err.message : String(err);
      throw new ManifestError(file, `${field}.filterCriteria.filters.${i}.pattern`, why);
    }
    filters.push(text);
  }
  return filters.length > 0 ? { filters } : {};
}

function queueTrigger(file: string, field: string, ev: z.output<typeof QueueEventSchema>): QueueTrigger {
  const spec = typeof ev === 'string' ? { name: ev } : ev;
  if (!QUEUE_NAME.test(spec.name))
    throw new ManifestError(file, typeof ev === 'string' ? field : `${field}.name`, QUEUE_NAME_HINT);
  const batchSize = spec.batchSize ?? 10;
  const window = spec.maximumBatchingWindow ?? 0;
  if (batchSize > 10 && window < 1) {
    throw new ManifestError(
      file,
      `${field}.maximumBatchingWindow`,
      `must be at least 1 second when batchSize is above 10 (it is ${batchSize}), as on Lambda; set maximumBatchingWindow: 1 or more`,
    );
  }
  return {
    queue: spec.name,
    batchSize,
    maximumBatchingWindow: window,
    ...(spec.maximumConcurrency !== undefined ? { maximumConcurrency: spec.maximumConcurrency } : {}),
    ...filterPatterns(file, field, spec.filterCriteria),
  };
}

/** Lambda's rules for a mapping that depend on the queue as well: checked here when the queue is declared
 *  in the same manifest, and at deploy when it belongs to another service. */
export function checkTrigger(
  file: string,
  field: string,
  t: QueueTrigger,
  q: Pick<QueueConfig, 'name' | 'fifo' | 'visibilityTimeout'>,
  functionTimeout: number,
): void {
  if (q.fifo && t.batchSize > 10) {
    throw new ManifestError(
      file,
      `${field}.batchSize`,
      `is ${t.batchSize}; a FIFO queue's batches hold at most 10 messages`,
    );
  }
  if (q.visibilityTimeout < functionTimeout) {
    throw new ManifestError(
      file,
      field,
      `queue "${q.name}" has a visibilityTimeout of ${q.visibilityTimeout} s, less than the function's timeout (${functionTimeout} s): a message would reappear while it is still being handled; raise the queue's visibilityTimeout to at least ${functionTimeout}`,
    );
  }
}

function scheduleConfig(
  file: string,
  field: string,
  ev: z.output<typeof ScheduleEventSchema>,
): ScheduleConfig {
  const expression = (typeof ev === 'string' ? ev : ev.expression).trim();
  const timezone = typeof ev === 'string' ? 'UTC' : (ev.timezone ?? 'UTC');
  try {
    parseSchedule(expression, timezone);
  } catch (err) {
    throw new ManifestError(file, field, err instanceof ScheduleError ? err.message : String(err));
  }
  const input = typeof ev === 'string' || ev.input === undefined ? undefined : JSON.stringify(ev.input);
  return { expression, timezone, ...(input !== undefined ? { input } : {}) };
}

function asyncConfig(file: string, name: string, a: z.output<typeof AsyncSchema>): AsyncConfig {
  const out: AsyncConfig = {};
  if (a.maximumRetryAttempts !== undefined) out.maximumRetryAttempts = a.maximumRetryAttempts;
  if (a.maximumEventAgeInSeconds !== undefined) out.maximumEventAgeInSeconds = a.maximumEventAgeInSeconds;
  for (const key of ['onSuccess', 'onFailure'] as const) {
    const queue = a[key]?.queue;
    if (queue !== undefined) {
      out[key] = { queue };
      continue;
    }
    const target = a[key]?.function;
    if (target === undefined) continue;
    // A function that is its own destination would feed itself forever; Lambda refuses it too.
    if (target === name) {
      throw new ManifestError(
        file,
        `functions.${name}.async.${key}.function`,
        'names the function itself; a destination must be another function',
      );
    }
    out[key] = { function: target };
  }
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}; check the spelling against docs/manifest.md`;
    case 'invalid_type':
      return issue.input === undefined
        ? `is required (${article(issue.expected)})`
        : `must be ${article(issue.expected)}, not ${describe(issue.input)}`;
    case 'too_small':
      return `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      return `must be at most ${String(issue.maximum)}`;
    case 'invalid_value': {
      if (!issue.message.startsWith('Invalid')) return issue.message;
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, not ${describe(issue.input)}`;
    }
    case 'invalid_key':
      // The key's own rule says what a name may be (function names, queue names); environment keys have none.
      if (issue.path.includes('environment') || !issue.issues[0]?.message)
        return 'is not a valid environment variable name (letters, digits and "_", not starting with a digit)';
      return issue.issues[0].message;
    case 'invalid_union': {
      if (issue.path.at(-1) === 'keepAlive') {
        return `must be "fixed", "hybrid" or a number of seconds (0..86400), not ${describe(issue.input)}`;
      }
      // The union's branches each failed; the branch the user evidently meant explains it best.
      const inner = issue.errors
        .map((branch) => branch[0])
        .filter((i): i is z.core.$ZodIssue => i !== undefined)
        .sort((a, b) => b.path.length - a.path.length)[0];
      if (inner && inner.code !== 'invalid_type') return describeIssue(inner);
      if (issue.input === undefined) return 'is required';
      return `has the wrong shape (${describe(issue.input)}); see docs/manifest.md`;
    }
    default:
      return issue.message;
  }
}

const TYPE_NAMES: Record<string, string> = {
  int: 'whole number',
  record: 'mapping',
  object: 'mapping',
  array: 'list',
};

function article(expected: string): string {
  const name = TYPE_NAMES[expected] ?? expected;
  return /^[aeiou]/.test(name) ? `an ${name}` : `a ${name}`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${String(v)}`;
}

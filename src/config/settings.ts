// Platform settings: one schema, resolved flag > environment > default (a settings file joins later, between
// environment and default). Errors name the setting and its source.
import { totalmem } from 'node:os';
import { z } from 'zod';

export const SettingsSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  /** A project's routes are served on the host <project>.<gatewayDomain>; every other host serves the
   *  default project's. "localhost" works on a laptop: *.localhost resolves to loopback. */
  gatewayDomain: z
    .string()
    .transform((v) => v.trim().toLowerCase().replace(/\.$/, ''))
    .pipe(
      z
        .string()
        .regex(
          /^(?=.{1,200}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/,
          'must be a DNS name such as "api.example.com" or "localhost" (no scheme, port or path)',
        ),
    )
    .default('localhost'),
  apiHost: z.string().min(1).default('127.0.0.1'),
  apiPort: z.coerce.number().int().min(0).max(65535).default(8081),
  dataDir: z.string().min(1).default('./.nimbus'),
  /** PEM certificate (chain) and private key files: both given, gateway and control listener serve HTTPS. */
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  /** The SMTP listener for e-mail events (it listens only while a function declares one). */
  smtpHost: z.string().min(1).default('127.0.0.1'),
  smtpPort: z.coerce.number().int().min(0).max(65535).default(2525),
  /** Largest incoming message, bytes. */
  maxEmailBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(10 * 1024 * 1024),
  /** Attachments up to this size carry their content in the event. */
  emailInlineBytes: z.coerce
    .number()
    .int()
    .min(0)
    .default(256 * 1024),
  /** Where state lives: "sqlite" (a file in the data dir, the default) or a postgresql:// URL. */
  store: z
    .string()
    .min(1)
    .refine((v) => v === 'sqlite' || /^postgres(ql)?:\/\//.test(v), {
      message: 'must be "sqlite" or a postgresql:// URL, for example postgresql://127.0.0.1:5432/nimbus',
    })
    .default('sqlite'),
  /** Idle instances stop after this many seconds (AWS keeps roughly 5-15 minutes). */
  keepAliveSec: z.coerce.number().min(0).max(86400).default(600),
  /** The platform's keep-alive policy; functions may choose another with `keepAlive` in the manifest. */
  keepAlivePolicy: z.enum(['fixed', 'hybrid']).default('fixed'),
  /** Sum of configured memory of all instances on this node (default: 75% of RAM). */
  memoryBudgetMB: z.coerce
    .number()
    .int()
    .min(128)
    .default(() => Math.floor((totalmem() * 0.75) / 2 ** 20)),
  /** New instances per function per second after the burst (AWS: 1,000 per 10 s). */
  scaleOutPerSec: z.coerce.number().min(1).default(100),
  scaleOutBurst: z.coerce.number().int().min(1).default(1000),
  /** Short invocations may wait for a busy warm instance when that beats a cold start (see docs). */
  queueing: z.boolean().default(true),
  /** V8 code caches of CommonJS entry bundles, produced at deploy and used by cold starts (see docs). */
  codeCache: z.boolean().default(true),
  /** Prometheus metrics at the control listener's /metrics; off takes every counter off the hot path. */
  metrics: z.boolean().default(true),
  /** Spans kept in the store (console, GET /v1/traces); OTLP export is on when OTEL_EXPORTER_OTLP_*ENDPOINT is set. */
  traces: z.boolean().default(true),
  /** First retry of a failed async invocation after this long, doubling per retry (Lambda: about 1 min). */
  retryBaseMs: z.coerce.number().int().min(1).max(3_600_000).default(60_000),
  /** Failed async events are kept this many days after they were accepted (or replayed). */
  failedEventRetentionDays: z.coerce.number().min(0.001).max(3650).default(14),
  /** Invocation records (and their logs) are deleted this many days after they started. */
  invocationRetentionDays: z.coerce.number().min(0.001).max(36500).default(30),
  /** USD per million requests (AWS us-east-1: 0.20); at most 6 decimals, a picodollar per request. */
  priceRequests: z
    .string()
    .regex(/^\d+(\.\d{0,6})?$/, {
      message: 'must be USD per million requests with at most 6 decimals, like 0.20',
    })
    .default('0.20'),
  /** USD per GB-second (AWS us-east-1 x86: 0.0000166667); at most 12 decimals, a picodollar. */
  priceGbSecond: z
    .string()
    .regex(/^\d+(\.\d{0,12})?$/, {
      message: 'must be USD per GB-second with at most 12 decimals, like 0.0000166667',
    })
    .default('0.0000166667'),
  /** USD per GB-second an instance is kept for provisioned concurrency (AWS: 0.0000041667). */
  priceProvisionedGbSecond: z
    .string()
    .regex(/^\d+(\.\d{0,12})?$/, {
      message: 'must be USD per GB-second with at most 12 decimals, like 0.0000041667',
    })
    .default('0.0000041667'),
  /** USD per GB-second of duration on a provisioned instance (AWS: 0.0000097222). */
  priceProvisionedDurationGbSecond: z
    .string()
    .regex(/^\d+(\.\d{0,12})?$/, {
      message: 'must be USD per GB-second with at most 12 decimals, like 0.0000097222',
    })
    .default('0.0000097222'),
  /** USD per million DynamoDB write requests (AWS on-demand: 0.625 per million write request units). */
  priceDynamodbWrites: z
    .string()
    .regex(/^\d+(\.\d{0,6})?$/, {
      message: 'must be USD per million requests with at most 6 decimals, like 0.625',
    })
    .default('0.625'),
  /** USD per million DynamoDB read requests (AWS on-demand: 0.125 per million read request units). */
  priceDynamodbReads: z
    .string()
    .regex(/^\d+(\.\d{0,6})?$/, {
      message: 'must be USD per million requests with at most 6 decimals, like 0.125',
    })
    .default('0.125'),
  /** USD per 1,000 S3 PUT, COPY, POST and LIST requests (AWS S3 Standard: 0.005). */
  priceS3Tier1: z
    .string()
    .regex(/^\d+(\.\d{0,9})?$/, {
      message: 'must be USD per 1,000 requests with at most 9 decimals, like 0.005',
    })
    .default('0.005'),
  /** USD per 1,000 S3 GET, HEAD and other requests (AWS S3 Standard: 0.0004). */
  priceS3Tier2: z
    .string()
    .regex(/^\d+(\.\d{0,9})?$/, {
      message: 'must be USD per 1,000 requests with at most 9 decimals, like 0.0004',
    })
    .default('0.0004'),
  /** USD per million SQS requests (AWS standard queues: 0.40). */
  priceSqsRequests: z
    .string()
    .regex(/^\d+(\.\d{0,6})?$/, {
      message: 'must be USD per million requests with at most 6 decimals, like 0.40',
    })
    .default('0.40'),
  /** USD per GB-month a project stores (objects, table items, queue messages; AWS S3 Standard: 0.023). */
  priceStorageGbMonth: z
    .string()
    .regex(/^\d+(\.\d{0,12})?$/, {
      message: 'must be USD per GB-month with at most 12 decimals, like 0.023',
    })
    .default('0.023'),
  /** Cost reports subtract AWS's monthly free tier (1M requests, 400,000 GB-s) per project and month. */
  freeTier: z.boolean().default(false),
  /** A schedule tick missed while Nimbus was down (over a minute late): "skip" it, or fire it "once". */
  scheduleCatchUp: z.enum(['skip', 'once']).default('skip'),
  /** The share (0.1..1) of a function's reserved concurrency, and of maxConcurrency, that async events and
   *  queue batches may use; the rest stays for synchronous calls (HTTP and RequestResponse invokes). */
  eventConcurrencyShare: z.coerce.number().min(0.1).max(1).default(0.8),
  /** Async events running at once on this node (each function's share of its concurrency still applies). */
  eventConcurrency: z.coerce.number().int().min(1).max(10000).default(64),
  /** Bytes an item collection of a DynamoDB table with a local secondary index may hold (DynamoDB: 10 GB).
   *  For tests: a small value makes ItemCollectionSizeLimitExceededException reachable. */
  itemCollectionLimit: z.coerce
    .number()
    .int()
    .min(1)
    .default(10 * 1024 ** 3),
  /** Ready stem cells kept per memory size in use. */
  stemCells: z.coerce.number().int().min(0).max(256).default(4),
  /** Concurrent invocations across all functions on this node. */
  maxConcurrency: z.coerce.number().int().min(1).max(100000).default(100),
  region: z.string().default('us-east-1'),
  accountId: z
    .string()
    .regex(/^\d{12}$/)
    .default('000000000000'),
  /** Refuse to start without bubblewrap instead of falling back to a weaker sandbox. */
  requireBwrap: z.boolean().default(false),
  /** Turn bubblewrap off (tests of the fallback path). */
  disableBwrap: z.boolean().default(false),
  /** Enforce memory by polling RSS instead of a cgroup (hosts whose cgroup setup misbehaves; tests). */
  disableCgroup: z.boolean().default(false),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One info line per gateway request (method, path, status, ms, function, request id, cold). */
  accessLog: z.boolean().default(true),
  /** "stdout": functions' log lines also go to the server's stdout, prefixed with function and request id. */
  functionLogs: z.enum(['store', 'stdout']).default('store'),
  /** Dev mode (`nimbus dev` starts its server so): lets `nimbus dev --inspect` open a debugger. */
  dev: z.boolean().default(false),
});

export type SettingsInput = z.input<typeof SettingsSchema>;
export type Settings = z.output<typeof SettingsSchema>;

/** Environment variable for each setting. */
export const SETTINGS_ENV: Record<keyof Settings, string> = {
  host: 'NIMBUS_HOST',
  port: 'NIMBUS_PORT',
  gatewayDomain: 'NIMBUS_GATEWAY_DOMAIN',
  apiHost: 'NIMBUS_API_HOST',
  apiPort: 'NIMBUS_API_PORT',
  dataDir: 'NIMBUS_DATA',
  tlsCert: 'NIMBUS_TLS_CERT',
  tlsKey: 'NIMBUS_TLS_KEY',
  store: 'NIMBUS_STORE',
  smtpHost: 'NIMBUS_SMTP_HOST',
  smtpPort: 'NIMBUS_SMTP_PORT',
  maxEmailBytes: 'NIMBUS_MAX_EMAIL_BYTES',
  emailInlineBytes: 'NIMBUS_EMAIL_INLINE_BYTES',
  keepAliveSec: 'NIMBUS_KEEP_ALIVE',
  keepAlivePolicy: 'NIMBUS_KEEP_ALIVE_POLICY',
  memoryBudgetMB: 'NIMBUS_MEMORY_BUDGET_MB',
  scaleOutPerSec: 'NIMBUS_SCALE_OUT_PER_SEC',
  scaleOutBurst: 'NIMBUS_SCALE_OUT_BURST',
  queueing: 'NIMBUS_QUEUEING',
  codeCache: 'NIMBUS_CODE_CACHE',
  metrics: 'NIMBUS_METRICS',
  traces: 'NIMBUS_TRACES',
  retryBaseMs: 'NIMBUS_RETRY_BASE_MS',
  scheduleCatchUp: 'NIMBUS_SCHEDULE_CATCH_UP',
  failedEventRetentionDays: 'NIMBUS_FAILED_EVENT_RETENTION_DAYS',
  invocationRetentionDays: 'NIMBUS_INVOCATION_RETENTION_DAYS',
  priceRequests: 'NIMBUS_PRICE_REQUESTS',
  priceGbSecond: 'NIMBUS_PRICE_GB_SECOND',
  priceProvisionedGbSecond: 'NIMBUS_PRICE_PROVISIONED_GB_SECOND',
  priceProvisionedDurationGbSecond: 'NIMBUS_PRICE_PROVISIONED_DURATION_GB_SECOND',
  priceDynamodbWrites: 'NIMBUS_PRICE_DYNAMODB_WRITES',
  priceDynamodbReads: 'NIMBUS_PRICE_DYNAMODB_READS',
  priceS3Tier1: 'NIMBUS_PRICE_S3_TIER1',
  priceS3Tier2: 'NIMBUS_PRICE_S3_TIER2',
  priceSqsRequests: 'NIMBUS_PRICE_SQS_REQUESTS',
  priceStorageGbMonth: 'NIMBUS_PRICE_STORAGE_GB_MONTH',
  freeTier: 'NIMBUS_FREE_TIER',
  eventConcurrencyShare: 'NIMBUS_EVENT_CONCURRENCY_SHARE',
  eventConcurrency: 'NIMBUS_EVENT_CONCURRENCY',
  itemCollectionLimit: 'NIMBUS_ITEM_COLLECTION_LIMIT',
  stemCells: 'NIMBUS_STEM_CELLS',
  maxConcurrency: 'NIMBUS_MAX_CONCURRENCY',
  region: 'NIMBUS_REGION',
  accountId: 'NIMBUS_ACCOUNT_ID',
  requireBwrap: 'NIMBUS_REQUIRE_BWRAP',
  disableBwrap: 'NIMBUS_DISABLE_BWRAP',
  disableCgroup: 'NIMBUS_DISABLE_CGROUP',
  logLevel: 'NIMBUS_LOG_LEVEL',
  accessLog: 'NIMBUS_ACCESS_LOG',
  functionLogs: 'NIMBUS_FUNCTION_LOGS',
  dev: 'NIMBUS_DEV',
};

const BOOLEAN_SETTINGS = new Set<keyof Settings>([
  'requireBwrap',
  'disableBwrap',
  'disableCgroup',
  'queueing',
  'codeCache',
  'metrics',
  'traces',
  'freeTier',
  'accessLog',
  'dev',
]);

/** 1/true/yes/on and 0/false/no/off, as every NIMBUS_* switch reads them; anything else is left for the schema to refuse. */
export function parseBoolean(v: string): boolean | string {
  const t = v.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off'].includes(t)) return false;
  return v;
}

export class SettingsError extends Error {
  override name = 'SettingsError';
}

/** flags > env > defaults. Flags hold only what the user passed (undefined entries are ignored). */
export function resolveSettings(
  flags: Partial<Record<keyof Settings, unknown>> = {},
  env: NodeJS.ProcessEnv = process.env,
): Settings {
  const merged: Record<string, unknown> = {};
  const source: Record<string, string> = {};
  for (const key of Object.keys(SETTINGS_ENV) as (keyof Settings)[]) {
    const envName = SETTINGS_ENV[key];
    if (flags[key] !== undefined) {
      merged[key] = flags[key];
      source[key] = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    } else if (env[envName] !== undefined && env[envName] !== '') {
      const v = env[envName];
      merged[key] = BOOLEAN_SETTINGS.has(key) ? parseBoolean(v!) : v;
      source[key] = envName;
    }
  }
  const r = SettingsSchema.safeParse(merged);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    throw new SettingsError(`setting ${source[key] ?? key} is invalid: ${issue.message}`);
  }
  return r.data;
}

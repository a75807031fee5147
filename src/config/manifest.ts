// The nimbus.yaml manifest: one zod schema is the truth for what users may write (ManifestInput) and what
// the platform uses (Manifest). Every failure becomes one readable error naming the file, the field and the fix.
import { z } from 'zod';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { parseSchedule, ScheduleError } from './schedule.js';

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

const HttpEventSchema = z.union([
  z.string(),
  z.strictObject({
    route: z.string(),
    payload: z.enum(['1.0', '2.0']).default('2.0'),
  }),
]);

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

const EventSchema = z
  .strictObject({
    http: HttpEventSchema.optional(),
    schedule: ScheduleEventSchema.optional(),
    email: EmailEventSchema.optional(),
  })
  .superRefine((e, ctx) => {
    const kinds = [e.http, e.schedule, e.email].filter((k) => k !== undefined).length;
    if (kinds !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          'each event is exactly one of "http", "schedule" or "email", e.g. - http: GET /items, - schedule: rate(5 minutes) or - email: { address: orders@example.test }',
      });
    }
  });

/** Where an async invocation's outcome is sent (AWS's destinations). */
const DestinationSchema = z
  .strictObject({
    function: z
      .string()
      .regex(NAME, 'function names start with a letter and use letters, digits, "-" or "_" (max 64)')
      .optional(),
    queue: z.string().optional(),
  })
  .superRefine((d, ctx) => {
    if (d.queue !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['queue'],
        message:
          'queue destinations are not available yet (Nimbus has no queues yet); send to a function: { function: <name> }',
      });
    } else if (d.function === undefined) {
      ctx.addIssue({ code: 'custom', message: 'must name a function: { function: <name> }' });
    }
  });

/** Lambda's EventInvokeConfig: retries and destinations of Event (async) invocations. */
const AsyncSchema = z.strictObject({
  maximumRetryAttempts: z.number().int().min(0).max(2).optional(),
  maximumEventAgeInSeconds: z.number().int().min(60).max(21600).optional(),
  onSuccess: DestinationSchema.optional(),
  onFailure: DestinationSchema.optional(),
});

const FunctionSchema = z.strictObject({
  handler: z
    .string()
    .regex(/^[^\s]+\.[^./\s]+$/, 'handler must be "path/file.export", for example "src/items.get"'),
  runtime: z
    .literal('nodejs', { message: 'runtime must be "nodejs" (the only runtime for now)' })
    .default('nodejs'),
  memory: z.number().int().min(128).max(10240).default(128),
  timeout: z.number().int().min(1).max(900).default(3),
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
  async: AsyncSchema.optional(),
  events: z.array(EventSchema).default([]),
});

export const ManifestSchema = z.strictObject({
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
}

export interface FunctionConfig {
  name: string;
  handler: string;
  runtime: 'nodejs';
  memory: number;
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
  /** Retries and destinations of async invocations; Lambda's defaults apply to what is left out. */
  async?: AsyncConfig | undefined;
  /** Schedules that invoke the function asynchronously (EventBridge's scheduled rules). */
  schedules?: ScheduleConfig[] | undefined;
  /** Addresses (lowercase; "*@domain" for a whole domain) whose incoming mail invokes the function. */
  emails?: string[] | undefined;
  routes: Route[];
}

export interface ScheduleConfig {
  expression: string;
  timezone: string;
  /** JSON text of a constant input, when one was given. */
  input?: string;
}

export interface Destination {
  function: string;
}

export interface AsyncConfig {
  /** 0..2; default 2. */
  maximumRetryAttempts?: number;
  /** 60..21600; default 21600 (six hours). */
  maximumEventAgeInSeconds?: number;
  onSuccess?: Destination;
  onFailure?: Destination;
}

export const ASYNC_DEFAULTS = { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 21600 } as const;

export interface Manifest {
  service: string;
  functions: FunctionConfig[];
}

/** A user's mistake in a manifest: names the file, the field and how to fix it. */
export class ManifestError extends Error {
  override name = 'ManifestError';
  constructor(
    readonly file: string,
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${file}: ${field ? `${field}: ` : ''}${problem}`);
  }
}

// Set by the runtime; AWS_LAMBDA_LOG_LEVEL stays the user's, as on AWS, to filter console output by level.
const RESERVED_ENV = /^(?!AWS_LAMBDA_LOG_LEVEL$)(AWS_|_HANDLER$|LAMBDA_|NODE_OPTIONS$)/;

export function parseManifest(text: string, file = 'nimbus.yaml'): Manifest {
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
  const result = ManifestSchema.safeParse(raw ?? {}, { reportInput: true });
  if (!result.success) {
    // An unknown field explains the other complaints it causes (a missing "http" next to a misspelt one).
    const issue = result.error.issues.find((i) => i.code === 'unrecognized_keys') ?? result.error.issues[0]!;
    const field = issue.path.map(String).join('.');
    throw new ManifestError(file, field, describeIssue(issue));
  }
  const m = result.data;
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
    for (const key of Object.keys(f.environment)) {
      if (RESERVED_ENV.test(key)) {
        throw new ManifestError(
          file,
          `functions.${name}.environment.${key}`,
          'is reserved by the runtime; rename it',
        );
      }
    }
    const routes: Route[] = [];
    const schedules: ScheduleConfig[] = [];
    const emails: string[] = [];
    for (const [i, ev] of f.events.entries()) {
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
      routes.push({ ...route, payload });
    }
    functions.push({
      name,
      handler: f.handler,
      runtime: f.runtime,
      memory: f.memory,
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
      ...(f.async !== undefined ? { async: asyncConfig(file, name, f.async) } : {}),
      ...(schedules.length > 0 ? { schedules } : {}),
      ...(emails.length > 0 ? { emails } : {}),
      routes,
    });
  }
  return { service: m.service, functions };
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
      return 'is not a valid environment variable name (letters, digits and "_", not starting with a digit)';
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

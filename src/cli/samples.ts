// Sample events for `nimbus event generate` and `nimbus invoke --event`, built by the same functions that
// build the live ones (the gateway, the queue, storage, schedule and table triggers), so a function tried
// with a sample sees the shape it will see when deployed. Only the inputs are made up here.
import { createHash, randomUUID } from 'node:crypto';
import { buildEventV1, buildEventV2, type GatewayRequest } from '../gateway/events.js';
import type { RouteMatch } from '../gateway/router.js';
import type { RouteMethod } from '../config/manifest.js';
import { sqsRecord } from '../events/queues.js';
import { s3Event } from '../events/storage.js';
import { scheduledEvent } from '../events/schedules.js';
import { streamLambdaRecord } from '../events/table-streams.js';
import type { EmailEvent } from '../events/email.js';
import type { ObjectEventName } from '../store/types.js';
import { UsageError } from './command.js';

export type Fields = Record<string, string | undefined>;

interface Source {
  summary: string;
  aliases: string[];
  /** The fields it takes, with their defaults as shown in help. */
  fields: Record<string, string>;
  build(f: (field: string) => string, o: { region: string; account: string; now: number }): unknown;
}

const ACCOUNT = '000000000000';

export const SOURCES: Record<string, Source> = {
  http: {
    summary: "API Gateway HTTP API request, payload format 2.0 (a route's default)",
    aliases: ['apigateway', 'apigateway-v2', 'apigw-v2'],
    fields: httpFields(),
    build: (f, o) => {
      const { req, match } = gatewayInput(f, o);
      return buildEventV2(req, match);
    },
  },
  'http-v1': {
    summary: 'API Gateway request, payload format 1.0 (`payload: "1.0"` on a route)',
    aliases: ['apigateway-v1', 'apigw-v1'],
    fields: httpFields(),
    build: (f, o) => {
      const { req, match } = gatewayInput(f, o, '1.0');
      return buildEventV1(req, match);
    },
  },
  sqs: {
    summary: 'a batch of one SQS message, as a queue trigger delivers it',
    aliases: [],
    fields: { body: 'Hello from SQS', queue: 'my-queue', attributes: '{}', group: '' },
    build: (f, o) => {
      const attributes = parseAttributes(f('attributes'));
      const fifo = f('queue').endsWith('.fifo');
      const group = f('group') || (fifo ? 'group-1' : '');
      const record = sqsRecord(
        {
          id: randomUUID(),
          project: 'default',
          queue: f('queue'),
          body: f('body'),
          md5OfBody: createHash('md5').update(f('body')).digest('hex'),
          attributes,
          groupId: group || null,
          deduplicationId: fifo ? createHash('sha256').update(f('body')).digest('hex') : null,
          sequenceNumber: fifo ? '18849496460467696128' : null,
          trace: null,
          sentAt: o.now,
          firstReceivedAt: o.now,
          receiveCount: 1,
          receiptHandle: Buffer.from(randomUUID()).toString('base64'),
          deadLetterSource: null,
        },
        {
          region: o.region,
          accountId: o.account,
          queue: f('queue'),
          queueArn: (name) => `arn:aws:sqs:${o.region}:${o.account}:${name}`,
          now: o.now,
        },
      );
      return { Records: [record] };
    },
  },
  s3: {
    summary: 'an S3 event notification, as a storage trigger delivers it',
    aliases: [],
    fields: { bucket: 'my-bucket', key: 'uploads/photo.jpg', size: '1024', name: 'ObjectCreated:Put' },
    build: (f, o) => {
      const names = ['ObjectCreated:Put', 'ObjectCreated:Post', 'ObjectCreated:Copy'];
      names.push('ObjectCreated:CompleteMultipartUpload', 'ObjectRemoved:Delete');
      if (!names.includes(f('name'))) {
        throw new UsageError(
          `--name "${f('name')}" is not an S3 event name`,
          `use one of ${names.join(', ')}`,
        );
      }
      const size = Number(f('size'));
      if (!Number.isInteger(size) || size < 0) {
        throw new UsageError(
          `--size must be a whole number of bytes (got "${f('size')}")`,
          'for example --size 1024',
        );
      }
      return s3Event(
        {
          seq: 1,
          project: 'default',
          bucket: f('bucket'),
          key: f('key'),
          event: f('name') as ObjectEventName,
          size,
          etag: createHash('md5').update(f('key')).digest('hex'),
          sequencer: 1,
          at: o.now,
          requestId: randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase(),
          principalId: 'nimbus',
          sourceIp: '127.0.0.1',
          trace: null,
        },
        'sample',
        o.region,
        o.account,
      );
    },
  },
  schedule: {
    summary: 'an EventBridge "Scheduled Event", as a schedule delivers it',
    aliases: ['eventbridge', 'scheduled', 'cron'],
    fields: { rule: 'my-function-schedule-1' },
    build: (f, o) =>
      scheduledEvent({
        id: randomUUID(),
        tick: o.now,
        rule: f('rule'),
        region: o.region,
        account: o.account,
      }),
  },
  dynamodb: {
    summary: 'a DynamoDB stream record, as a table trigger delivers it',
    aliases: ['dynamodb-stream', 'ddb'],
    fields: {
      table: 'my-table',
      name: 'INSERT',
      keys: '{"id":{"S":"item-1"}}',
      'new-image': '{"id":{"S":"item-1"},"count":{"N":"1"}}',
      'old-image': '',
    },
    build: (f, o) => {
      if (!['INSERT', 'MODIFY', 'REMOVE'].includes(f('name'))) {
        throw new UsageError(
          `--name "${f('name')}" is not a stream event name`,
          'use INSERT, MODIFY or REMOVE',
        );
      }
      const name = f('name') as 'INSERT' | 'MODIFY' | 'REMOVE';
      const keys = parseJsonField(f('keys'), '--keys', '{"id":{"S":"item-1"}}');
      const newImage = name === 'REMOVE' ? undefined : parseJsonField(f('new-image'), '--new-image', '{}');
      const oldImage =
        name === 'INSERT'
          ? undefined
          : parseJsonField(f('old-image') || f('new-image'), '--old-image', '{"id":{"S":"item-1"}}');
      const viewType = 'NEW_AND_OLD_IMAGES';
      const record = streamLambdaRecord(
        {
          seq: 1,
          table: f('table'),
          eventName: name,
          keys: keys as never,
          ...(newImage ? { newImage: newImage as never } : {}),
          ...(oldImage ? { oldImage: oldImage as never } : {}),
          at: o.now,
          sizeBytes: JSON.stringify([keys, newImage, oldImage]).length,
        },
        viewType,
        new Date(o.now).toISOString().replace(/Z$/, ''),
        o.region,
        o.account,
      );
      return { Records: [record] };
    },
  },
  email: {
    summary: "an incoming e-mail, as an e-mail trigger delivers it (Nimbus's shape, not SES's)",
    aliases: ['ses', 'smtp'],
    fields: {
      from: 'ada@example.com',
      to: 'my-function@nimbus.local',
      subject: 'Hello',
      text: 'Hello from e-mail',
    },
    build: (f, o) => {
      const event: EmailEvent = {
        eventSource: 'nimbus:email',
        messageId: `<${randomUUID()}@example.com>`,
        envelope: { from: f('from'), to: [f('to')] },
        from: f('from'),
        to: [f('to')],
        cc: [],
        subject: f('subject'),
        date: new Date(o.now).toISOString(),
        text: `${f('text')}\n`,
        html: null,
        headers: [
          { name: 'from', value: f('from') },
          { name: 'to', value: f('to') },
          { name: 'subject', value: f('subject') },
          { name: 'date', value: new Date(o.now).toUTCString() },
        ],
        attachments: [],
      };
      return event;
    },
  },
};

/** Every field name any source takes: the options of `nimbus event generate`. */
export const FIELD_NAMES = [...new Set(Object.values(SOURCES).flatMap((s) => Object.keys(s.fields)))];

export function findSource(name: string): [string, Source] {
  const hit = Object.entries(SOURCES).find(([n, s]) => n === name || s.aliases.includes(name));
  if (hit) return hit;
  throw new UsageError(
    `unknown event source "${name}"`,
    `choose one of ${Object.keys(SOURCES).join(', ')} (see \`nimbus event sources\`)`,
  );
}

/** The sample for a source; fields it does not take are refused rather than ignored. */
export function generateEvent(
  name: string,
  given: Fields = {},
  o: { region?: string; account?: string; now?: number } = {},
): unknown {
  const [canonical, source] = findSource(name);
  for (const [k, v] of Object.entries(given)) {
    if (v !== undefined && !(k in source.fields)) {
      throw new UsageError(
        `--${k} does not apply to ${canonical} events`,
        `the fields of ${canonical} are ${Object.keys(source.fields)
          .map((f) => `--${f}`)
          .join(', ')}`,
      );
    }
  }
  const fields = new Map(Object.entries(source.fields));
  for (const [k, v] of Object.entries(given)) if (v !== undefined) fields.set(k, v);
  return source.build((k) => fields.get(k) ?? '', {
    region: o.region ?? 'us-east-1',
    account: o.account ?? ACCOUNT,
    now: o.now ?? Date.now(),
  });
}

function httpFields(): Record<string, string> {
  return { method: 'GET', path: '/hello', route: '', query: '', body: '', headers: '{}' };
}

/** A request as the gateway would have received it, matched to the route as its router would. */
function gatewayInput(
  f: (field: string) => string,
  o: { account: string; now: number },
  payload: '1.0' | '2.0' = '2.0',
): { req: GatewayRequest; match: RouteMatch } {
  const method = f('method').toUpperCase();
  const path = f('path').startsWith('/') ? f('path') : `/${f('path')}`;
  const route = f('route') || path;
  const pathParameters = matchRoute(route, path);
  if (pathParameters === null) {
    throw new UsageError(
      `--path ${path} does not match --route ${route}`,
      'give a path the route matches, e.g. --route "/items/{id}" --path /items/42',
    );
  }
  const headers = parseJsonField(f('headers'), '--headers', '{"x-api-key":"abc"}');
  const rawHeaders = ['Host', 'localhost:8080', 'User-Agent', 'curl/8.5.0', 'Accept', '*/*'];
  const body = Buffer.from(f('body'));
  if (body.length > 0)
    rawHeaders.push('Content-Type', 'application/json', 'Content-Length', String(body.length));
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) rawHeaders.push(k, String(v));
  const requestId = randomUUID();
  return {
    req: {
      method,
      path,
      rawQueryString: f('query').replace(/^\?/, ''),
      rawHeaders,
      body,
      sourceIp: '127.0.0.1',
      protocol: 'HTTP/1.1',
      requestId,
      timeEpoch: o.now,
      domainName: 'localhost',
      apiId: 'nimbus',
      accountId: o.account,
      stage: '$default',
    },
    match: {
      functionName: 'sample',
      route: { method: method as RouteMethod, path: route, payload },
      routeKey: `${method} ${route}`,
      pathParameters: Object.keys(pathParameters).length > 0 ? pathParameters : undefined,
    },
  };
}

/** The parameters of a route path ("/items/{id}", "/files/{path+}") in a request path, or null. */
function matchRoute(route: string, path: string): Record<string, string> | null {
  const r = route.split('/').filter(Boolean);
  const p = path.split('/').filter(Boolean);
  const params: Record<string, string> = {};
  for (let i = 0; i < r.length; i++) {
    const seg = r[i]!;
    const greedy = /^\{(.+)\+\}$/.exec(seg);
    if (greedy) {
      if (p.length <= i) return null;
      params[greedy[1]!] = p.slice(i).map(decodeURIComponent).join('/');
      return params;
    }
    const param = /^\{(.+)\}$/.exec(seg);
    if (p[i] === undefined) return null;
    if (param) params[param[1]!] = decodeURIComponent(p[i]!);
    else if (seg !== p[i]) return null;
  }
  return r.length === p.length ? params : null;
}

function parseJsonField(text: string, flag: string, example: string): unknown {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v;
  } catch {
    // Reported below.
  }
  throw new UsageError(`${flag} must be a JSON object (got ${text})`, `for example ${flag} '${example}'`);
}

/** {"type":"order"} (strings and numbers) or SQS's own {"type":{"DataType":"String","StringValue":"order"}}. */
function parseAttributes(
  text: string,
): Record<string, { DataType: string; StringValue?: string; BinaryValue?: string }> {
  const raw = parseJsonField(text, '--attributes', '{"type":"order"}') as Record<string, unknown>;
  const out: Record<string, { DataType: string; StringValue?: string }> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'object' && v !== null && 'DataType' in v) out[k] = v as { DataType: string };
    else out[k] = { DataType: typeof v === 'number' ? 'Number' : 'String', StringValue: String(v) };
  }
  return out;
}

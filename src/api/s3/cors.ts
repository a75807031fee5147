// Bucket CORS: PutBucketCors, GetBucketCors, DeleteBucketCors, and what browsers see. An OPTIONS preflight
// carries no signature, so it is answered from the bucket's rules alone (403 when none matches); a signed
// request with an Origin that a rule allows gets the Access-Control-* headers on its answer. Rules match as
// S3 matches them: the first rule whose origins, methods and headers all allow the request wins.
import type { IncomingHttpHeaders } from 'node:http';
import type { CorsRule, ObjectStore } from '../../store/types.js';
import type { AwsResponse, AwsStreamRequest } from '../aws.js';
import { ApiError } from '../errors.js';
import { header } from './headers.js';
import { noSuchBucketError, readSmall, xml } from './objects.js';
import { malformedXml, parseXml } from './xml.js';

const METHODS = new Set(['GET', 'PUT', 'HEAD', 'POST', 'DELETE']);
const MAX_RULES = 100;

interface CorsDeps {
  objects: ObjectStore;
}

function strings(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw malformedXml();
  return (v as string[]).map((s) => s.trim());
}

/** The <CORSConfiguration> body as rules, checked as S3 checks them. */
function parseRules(body: Buffer): CorsRule[] {
  const doc = parseXml(body)['CORSConfiguration'];
  if (typeof doc !== 'object' || doc === null) throw malformedXml();
  const raw = (doc as { CORSRule?: unknown[] }).CORSRule ?? [];
  if (raw.length === 0 || raw.length > MAX_RULES) throw malformedXml();
  return raw.map((r) => {
    if (typeof r !== 'object' || r === null) throw malformedXml();
    const x = r as Record<string, unknown>;
    const rule: CorsRule = {
      allowedMethods: strings(x['AllowedMethod']),
      allowedOrigins: strings(x['AllowedOrigin']),
      allowedHeaders: strings(x['AllowedHeader']),
      exposeHeaders: strings(x['ExposeHeader']),
    };
    if (rule.allowedMethods.length === 0 || rule.allowedOrigins.length === 0) throw malformedXml();
    for (const m of rule.allowedMethods) {
      if (!METHODS.has(m)) {
        throw new ApiError(
          400,
          'InvalidRequest',
          `Found unsupported HTTP method in CORS config. Unsupported method is ${m}`,
        );
      }
    }
    for (const o of [...rule.allowedOrigins, ...rule.allowedHeaders]) {
      if (o.split('*').length > 2) {
        throw new ApiError(
          400,
          'InvalidRequest',
          `AllowedOrigin "${o}" can not have more than one wildcard.`,
        );
      }
    }
    if (typeof x['ID'] === 'string') rule.id = x['ID'];
    const age = x['MaxAgeSeconds'];
    if (age !== undefined) {
      if (typeof age !== 'string' || !/^\d+$/.test(age.trim())) throw malformedXml();
      rule.maxAgeSeconds = Number(age.trim());
    }
    return rule;
  });
}

export async function putBucketCors(
  d: CorsDeps,
  project: string,
  bucket: string,
  req: AwsStreamRequest,
): Promise<AwsResponse> {
  const rules = parseRules(await readSmall(req));
  if (!(await d.objects.setBucketCors(project, bucket, rules))) throw noSuchBucketError(bucket);
  return { status: 200, headers: {}, body: '' };
}

export async function getBucketCors(d: CorsDeps, project: string, bucket: string): Promise<AwsResponse> {
  const rules = await d.objects.getBucketCors(project, bucket);
  if (rules === undefined) throw noSuchBucketError(bucket);
  if (rules === null) {
    throw new ApiError(404, 'NoSuchCORSConfiguration', 'The CORS configuration does not exist', undefined, {
      BucketName: bucket,
    });
  }
  return xml(200, 'CORSConfiguration', {
    CORSRule: rules.map((r) => ({
      ...(r.id !== undefined ? { ID: r.id } : {}),
      AllowedHeader: r.allowedHeaders,
      AllowedMethod: r.allowedMethods,
      AllowedOrigin: r.allowedOrigins,
      ExposeHeader: r.exposeHeaders,
      ...(r.maxAgeSeconds !== undefined ? { MaxAgeSeconds: r.maxAgeSeconds } : {}),
    })),
  });
}

export async function deleteBucketCors(d: CorsDeps, project: string, bucket: string): Promise<AwsResponse> {
  if (!(await d.objects.setBucketCors(project, bucket, null))) throw noSuchBucketError(bucket);
  return { status: 204, headers: {}, body: '' };
}

/** S3's patterns: one "*" matches any run of characters; header names compare without case. */
function matches(pattern: string, value: string, ignoreCase = false): boolean {
  const p = ignoreCase ? pattern.toLowerCase() : pattern;
  const v = ignoreCase ? value.toLowerCase() : value;
  const star = p.indexOf('*');
  if (star === -1) return p === v;
  const head = p.slice(0, star);
  const tail = p.slice(star + 1);
  return v.length >= head.length + tail.length && v.startsWith(head) && v.endsWith(tail);
}

function ruleFor(
  rules: readonly CorsRule[],
  origin: string,
  method: string,
  headers: readonly string[],
): CorsRule | undefined {
  return rules.find(
    (r) =>
      r.allowedOrigins.some((o) => matches(o, origin)) &&
      r.allowedMethods.includes(method) &&
      headers.every((h) => r.allowedHeaders.some((a) => matches(a, h, true))),
  );
}

/** The Access-Control-* headers a matching rule grants. */
function granted(rule: CorsRule, origin: string): Record<string, string> {
  const out: Record<string, string> = {
    'access-control-allow-origin': rule.allowedOrigins.includes('*') ? '*' : origin,
    'access-control-allow-methods': rule.allowedMethods.join(', '),
    vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
  };
  if (!rule.allowedOrigins.includes('*')) out['access-control-allow-credentials'] = 'true';
  if (rule.exposeHeaders.length > 0) out['access-control-expose-headers'] = rule.exposeHeaders.join(', ');
  if (rule.maxAgeSeconds !== undefined) out['access-control-max-age'] = String(rule.maxAgeSeconds);
  return out;
}

const forbidden = (why: string): ApiError => new ApiError(403, 'AccessForbidden', `CORSResponse: ${why}`);

/** An OPTIONS preflight for a bucket (or an object in it), answered from the bucket's rules. */
export async function preflight(
  d: CorsDeps,
  project: string,
  bucket: string | undefined,
  headers: IncomingHttpHeaders,
): Promise<AwsResponse> {
  const origin = header(headers, 'origin');
  const method = header(headers, 'access-control-request-method');
  if (bucket === undefined || origin === undefined || method === undefined) {
    throw new ApiError(400, 'BadRequest', 'Insufficient information. Origin request header needed.');
  }
  const rules = await d.objects.getBucketCors(project, bucket);
  if (rules === undefined) throw noSuchBucketError(bucket);
  if (rules === null) throw forbidden('CORS is not enabled for this bucket.');
  const asked = (header(headers, 'access-control-request-headers') ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  const rule = ruleFor(rules, origin, method, asked);
  if (!rule) {
    throw forbidden(
      "This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
    );
  }
  const out = granted(rule, origin);
  if (asked.length > 0) out['access-control-allow-headers'] = asked.join(', ');
  return { status: 200, headers: out, body: '' };
}

/** The CORS headers for a signed request's answer, when it has an Origin a rule of the bucket allows. */
export async function corsHeaders(
  d: CorsDeps,
  project: string,
  bucket: string | undefined,
  method: string,
  headers: IncomingHttpHeaders,
): Promise<Record<string, string>> {
  const origin = header(headers, 'origin');
  if (bucket === undefined || origin === undefined) return {};
  const rules = await d.objects.getBucketCors(project, bucket).catch(() => undefined);
  const rule = rules ? ruleFor(rules, origin, method.toUpperCase(), []) : undefined;
  return rule ? granted(rule, origin) : {};
}

// Verifies AWS Signature Version 4 on requests from AWS SDKs and CLIs, both as an Authorization header and as
// a presigned query. The canonical request mirrors @smithy/signature-v4, because what matters is
// byte-for-byte agreement with what real clients sign, not a reading of the spec.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SigV4Request {
  method: string;
  /** The path exactly as received (still percent-encoded); a query part, if any, is ignored. */
  path: string;
  /** The query string as received, without the leading "?". */
  rawQuery: string;
  /** Node's IncomingHttpHeaders: lower-cased names. */
  headers: Record<string, string | string[] | undefined>;
  /** The body, or 'streaming': not read yet, so the declared x-amz-content-sha256 is what the canonical
   *  request covers, and the body is checked against it as it streams (payload.ts). */
  body: Buffer | 'streaming';
}

export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The secret of an access key id, or undefined when the id is unknown. */
export type SecretLookup = (accessKeyId: string) => string | undefined;

/** Who signed and for what, read from the credential before anything is verified. */
export interface CredentialScope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

export type SigV4ErrorCode =
  | 'MissingAuthenticationToken'
  | 'InvalidSignatureException'
  | 'UnrecognizedClientException'
  | 'SignatureExpired'
  /** A presigned URL past its X-Amz-Expires (a header signature outside the skew is SignatureExpired). */
  | 'RequestExpired';

/** What a verified signature leaves for checking the body as it streams: aws-chunked chunk signatures
 *  chain from the header signature under the same key and scope. */
export interface SigV4Seed {
  /** x-amz-content-sha256 as signed: a hex hash, UNSIGNED-PAYLOAD or STREAMING-... */
  payloadHash: string;
  signature: string;
  amzDate: string;
  scope: string;
  key: Buffer;
}

export type SigV4Result =
  | { ok: true; service: string; region: string; seed: SigV4Seed }
  | { ok: false; code: SigV4ErrorCode; message: string };

const ALGORITHM = 'AWS4-HMAC-SHA256';
const MAX_SKEW_MS = 15 * 60 * 1000;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** aws-chunked payloads (S3): chunk signatures, trailing checksums, or both. */
export const STREAMING = new Set([
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
]);

export interface ParsedAuth {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  amzDate: string;
  /** Presigned requests only: seconds the signature stays valid. */
  expires?: number;
  presigned: boolean;
  /** Query pairs (decoded) used for the canonical query string. */
  query: [string, string][];
}

export type SigV4Failure = Extract<SigV4Result, { ok: false }>;
type Failure = SigV4Failure;

const fail = (code: SigV4ErrorCode, message: string): Failure => ({ ok: false, code, message });

/** An AWS Signature V4 request: in the Authorization header, or presigned in the query string. */
export function isSigV4(headers: SigV4Request['headers'], rawQuery: string): boolean {
  return (
    (headerValue(headers, 'authorization')?.startsWith(ALGORITHM) ?? false) ||
    /(?:^|&)X-Amz-Signature=/.test(rawQuery)
  );
}

/** A request's signature fields as read from its headers or query: read once, routed on, then verified. */
export interface ClaimedSignature {
  ok: true;
  scope: CredentialScope;
  /** What verifySigV4 would otherwise parse again. */
  readonly auth: ParsedAuth;
}

/** The credential scope a request claims, so it can be routed (and its body limit known) before reading it. */
export function credentialScope(req: Pick<SigV4Request, 'headers' | 'rawQuery'>): ClaimedSignature | Failure {
  const query = parseQuery(req.rawQuery);
  if (!query) return fail('InvalidSignatureException', 'The query string is not validly percent-encoded.');
  const auth = parseAuth(req, query);
  if ('ok' in auth) return auth;
  const { accessKeyId, date, region, service } = auth;
  return { ok: true, scope: { accessKeyId, date, region, service }, auth };
}

/** `claimed`: credentialScope's answer for this same request, when the caller has it already. */
export function verifySigV4(
  req: SigV4Request,
  creds: SigV4Credentials | SecretLookup,
  now: number = Date.now(),
  claimed?: ClaimedSignature,
): SigV4Result {
  let auth: ParsedAuth;
  if (claimed) auth = claimed.auth;
  else {
    const c = credentialScope(req);
    if (!c.ok) return c;
    auth = c.auth;
  }
  const query = auth.query;

  const secret =
    typeof creds === 'function'
      ? creds(auth.accessKeyId)
      : auth.accessKeyId === creds.accessKeyId
        ? creds.secretAccessKey
        : undefined;
  if (secret === undefined) {
    return fail('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }

  const signedAt = parseAmzDate(auth.amzDate);
  if (signedAt === undefined) {
    return fail(
      'InvalidSignatureException',
      `X-Amz-Date "${auth.amzDate}" is not in the form YYYYMMDDTHHMMSSZ.`,
    );
  }
  if (auth.amzDate.slice(0, 8) !== auth.date) {
    return fail(
      'InvalidSignatureException',
      `Credential should be scoped to a valid date: "${auth.date}" does not match X-Amz-Date "${auth.amzDate}".`,
    );
  }
  // A presigned URL is valid from its date until X-Amz-Expires; a header signature only within the skew.
  if (auth.presigned) {
    const expires = auth.expires ?? NaN;
    if (!Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGN_SECONDS) {
      return fail(
        'InvalidSignatureException',
        `X-Amz-Expires must be between 1 and ${MAX_PRESIGN_SECONDS} seconds.`,
      );
    }
    if (signedAt - MAX_SKEW_MS > now) {
      return fail('SignatureExpired', `Signature not yet current: ${auth.amzDate} is in the future.`);
    }
    if (signedAt + expires * 1000 < now) {
      return fail(
        'RequestExpired',
        `Request has expired: ${auth.amzDate} plus ${expires} s is earlier than now.`,
      );
    }
  } else if (Math.abs(now - signedAt) > MAX_SKEW_MS) {
    return fail(
      'SignatureExpired',
      `Signature expired: ${auth.amzDate} is more than 15 minutes from the server time ${formatAmzDate(now)}.`,
    );
  }

  // Without host in the signature a request could be replayed against another endpoint that shares the key.
  if (!auth.signedHeaders.includes('host')) {
    return fail('InvalidSignatureException', 'The host header must be signed.');
  }
  const canonicalHeaders: string[] = [];
  for (const name of auth.signedHeaders) {
    const value = headerValue(req.headers, name);
    if (value === undefined) {
      return fail('InvalidSignatureException', `The signed header "${name}" is missing from the request.`);
    }
    // Most values have no line breaks, tabs or runs of spaces: only those pay for the two replaces.
    const folded = /[\r\n\t]| {2}/.test(value)
      ? value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ')
      : value;
    canonicalHeaders.push(`${name}:${folded.trim()}`);
  }

  const payloadHash = resolvePayloadHash(req, query, auth.presigned);
  if (typeof payloadHash !== 'string') return payloadHash;

  const canonicalRequest = [
    req.method.toUpperCase(),
    // S3 signs the path as sent: no second encoding, no dot segments resolved (a key may be "../x").
    auth.service === 's3' ? (req.path.split('?')[0] ?? '') : canonicalPath(req.path),
    canonicalQuery(auth.query),
    canonicalHeaders.join('\n') + '\n',
    auth.signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = [ALGORITHM, auth.amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = signingKey(secret, auth.date, auth.region, auth.service);
  const expected = Buffer.from(hmac(key, stringToSign).toString('hex'), 'utf8');
  const given = Buffer.from(auth.signature.toLowerCase(), 'utf8');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return fail(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    );
  }
  const seed = { payloadHash, signature: auth.signature.toLowerCase(), amzDate: auth.amzDate, scope, key };
  return { ok: true, service: auth.service, region: auth.region, seed };
}

function parseAuth(req: Pick<SigV4Request, 'headers'>, query: [string, string][]): ParsedAuth | Failure {
  const header = headerValue(req.headers, 'authorization');
  const q = (name: string): string | undefined => query.find(([k]) => k === name)?.[1];
  const presignedSignature = q('X-Amz-Signature');

  if (header !== undefined && header.trim() !== '') {
    const m = /^\s*AWS4-HMAC-SHA256\s+(.*)$/.exec(header);
    if (!m) {
      return fail(
        'InvalidSignatureException',
        'Authorization header must use the AWS4-HMAC-SHA256 algorithm.',
      );
    }
    const fields = new Map<string, string>();
    for (const part of m[1]!.split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
    }
    const credential = fields.get('Credential');
    const signedHeaders = fields.get('SignedHeaders');
    const signature = fields.get('Signature');
    if (!credential || !signedHeaders || !signature) {
      return fail(
        'InvalidSignatureException',
        'Authorization header requires Credential, SignedHeaders and Signature parameters.',
      );
    }
    // x-amz-date wins; the spec allows the Date header when it is absent.
    const amzDate = headerValue(req.headers, 'x-amz-date') ?? headerValue(req.headers, 'date');
    if (!amzDate) return fail('InvalidSignatureException', 'The request must contain an X-Amz-Date header.');
    return withCredential(credential, {
      signedHeaders: signedHeaders.split(';'),
      signature,
      amzDate: amzDate.trim(),
      presigned: false,
      query,
    });
  }

  if (presignedSignature !== undefined) {
    if (q('X-Amz-Algorithm') !== ALGORITHM) {
      return fail('InvalidSignatureException', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256.');
    }
    const credential = q('X-Amz-Credential');
    const signedHeaders = q('X-Amz-SignedHeaders');
    const amzDate = q('X-Amz-Date');
    const expires = q('X-Amz-Expires');
    if (!credential || !signedHeaders || !amzDate || !expires) {
      return fail(
        'InvalidSignatureException',
        'A presigned request needs X-Amz-Credential, X-Amz-SignedHeaders, X-Amz-Date and X-Amz-Expires.',
      );
    }
    return withCredential(credential, {
      signedHeaders: signedHeaders.split(';'),
      signature: presignedSignature,
      amzDate,
      expires: /^\d+$/.test(expires) ? Number(expires) : NaN,
      presigned: true,
      query,
    });
  }

  return fail('MissingAuthenticationToken', 'Missing Authentication Token');
}

function withCredential(
  credential: string,
  rest: Omit<ParsedAuth, 'accessKeyId' | 'date' | 'region' | 'service'>,
): ParsedAuth | Failure {
  // The access key id itself cannot contain "/", so splitting from the end is unambiguous.
  const parts = credential.split('/');
  if (parts.length !== 5 || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1]!)) {
    return fail(
      'InvalidSignatureException',
      `Credential "${credential}" must be <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request.`,
    );
  }
  const signedHeaders = rest.signedHeaders.map((h) => h.trim());
  const sorted = [...signedHeaders].sort();
  if (signedHeaders.some((h, i) => h === '' || h !== h.toLowerCase() || h !== sorted[i])) {
    return fail(
      'InvalidSignatureException',
      'SignedHeaders must be lower-case, sorted and separated by ";".',
    );
  }
  return {
    ...rest,
    signedHeaders,
    accessKeyId: parts[0]!,
    date: parts[1]!,
    region: parts[2]!,
    service: parts[3]!,
  };
}

function resolvePayloadHash(
  req: SigV4Request,
  query: [string, string][],
  presigned: boolean,
): string | Failure {
  const declared =
    headerValue(req.headers, 'x-amz-content-sha256')?.trim() ??
    (presigned ? query.find(([k]) => k.toLowerCase() === 'x-amz-content-sha256')?.[1] : undefined);
  if (req.body === 'streaming') {
    // A presigned URL carries no hash: its body is unsigned, as S3 treats it.
    if (declared === undefined)
      return presigned
        ? UNSIGNED_PAYLOAD
        : fail('InvalidSignatureException', 'x-amz-content-sha256 must be sent: S3 requires it.');
    if (declared === UNSIGNED_PAYLOAD || STREAMING.has(declared)) return declared;
    if (!/^[0-9a-f]{64}$/i.test(declared)) {
      return fail(
        'InvalidSignatureException',
        `x-amz-content-sha256 "${declared}" is not a SHA-256 hash or a payload mode S3 knows.`,
      );
    }
    return declared.toLowerCase();
  }
  const actual = req.body.length === 0 ? EMPTY_SHA256 : sha256Hex(req.body);
  if (declared === undefined) return actual;
  // Clients send this for bodies they stream and cannot hash up front; headers, path and query stay signed.
  if (declared === UNSIGNED_PAYLOAD) return declared;
  if (!/^[0-9a-f]{64}$/i.test(declared)) {
    return fail(
      'InvalidSignatureException',
      `x-amz-content-sha256 "${declared}" is not supported; send the hex SHA-256 of the body.`,
    );
  }
  if (declared.toLowerCase() !== actual) {
    return fail('InvalidSignatureException', 'The body does not match its x-amz-content-sha256 header.');
  }
  return declared;
}

/**
 * Smithy (uriEscapePath, the default for every service but S3) drops empty and "." segments, resolves "..",
 * then URI-encodes the already-encoded path once more. The raw path we receive is what it started from.
 */
function canonicalPath(rawPath: string): string {
  const path = rawPath.split('?')[0] ?? '';
  const segments: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${
    segments.length > 0 && path.endsWith('/') ? '/' : ''
  }`;
  return escapeUri(normalized).replace(/%2F/g, '/');
}

function canonicalQuery(pairs: [string, string][]): string {
  return pairs
    .filter(([k]) => k.toLowerCase() !== 'x-amz-signature')
    .map(([k, v]) => [escapeUri(k), `${escapeUri(k)}=${escapeUri(v)}`] as const)
    .sort((a, b) => (a[0] === b[0] ? compare(a[1], b[1]) : compare(a[0], b[0])))
    .map(([, kv]) => kv)
    .join('&');
}

/** Decoded pairs in order; "+" stays a plus (SDKs encode spaces as %20). Undefined if malformed. */
function parseQuery(raw: string): [string, string][] | undefined {
  const out: [string, string][] = [];
  const q = raw.startsWith('?') ? raw.slice(1) : raw;
  if (q === '') return out;
  try {
    for (const part of q.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const k = eq === -1 ? part : part.slice(0, eq);
      const v = eq === -1 ? '' : part.slice(eq + 1);
      out.push([decodeURIComponent(k), decodeURIComponent(v)]);
    }
  } catch {
    return undefined;
  }
  return out;
}

function headerValue(headers: SigV4Request['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

/** RFC 3986 unreserved characters stay; everything else is %XX (upper case), exactly like smithy's escapeUri. */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return Number.isNaN(t) ? undefined : t;
}

function formatAmzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Derived signing keys, by secret, day, region and service: the same all day for a client, and four HMACs
 *  of every request's check. Bounded; a revoked key never gets here (its lookup fails first). */
const signingKeys = new Map<string, Buffer>();
const MAX_SIGNING_KEYS = 1000;

function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${date}\n${region}\n${service}\n${secret}`;
  let key = signingKeys.get(id);
  if (!key) {
    key = hmac(`AWS4${secret}`, date);
    for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
    if (signingKeys.size >= MAX_SIGNING_KEYS) signingKeys.clear();
    signingKeys.set(id, key);
  }
  return key;
}

export function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

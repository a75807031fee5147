// nimbus bucket: objects through Nimbus's own S3 API, signed with the CLI's API key (SigV4, access key id
// "nimbus"), using the same client-s3 a user's code would. No control routes of its own: what the CLI does is
// exactly what an S3 client can do (uploads and downloads stream, checksums are checked, a put fires storage
// triggers with the same records), and there is one implementation of object semantics to keep right.
import { sigV4CredentialsOf } from '../../security/api-keys.js';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { formatBytes } from '../../client/format.js';
import { CliError, defineCommand, UsageError, type Context } from '../command.js';
import { table } from '../format.js';

const ACTIONS = ['ls', 'get', 'put', 'rm'] as const;

export default defineCommand({
  name: 'bucket',
  aliases: ['buckets'],
  summary: 'List buckets and objects, download, upload or delete an object',
  description:
    'Buckets are declared under "buckets:" in a nimbus.yaml. Objects go through the S3 API with your API key.\n' +
    '  nimbus bucket ls                        every bucket\n' +
    '  nimbus bucket ls <bucket>[/prefix]      the objects of a bucket (under a prefix)\n' +
    '  nimbus bucket get <bucket>/<key> [file] writes the object to file, or to stdout with - (default)\n' +
    '  nimbus bucket put <bucket>/<key> <file> uploads file, or stdin with -\n' +
    '  nimbus bucket rm <bucket>/<key>         deletes the object',
  args: [
    { name: 'action', description: 'ls, get, put or rm', required: true },
    { name: 'target', description: '<bucket>, <bucket>/<prefix> or <bucket>/<key>' },
    { name: 'file', description: 'The local file (get, put); - for stdout or stdin' },
  ],
  options: {},
  examples: [
    'nimbus bucket ls uploads/photos/',
    'nimbus bucket put uploads/report.pdf ./report.pdf',
    'nimbus bucket get uploads/report.pdf - > copy.pdf',
  ],
  async run(ctx) {
    const action = ctx.args['action']!;
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not a bucket action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    const target = ctx.args['target'];
    const sdk = await import('@aws-sdk/client-s3');
    const s3 = client(ctx, sdk.S3Client);
    try {
      if (action === 'ls') return await (target ? listObjects(ctx, s3, target) : listBuckets(ctx, s3));
      if (!target) {
        throw new UsageError(
          `nimbus bucket ${action} needs <bucket>/<key>`,
          'for example uploads/report.pdf',
        );
      }
      const { bucket, key } = objectTarget(action, target);
      const file = ctx.args['file'];
      if (action === 'get') {
        const out = file ?? '-';
        if (out === '-' && ctx.json) {
          throw new UsageError('--json and the object on stdout cannot share it', 'name a file to write');
        }
        const got = await s3.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
        const body = got.Body as Readable;
        if (out === '-') {
          // Bytes, not lines: straight to the process's stdout.
          await pipeline(body, process.stdout, { end: false });
          return;
        }
        await pipeline(body, createWriteStream(resolve(ctx.cwd, out)));
        const size = got.ContentLength ?? 0;
        if (ctx.json) return ctx.printJson({ bucket, key, file: out, size, etag: unquote(got.ETag) });
        ctx.out(`Wrote ${bucket}/${key} to ${out} (${formatBytes(size)}).`);
        return;
      }
      if (action === 'put') {
        if (file === undefined) {
          throw new UsageError('nimbus bucket put needs a file to upload', 'name one, or - for stdin');
        }
        const { body, size } = await source(ctx, file);
        const put = await s3.send(
          new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: size }),
        );
        if (ctx.json) return ctx.printJson({ bucket, key, size, etag: unquote(put.ETag) });
        ctx.out(`Put ${bucket}/${key} (${formatBytes(size)}, ETag ${unquote(put.ETag)}).`);
        return;
      }
      // S3 deletes a missing key without a word; a person typing a key wants to hear of a typo.
      await s3.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }));
      await s3.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }));
      if (ctx.json) return ctx.printJson({ bucket, key, deleted: true });
      ctx.out(`Deleted ${bucket}/${key}.`);
    } catch (err) {
      throw cliError(err, target);
    } finally {
      s3.destroy();
    }
  },
});

function client(ctx: Context, S3: typeof S3Client): S3Client {
  const { apiUrl, apiKey } = ctx.clientConfig();
  if (ctx.project) {
    // S3 requests are signed, and a signature names its key's project only: refused rather than ignored.
    throw new UsageError(
      "nimbus bucket acts in its key's own project and cannot take --project",
      'use a key of that project (NIMBUS_API_KEY), e.g. one from `nimbus key create --project <name>`',
    );
  }
  // The SDK's notice that it will want Node 22 is about the SDK's future, not the user's command: one
  // stderr line per failure is the CLI's contract, and a ten-line warning on every call would break it.
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  return new S3({
    endpoint: apiUrl,
    region: ctx.env['AWS_REGION'] || 'us-east-1',
    forcePathStyle: true,
    credentials: sigV4CredentialsOf(apiKey) ?? { accessKeyId: 'nimbus', secretAccessKey: apiKey },
    maxAttempts: 1,
  });
}

async function listBuckets(ctx: Context, s3: S3Client): Promise<void> {
  const { ListBucketsCommand } = await import('@aws-sdk/client-s3');
  const out = await s3.send(new ListBucketsCommand({}));
  const buckets = (out.Buckets ?? []).map((b) => ({
    name: b.Name!,
    createdAt: b.CreationDate?.toISOString() ?? null,
  }));
  if (ctx.json) return ctx.printJson({ buckets });
  if (buckets.length === 0) {
    ctx.out('No buckets yet. Declare one under "buckets:" in a nimbus.yaml and deploy it.');
    return;
  }
  ctx.out(
    table(
      ['bucket', 'created'],
      buckets.map((b) => [b.name, b.createdAt ?? '-']),
    ),
  );
}

async function listObjects(ctx: Context, s3: S3Client, target: string): Promise<void> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const slash = target.indexOf('/');
  const bucket = slash === -1 ? target : target.slice(0, slash);
  const prefix = slash === -1 ? undefined : target.slice(slash + 1) || undefined;
  const objects: { key: string; size: number; lastModified: string | null; etag: string }[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) {
      objects.push({
        key: o.Key!,
        size: o.Size ?? 0,
        lastModified: o.LastModified?.toISOString() ?? null,
        etag: unquote(o.ETag),
      });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  if (ctx.json) return ctx.printJson({ bucket, prefix: prefix ?? '', objects });
  if (objects.length === 0) {
    ctx.out(prefix ? `No objects under ${prefix} in ${bucket}.` : `${bucket} is empty.`);
    return;
  }
  ctx.out(
    table(
      ['size', 'modified', 'key'],
      objects.map((o) => [formatBytes(o.size), o.lastModified ?? '-', o.key]),
    ),
  );
}

function objectTarget(action: string, target: string): { bucket: string; key: string } {
  const slash = target.indexOf('/');
  if (slash <= 0 || slash === target.length - 1) {
    throw new UsageError(
      `nimbus bucket ${action} needs <bucket>/<key>, not "${target}"`,
      'for example uploads/report.pdf',
    );
  }
  return { bucket: target.slice(0, slash), key: target.slice(slash + 1) };
}

/** A file streams with its size; stdin is read whole first, since S3 wants the length up front. */
async function source(ctx: Context, file: string): Promise<{ body: Readable | Buffer; size: number }> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    return { body, size: body.length };
  }
  const path = resolve(ctx.cwd, file);
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new CliError(`${file} is not a file`, 'name a file to upload, or - for stdin');
    size = st.size;
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(
      `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      'check the path',
    );
  }
  return { body: createReadStream(path), size };
}

function unquote(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '');
}

/** S3's answer, in one line a person can act on. */
function cliError(err: unknown, target: string | undefined): unknown {
  if (err instanceof CliError) return err;
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
  };
  const bucket = target?.split('/')[0] ?? '';
  const key = target?.slice(bucket.length + 1) ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (e.name === 'NoSuchBucket' || (e.name === 'NotFound' && key === '')) {
    return new CliError(`bucket "${bucket}" does not exist`, 'see `nimbus bucket ls`');
  }
  if (e.name === 'NoSuchKey' || e.name === 'NotFound' || (status === 404 && key !== '')) {
    return new CliError(`no object "${key}" in bucket "${bucket}"`, `see \`nimbus bucket ls ${bucket}\``);
  }
  if (e.name === 'AccessDenied' || status === 403) {
    return new CliError(`access denied to ${target ?? 'the buckets'}`, 'check NIMBUS_API_KEY');
  }
  if (status === undefined) {
    const code = e.code ?? (e as { cause?: { code?: string } }).cause?.code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || e.name === 'TimeoutError') {
      return new CliError(
        `cannot reach the Nimbus API (${code ?? e.name})`,
        'start Nimbus with `nimbus up` or set NIMBUS_API_URL',
      );
    }
    return err;
  }
  return new CliError(`S3 answered ${e.name ?? status}: ${e.message ?? ''}`.trim());
}

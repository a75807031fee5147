// The AWS SDK inside functions, through the gateway on a real Nimbus: v3 provided by the runtime to CommonJS,
// ES module and TypeScript handlers that do not ship it; a function's own copy winning over it; the legacy
// SDK v2 reaching Nimbus unmodified; and what an attacker inside the sandbox can do to the provided tree.
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageService, unpackArchive } from '../src/build/package.js';
import { BACKENDS, eventually, FIXTURES, startTestNimbus, type TestNimbus } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const SDK = join(FIXTURES, 'sdk');
const PROVIDED = join(ROOT, 'dist', 'runtime', 'node_modules');

describe.each(BACKENDS)('the AWS SDK in functions on %s', (backend) => {
  let n: TestNimbus;
  let db: DynamoDBClient;

  const post = async (path: string, body: unknown): Promise<{ status: number; json: unknown }> => {
    const r = await fetch(`${n.gatewayUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
    return { status: r.status, json: await r.json() };
  };
  const stored = async (id: string): Promise<unknown> =>
    (await db.send(new GetItemCommand({ TableName: 'notes', Key: { id: { S: id } } }))).Item;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(SDK);
    db = new DynamoDBClient({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    db?.destroy();
    await n?.cleanup();
  });

  it('provides client-dynamodb and lib-dynamodb to require() in a function with no node_modules', async () => {
    const r = await post('/cjs', { id: 'c1', data: { n: 1 } });
    expect(r.status).toBe(200);
    const { item, from } = r.json as { item: unknown; from: string };
    expect(item).toEqual({ id: 'c1', data: { n: 1 }, by: 'cjs' });
    // From the runtime's tree, outside the function's read-only code directory.
    expect(from).toMatch(/\/node_modules\/@aws-sdk\/client-dynamodb\/index\.js$/);
    expect(from).not.toMatch(/^\/var\/task\/|\/task\//);
    expect(await stored('c1')).toEqual({ id: { S: 'c1' }, data: { M: { n: { N: '1' } } }, by: { S: 'cjs' } });
  });

  it('provides them to import in an ES module', async () => {
    const r = await post('/esm', { id: 'e1', data: 'x' });
    expect(r).toEqual({ status: 200, json: { item: { id: 'e1', data: 'x', by: 'esm' } } });
    expect(await stored('e1')).toEqual({ id: { S: 'e1' }, data: { S: 'x' }, by: { S: 'esm' } });
  });

  it('packages a TypeScript handler without bundling the provided SDK, and runs it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nimbus-sdk-pkg-'));
    try {
      await unpackArchive((await packageService(SDK)).archive, out);
      const bundle = readFileSync(join(out, 'typed.js'), 'utf8');
      expect(bundle).toContain('require("@aws-sdk/client-dynamodb")');
      expect(bundle).toContain('require("@aws-sdk/lib-dynamodb")');
      // The SDK's own code (its DynamoDB protocol) is not in the bundle.
      expect(bundle).not.toContain('DynamoDB_20120810');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    const r = await post('/typed', { id: 't1', data: [1, 2] });
    expect(r).toEqual({ status: 200, json: { item: { id: 't1', data: [1, 2], by: 'typed' } } });
    expect(await stored('t1')).toMatchObject({ by: { S: 'typed' } });
  });

  it('lets legacy aws-sdk v2 bundled by a service reach Nimbus unmodified, signed and checked', async () => {
    const r = await post('/legacy', { id: 'v2', data: { deep: ['a', 1] } });
    expect(r).toEqual({ status: 200, json: { item: { id: 'v2', data: { deep: ['a', 1] } } } });
    expect(await stored('v2')).toEqual({
      id: { S: 'v2' },
      data: { M: { deep: { L: [{ S: 'a' }, { N: '1' }] } } },
    });
  });

  it('lets a bundled aws-sdk v2 S3 client read an object, virtual-hosted, and only from its bucket', async () => {
    const s3 = new S3Client({
      endpoint: n.apiUrl,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'nimbus', secretAccessKey: n.apiKey },
      maxAttempts: 1,
    });
    try {
      for (const bucket of ['files', 'private']) {
        await s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: 'a/b.txt',
            Body: 'from v3',
            ContentType: 'text/plain',
          }),
        );
      }
    } finally {
      s3.destroy();
    }
    const r = await post('/legacy-s3', { key: 'a/b.txt' });
    expect(r).toEqual({
      status: 200,
      json: { body: 'from v3', type: 'text/plain', etag: expect.stringMatching(/^"[0-9a-f]{32}"$/) },
    });
    expect(await post('/legacy-s3', { bucket: 'private', key: 'a/b.txt' })).toEqual({
      status: 403,
      json: { code: 'AccessDenied', status: 403 },
    });
  });

  it('runs a producer and a queue consumer on the provided SDK, with partial batch failure', async () => {
    const r = await post('/produce', { ids: ['q1', 'poison', 'q2'] });
    expect(r).toEqual({ status: 200, json: { sent: 3, failed: 0 } });
    await eventually(async () => (await stored('q1')) !== undefined && (await stored('q2')) !== undefined);
    expect(await stored('q1')).toEqual({ id: { S: 'q1' }, by: { S: 'consumer' } });
    expect(await stored('poison')).toBeUndefined();
    // The refused message stays in the queue (hidden until its visibility timeout), the others are gone. They
    // are deleted once the consumer's invocation has returned, a moment after its last write is seen.
    const peek = async () => {
      const res = await fetch(`${n.apiUrl}/v1/queues/jobs/messages`, {
        headers: { authorization: `Bearer ${n.apiKey}` },
      });
      return ((await res.json()) as { messages: { body: string }[] }).messages.map((m) => m.body);
    };
    const bodies = await eventually(async () => {
      const now = await peek();
      return now.length === 1 ? now : undefined;
    });
    expect(bodies).toEqual([JSON.stringify({ id: 'poison' })]);
  });

  it('refuses v2 code the tables its manifest does not grant, in DynamoDB words', async () => {
    const r = await post('/legacy', { id: 'x', data: 1, table: 'secrets' });
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({
      code: 'AccessDeniedException',
      status: 400,
      message: expect.stringMatching(
        /not authorized to perform: dynamodb:PutItem on resource: .*table\/secrets/,
      ),
    });
  });

  it('refuses a v2 request signed with the wrong secret, though it was redirected the same way', async () => {
    const r = await post('/legacy', { id: 'f1', data: 1, forge: true });
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ code: 'InvalidSignatureException' });
    expect(await stored('f1')).toBeUndefined();
  });

  it('keeps the provided tree read-only and Nimbus own files out of reach of a function', async () => {
    const own = [
      join(ROOT, 'node_modules', 'pg', 'package.json'),
      join(ROOT, 'src', 'server.ts'),
      join(ROOT, 'package.json'),
      join(n.dataDir, 'nimbus.db'),
      join(n.dataDir, 'master.key'),
    ];
    const r = await post('/attacker', { paths: own });
    expect(r.status).toBe(200);
    const seen = r.json as {
      sdk: string;
      write: string;
      replace: string;
      reads: Record<string, string>;
      requires: Record<string, string>;
    };
    // Denied by the permission model, or read-only (or absent) under bubblewrap: never allowed.
    expect(seen.write).toMatch(/^(ERR_ACCESS_DENIED|EROFS|EACCES)$/);
    expect(seen.replace).toMatch(/^(ERR_ACCESS_DENIED|EROFS|EACCES)$/);
    for (const p of own) expect(seen.reads[p], p).toMatch(/^(ERR_ACCESS_DENIED|ENOENT)$/);
    // Only the provided packages exist for it: none of Nimbus's other dependencies.
    for (const [m, outcome] of Object.entries(seen.requires)) {
      expect(outcome, m).toMatch(/^(MODULE_NOT_FOUND|ERR_ACCESS_DENIED)$/);
    }
    // The host's copy is the built one, unchanged, and the provided SDK still works.
    if (existsSync(seen.sdk)) {
      const built = join(PROVIDED, '@aws-sdk', 'client-dynamodb', 'index.js');
      expect(readFileSync(seen.sdk).equals(readFileSync(built))).toBe(true);
    }
    expect((await post('/cjs', { id: 'c2', data: 2 })).status).toBe(200);
  });

  it('lets a copy the service ships win over the provided one, for require() and import', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-sdk-own-'));
    try {
      const files: Record<string, string> = {
        'nimbus.yaml':
          'service: own\nfunctions:\n  mine:\n    handler: h.handler\n    events:\n      - http: POST /mine\n  mineEsm:\n    handler: m.handler\n    events:\n      - http: POST /mine-esm\n',
        'node_modules/@aws-sdk/client-dynamodb/package.json':
          '{"name":"@aws-sdk/client-dynamodb","main":"index.js"}',
        'node_modules/@aws-sdk/client-dynamodb/index.js': 'exports.whose = "mine";\n',
        'h.js':
          'exports.handler = async () => ({ whose: require("@aws-sdk/client-dynamodb").whose, lib: typeof require("@aws-sdk/lib-dynamodb").DynamoDBDocumentClient });\n',
        'm.mjs':
          'import { whose } from "@aws-sdk/client-dynamodb";\nexport const handler = async () => ({ whose });\n',
      };
      for (const [p, text] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, p)), { recursive: true });
        writeFileSync(join(dir, p), text);
      }
      await n.deploy(dir);
      // lib-dynamodb, which the service does not ship, still comes from the runtime.
      expect(await post('/mine', {})).toEqual({ status: 200, json: { whose: 'mine', lib: 'function' } });
      expect(await post('/mine-esm', {})).toEqual({ status: 200, json: { whose: 'mine' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

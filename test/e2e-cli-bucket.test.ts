// `nimbus bucket` as a user runs it: its own process against a `nimbus up` process, through the S3 API with
// the CLI's key. What is asserted is what a person sees: stdout (tables, JSON, the object's bytes), the one
// stderr line of a failure, and the exit code (0 done, 1 failed, 2 misused).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, exited, FIXTURES, startUpProcess, type UpProcess } from './helpers.js';

const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-cli-bucket-'));
const work = mkdtempSync(join(tmpdir(), 'nimbus-cli-bucket-files-'));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  NIMBUS_DATA: dataDir,
  NIMBUS_STORE: 'sqlite',
  NIMBUS_LOG_LEVEL: 'warn',
  NIMBUS_API_URL: '',
  NIMBUS_API_KEY: '',
};

function nimbus(
  args: string[],
  opts: { stdin?: Buffer; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: opts.env ?? env, cwd: work });
    const out: Buffer[] = [];
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stdin.end(opts.stdin ?? Buffer.alloc(0));
    p.on('exit', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr }));
  });
}

describe('nimbus bucket', () => {
  let server: UpProcess;

  beforeAll(async () => {
    server = await startUpProcess(env);
    const d = await nimbus(['deploy', join(FIXTURES, 'buckets')]);
    expect(d.code, d.stderr).toBe(0);
  });
  afterAll(async () => {
    server?.proc.kill('SIGTERM');
    if (server) await exited(server.proc);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('lists buckets as a table and as JSON', async () => {
    const t = await nimbus(['bucket', 'ls']);
    expect(t.code, t.stderr).toBe(0);
    const lines = t.stdout.toString().trim().split('\n');
    expect(lines[0]).toMatch(/^BUCKET\s+CREATED$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['private.stuff', 'uploads']);
    const j = await nimbus(['bucket', 'ls', '--json']);
    const { buckets } = JSON.parse(j.stdout.toString()) as { buckets: { name: string; createdAt: string }[] };
    expect(buckets.map((b) => b.name)).toEqual(['private.stuff', 'uploads']);
    expect(Date.parse(buckets[0]!.createdAt)).not.toBeNaN();
  });

  it('puts a file and stdin, lists them under a prefix, and gets them back byte for byte', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13, 0x80]);
    writeFileSync(join(work, 'in.bin'), bytes);
    const put = await nimbus(['bucket', 'put', 'uploads/dir/a b.bin', 'in.bin']);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout.toString().trim()).toBe(`Put uploads/dir/a b.bin (7 B, ETag ${md5(bytes)}).`);
    const piped = await nimbus(['bucket', 'put', 'uploads/dir/piped.txt', '-', '--json'], {
      stdin: Buffer.from('from stdin\n'),
    });
    expect(JSON.parse(piped.stdout.toString())).toEqual({
      bucket: 'uploads',
      key: 'dir/piped.txt',
      size: 11,
      etag: md5(Buffer.from('from stdin\n')),
    });
    await nimbus(['bucket', 'put', 'uploads/other.txt', '-'], { stdin: Buffer.from('x') });

    const ls = await nimbus(['bucket', 'ls', 'uploads/dir/']);
    expect(ls.code, ls.stderr).toBe(0);
    const rows = ls.stdout.toString().trim().split('\n');
    expect(rows[0]).toMatch(/^SIZE\s+MODIFIED\s+KEY$/);
    expect(rows.slice(1).map((r) => r.split(/\s{2,}/).pop())).toEqual(['dir/a b.bin', 'dir/piped.txt']);
    const lsj = JSON.parse((await nimbus(['bucket', 'ls', 'uploads', '--json'])).stdout.toString()) as {
      objects: { key: string; size: number }[];
    };
    expect(lsj.objects.map((o) => [o.key, o.size])).toEqual([
      ['dir/a b.bin', 7],
      ['dir/piped.txt', 11],
      ['other.txt', 1],
    ]);

    const out = await nimbus(['bucket', 'get', 'uploads/dir/a b.bin']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.equals(bytes)).toBe(true);
    const toFile = await nimbus(['bucket', 'get', 'uploads/dir/a b.bin', 'back.bin', '--json']);
    expect(JSON.parse(toFile.stdout.toString())).toMatchObject({ key: 'dir/a b.bin', size: 7 });
    expect(readFileSync(join(work, 'back.bin')).equals(bytes)).toBe(true);
  });

  it('deletes an object, and says so in one line with exit 1 when it is not there', async () => {
    await nimbus(['bucket', 'put', 'uploads/gone.txt', '-'], { stdin: Buffer.from('bye') });
    const rm = await nimbus(['bucket', 'rm', 'uploads/gone.txt']);
    expect([rm.code, rm.stdout.toString().trim()]).toEqual([0, 'Deleted uploads/gone.txt.']);
    const again = await nimbus(['bucket', 'rm', 'uploads/gone.txt']);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toEqual([
      'nimbus bucket: no object "gone.txt" in bucket "uploads". See `nimbus bucket ls uploads`.',
    ]);
    const get = await nimbus(['bucket', 'get', 'uploads/gone.txt']);
    expect([get.code, get.stdout.length]).toEqual([1, 0]);
    expect(get.stderr).toMatch(/^nimbus bucket: no object "gone.txt" in bucket "uploads"/);
  });

  it('fails in one line for a missing bucket, a missing file, bad usage and an unreachable server', async () => {
    const nb = await nimbus(['bucket', 'ls', 'nope']);
    expect([nb.code, nb.stderr.trim()]).toEqual([
      1,
      'nimbus bucket: bucket "nope" does not exist. See `nimbus bucket ls`.',
    ]);
    const put = await nimbus(['bucket', 'put', 'nope/k', '-'], { stdin: Buffer.from('x') });
    expect([put.code, put.stderr.trim()]).toEqual([
      1,
      'nimbus bucket: bucket "nope" does not exist. See `nimbus bucket ls`.',
    ]);
    const nofile = await nimbus(['bucket', 'put', 'uploads/k', 'missing.txt']);
    expect([nofile.code, nofile.stderr.trim()]).toEqual([
      1,
      'nimbus bucket: cannot read missing.txt (ENOENT). Check the path.',
    ]);
    for (const args of [
      ['bucket', 'cp', 'uploads/k'],
      ['bucket', 'get', 'uploads'],
      ['bucket', 'put', 'uploads/k'],
      ['bucket', 'get', 'uploads/k', '-', '--json'],
    ]) {
      const r = await nimbus(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    const down = await nimbus(['bucket', 'ls'], {
      env: { ...env, NIMBUS_API_URL: 'http://127.0.0.1:1', NIMBUS_API_KEY: 'k' },
    });
    expect(down.code).toBe(1);
    expect(down.stderr.trim().split('\n')).toHaveLength(1);
    expect(down.stderr).toMatch(/^nimbus bucket: cannot reach the Nimbus API/);
  });
});

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

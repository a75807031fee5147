// `nimbus init`: every template, scaffolded by the real CLI into a temporary folder, deploys with the real
// `nimbus deploy` from that folder against a real Nimbus, answers as its README says, and its own
// `node --test` passes (with NIMBUS_URL, so the tests that call the deployed API run too).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, eventually, startTestNimbus, type CliResult, type TestNimbus } from './helpers.js';

const TEMPLATES = ['http-js', 'http-ts', 'schedule', 'queue-worker', 'crud-table'];

let n: TestNimbus;
let work: string;

function run(cmd: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, cmd, {
      cwd,
      env: { ...process.env, NIMBUS_DATA: '', NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey, ...env },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    p.stdin.end();
  });
}
const nimbus = (args: string[], cwd = work) => run([BIN, ...args], cwd);

beforeAll(async () => {
  n = await startTestNimbus();
  work = mkdtempSync(join(tmpdir(), 'nimbus-init-'));
});
afterAll(async () => {
  await n?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

describe('nimbus init', () => {
  it('--list names every template with one line about it', async () => {
    const r = await nimbus(['init', '--list']);
    expect(r.code).toBe(0);
    for (const t of TEMPLATES) expect(r.stdout).toMatch(new RegExp(`^${t} +\\S.*$`, 'm'));
  });

  it('refuses an unknown template in one line naming the known ones, with a suggestion', async () => {
    const r = await nimbus(['init', 'crud-tabel', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      `nimbus init: unknown template "crud-tabel". Did you mean crud-table? Templates: ${TEMPLATES.join(', ')}.`,
    ]);
    expect(existsSync(join(work, 'x'))).toBe(false);
  });

  it('refuses a folder that is not empty in one line, writing nothing', async () => {
    const dir = join(work, 'busy');
    mkdirSync(dir);
    writeFileSync(join(dir, 'notes.txt'), 'mine');
    for (const cwd of [work, dir]) {
      const r = await nimbus(cwd === dir ? ['init', 'http-js'] : ['init', 'http-js', 'busy'], cwd);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`nimbus init: ${dir} is not empty`);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(readdirSync(dir)).toEqual(['notes.txt']);
    }
  });

  it('refuses a missing template and a folder it cannot create, in one line each', async () => {
    const none = await nimbus(['init']);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split('\n')).toEqual([
      `nimbus init: missing <template>. Choose one of ${TEMPLATES.join(', ')} (nimbus init --list).`,
    ]);
    writeFileSync(join(work, 'a-file'), '');
    const bad = await nimbus(['init', 'http-js', 'a-file/svc']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toEqual([
      `nimbus init: cannot create ${join(work, 'a-file', 'svc')}: a part of the path is a file; nothing was written. Give a folder you can write to.`,
    ]);
  });

  it('scaffolds into the current folder when it is empty', async () => {
    const dir = join(work, 'here');
    mkdirSync(dir);
    const r = await nimbus(['init', 'schedule'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('in the current folder');
    expect(r.stdout).not.toContain('cd ');
    expect(readFileSync(join(dir, 'nimbus.yaml'), 'utf8')).toContain('service: here');
  });
});

// Each template: init, deploy, call, then its own test; together on one server (their names differ).
describe.each([
  {
    template: 'http-js',
    files: ['nimbus.yaml', 'handler.js', 'handler.test.js', 'README.md', '.nimbusignore'],
    async call() {
      const res = await fetch(`${n.gatewayUrl}/hello?name=Ada`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ message: 'Hello, Ada!' });
      const echo = await fetch(`${n.gatewayUrl}/echo`, { method: 'POST', body: '{"hi":1}' });
      expect(await echo.json()).toEqual({ received: { hi: 1 } });
      expect((await fetch(`${n.gatewayUrl}/echo`, { method: 'POST', body: 'x' })).status).toBe(400);
    },
  },
  {
    template: 'http-ts',
    files: ['nimbus.yaml', 'src/handler.ts', 'test/greeting.test.mjs', 'README.md'],
    async call() {
      const res = await fetch(`${n.gatewayUrl}/greeting?name=Ada`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ greeting: 'Hello, Ada!' });
    },
  },
  {
    template: 'schedule',
    files: ['nimbus.yaml', 'handler.js', 'handler.test.js', 'README.md'],
    async call(dir: string) {
      const r = await nimbus(['invoke', 'tick'], dir);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ job: 'tick', trigger: 'manual' });
    },
  },
  {
    template: 'queue-worker',
    files: ['nimbus.yaml', 'enqueue.js', 'worker.js', 'job.js', 'worker.test.js', 'README.md'],
    async call(dir: string) {
      const res = await fetch(`${n.gatewayUrl}/jobs`, { method: 'POST', body: '{"task":"resize"}' });
      expect(res.status).toBe(202);
      const { queued } = (await res.json()) as { queued: string };
      expect(queued).toMatch(/\S/);
      const bad = await fetch(`${n.gatewayUrl}/jobs`, { method: 'POST', body: '{}' });
      expect(bad.status).toBe(400);
      expect(await bad.json()).toEqual({ error: 'a job needs a "task" (a non-empty string)' });
      await eventually(async () => {
        const r = await nimbus(['logs', 'worker'], dir);
        return r.stdout.includes(`job ${queued}: done resize`);
      }, 30_000);
    },
  },
  {
    template: 'crud-table',
    files: ['nimbus.yaml', 'handler.js', 'note.js', 'notes.test.js', 'README.md'],
    async call() {
      const created = await fetch(`${n.gatewayUrl}/notes`, {
        method: 'POST',
        body: JSON.stringify({ text: 'buy milk' }),
      });
      expect(created.status).toBe(201);
      const note = (await created.json()) as { id: string; text: string };
      expect(note.text).toBe('buy milk');
      const read = await fetch(`${n.gatewayUrl}/notes/${note.id}`);
      expect(read.status).toBe(200);
      expect(await read.json()).toEqual(note);
      const list = (await (await fetch(`${n.gatewayUrl}/notes`)).json()) as { notes: unknown[] };
      expect(list.notes).toContainEqual(note);
      expect((await fetch(`${n.gatewayUrl}/notes/nope`)).status).toBe(404);
    },
  },
])('template $template', ({ template, files, call }) => {
  const dir = () => join(work, `my-${template}`);

  it('nimbus init writes the service and says what to do next', async () => {
    const r = await nimbus(['init', template, `my-${template}`]);
    expect(r.code).toBe(0);
    for (const f of files) expect(existsSync(join(dir(), f)), f).toBe(true);
    expect(readFileSync(join(dir(), 'nimbus.yaml'), 'utf8')).toContain(`service: my-${template}`);
    expect(r.stdout).toContain(`cd my-${template}`);
    expect(r.stdout).toContain('nimbus deploy');
    expect(r.stdout).toContain('node --test');
  });

  it('deploys from its folder with nimbus deploy, and answers', async () => {
    const r = await nimbus(['deploy'], dir());
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    await call(dir());
  });

  it("passes its own node --test, including the deployed API's", async () => {
    const r = await run(['--test'], dir(), { NIMBUS_URL: n.gatewayUrl });
    expect({ code: r.code, out: r.stdout + r.stderr }).toMatchObject({ code: 0 });
    expect(r.stdout).toMatch(/^# fail 0$/m);
  });
});

// `nimbus dev` as a user runs it, in a temporary folder: it starts its own server (none is running for this
// file's state folder), deploys, and reloads on save only what changed; errors are shown inline while the
// last good version serves; .env fills ${env:...}; Ctrl+C and SIGTERM stop it and the server it started.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BIN, bubblewrapAvailable, eventually, exited, runNimbus, startUpProcess } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'nimbus-dev-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface DevProcess {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with stdout once it matches. */
  waitFor(re: RegExp): Promise<string>;
  gateway: string;
}

const running: DevProcess[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) {
    if (d.proc.exitCode === null && d.proc.signalCode === null) {
      d.proc.kill('SIGTERM');
      await exited(d.proc);
    }
  }
});

/** A service folder with two functions whose module-scope id tells one instance from another. */
function service(dir: string, name: string, extra: Record<string, string> = {}): void {
  const files: Record<string, string> = {
    'nimbus.yaml': [
      `service: ${name}`,
      'functions:',
      '  api:',
      '    handler: api.handler',
      '    environment:',
      '      GREETING: ${env:GREETING, unset}',
      '    events:',
      '      - http: GET /api',
      '  other:',
      '    handler: other.handler',
      '    events:',
      '      - http: GET /other',
      '',
    ].join('\n'),
    'api.js': apiSource(1),
    'other.js':
      'const id = Math.random().toString(36).slice(2);\nexports.handler = async () => ({ statusCode: 200, body: JSON.stringify({ id }) });\n',
    ...extra,
  };
  for (const [f, text] of Object.entries(files)) {
    writeFileSync(join(dir, f), text);
  }
}

function apiSource(v: number): string {
  return `const id = Math.random().toString(36).slice(2);\nexports.handler = async () => ({ statusCode: 200, body: JSON.stringify({ v: ${v}, id, greeting: process.env.GREETING }) });\n`;
}

async function startDev(dir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<DevProcess> {
  const proc = spawn(process.execPath, [BIN, 'dev', '--port', '0', '--api-port', '0', ...args], {
    cwd: dir,
    env: {
      ...process.env,
      NIMBUS_DATA: '',
      NIMBUS_API_URL: '',
      NIMBUS_API_KEY: '',
      NIMBUS_LOG_LEVEL: 'warn',
      NIMBUS_STEM_CELLS: '1',
      ...env,
    },
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const waitFor = async (re: RegExp): Promise<string> => {
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`nimbus dev exited ${proc.exitCode}: ${out}\n${err}`);
      return re.test(out) || undefined;
    }, 60_000);
    return out;
  };
  const d: DevProcess = { proc, stdout: () => out, stderr: () => err, waitFor, gateway: '' };
  running.push(d);
  const text = await waitFor(/Watching .* for changes/);
  d.gateway = /Started Nimbus: gateway (\S+),/.exec(text)![1]!;
  return d;
}

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  const text = await res.text();
  return {
    status: res.status,
    body: res.status === 200 ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

describe('nimbus dev', () => {
  it('reloads the function whose file was saved; the other keeps its warm instance; .env fills ${env:...}', async () => {
    const dir = mkdtempSync(join(work, 'reload-'));
    service(dir, 'reload', { '.env': 'GREETING=from-dotenv\n' });
    const dev = await startDev(dir);
    expect(dev.stdout()).toMatch(/Loaded \.env \(1 variable/);
    expect(dev.stdout()).toMatch(/api v1 {2}GET \/api/);

    const api1 = await get(`${dev.gateway}/api`);
    const other1 = await get(`${dev.gateway}/other`);
    expect(api1.body).toMatchObject({ v: 1, greeting: 'from-dotenv' });

    writeFileSync(join(dir, 'api.js'), apiSource(2));
    await dev.waitFor(/✓ reloaded api \(v2\) in \d+ ms; other kept warm/);
    const api2 = await get(`${dev.gateway}/api`);
    expect(api2.body).toMatchObject({ v: 2, greeting: 'from-dotenv' });
    expect(api2.body['id']).not.toBe(api1.body['id']);
    // The same instance: its module scope ran once, before the reload.
    expect((await get(`${dev.gateway}/other`)).body['id']).toBe(other1.body['id']);

    // Editing .env reloads what reads it, and nothing is ever uploaded from it.
    writeFileSync(join(dir, '.env'), 'GREETING=edited\n');
    await dev.waitFor(/✓ reloaded api \(v3\).*other kept warm/);
    expect((await get(`${dev.gateway}/api`)).body).toMatchObject({ v: 2, greeting: 'edited' });

    dev.proc.kill('SIGINT');
    expect(await exited(dev.proc)).toBe(0);
    expect(dev.stderr()).toMatch(/Stopping \(SIGINT\)/);
    // The server dev started is gone with it: its gateway no longer answers.
    await expect(fetch(`${dev.gateway}/api`)).rejects.toThrow();
  });

  it('shows a syntax error with its file and line, and keeps serving the last good version', async () => {
    const dir = mkdtempSync(join(work, 'broken-'));
    service(dir, 'broken');
    const dev = await startDev(dir);
    const before = await get(`${dev.gateway}/api`);
    writeFileSync(
      join(dir, 'api.js'),
      'const id = 1;\nexports.handler = async () => ({ statusCode: 200, body: "x" );\n',
    );
    await dev.waitFor(/✗ api: api\.js:2:\d+: SyntaxError/);
    expect(dev.stdout()).toMatch(/still serving api v1, other v1; fix it and save again/);
    const still = await get(`${dev.gateway}/api`);
    expect(still.status).toBe(200);
    expect(still.body['id']).toBe(before.body['id']);

    writeFileSync(join(dir, 'api.js'), apiSource(5));
    await dev.waitFor(/✓ reloaded api \(v2\)/);
    expect((await get(`${dev.gateway}/api`)).body).toMatchObject({ v: 5 });

    dev.proc.kill('SIGTERM');
    expect(await exited(dev.proc)).toBe(0);
  });

  it.skipIf(!bubblewrapAvailable())(
    '--inspect opens a debugger on 127.0.0.1, suspends the timeout while attached, and closes with dev',
    async () => {
      const dir = mkdtempSync(join(work, 'inspect-'));
      service(dir, 'inspect', {
        'nimbus.yaml': [
          'service: inspect',
          'functions:',
          '  slow:',
          '    handler: slow.handler',
          '    timeout: 1',
          '    events:',
          '      - http: GET /slow',
          '',
        ].join('\n'),
        'slow.js':
          'exports.handler = async (e, context) => { await new Promise((r) => setTimeout(r, Number(e.queryStringParameters?.wait ?? 0))); return { statusCode: 200, body: JSON.stringify({ remaining: context.getRemainingTimeInMillis() }) }; };\n',
      });
      const dev = await startDev(dir, ['--inspect', 'slow', '--inspect-port', '0']);
      const address = /Inspector for slow on (127\.0\.0\.1:\d+)/.exec(dev.stdout())![1]!;
      // No instance yet: the discovery endpoint answers, with no target.
      expect(await (await fetch(`http://${address}/json/list`)).json()).toEqual([]);

      expect((await get(`${dev.gateway}/slow`)).status).toBe(200);
      const target = await eventually(async () => {
        const list = (await (await fetch(`http://${address}/json/list`)).json()) as {
          webSocketDebuggerUrl?: string;
        }[];
        return list[0]?.webSocketDebuggerUrl;
      });
      expect(target).toMatch(new RegExp(`^ws://${address.replace(/\./g, '\\.')}/[0-9a-f-]{36}$`));
      await dev.waitFor(/Debugger ready for slow: devtools:\/\/devtools\/.*ws=127\.0\.0\.1:\d+\//);

      // A real debugger session: the inspector evaluates in the function's process.
      const ws = await webSocket(target);
      ws.send({
        id: 1,
        method: 'Runtime.evaluate',
        params: { expression: 'process.env.AWS_LAMBDA_FUNCTION_NAME' },
      });
      expect(await ws.reply(1)).toMatchObject({
        id: 1,
        result: { result: { type: 'string', value: 'slow' } },
      });
      // Attached: an invocation longer than the 1 s timeout runs to its end, and the time a debugger holds
      // is not counted down: the function sees its whole timeout left.
      const held = await get(`${dev.gateway}/slow?wait=2500`);
      expect(held.status).toBe(200);
      expect(held.body).toEqual({ remaining: 1000 });
      ws.close();
      // Detached: the timeout holds again.
      await eventually(async () => (await get(`${dev.gateway}/slow?wait=3000`)).status !== 200, 20_000);

      dev.proc.kill('SIGTERM');
      expect(await exited(dev.proc)).toBe(0);
      await expect(fetch(`http://${address}/json/list`)).rejects.toThrow();
    },
  );

  it('refuses --inspect in production mode in one line, before starting anything', async () => {
    const dir = mkdtempSync(join(work, 'prod-'));
    service(dir, 'prod');
    const r = await runNimbus({ NODE_ENV: 'production' }, ['dev', dir, '--inspect', 'api']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      'nimbus dev: --inspect is refused in production mode (NODE_ENV=production): a debugger runs any code in the function. Debug on a development machine, without NODE_ENV=production.',
    ]);
  });

  it('uses a running server, and refuses --inspect in one line when that server is not in dev mode', async () => {
    const dir = mkdtempSync(join(work, 'notdev-'));
    service(dir, 'notdev');
    const data = mkdtempSync(join(work, 'notdev-data-'));
    const env = {
      NIMBUS_DATA: data,
      NIMBUS_LOG_LEVEL: 'warn',
      NIMBUS_DEV: '',
      NIMBUS_API_URL: '',
      NIMBUS_API_KEY: '',
    };
    const up = await startUpProcess({ ...process.env, ...env });
    try {
      const r = await runNimbus(env, ['dev', dir, '--inspect', 'api']);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^Using the Nimbus at http:\/\/127\.0\.0\.1:\d+/);
      expect(r.stdout).toMatch(/api v1 {2}GET \/api/);
      expect(r.stderr.trim().split('\n')).toEqual([
        'nimbus dev: this server is not in dev mode, and never opens an inspector outside it. Let `nimbus dev` start the server, or start it with NIMBUS_DEV=1 (refused under NODE_ENV=production).',
      ]);
      // The server dev did not start keeps running, with what dev deployed.
      expect((await get(`${up.info.gatewayUrl}/api`)).status).toBe(200);
    } finally {
      up.proc.kill('SIGTERM');
      await exited(up.proc);
    }
  });

  it('names a folder without nimbus.yaml in one line', async () => {
    const dir = mkdtempSync(join(work, 'empty-'));
    const r = await runNimbus({}, ['dev', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nimbus dev: .*nimbus\.yaml not found/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

/** A minimal WebSocket client (Node 20 has none built in): text frames, masked, as RFC 6455 wants. */
async function webSocket(url: string): Promise<{
  send(msg: unknown): void;
  reply(id: number): Promise<Record<string, unknown>>;
  close(): void;
}> {
  const u = new URL(url);
  const socket = await new Promise<Socket>((resolve, reject) => {
    const req = request({
      host: u.hostname,
      port: u.port,
      path: u.pathname,
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('upgrade', (res, sock: Socket) =>
      res.statusCode === 101 ? resolve(sock) : reject(new Error(String(res.statusCode))),
    );
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  let buf = Buffer.alloc(0);
  const messages: Record<string, unknown>[] = [];
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) return;
      const opcode = buf[0]! & 0x0f;
      if (opcode === 1)
        messages.push(JSON.parse(buf.subarray(at, at + len).toString()) as Record<string, unknown>);
      buf = buf.subarray(at + len);
    }
  });
  return {
    send(msg) {
      const payload = Buffer.from(JSON.stringify(msg));
      const mask = randomBytes(4);
      const head =
        payload.length < 126
          ? Buffer.from([0x81, 0x80 | payload.length])
          : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
      socket.write(Buffer.concat([head, mask, masked]));
    },
    reply: (id) => eventually(async () => messages.find((m) => m['id'] === id)),
    close: () => socket.destroy(),
  };
}

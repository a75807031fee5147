// The developer loop as a user meets it, through the real CLI in temporary folders: finding the server
// (`nimbus up --data X`, then commands with no flags; stale and dead records; several servers), requests
// that time out or are retried, help and suggestions, completion scripts, `nimbus info`, `rm --service`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userRecordPath, writeRecord, type ServerRecord } from '../src/datadir/server-record.js';
import { invokedAs } from '../src/cli/invoked-as.js';
import { closest } from '../src/cli/suggest.js';
import { BIN, exited, type CliResult } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'nimbus-loop-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A new empty folder under the test's root, and a state folder of its own unless one is given. */
function folder(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function baseEnv(state: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // Nothing of the developer's own Nimbus settings or npm context leaks into what is tested.
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('NIMBUS_') && !k.startsWith('npm_')) env[k] = v;
  return { ...env, XDG_STATE_HOME: state, NIMBUS_LOG_LEVEL: 'warn', ...extra };
}

function cli(cwd: string, state: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd, env: baseEnv(state, extra) });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    p.stdin.end();
  });
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

function record(over: Partial<ServerRecord>): ServerRecord {
  return {
    dataDir: '/nowhere/.nimbus',
    gatewayUrl: 'http://127.0.0.1:1',
    apiUrl: 'http://127.0.0.1:1',
    keyFile: '/nowhere/.nimbus/api-key',
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    cwd: '/nowhere',
    ...over,
  };
}

/** A function as GET /v1/functions lists it. */
function fn(name: string): Record<string, unknown> {
  return {
    name,
    service: 's',
    version: 1,
    handler: 'h.h',
    runtime: 'nodejs20.x',
    memory: 128,
    ephemeralStorage: 512,
    timeout: 3,
    reservedConcurrency: null,
    routes: [],
    codeSize: 1,
    deployedAt: 0,
  };
}

/** The pid of a process that has exited (and been reaped): no process has it now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const s = createTcpServer();
  const port = await listen(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('finding the server', () => {
  it('a stale record (its process is gone) is named in one line with how to start Nimbus, and not used', async () => {
    const cwd = folder('stale');
    const state = folder('stale-state');
    const dataDir = join(cwd, 'elsewhere');
    writeRecord(userRecordPath({ XDG_STATE_HOME: state }, dataDir), record({ dataDir, pid: deadPid(), cwd }));
    const r = await cli(cwd, state, ['ls']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain('is no longer running');
    expect(r.stderr).toContain(`nimbus up --data ${dataDir}`);
    expect(r.stdout).toBe('');
  });

  it("the current folder's stale .nimbus record says so too", async () => {
    const cwd = folder('stale-local');
    const state = folder('stale-local-state');
    writeRecord(
      join(cwd, '.nimbus', 'server.json'),
      record({ dataDir: join(cwd, '.nimbus'), pid: deadPid() }),
    );
    const r = await cli(cwd, state, ['ls']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([
      expect.stringMatching(
        /server\.json \(pid \d+, started .*\) is no longer running\. Start it again with `nimbus up`\.$/,
      ),
    ]);
  });

  it('a live process whose URL refuses connections: one line naming the URL and where it was found', async () => {
    const cwd = folder('dead');
    const state = folder('dead-state');
    const url = `http://127.0.0.1:${await closedPort()}`;
    const dataDir = join(cwd, 'd');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'api-key'), 'k');
    const file = userRecordPath({ XDG_STATE_HOME: state }, dataDir);
    writeRecord(file, record({ dataDir, apiUrl: url, keyFile: join(dataDir, 'api-key'), cwd }));
    const r = await cli(cwd, state, ['ls'], { NIMBUS_RETRIES: '0' });
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain(
      `cannot reach the Nimbus API at ${url} (connection refused, found through ${file})`,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('several running servers, none started here: an error listing them and how to choose', async () => {
    const cwd = folder('many');
    const state = folder('many-state');
    for (const d of ['/srv/a/.nimbus', '/srv/b/.nimbus']) {
      writeRecord(userRecordPath({ XDG_STATE_HOME: state }, d), record({ dataDir: d, cwd: '/srv' }));
    }
    const r = await cli(cwd, state, ['ls']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain('2 Nimbus servers are running');
    expect(r.stderr).toContain('/srv/a/.nimbus');
    expect(r.stderr).toContain('/srv/b/.nimbus');
    expect(r.stderr).toContain('NIMBUS_DATA=');
  });

  it('among several running servers the one started here wins, and a stale ./.nimbus is passed over', async () => {
    const cwd = folder('chosen');
    const state = folder('chosen-state');
    // Two fake APIs, each naming itself in the one function it lists.
    const fake = (name: string) =>
      createHttpServer((req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(req.url === '/v1/queues' ? '{"queues":[]}' : JSON.stringify({ functions: [fn(name)] }));
      });
    const here = fake('from-here');
    const there = fake('from-there');
    try {
      for (const [name, server, started] of [
        ['here', here, cwd],
        ['there', there, '/srv'],
      ] as const) {
        const dataDir = join(root, `chosen-${name}`);
        mkdirSync(dataDir, { recursive: true });
        writeFileSync(join(dataDir, 'api-key'), 'k');
        const apiUrl = `http://127.0.0.1:${await listen(server)}`;
        writeRecord(
          userRecordPath({ XDG_STATE_HOME: state }, dataDir),
          record({ dataDir, apiUrl, keyFile: join(dataDir, 'api-key'), cwd: started }),
        );
      }
      writeRecord(
        join(cwd, '.nimbus', 'server.json'),
        record({ dataDir: join(cwd, '.nimbus'), pid: deadPid() }),
      );
      const r = await cli(cwd, state, ['ls']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('from-here');
      expect(r.stdout).not.toContain('from-there');
    } finally {
      await new Promise((r) => here.close(r));
      await new Promise((r) => there.close(r));
    }
  });

  it('nothing recorded anywhere: says how to start Nimbus', async () => {
    const r = await cli(folder('empty'), folder('empty-state'), ['ls']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain('Start Nimbus with `nimbus up` in this folder');
  });
});

describe('requests that hang or fail to connect', () => {
  const sockets: Socket[] = [];
  const hanging = createTcpServer((s) => sockets.push(s));
  let hangingUrl = '';
  // Drops the first request to each path (the connection reset before any answer), answers the next.
  const seen: string[] = [];
  const flaky = createHttpServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    seen.push(key);
    if (seen.filter((k) => k === key).length === 1) {
      req.socket.destroy();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(req.url === '/v1/queues' ? '{"queues":[]}' : '{"functions":[]}');
  });
  let flakyUrl = '';
  beforeAll(async () => {
    hangingUrl = `http://127.0.0.1:${await listen(hanging)}`;
    flakyUrl = `http://127.0.0.1:${await listen(flaky)}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => hanging.close(r));
    await new Promise((r) => flaky.close(r));
  });

  it('a server that accepts and never answers: one line after NIMBUS_REQUEST_TIMEOUT, exit 1', async () => {
    const r = await cli(folder('hang'), folder('hang-state'), ['ls'], {
      NIMBUS_API_URL: hangingUrl,
      NIMBUS_API_KEY: 'k',
      NIMBUS_REQUEST_TIMEOUT: '0.5',
    });
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toContain(`the Nimbus API at ${hangingUrl} did not answer within 500 ms`);
    expect(r.stderr).toContain('NIMBUS_REQUEST_TIMEOUT');
    expect(sockets.length).toBeGreaterThan(0);
  });

  it('a bad NIMBUS_REQUEST_TIMEOUT is refused in one line', async () => {
    const r = await cli(folder('badtimeout'), folder('badtimeout-state'), ['ls'], {
      NIMBUS_API_URL: hangingUrl,
      NIMBUS_API_KEY: 'k',
      NIMBUS_REQUEST_TIMEOUT: 'soon',
    });
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringContaining('NIMBUS_REQUEST_TIMEOUT must be a number')]);
  });

  it('GETs are retried after a dropped connection; an invoke (POST) is not', async () => {
    const env = { NIMBUS_API_URL: flakyUrl, NIMBUS_API_KEY: 'k' };
    const ls = await cli(folder('flaky'), folder('flaky-state'), ['ls'], env);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain('No functions deployed yet');
    expect(seen.filter((k) => k === 'GET /v1/functions')).toHaveLength(2);

    const inv = await cli(folder('flaky'), folder('flaky-state'), ['invoke', 'f'], env);
    expect(inv.code).toBe(1);
    expect(lines(inv.stderr)).toHaveLength(1);
    expect(inv.stderr).toContain('cannot reach the Nimbus API');
    expect(seen.filter((k) => k.startsWith('POST /2015-03-31/functions/f/'))).toHaveLength(1);
  });
});

describe('nimbus up --data X, then commands from the same folder without flags', () => {
  const cwd = folder('project');
  const state = folder('project-state');
  const dataDir = join(cwd, 'state-here');
  let up: ChildProcess;
  let upOut = '';
  let upErr = '';
  let gatewayUrl = '';
  let apiUrl = '';

  beforeAll(async () => {
    up = spawn(
      process.execPath,
      [
        BIN,
        'up',
        '--port',
        '0',
        '--api-port',
        '0',
        '--smtp-port',
        '0',
        '--data',
        'state-here',
        '--examples',
        '--json',
      ],
      { cwd, env: baseEnv(state) },
    );
    up.stderr!.on('data', (d: Buffer) => (upErr += d.toString()));
    gatewayUrl = await new Promise<string>((resolve, reject) => {
      up.stdout!.on('data', (d: Buffer) => {
        upOut += d.toString();
        if (upOut.includes('\n')) {
          const info = JSON.parse(upOut.split('\n')[0]!) as { gatewayUrl: string; apiUrl: string };
          apiUrl = info.apiUrl;
          resolve(info.gatewayUrl);
        }
      });
      up.on('exit', (code) => reject(new Error(`nimbus up exited with ${code}: ${upErr}`)));
    });
  });
  afterAll(async () => {
    if (up.exitCode === null) {
      up.kill('SIGKILL');
      await exited(up);
    }
  });

  it('records where it runs in the data dir and in the user state folder', () => {
    const inData = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8')) as ServerRecord;
    expect(inData).toMatchObject({ dataDir, gatewayUrl, pid: up.pid, cwd });
    const inState = JSON.parse(
      readFileSync(userRecordPath({ XDG_STATE_HOME: state }, dataDir), 'utf8'),
    ) as ServerRecord;
    expect(inState).toEqual(inData);
  });

  it('nimbus ls in the same folder finds it', async () => {
    const r = await cli(cwd, state, ['ls']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^hello\s/m);
  });

  it('and from another folder too, as the only server running', async () => {
    const r = await cli(folder('other'), state, ['invoke', 'hello', '--data', '{"name":"Ada"}']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ message: 'Hello, Ada!' });
  });

  it('--api-url comes first, and takes the key of the server recorded at that URL', async () => {
    const r = await cli(folder('flagged'), state, ['ls', '--api-url', apiUrl], {
      NIMBUS_API_URL: 'http://127.0.0.1:1',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^hello\s/m);
  });

  it('a misspelt function name gets the nearest deployed one', async () => {
    const r = await cli(cwd, state, ['invoke', 'helo']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([
      'nimbus invoke: function "helo" not found. Did you mean "hello"? See `nimbus ls`.',
    ]);
    const far = await cli(cwd, state, ['logs', 'zzzzzz']);
    expect(far.code).toBe(1);
    expect(far.stderr).not.toContain('Did you mean');
  });

  it('hints name the command the user ran: npx, or an npm script', async () => {
    const npx = await cli(cwd, state, ['invoke', 'nope-nope'], {
      npm_lifecycle_event: 'npx',
      npm_lifecycle_script: 'nimbus',
    });
    expect(npx.stderr).toContain('`npx nimbus ls`');
    const script = await cli(cwd, state, ['invoke', 'nope-nope'], {
      npm_lifecycle_event: 'nb',
      npm_lifecycle_script: 'nimbus',
    });
    expect(script.stderr).toContain('`npm run nb -- ls`');
  });

  it('nimbus info prints each service, its functions, routes and their URLs, which answer', async () => {
    const r = await cli(cwd, state, ['info']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Gateway  ${gatewayUrl}`);
    expect(r.stdout).toMatch(new RegExp(`^hello\\s+hello\\s+1\\s+GET /hello\\s+${gatewayUrl}/hello$`, 'm'));
    expect(r.stdout).toMatch(/^todo\s+todos\s+1\s+GET \/todos\/\{id\}\s+/m);
    const json = JSON.parse((await cli(cwd, state, ['info', '--json'])).stdout) as {
      services: { name: string; functions: { name: string; routes: { url: string }[] }[] }[];
    };
    const url = json.services.find((s) => s.name === 'hello')!.functions[0]!.routes[0]!.url;
    const res = await fetch(`${url}?name=Info`);
    expect(await res.json()).toEqual({ message: 'Hello, Info!' });
  });

  it('nimbus rm --service removes every function of the service and nothing else', async () => {
    const none = await cli(cwd, state, ['rm', '--service', 'nope']);
    expect(none.code).toBe(1);
    expect(lines(none.stderr)).toEqual([
      'nimbus rm: no deployed function belongs to service "nope". Deployed services: hello, todo.',
    ]);
    const both = await cli(cwd, state, ['rm', 'hello', '--service', 'todo']);
    expect(both.code).toBe(2);
    const r = await cli(cwd, state, ['rm', '--service', 'todo']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('Removed service todo: todos');
    const ls = await cli(cwd, state, ['ls', '--json']);
    expect((JSON.parse(ls.stdout) as { functions: { name: string }[] }).functions.map((f) => f.name)).toEqual(
      ['hello'],
    );
  });

  it('stops on SIGTERM with exit 0 and removes both records; then commands say nothing runs', async () => {
    up.kill('SIGTERM');
    expect(await exited(up)).toBe(0);
    expect(existsSync(join(dataDir, 'server.json'))).toBe(false);
    expect(existsSync(userRecordPath({ XDG_STATE_HOME: state }, dataDir))).toBe(false);
    const r = await cli(folder('after'), state, ['ls']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no Nimbus API to talk to');
  });
});

describe('help, suggestions and completion', () => {
  const cwd = folder('help');
  const state = folder('help-state');

  it('nimbus help and nimbus help <command> print the same as --help', async () => {
    const top = await cli(cwd, state, ['help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toBe((await cli(cwd, state, ['--help'])).stdout);
    expect(top.stdout).toMatch(/^ {2}info\s/m);
    expect(top.stdout).toMatch(/^ {2}completion\s/m);
    const deploy = await cli(cwd, state, ['help', 'deploy']);
    expect(deploy.code).toBe(0);
    expect(deploy.stdout).toBe((await cli(cwd, state, ['deploy', '--help'])).stdout);
    expect(deploy.stdout).toContain('Usage: nimbus deploy');
  });

  it('a misspelt command, alone or after help, suggests the nearest one (exit 2, one line)', async () => {
    for (const args of [['delpoy'], ['help', 'delpoy']]) {
      const r = await cli(cwd, state, args);
      expect(r.code).toBe(2);
      expect(lines(r.stderr)).toEqual([
        'nimbus: unknown command "delpoy". Did you mean `nimbus deploy`? Run `nimbus help` for the list.',
      ]);
    }
    const far = await cli(cwd, state, ['frobnicate']);
    expect(far.code).toBe(2);
    expect(far.stderr).not.toContain('Did you mean');
  });

  it('the bash completion completes commands and a command’s flags', () => {
    const complete = (words: string[]): string => {
      const script = [
        `source <("${process.execPath}" "${BIN}" completion bash)`,
        `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
        `COMP_CWORD=${words.length - 1}`,
        '_nimbus',
        'printf "%s\\n" "${COMPREPLY[@]}"',
      ].join('\n');
      const r = spawnSync('bash', ['-c', script], { cwd, env: baseEnv(state), encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout;
    };
    expect(lines(complete(['nimbus', 'dep']))).toEqual(['deploy']);
    expect(lines(complete(['nimbus', 'up', '--ap']))).toEqual(['--api-port', '--api-url']);
    expect(lines(complete(['nimbus', 'invoke', '--l']))).toEqual(['--log']);
    expect(lines(complete(['nimbus', 'help', 'in']))).toEqual(['init', 'invoke', 'info']);
  });

  it('--json on a command with no result to print is refused, saying what to run instead', async () => {
    const dev = await cli(cwd, state, ['dev', '--json']);
    expect(dev.code).toBe(2);
    expect(dev.stdout).toBe('');
    expect(lines(dev.stderr)).toEqual([
      'nimbus dev: --json is not available for `nimbus dev`. Dev runs until stopped and prints what each save reloads; for a machine-readable result, run `nimbus deploy --json`, and `nimbus logs --follow --json` for invocations.',
    ]);
    const completion = await cli(cwd, state, ['--json', 'completion', 'bash']);
    expect(completion.code).toBe(2);
    expect(completion.stderr).toMatch(/^nimbus completion: --json is not available/);
    // Nor is it offered: not in the help, not completed.
    expect((await cli(cwd, state, ['help', 'dev'])).stdout).not.toContain('--json');
    expect((await cli(cwd, state, ['help', 'deploy'])).stdout).toContain('--json');
  });

  it('zsh and fish scripts name every command; an unknown shell is a usage error', async () => {
    const zsh = await cli(cwd, state, ['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toMatch(/^compdef _nimbus nimbus$/m);
    const fish = await cli(cwd, state, ['completion', 'fish']);
    expect(fish.code).toBe(0);
    for (const c of ['up', 'deploy', 'invoke', 'info', 'rm']) {
      expect(zsh.stdout).toContain(`'${c}:`);
      expect(fish.stdout).toContain(`-a ${c} -d`);
    }
    expect(fish.stdout).toContain("'__fish_seen_subcommand_from rm remove' -l service -r");
    const bad = await cli(cwd, state, ['completion', 'tcsh']);
    expect(bad.code).toBe(2);
    expect(lines(bad.stderr)).toEqual([
      'nimbus completion: unknown shell "tcsh". Choose one of bash, zsh, fish.',
    ]);
  });
});

describe('pure helpers', () => {
  it('closest counts a swap as one edit and refuses far words', () => {
    expect(closest('delpoy', ['deploy', 'invoke'])).toBe('deploy');
    expect(closest('helo', ['hello', 'todos'])).toBe('hello');
    expect(closest('xyz', ['up', 'ls'])).toBeUndefined();
  });

  it('invokedAs reads npm’s environment', () => {
    expect(invokedAs({})).toBe('nimbus');
    expect(invokedAs({ npm_lifecycle_event: 'npx', npm_lifecycle_script: "'nimbus'" })).toBe('npx nimbus');
    // vitest under `npx vitest` runs the CLI: that is not npx nimbus.
    expect(invokedAs({ npm_lifecycle_event: 'npx', npm_lifecycle_script: 'vitest' })).toBe('nimbus');
    expect(
      invokedAs({ npm_lifecycle_event: 'start', npm_lifecycle_script: 'exec node bin/nimbus.js up' }),
    ).toBe('npx nimbus');
    expect(invokedAs({ npm_lifecycle_event: 'dev', npm_lifecycle_script: 'nimbus up --examples' })).toBe(
      'npx nimbus',
    );
    expect(invokedAs({ npm_lifecycle_event: 'nb', npm_lifecycle_script: 'nimbus' })).toBe('npm run nb --');
  });
});

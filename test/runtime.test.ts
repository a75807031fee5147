// The sandbox runtime, end to end: the real built bootstrap in a child process, driven over IPC with the
// protocol the host uses, against small fixture functions.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { HostChannel } from '../src/sandbox/channel.js';
import { resolveEntry, scanTree } from '../src/sandbox/code-tree.js';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type {
  FatalMessage,
  FunctionInit,
  InvokeMessage,
  ResultMessage,
  SandboxMessage,
} from '../src/protocol/messages.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(root, 'test', 'fixtures', 'runtime');
const CJS = join(fixtures, 'cjs');
const ESM = join(fixtures, 'esm');
const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t/;

let tmp: string;
let bootstrap: string;

beforeAll(() => {
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  // Run a private copy: another suite rebuilding dist/ concurrently must not pull the file from under us.
  tmp = mkdtempSync(join(tmpdir(), 'nimbus-runtime-test-'));
  mkdirSync(join(tmp, 'runtime'));
  bootstrap = join(tmp, 'runtime', 'bootstrap.cjs');
  copyFileSync(join(root, 'dist', 'runtime', 'bootstrap.cjs'), bootstrap);
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

class Cell {
  readonly proc: ChildProcess;
  private readonly channel: HostChannel;
  readonly messages: SandboxMessage[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: Array<() => void> = [];
  private seq = 0;

  constructor(env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] }) {
    this.proc = spawn(process.execPath, [bootstrap], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      cwd: tmpdir(),
      env,
    });
    this.proc.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    // The host's own channel class: the test speaks to the runtime exactly as the platform does.
    this.channel = new HostChannel(this.proc.stdio[3] as Socket, (raw) => {
      this.messages.push(raw as SandboxMessage);
      for (const w of this.waiters.splice(0)) w();
    });
    // 'close' comes after the channel is drained, so messages sent just before exiting are already here.
    this.exited = new Promise((resolve) =>
      this.proc.on('close', (code, signal) => resolve({ code, signal })),
    );
    cells.push(this);
  }

  /** The first message (already received or not) matching pred. */
  waitFor<T extends SandboxMessage>(pred: (m: SandboxMessage) => m is T, timeoutMs = 5000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out; got ${JSON.stringify(this.messages)}`)),
        timeoutMs,
      );
      const check = (): void => {
        const found = this.messages.find(pred);
        if (found) {
          clearTimeout(timer);
          resolve(found);
        } else this.waiters.push(check);
      };
      check();
    });
  }

  ready(): Promise<SandboxMessage> {
    return this.waitFor((m): m is SandboxMessage => m.t === 'ready');
  }

  send(msg: InvokeMessage | { t: 'shutdown' }): void {
    this.channel.send(msg);
  }

  /** Sends an invocation and resolves with its result or fatal message. */
  invoke(
    event: unknown,
    opts: {
      init?: FunctionInit;
      id?: string;
      deadline?: number;
      timeoutMs?: number;
      clientContext?: unknown;
    } = {},
  ): Promise<ResultMessage | FatalMessage> {
    const id = opts.id ?? `req-${++this.seq}`;
    this.send({
      t: 'invoke',
      id,
      init: opts.init,
      event,
      deadline: opts.deadline ?? Date.now() + 10_000,
      timeoutMs: opts.timeoutMs,
      clientContext: opts.clientContext,
    });
    return this.waitFor(
      (m): m is ResultMessage | FatalMessage => (m.t === 'result' || m.t === 'fatal') && m.id === id,
    );
  }

  async result(event: unknown, opts: Parameters<Cell['invoke']>[1] = {}): Promise<ResultMessage> {
    const m = await this.invoke(event, opts);
    if (m.t !== 'result') throw new Error(`expected a result, got ${JSON.stringify(m)}`);
    return m;
  }

  /** Everything logged for one invocation: interim LogMessages plus what rode on the result/fatal. */
  logsFor(id: string): string {
    let out = '';
    for (const m of this.messages) {
      if (m.t === 'log' && m.id === id) out += m.data;
      else if ((m.t === 'result' || m.t === 'fatal') && m.id === id) out += m.logs ?? '';
    }
    return out;
  }
}

const cells: Cell[] = [];
afterEach(() => {
  for (const c of cells.splice(0))
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
});

function init(handler: string, codeDir = CJS, env: Record<string, string> = {}): FunctionInit {
  return {
    functionName: 'fixture-fn',
    functionVersion: '7',
    handler,
    codeDir,
    memoryMB: 256,
    timeoutSec: 10,
    region: 'eu-west-1',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:fixture-fn',
    logGroupName: '/aws/lambda/fixture-fn',
    logStreamName: '2026/01/01/[7]abcdef',
    env,
  };
}

/** A fresh instance of `handler`, after its first (init-carrying) invocation. */
async function cellWith(
  handler: string,
  event: unknown = {},
  codeDir = CJS,
): Promise<{ cell: Cell; first: ResultMessage | FatalMessage }> {
  const cell = new Cell();
  await cell.ready();
  const first = await cell.invoke(event, { init: init(handler, codeDir), id: 'first' });
  return { cell, first };
}

function ok(m: ResultMessage | FatalMessage): unknown {
  expect(m).toMatchObject({ t: 'result', ok: true });
  return JSON.parse((m as ResultMessage).payload ?? 'undefined');
}

describe('boot and init', () => {
  it('reports ready, then loads the function on the first invocation and reports initMs, and no memory reading', async () => {
    const cell = new Cell();
    expect(await cell.ready()).toEqual({ t: 'ready', pid: cell.proc.pid, rehearsed: true });
    const first = await cell.result({ n: 1 }, { init: init('index.counter') });
    expect(first.ok).toBe(true);
    expect(first.initMs).toBeGreaterThan(0);
    // The host measures memory itself (cgroup or /proc); reading /proc/self/stat here cost ~11 us per call.
    expect(first).not.toHaveProperty('rss');
    const second = await cell.result({});
    expect(second.initMs).toBeUndefined();
    expect(second).not.toHaveProperty('rss');
  });

  it('keeps module scope between warm invocations', async () => {
    const { cell, first } = await cellWith('index.counter');
    expect(ok(first)).toBe(1);
    expect(ok(await cell.result({}))).toBe(2);
    expect(ok(await cell.result({}))).toBe(3);
  });

  it('replaces the stem cell environment with the function environment and the Lambda variables', async () => {
    const cell = new Cell({ PATH: process.env['PATH'], SECRET: 'x', NODE_OPTIONS: '' });
    await cell.ready();
    const fi = init('index.env', CJS, { MY_VAR: 'mine', AWS_REGION: 'us-east-1', LANG: 'C.UTF-8' });
    const { env, cwd } = ok(await cell.invoke({}, { init: fi })) as {
      env: Record<string, string>;
      cwd: string;
    };
    expect(env['SECRET']).toBeUndefined();
    expect(env['NODE_OPTIONS']).toBeUndefined();
    expect(env['AWS_LAMBDA_RUNTIME_API']).toBeUndefined();
    expect(env).toMatchObject({
      MY_VAR: 'mine',
      LANG: 'C.UTF-8', // not reserved: the function may override it
      AWS_REGION: 'eu-west-1', // reserved: it may not
      AWS_DEFAULT_REGION: 'eu-west-1',
      AWS_LAMBDA_FUNCTION_NAME: 'fixture-fn',
      AWS_LAMBDA_FUNCTION_VERSION: '7',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
      AWS_LAMBDA_LOG_GROUP_NAME: '/aws/lambda/fixture-fn',
      AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[7]abcdef',
      LAMBDA_TASK_ROOT: CJS,
      LAMBDA_RUNTIME_DIR: join(tmp, 'runtime'),
      _HANDLER: 'index.env',
      PATH: '/usr/local/bin:/usr/bin:/bin',
      TZ: ':UTC',
    });
    expect(env['AWS_EXECUTION_ENV']).toMatch(/^AWS_Lambda_nodejs\d+\.x$/);
    expect(cwd).toBe(CJS);
  });

  it('logs during init belong to the first invocation, tagged "undefined" as on AWS', async () => {
    const { cell, first } = await cellWith('index.counter');
    expect(cell.logsFor('first')).toMatch(/\tundefined\tINFO\tloading index\.js\n/);
    expect(ok(first)).toBe(1);
    await cell.result({}, { id: 'second' });
    expect(cell.logsFor('second')).toBe('');
  });
});

describe('handler resolution and module formats', () => {
  it('loads a .js file as CommonJS under "type": "commonjs"', async () => {
    const { first } = await cellWith('index.counter');
    expect(ok(first)).toBe(1);
  });

  it('loads a .cjs file as CommonJS', async () => {
    const { first } = await cellWith('common.handler');
    expect(ok(first)).toEqual({ format: 'cjs', hasRequire: true });
  });

  it('loads a .mjs file as an ES module', async () => {
    const { first } = await cellWith('module.handler');
    expect(ok(first)).toEqual({ format: 'esm', url: true });
  });

  it('loads a .js file as an ES module under "type": "module", with top-level await', async () => {
    const { cell, first } = await cellWith('index.handler', {}, ESM);
    expect(ok(first)).toEqual({ config: { loaded: true }, calls: 1, hasRequire: false });
    expect(ok(await cell.result({}))).toMatchObject({ calls: 2 });
  });

  it('finds a handler under the default export of an ES module', async () => {
    const { first } = await cellWith('defaultonly.handler', {}, ESM);
    expect(ok(first)).toBe('from default export');
  });

  it('resolves a nested export in a subdirectory: lib/api.v1.fn', async () => {
    const { first } = await cellWith('lib/api.v1.fn', { x: 1 });
    expect(ok(first)).toEqual({ nested: true, event: { x: 1 } });
  });

  const initErrors: Array<[string, string, string, RegExp]> = [
    ['no dot', 'index', 'Runtime.MalformedHandlerName', /^Bad handler$/],
    ['empty', '', 'Runtime.MalformedHandlerName', /^Bad handler$/],
    ['relative path', '../cjs/index.counter', 'Runtime.MalformedHandlerName', /is not a valid handler name/],
    ['missing module', 'nope.handler', 'Runtime.ImportModuleError', /^Error: Cannot find module 'nope'/],
    [
      'missing dependency',
      'missingdep.handler',
      'Runtime.ImportModuleError',
      /nimbus-package-that-does-not-exist/,
    ],
    [
      'missing export',
      'index.nothing',
      'Runtime.HandlerNotFound',
      /^index\.nothing is undefined or not exported$/,
    ],
    [
      'missing nested export',
      'lib/api.v2.fn',
      'Runtime.HandlerNotFound',
      /^lib\/api\.v2\.fn is undefined or not exported$/,
    ],
    [
      'export not a function',
      'notfn.handler',
      'Runtime.HandlerNotFound',
      /^notfn\.handler is not a function$/,
    ],
    ['error during module init', 'initthrow.handler', 'TypeError', /^config missing$/],
  ];
  it.each(initErrors)('reports an init error: %s', async (_name, handler, errorType, message) => {
    const { cell, first } = await cellWith(handler);
    expect(first).toMatchObject({
      t: 'result',
      id: 'first',
      ok: false,
      errorKind: 'init',
      error: { errorType },
    });
    const r = first as ResultMessage;
    expect(r.error?.errorMessage).toMatch(message);
    expect(r.payload).toBeUndefined();
    expect(cell.logsFor('first')).toContain(
      `\tundefined\tERROR\tUncaught Exception \t{"errorType":"${errorType}"`,
    );
    // The instance stays unusable and says why.
    expect(await cell.result({})).toMatchObject({ ok: false, errorKind: 'init', error: { errorType } });
  });

  it('reports a syntax error as Runtime.UserCodeSyntaxError', async () => {
    const dir = join(tmp, 'syntax');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"type":"commonjs"}');
    writeFileSync(join(dir, 'broken.js'), 'exports.handler = async () => { return 1;\n');
    writeFileSync(join(dir, 'broken.mjs'), 'export const handler = ;\n');
    const { first } = await cellWith('broken.handler', {}, dir);
    expect(first).toMatchObject({
      ok: false,
      errorKind: 'init',
      error: {
        errorType: 'Runtime.UserCodeSyntaxError',
        errorMessage: expect.stringMatching(/^SyntaxError: /),
      },
    });
    rmSync(join(dir, 'broken.js')); // now broken.mjs is the one found
    const esm = await cellWith('broken.handler', {}, dir);
    expect(esm.first).toMatchObject({
      errorKind: 'init',
      error: { errorType: 'Runtime.UserCodeSyntaxError' },
    });
  });
});

describe('context', () => {
  it('exposes the Lambda context', async () => {
    const cell = new Cell();
    await cell.ready();
    const deadline = Date.now() + 5000;
    const r = ok(
      await cell.invoke(
        { a: 1 },
        { init: init('index.context'), id: 'ctx-1', deadline, clientContext: { c: 1 } },
      ),
    ) as Record<string, unknown>;
    expect(r).toMatchObject({
      event: { a: 1 },
      awsRequestId: 'ctx-1',
      functionName: 'fixture-fn',
      functionVersion: '7',
      memoryLimitInMB: '256',
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:fixture-fn',
      logGroupName: '/aws/lambda/fixture-fn',
      logStreamName: '2026/01/01/[7]abcdef',
      clientContext: { c: 1 },
      identityIsUndefined: true,
      callbackWaitsForEmptyEventLoop: true,
    });
    expect(r['remaining']).toBeGreaterThan(3000);
    expect(r['remaining']).toBeLessThanOrEqual(5000);
    expect(r['keys']).toEqual(
      expect.arrayContaining(['succeed', 'fail', 'done', 'getRemainingTimeInMillis']),
    );
  });

  it('getRemainingTimeInMillis counts down to the deadline', async () => {
    const cell = new Cell();
    await cell.ready();
    const r = ok(await cell.invoke({}, { init: init('index.remaining'), deadline: Date.now() + 3000 })) as {
      first: number;
      second: number;
    };
    expect(r.first).toBeLessThanOrEqual(3000);
    expect(r.first).toBeGreaterThan(1500);
    expect(r.first - r.second).toBeGreaterThanOrEqual(50);
  });
});

describe('completion semantics', () => {
  it('async handler: the resolved value is the result; undefined becomes null', async () => {
    const { cell } = await cellWith('index.undef');
    const r = await cell.result({});
    expect(r).toMatchObject({ ok: true, payload: 'null' });
  });

  it('callback with callbackWaitsForEmptyEventLoop=true answers only once pending work is done', async () => {
    const c = new Cell();
    await c.ready();
    const r = await c.result({ delay: 250 }, { init: init('index.callbackWaits'), id: 'w' });
    expect(r).toMatchObject({ ok: true, payload: '"callback result"' });
    // The timer's output is part of this invocation: the answer waited for it.
    expect(c.logsFor('w')).toContain('\tw\tINFO\ttimer fired\n');
    // ...and the instance keeps serving afterwards.
    expect(await c.result({ delay: 10 })).toMatchObject({ ok: true });
  });

  it('callback with callbackWaitsForEmptyEventLoop=false answers at once; later output goes to the next invocation', async () => {
    const cell = new Cell();
    await cell.ready();
    const r = await cell.result({ delay: 300 }, { init: init('index.callbackNoWait'), id: 'nw-1' });
    expect(r).toMatchObject({ ok: true, payload: '"no wait result"' });
    expect(cell.logsFor('nw-1')).not.toContain('late timer fired');
    await new Promise((resolve) => setTimeout(resolve, 400));
    await cell.result({ delay: 1 }, { id: 'nw-2' });
    // Tagged with the id that was current when written, as AWS does.
    expect(cell.logsFor('nw-2')).toContain('\tnw-1\tINFO\tlate timer fired\n');
  });

  it('callback(err) answers at once even when waiting for the event loop', async () => {
    const { cell, first } = await cellWith('index.callbackError');
    // The 2 s timer had not fired when the answer went out.
    expect(cell.logsFor('first')).not.toContain('pending timer fired');
    expect(first).toMatchObject({
      ok: false,
      errorKind: 'handled',
      error: { errorType: 'TypeError', errorMessage: 'bad input' },
    });
  });

  it('context.succeed / fail / done answer immediately', async () => {
    expect(ok((await cellWith('index.succeed')).first)).toEqual({ via: 'succeed' });
    expect((await cellWith('index.fail')).first).toMatchObject({
      ok: false,
      errorKind: 'handled',
      error: { errorType: 'Error', errorMessage: 'failed via context' },
    });
    expect((await cellWith('index.failNoArg')).first).toMatchObject({
      ok: false,
      error: { errorType: 'string', errorMessage: 'handled', trace: [] },
    });
    expect(ok((await cellWith('index.doneOk')).first)).toBe('done ok');
    expect((await cellWith('index.doneErr')).first).toMatchObject({
      ok: false,
      errorKind: 'handled',
      error: { errorType: 'string', errorMessage: 'done error string' },
    });
    const pending = await cellWith('index.succeedWithPending');
    expect(ok(pending.first)).toBe('immediate');
    expect(pending.cell.logsFor('first')).not.toContain('pending timer fired');
  });

  it('the first completion wins and later ones are ignored', async () => {
    const { cell, first } = await cellWith('index.firstWins');
    expect(ok(first)).toBe('first');
    expect(cell.messages.filter((m) => m.t === 'result' && m.id === 'first')).toHaveLength(1);
    const p = await cellWith('index.promiseBeforeCallback');
    expect(ok(p.first)).toBe('promise');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(p.cell.messages.filter((m) => m.t === 'result')).toHaveLength(1);
  });

  it('a sync handler that never calls back answers null once its work is done, like AWS', async () => {
    const { cell, first } = await cellWith('index.syncNoCallback');
    expect(first).toMatchObject({ ok: true, payload: 'null' });
    expect(cell.logsFor('first')).toContain('\tfirst\tINFO\twork done\n');
  });

  it('an async handler whose promise can never settle fails with Runtime.NodeJsExit', async () => {
    const { cell, first } = await cellWith('index.asyncNeverSettles');
    expect(first).toMatchObject({
      ok: false,
      errorKind: 'unhandled',
      error: { errorType: 'Runtime.NodeJsExit' },
    });
    // The instance survives it.
    expect(await cell.result({}, { id: 'again' })).toMatchObject({
      ok: false,
      error: { errorType: 'Runtime.NodeJsExit' },
    });
  });
});

describe('errors', () => {
  it('a synchronous throw', async () => {
    const { cell, first } = await cellWith('index.throwsSync');
    expect(first).toMatchObject({
      t: 'result',
      ok: false,
      errorKind: 'handled',
      error: { errorType: 'Error', errorMessage: 'thrown synchronously' },
    });
    const trace = (first as ResultMessage).error?.trace ?? [];
    expect(trace[0]).toBe('Error: thrown synchronously');
    expect(trace.some((l) => l.includes('index.js'))).toBe(true);
    expect(cell.logsFor('first')).toMatch(
      /\tfirst\tERROR\tInvoke Error \t\{"errorType":"Error","errorMessage":"thrown synchronously".*"stack":\["Error: thrown synchronously",/,
    );
  });

  it('a rejection with a custom error keeps its name', async () => {
    const { first } = await cellWith('index.rejects');
    expect(first).toMatchObject({
      ok: false,
      errorKind: 'handled',
      error: { errorType: 'ValidationError', errorMessage: 'invalid order' },
    });
  });

  it('non-Error rejections are reported by type, as AWS does', async () => {
    expect((await cellWith('index.rejectsString')).first).toMatchObject({
      ok: false,
      error: { errorType: 'string', errorMessage: 'plain string', trace: [] },
    });
    expect((await cellWith('index.rejectsObject')).first).toMatchObject({
      ok: false,
      error: { errorType: 'object', errorMessage: '[object Object]', trace: [] },
    });
  });

  it('a result that cannot be serialized is an error, and the instance survives', async () => {
    const { cell, first } = await cellWith('index.circular');
    expect(first).toMatchObject({
      ok: false,
      errorKind: 'handled',
      error: { errorType: 'Runtime.JSONStringifyError', errorMessage: 'Unable to stringify response body' },
    });
    expect(await cell.result({})).toMatchObject({
      ok: false,
      error: { errorType: 'Runtime.JSONStringifyError' },
    });
  });
});

describe('logs', () => {
  it('console.* lines are in Lambda format, tagged with the request id, attached to their invocation', async () => {
    const cell = new Cell();
    await cell.ready();
    const r = await cell.result({ tag: 'one' }, { init: init('index.logs'), id: 'log-1' });
    expect(r.payload).toBe('"logged"');
    const logs = cell.logsFor('log-1');
    const lines = logs.split('\n').filter(Boolean);
    expect(lines.filter((l) => l.includes('\tlog-1\t')).every((l) => LINE.test(l))).toBe(true);
    expect(logs).toContain('\tlog-1\tINFO\thello { a: 1 } one\n');
    expect(logs).toContain('\tlog-1\tINFO\tinfo formatted\n');
    expect(logs).toContain('\tlog-1\tWARN\twarn line\n');
    expect(logs).toContain('\tlog-1\tERROR\tmulti\rline\n');
    expect(logs).toContain('\tlog-1\tDEBUG\tdebug line\n');
    expect(logs).toContain('\tlog-1\tTRACE\ttrace line\n');
    expect(logs).toContain('raw stdout\n');
    expect(logs).toContain('raw stderr\n');
    // One message for an invocation that finished within its tick, logs included.
    expect(cell.messages.filter((m) => m.t !== 'ready' && m.id === 'log-1')).toHaveLength(1);

    await cell.result({ tag: 'two' }, { id: 'log-2' });
    expect(cell.logsFor('log-2')).toContain('\tlog-2\tINFO\thello { a: 1 } two\n');
    expect(cell.logsFor('log-2')).not.toContain('log-1');
    expect(cell.logsFor('log-1')).not.toContain('two');
  });

  it('AWS_LAMBDA_LOG_LEVEL filters console output', async () => {
    const cell = new Cell();
    await cell.ready();
    await cell.result(
      { tag: 'x' },
      { init: init('index.logs', CJS, { AWS_LAMBDA_LOG_LEVEL: 'warn' }), id: 'lvl' },
    );
    const logs = cell.logsFor('lvl');
    expect(logs).toContain('\tlvl\tWARN\twarn line\n');
    expect(logs).toContain('\tlvl\tERROR\tmulti\rline\n');
    expect(logs).not.toMatch(/\t(INFO|DEBUG|TRACE)\t/);
    expect(logs).toContain('raw stdout\n');
  });

  it('an invocation that runs on flushes its lines before it finishes', async () => {
    const { cell, first } = await cellWith('index.slowLogs');
    expect(ok(first)).toBe('slow');
    const idx = cell.messages.findIndex((m) => m.t === 'log' && m.data.includes('before wait'));
    const resIdx = cell.messages.indexOf(first);
    expect(idx).toBeGreaterThanOrEqual(0);
    expect(idx).toBeLessThan(resIdx);
    expect(cell.logsFor('first')).toMatch(/before wait\n.*after wait\n/s);
  });
});

describe('fatal errors and exits', () => {
  it('an uncaught exception in a timer sends fatal for the invocation, then the process exits non-zero', async () => {
    const { cell, first } = await cellWith('index.uncaught');
    expect(first).toMatchObject({
      t: 'fatal',
      id: 'first',
      error: { errorType: 'Error', errorMessage: 'kaboom' },
    });
    expect(cell.logsFor('first')).toContain('\tfirst\tINFO\tabout to crash\n');
    expect(cell.logsFor('first')).toContain('\tfirst\tERROR\tUncaught Exception \t{"errorType":"Error"');
    const { code } = await cell.exited;
    expect(code).not.toBe(0);
    expect(cell.messages.some((m) => m.t === 'result')).toBe(false);
  });

  it('an unhandled rejection sends fatal with Runtime.UnhandledPromiseRejection and exits non-zero', async () => {
    const { cell, first } = await cellWith('index.unhandled');
    expect(first).toMatchObject({
      t: 'fatal',
      id: 'first',
      error: { errorType: 'Runtime.UnhandledPromiseRejection', errorMessage: 'Error: nobody catches me' },
    });
    expect((await cell.exited).code).not.toBe(0);
    expect(cell.messages.some((m) => m.t === 'result')).toBe(false);
  });

  it('an uncaught exception between invocations sends fatal with a null id', async () => {
    const { cell, first } = await cellWith('index.throwLater');
    expect(ok(first)).toBe('answered');
    const fatal = await cell.waitFor((m): m is FatalMessage => m.t === 'fatal');
    expect(fatal).toMatchObject({
      id: null,
      error: { errorType: 'RangeError', errorMessage: 'after the response' },
    });
    expect(fatal.logs).toContain('\tfirst\tERROR\tUncaught Exception \t{"errorType":"RangeError"');
    expect((await cell.exited).code).not.toBe(0);
  });

  it('process.exit() ends the process without a result; buffered lines go to stderr', async () => {
    const cell = new Cell();
    await cell.ready();
    cell.send({ t: 'invoke', id: 'x', init: init('index.exit'), event: {}, deadline: Date.now() + 5000 });
    const { code } = await cell.exited;
    expect(code).toBe(3);
    expect(cell.messages.filter((m) => m.t !== 'ready')).toEqual([]);
    expect(cell.stderr).toMatch(/\tx\tINFO\texiting now\n/);
  });

  it('answers invocations sent back to back in order', async () => {
    const { cell } = await cellWith('index.counter');
    const [a, b, c] = await Promise.all([cell.result({}), cell.result({}), cell.result({})]);
    expect([a.payload, b.payload, c.payload]).toEqual(['2', '3', '4']);
  });

  it('back to back invocations keep their own results and log lines', async () => {
    const { cell } = await cellWith('index.logs');
    const tags = ['t1', 't2', 't3', 't4', 't5', 't6'];
    // Sent in one turn, so they reach the runtime together and queue behind each other (K = 1).
    const results = await Promise.all(tags.map((tag) => cell.result({ tag }, { id: `bb-${tag}` })));
    for (const [i, r] of results.entries()) {
      expect(r.ok).toBe(true);
      const logs = cell.logsFor(`bb-${tags[i]}`);
      expect(logs).toContain(`\tbb-${tags[i]}\tINFO\thello { a: 1 } ${tags[i]}\n`);
      for (const other of tags.filter((t) => t !== tags[i])) expect(logs).not.toContain(other);
    }
  });

  it('an answer reaches the host even when the invocation queued behind it ends the process at once', async () => {
    const { cell } = await cellWith('index.exitOn');
    // Both in one turn: the second is queued in the runtime and starts right after the first answers.
    const first = cell.result({}, { id: 'answered' });
    cell.send({ t: 'invoke', id: 'exits', event: { exit: true }, deadline: Date.now() + 5000 });
    expect((await first).payload).toBe('"fine"');
    expect((await cell.exited).code).toBe(3);
  });

  it('shutdown exits promptly with 0', async () => {
    const { cell } = await cellWith('index.counter');
    cell.send({ t: 'shutdown' });
    expect((await cell.exited).code).toBe(0);
  });
});

describe('concurrency: K invocations at once (FunctionInit.concurrency)', () => {
  interface Overlap {
    n: number;
    awsRequestId: string;
    globalRequestId: string;
    atStart: number;
    maxRunning: number;
    finishedBefore: number;
    startedAt: number;
    remaining: number;
  }

  async function concurrentCell(handler: string, k: number): Promise<{ cell: Cell; fi: FunctionInit }> {
    const cell = new Cell();
    await cell.ready();
    return { cell, fi: { ...init(handler), concurrency: k } };
  }

  function resultIndex(cell: Cell, id: string): number {
    return cell.messages.findIndex((m) => (m.t === 'result' || m.t === 'fatal') && m.id === id);
  }

  it('runs up to K at once; the next one starts in order once one finishes, its deadline counted from then', async () => {
    const { cell, fi } = await concurrentCell('concurrent.overlap', 4);
    const timeoutMs = 5000;
    const sentAt = Date.now();
    const pending = [1, 2, 3, 4, 5].map((n) =>
      cell.result({ n, ms: 300 }, { id: `o${n}`, init: n === 1 ? fi : undefined, timeoutMs }),
    );
    const results = await Promise.all(pending);
    const out = results.map((r) => ok(r) as Overlap);

    // The first four overlapped: each saw the others start, and the counter reached 4...
    expect(out.slice(0, 4).map((o) => o.atStart)).toEqual([1, 2, 3, 4]);
    expect(out.slice(0, 4).every((o) => o.finishedBefore === 0 && o.maxRunning === 4)).toBe(true);
    // ...and never went past it: the fifth started only after one of them had finished.
    expect(out[4]?.finishedBefore).toBeGreaterThanOrEqual(1);
    expect(out[4]?.atStart).toBeLessThanOrEqual(4);
    expect(Math.max(...out.map((o) => o.maxRunning))).toBe(4);
    const firstDone = Math.min(...[1, 2, 3, 4].map((n) => resultIndex(cell, `o${n}`)));
    expect(resultIndex(cell, 'o5')).toBeGreaterThan(firstDone);

    // Each answered for itself, with its own context.
    out.forEach((o, i) => {
      expect(o.n).toBe(i + 1);
      expect(o.awsRequestId).toBe(`o${i + 1}`);
      expect(o.globalRequestId).toBe(`o${i + 1}`);
      expect(o.remaining).toBeLessThanOrEqual(timeoutMs);
    });
    expect(results[0]?.initMs).toBeGreaterThan(0);
    expect(results.slice(1).every((r) => r.initMs === undefined)).toBe(true);
    // o5 waited behind a 300 ms sleep: a deadline counted from when it was sent would be that much nearer.
    const o5 = out[4] as Overlap;
    expect(o5.startedAt + o5.remaining).toBeGreaterThanOrEqual(sentAt + timeoutMs + 250);
  });

  it('attributes the output of overlapping invocations to each one, tagged with its own request id', async () => {
    const { cell, fi } = await concurrentCell('concurrent.overlap', 4);
    const ids = ['la', 'lb', 'lc', 'ld'];
    await Promise.all(
      ids.map((id, i) => cell.result({ n: i + 1, ms: 300 }, { id, init: i === 0 ? fi : undefined })),
    );
    ids.forEach((id, i) => {
      const n = i + 1;
      const logs = cell.logsFor(id);
      expect(logs).toMatch(new RegExp(`\\t${id}\\tINFO\\tstart ${n}\\n`));
      expect(logs).toMatch(new RegExp(`\\t${id}\\tINFO\\tend ${n}\\n`));
      expect(logs).toContain(`raw ${n}\n`);
      for (const other of ids.filter((x) => x !== id)) expect(logs).not.toContain(`\t${other}\t`);
      expect(logs.match(/(start|end|raw) \d/g)).toEqual([`start ${n}`, `raw ${n}`, `end ${n}`]);
    });
    // Nothing escaped the capture.
    expect(cell.stderr).toBe('');
  });

  it('K is fixed by a warm-up init as well', async () => {
    const { cell, fi } = await concurrentCell('concurrent.overlap', 2);
    cell.send({ t: 'invoke', id: 'warm', init: fi, event: null, deadline: Date.now() + 5000, warmup: true });
    expect(await cell.waitFor((m): m is ResultMessage => m.t === 'result' && m.id === 'warm')).toMatchObject({
      ok: true,
      payload: 'null',
    });
    const out = (await Promise.all([1, 2, 3].map((n) => cell.result({ n, ms: 300 })))).map(
      (r) => ok(r) as Overlap,
    );
    expect(out.map((o) => o.atStart).slice(0, 2)).toEqual([1, 2]);
    expect(out[2]?.finishedBefore).toBeGreaterThanOrEqual(1);
    expect(Math.max(...out.map((o) => o.maxRunning))).toBe(2);
  });

  it('callback answers at once, without waiting for pending work (callbackWaitsForEmptyEventLoop ignored)', async () => {
    const { cell, fi } = await concurrentCell('concurrent.callback', 2);
    const r = await cell.result({ delay: 200 }, { id: 'cb-1', init: fi });
    expect(r).toMatchObject({ ok: true, payload: '"callback result"' });
    // Answered before its timer fired.
    expect(JSON.stringify(cell.messages)).not.toContain('timer fired');
    // The timer's line is tagged with the invocation that set it, and rides on one still running.
    expect(ok(await cell.result({ afterTimer: true }, { id: 'cb-2' }))).toBe('after timer');
    expect(cell.logsFor('cb-2')).toContain('\tcb-1\tINFO\ttimer fired\n');
    expect(cell.logsFor('cb-1')).not.toContain('timer fired');
  });

  it('an invocation with no work left fails with Runtime.NodeJsExit only once the others are done; the instance lives on', async () => {
    const { cell, fi } = await concurrentCell('concurrent.mixed', 2);
    const never = cell.invoke({ kind: 'never' }, { id: 'never', init: fi });
    const slow = cell.invoke({ kind: 'sleep', ms: 200 }, { id: 'slow' });
    expect(await slow).toMatchObject({ ok: true, payload: '"slept"' });
    expect(await never).toMatchObject({
      ok: false,
      errorKind: 'unhandled',
      error: { errorType: 'Runtime.NodeJsExit' },
    });
    expect(resultIndex(cell, 'never')).toBeGreaterThan(resultIndex(cell, 'slow'));
    const again = await Promise.all([
      cell.result({ kind: 'sleep', ms: 10 }, { id: 'again-1' }),
      cell.result({ kind: 'sleep', ms: 10 }, { id: 'again-2' }),
    ]);
    expect(again.map((r) => r.payload)).toEqual(['"slept"', '"slept"']);
    expect(cell.proc.exitCode).toBeNull();
  });

  it('an uncaught exception sends fatal for the invocation whose async work threw; the others get their lines', async () => {
    const { cell, fi } = await concurrentCell('concurrent.mixed', 2);
    // The process dies before the bystander answers: its wait must not fail later, under another test.
    cell.invoke({ kind: 'sleep', ms: 1000 }, { id: 'bystander', init: fi }).catch(() => undefined);
    const fatal = await cell.invoke({ kind: 'crash', ms: 50 }, { id: 'culprit' });
    expect(fatal).toMatchObject({
      t: 'fatal',
      id: 'culprit',
      error: { errorType: 'Error', errorMessage: 'kaboom' },
    });
    expect(cell.logsFor('culprit')).toContain('\tculprit\tINFO\tabout to crash\n');
    expect(cell.logsFor('culprit')).toContain('\tculprit\tERROR\tUncaught Exception \t{"errorType":"Error"');
    expect(cell.logsFor('bystander')).toContain('\tbystander\tINFO\tsleeping 1000\n');
    expect((await cell.exited).code).not.toBe(0);
    expect(cell.messages.some((m) => m.t === 'result' && m.id !== 'bystander' && m.id !== 'culprit')).toBe(
      false,
    );
    expect(cell.messages.some((m) => m.t === 'result' && (m.id === 'bystander' || m.id === 'culprit'))).toBe(
      false,
    );
  });

  it('an unhandled rejection is attributed to the invocation whose promise it was', async () => {
    const { cell, fi } = await concurrentCell('concurrent.mixed', 2);
    // The process dies before the bystander answers: its wait must not fail later, under another test.
    cell.invoke({ kind: 'sleep', ms: 1000 }, { id: 'bystander', init: fi }).catch(() => undefined);
    const fatal = await cell.invoke({ kind: 'reject', ms: 50 }, { id: 'culprit' });
    expect(fatal).toMatchObject({
      t: 'fatal',
      id: 'culprit',
      error: { errorType: 'Runtime.UnhandledPromiseRejection', errorMessage: 'Error: nobody catches me' },
    });
    expect((await cell.exited).code).not.toBe(0);
  });

  it('a crash from an invocation that already answered sends fatal with a null id', async () => {
    const { cell, fi } = await concurrentCell('concurrent.mixed', 2);
    // The process dies before the bystander answers: its wait must not fail later, under another test.
    cell.invoke({ kind: 'sleep', ms: 1000 }, { id: 'bystander', init: fi }).catch(() => undefined);
    expect(ok(await cell.invoke({ kind: 'crashLater', ms: 50 }, { id: 'early' }))).toBe('answered');
    const fatal = await cell.waitFor((m): m is FatalMessage => m.t === 'fatal');
    expect(fatal).toMatchObject({ id: null, error: { errorType: 'RangeError' } });
    // The line is tagged with the invocation that set the timer, and rides with the one still running.
    expect(cell.logsFor('bystander')).toContain(
      '\tearly\tERROR\tUncaught Exception \t{"errorType":"RangeError"',
    );
    expect((await cell.exited).code).not.toBe(0);
  });
});

describe('the host resolves the entry (FunctionInit.entry)', () => {
  const cases: Array<[string, string]> = [
    ['index.counter', CJS],
    ['common.handler', CJS],
    ['module.handler', CJS],
    ['lib/api.v1.fn', CJS],
    ['index.handler', ESM],
    ['defaultonly.handler', ESM],
  ];
  it.each(cases)('%s answers as when the runtime looks for it itself', async (handler, dir) => {
    const entry = resolveEntry(scanTree(dir), handler, dir);
    expect(entry).toBeDefined();
    const given = new Cell();
    await given.ready();
    const a = await given.invoke({ x: 1 }, { init: { ...init(handler, dir), entry }, id: 'first' });
    const { first: b } = await cellWith(handler, { x: 1 }, dir);
    expect(ok(a)).toEqual(ok(b));
  });

  it('a .js file in ES module syntax outside any "type" scope still loads, as Node detects it', async () => {
    const dir = join(tmp, 'detect');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'h.js'), 'export const handler = async () => "detected";\n');
    const entry = resolveEntry(scanTree(dir), 'h.handler', dir);
    expect(entry).toEqual({ file: join(dir, 'h.js'), format: 'commonjs' });
    const cell = new Cell();
    await cell.ready();
    expect(ok(await cell.invoke({}, { init: { ...init('h.handler', dir), entry } }))).toBe('detected');
  });

  it("keeps the module in require.cache with Node's wrapper variables, and a syntax error stays Runtime.UserCodeSyntaxError", async () => {
    const dir = join(tmp, 'wrapper');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'w.js'),
      'exports.handler = async () => ({ self: require.cache[__filename] === module, file: __filename, dir: __dirname, same: this === module.exports, resolved: require.resolve("./w.js") });\n',
    );
    writeFileSync(join(dir, 'bad.js'), 'exports.handler = async () => { return 1;\n');
    const tree = scanTree(dir);
    const cell = new Cell();
    await cell.ready();
    const r = ok(
      await cell.invoke(
        {},
        { init: { ...init('w.handler', dir), entry: resolveEntry(tree, 'w.handler', dir) } },
      ),
    );
    expect(r).toEqual({ self: true, file: join(dir, 'w.js'), dir, same: true, resolved: join(dir, 'w.js') });
    const bad = new Cell();
    await bad.ready();
    const e = await bad.invoke(
      {},
      { init: { ...init('bad.handler', dir), entry: resolveEntry(tree, 'bad.handler', dir) } },
    );
    expect(e).toMatchObject({
      ok: false,
      errorKind: 'init',
      error: { errorType: 'Runtime.UserCodeSyntaxError' },
    });
  });
});

describe("the deploy check's handler shape (describeHandler)", () => {
  const shapeOf = async (file: string, text: string, handler: string) => {
    const d = join(tmp, 'shape');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, file), text);
    const cell = new Cell();
    await cell.ready();
    cell.send({
      t: 'invoke',
      id: 'check',
      event: null,
      deadline: 0,
      warmup: true,
      init: { ...init(handler, d), describeHandler: true },
    });
    return cell.waitFor((m): m is ResultMessage => m.t === 'result' && m.id === 'check');
  };

  it("answers the warm-up with the handler's own source, arity and async-ness", async () => {
    const r = await shapeOf(
      'plain.js',
      'exports.handler = (event, context) => ({ statusCode: 200 });\n',
      'plain.handler',
    );
    expect(r).toMatchObject({
      ok: true,
      handler: { async: false, params: 2, source: '(event, context) => ({ statusCode: 200 })' },
    });
  });

  it('reads the true source when the module replaced Function.prototype.toString or lied about length', async () => {
    const r = await shapeOf(
      'liar.js',
      [
        "Function.prototype.toString = () => 'async () => 1';",
        'const h = async (event) => { console.log(event); };',
        "Object.defineProperty(h, 'length', { get() { throw new Error('no'); } });",
        'exports.handler = h;',
      ].join('\n'),
      'liar.handler',
    );
    expect(r).toMatchObject({
      ok: true,
      handler: { async: true, params: 0, source: 'async (event) => { console.log(event); }' },
    });
  });

  it('sends no shape unless asked', async () => {
    const d = join(tmp, 'shape');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'plain.js'), 'exports.handler = async () => 1;\n');
    const cell = new Cell();
    await cell.ready();
    cell.send({
      t: 'invoke',
      id: 'w',
      event: null,
      deadline: 0,
      warmup: true,
      init: init('plain.handler', d),
    });
    const r = await cell.waitFor((m): m is ResultMessage => m.t === 'result' && m.id === 'w');
    expect(r.ok).toBe(true);
    expect(r.handler).toBeUndefined();
  });
});

describe('the rehearsal before a stem cell is offered', () => {
  it('runs, and leaves no trace: no message but ready, no module, no request id, init lines tagged "undefined"', async () => {
    const dir = join(tmp, 'trace');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'trace.js'),
      [
        "const id = globalThis[Symbol.for('aws.lambda.runtime.requestId')];",
        "console.log('at init');",
        'const cached = Object.keys(require.cache);',
        'const siblings = module.parent ? module.parent.children.map((m) => m.id) : [];',
        // The rehearsal's listen on 127.0.0.1 (endpoint.ts) is closed again: no TCP socket of this process listens.
        "const fs = require('node:fs');",
        "const own = new Set(fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd); } catch { return ''; } }));",
        "const servers = ['tcp', 'tcp6'].flatMap((f) => fs.readFileSync('/proc/self/net/' + f, 'utf8').split('\\n').slice(1)).map((l) => l.trim().split(/\\s+/)).filter((c) => c[3] === '0A' && own.has('socket:[' + c[9] + ']')).length;",
        'exports.handler = async () => ({ id: id === undefined, cached, siblings, cwd: process.cwd(), servers });',
      ].join('\n'),
    );
    const cell = new Cell();
    const ready = await cell.ready();
    expect(ready).toMatchObject({ t: 'ready', rehearsed: true });
    expect(cell.messages).toEqual([ready]);
    const r = await cell.result({}, { init: init('trace.handler', dir), id: 'first' });
    const body = JSON.parse(r.payload ?? 'null') as {
      id: boolean;
      cached: string[];
      siblings: string[];
      cwd: string;
      servers: number;
    };
    expect(body.id).toBe(true);
    expect(body.servers).toBe(0);
    expect(body.cached.filter((k) => k.includes('rehearsal'))).toEqual([]);
    expect(body.siblings.filter((k) => k.includes('rehearsal'))).toEqual([]);
    expect(body.cwd).toBe(dir);
    const logs = cell.logsFor('first');
    expect(logs).toMatch(/\tundefined\tINFO\tat init\n/);
    expect(logs).not.toContain('rehearsal');
    expect(JSON.stringify(cell.messages)).not.toContain('rehearsal');
  });

  it('holds an invocation sent before ready and runs it after', async () => {
    const cell = new Cell();
    const r = await cell.result({ n: 5 }, { init: init('index.counter'), id: 'early' });
    expect(r).toMatchObject({ ok: true });
  });
});

describe('V8 code cache (FunctionInit.codeCache, produceCodeCache)', () => {
  const dir = (): string => {
    const d = join(tmp, 'cached');
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, 'b.js'),
      'function big(n) { return n * 2; }\nexports.handler = async (e) => ({ v: big(e.n) });\n',
    );
    return d;
  };

  it('produces a cache before the code runs, which a later instance accepts; a damaged one is rejected and ignored', async () => {
    const d = dir();
    const entry = resolveEntry(scanTree(d), 'b.handler', d);
    const check = new Cell();
    await check.ready();
    check.send({
      t: 'invoke',
      id: 'check',
      event: null,
      deadline: 0,
      warmup: true,
      init: { ...init('b.handler', d), entry, produceCodeCache: true },
    });
    await check.waitFor((m): m is ResultMessage => m.t === 'result' && m.id === 'check');
    // The cache is the first message after ready, before the init's result.
    const cacheMsg = check.messages[1] as unknown as { t: string; id: string; data: string };
    expect(cacheMsg).toMatchObject({ t: 'codecache', id: 'check' });
    expect(Buffer.from(cacheMsg.data, 'base64').length).toBeGreaterThan(0);

    const warm = new Cell();
    await warm.ready();
    const used = await warm.result(
      { n: 21 },
      { init: { ...init('b.handler', d), entry, codeCache: cacheMsg.data } },
    );
    expect(used).toMatchObject({ ok: true, codeCache: 'accepted' });
    expect(JSON.parse(used.payload ?? '')).toEqual({ v: 42 });

    const damaged = new Cell();
    await damaged.ready();
    const junk = Buffer.from('not a code cache at all').toString('base64');
    const r = await damaged.result({ n: 2 }, { init: { ...init('b.handler', d), entry, codeCache: junk } });
    expect(r).toMatchObject({ ok: true, codeCache: 'rejected' });
    expect(JSON.parse(r.payload ?? '')).toEqual({ v: 4 });
  });

  it('says there is no cache for an ES module, before its code runs', async () => {
    const entry = resolveEntry(scanTree(ESM), 'index.handler', ESM);
    const check = new Cell();
    await check.ready();
    check.send({
      t: 'invoke',
      id: 'c',
      event: null,
      deadline: 0,
      warmup: true,
      init: { ...init('index.handler', ESM), entry, produceCodeCache: true },
    });
    await check.waitFor((m): m is ResultMessage => m.t === 'result' && m.id === 'c');
    expect(check.messages[1]).toEqual({ t: 'codecache', id: 'c' });
  });
});

// The one line a failed load becomes, for the shapes of failure the sandbox reports.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LoadCheck } from '../invoker/types.js';
import { checkLoads, deployWarnings, describeFailure, LoadCheckError } from './deploy-check.js';

const dir = mkdtempSync(join(tmpdir(), 'nimbus-check-unit-'));
mkdirSync(join(dir, 'src'));
writeFileSync(join(dir, 'src', 'a.js'), 'exports.handler = async () => 1;\n');
writeFileSync(join(dir, 'src', 'm.mjs'), 'export const handler = () => {\n  return 1 +;\n};\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CODE = '/var/task';
const init = (
  errorType: string,
  errorMessage: string,
  trace: string[] = [],
  exports?: string[],
): LoadCheck => ({
  ok: false,
  codeDir: CODE,
  result: {
    kind: 'init',
    error: { errorType, errorMessage, trace },
    logs: '',
    rss: 0,
    initMs: 1,
    durationMs: 1,
    ...(exports ? { exports } : {}),
  },
});
const died = (kind: 'timeout' | 'oom'): LoadCheck => ({
  ok: false,
  codeDir: CODE,
  result: {
    kind,
    error: { errorType: 'x', errorMessage: 'x', trace: [] },
    logs: '',
    rss: 0,
    initMs: undefined,
    durationMs: 1,
  },
});
const describe1 = (c: LoadCheck, handler = 'src/a.handler') =>
  describeFailure(c as Exclude<LoadCheck, { ok: true }>, handler, dir);

describe('describeFailure', () => {
  it('lists the exports when none is close to the name asked for', async () => {
    expect(
      await describe1(init('Runtime.HandlerNotFound', 'x', [], ['alpha', 'beta']), 'src/a.zzzzzzzzzz'),
    ).toBe("handler 'zzzzzzzzzz' is not exported by src/a.js; it exports 'alpha', 'beta'");
    expect(await describe1(init('Runtime.HandlerNotFound', 'x', [], []), 'src/a.main')).toBe(
      "handler 'main' is not exported by src/a.js, which exports no functions",
    );
  });

  it('finds an ES module syntax error with esbuild, as Node gives no position', async () => {
    expect(
      await describe1(
        init('Runtime.UserCodeSyntaxError', "SyntaxError: Unexpected token ';'", [
          "SyntaxError: Unexpected token ';'",
          '    at compileSourceTextModule (node:internal/modules/esm/utils:346:16)',
        ]),
        'src/m.handler',
      ),
    ).toBe("src/m.mjs:2:13: SyntaxError: Unexpected token ';'");
  });

  it('names the importer of a missing package in an ES module, and the fix for the SDK v2', async () => {
    expect(
      await describe1(
        init(
          'Runtime.ImportModuleError',
          "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'aws-sdk' imported from /var/task/src/m.mjs",
        ),
      ),
    ).toMatch(
      /^cannot find package 'aws-sdk' imported from src\/m\.mjs; the AWS SDK v2 \(aws-sdk\) is not provided/,
    );
  });

  it('says what a timeout, running out of memory or a missing secret mean for init', async () => {
    expect(await describe1(died('timeout'))).toMatch(/took longer than the function's timeout/);
    expect(await describe1(died('oom'))).toMatch(/ran out of memory/);
    expect(await describe1({ ok: false, environment: 'secret DB is not set' })).toBe(
      'its environment cannot be resolved: secret DB is not set',
    );
  });

  it('leaves out frames outside the code and in node_modules', async () => {
    const trace = [
      'Error: nope',
      '    at Object.<anonymous> (/var/task/node_modules/lib/index.js:1:7)',
      '    at file:///var/task/src/m.mjs:4:9',
    ];
    expect(await describe1(init('Error', 'nope', trace))).toBe(
      'module init threw Error: nope (src/m.mjs:4:9)',
    );
  });
});

describe('checkLoads', () => {
  const fn = (name: string, handler = 'src/a.handler') =>
    ({ name, handler, memory: 128, timeout: 3, environment: {} }) as never;

  it('loads functions that differ only by name once, and names each failure', async () => {
    let loads = 0;
    const err = await checkLoads([fn('a'), fn('b')], dir, async () => {
      loads++;
      return init('Runtime.HandlerNotFound', 'x', [], ['handler']);
    }).catch((e: unknown) => e);
    expect(loads).toBe(1);
    expect(err).toBeInstanceOf(LoadCheckError);
    expect((err as LoadCheckError).failures.map((f) => f.function)).toEqual(['a', 'b']);
  });

  it('passes when every load does, with no warnings', async () => {
    await expect(checkLoads([fn('a')], dir, async () => ({ ok: true }))).resolves.toEqual([]);
  });

  it("warns per function from the handler's shape, naming the module file and export", async () => {
    const shape = { async: false, params: 1, source: '(event) => ({ statusCode: 200 })' };
    const warnings = await checkLoads([{ ...(fn('a') as object), routes: [] } as never], dir, async () => ({
      ok: true,
      handler: shape,
    }));
    expect(warnings).toEqual([
      expect.stringMatching(/^function a: src\/a\.js's handler returns a value but is not async: /),
    ]);
  });
});

describe('deployWarnings', () => {
  it('warns about aws-sdk required outside node_modules, unless it is uploaded', async () => {
    const svc = mkdtempSync(join(tmpdir(), 'nimbus-warn-'));
    try {
      writeFileSync(join(svc, 'a.js'), "const AWS = require('aws-sdk/clients/s3');\n");
      expect((await deployWarnings(svc))[0]).toMatch(/^a\.js uses the AWS SDK v2/);
      mkdirSync(join(svc, 'node_modules', 'aws-sdk'), { recursive: true });
      writeFileSync(join(svc, 'node_modules', 'aws-sdk', 'package.json'), '{}');
      expect(await deployWarnings(svc)).toEqual([]);
    } finally {
      rmSync(svc, { recursive: true, force: true });
    }
  });
});

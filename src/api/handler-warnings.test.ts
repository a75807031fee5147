// The handler reading behind the deploy's warnings, on Function.prototype.toString of real functions: what
// Lambda's completion rules make a certain mistake warns, and everything the reading cannot be sure of does not.
/* eslint-disable @typescript-eslint/no-unused-vars */
import { describe, expect, it } from 'vitest';
import { handlerWarning } from './handler-warnings.js';

type AnyFn = (...args: never[]) => unknown;
const shapeOf = (fn: AnyFn) => ({
  async: fn.constructor.name === 'AsyncFunction',
  params: fn.length,
  source: Function.prototype.toString.call(fn),
});
const warn = (fn: AnyFn, http = true) => handlerWarning(shapeOf(fn), "a.js's handler", http);
const noop = (..._: unknown[]): void => undefined;
const work = (): Promise<number> => Promise.resolve(1);

describe('handler warnings', () => {
  it('a function that is not async and returns a plain value: the value is dropped, on any trigger', () => {
    const cases: AnyFn[] = [
      (event: unknown) => ({ statusCode: 200, body: 'ok' }),
      function handler(event: unknown) {
        if (event) return { statusCode: 404 };
        return { statusCode: 200, body: `hi ${String(event)}` };
      },
      () => 'done',
      {
        handler(event: unknown) {
          return [1, 2];
        },
      }.handler,
    ];
    for (const fn of cases) {
      expect(warn(fn, false), fn.toString()).toMatch(
        /^a\.js's handler returns a value but is not async: Lambda ignores the return value .* declare it async/,
      );
    }
  });

  it('an HTTP handler that returns nothing, async or not, and no callback', () => {
    expect(
      warn(async (event: unknown) => {
        await work();
      }),
    ).toMatch(
      /^a\.js's handler is async but never returns a value: every HTTP request it serves answers null; return the response/,
    );
    expect(
      warn(function (event: unknown, context: unknown) {
        noop(event, context);
      }),
    ).toMatch(/^a\.js's handler neither returns a value nor takes a callback: every HTTP request/);
    const method = {
      async handler(event: unknown) {
        noop(event);
        const inner = () => ({ statusCode: 200 }); // a nested function's return is its own
        noop(inner);
      },
    }.handler;
    expect(warn(method)).toMatch(/is async but never returns a value/);
  });

  it('returning nothing is fine for an event handler (no HTTP route)', () => {
    expect(
      warn(async (event: unknown) => {
        await work();
      }, false),
    ).toBeUndefined();
  });

  it('says nothing when the handler may complete some other way', () => {
    const quiet: AnyFn[] = [
      // async, and a sync function returning what may be a promise
      async (event: unknown) => ({ statusCode: 200 }),
      (event: unknown) => work(),
      (event: unknown) => new Promise((resolve) => resolve(1)),
      function (event: unknown) {
        return work().then(() => ({ statusCode: 200 }));
      },
      // callbacks, rest parameters, arguments, the legacy context methods
      (event: unknown, context: unknown, callback: (e: null, r: unknown) => void) => callback(null, {}),
      (...args: unknown[]) => noop(args),
      function () {
        // eslint-disable-next-line prefer-rest-params
        noop(arguments);
      },
      (event: unknown, context: { succeed(r: unknown): void }) => {
        context.succeed({ statusCode: 200 });
      },
      (event: unknown, context: { done(e: null, r: unknown): void }) => {
        setTimeout(() => context.done(null, 1), 1);
      },
      // a thenable object, a spread that may carry one
      () => ({ then: (resolve: (v: number) => void) => resolve(1) }),
      (event: object) => ({ ...event }),
      // meant to fail, or a placeholder
      async (event: unknown) => {
        throw new Error('not implemented');
      },
      async () => {},
      // not functions a reading can judge
      function* gen() {
        yield 1;
      },
      noop.bind(null),
      Math.max,
    ];
    for (const fn of quiet) expect(warn(fn), fn.toString()).toBeUndefined();
  });

  it('source that does not parse, or none, says nothing', () => {
    expect(
      handlerWarning({ async: false, params: 1, source: 'not ( javascript' }, 'x', true),
    ).toBeUndefined();
    expect(handlerWarning({ async: false, params: 1 }, 'x', true)).toBeUndefined();
    expect(handlerWarning({ async: false, params: 1, source: 'class A {}' }, 'x', true)).toBeUndefined();
  });
});

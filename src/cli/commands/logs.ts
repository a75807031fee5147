import { ApiError, type LogRecord } from '../../client/index.js';
import { defineCommand, type Context } from '../command.js';
import { parseSince } from '../format.js';
import { reportLine } from '../../metering/report-line.js';

const PAGE = 500;
const POLL_MS = 500;

export default defineCommand({
  name: 'logs',
  summary: "Print a function's invocation logs",
  description:
    "Prints the log of each invocation (START, the function's output, END, REPORT), oldest first.\nWith --follow, keeps printing new invocations until Ctrl+C. With --json and --follow, one JSON record per line.",
  args: [{ name: 'fn', description: 'Function name', required: true }],
  options: {
    follow: { type: 'boolean', short: 'f', description: 'Keep printing new invocations' },
    since: {
      type: 'string',
      placeholder: 'when',
      default: '10m',
      description: 'Start from 30s, 10m, 2h, 1d ago or from an ISO date',
    },
  },
  examples: ['nimbus logs hello', 'nimbus logs hello --since 2h', 'nimbus logs hello -f'],
  async run(ctx) {
    const fn = ctx.args['fn']!;
    const since = parseSince(ctx.options.since);
    const client = ctx.client();

    // Pages until a short one: the server caps each answer, and `after` continues exactly where it stopped.
    const all: LogRecord[] = [];
    let count = 0;
    let cursor: number | undefined;
    for (;;) {
      const page = await client.logs(fn, {
        since,
        limit: PAGE,
        ...(cursor !== undefined ? { after: cursor } : {}),
      });
      cursor = page.cursor;
      count += page.records.length;
      if (ctx.json && !ctx.options.follow) all.push(...page.records);
      else for (const r of page.records) emit(ctx, r);
      if (page.records.length < PAGE) break;
    }
    if (!ctx.options.follow) {
      if (ctx.json) ctx.printJson({ records: all, cursor });
      else if (count === 0) ctx.err(`No invocations of ${fn} since ${new Date(since).toISOString()}.`);
      return;
    }

    const stop = new AbortController();
    const onSignal = (): void => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let warned = false;
    try {
      while (!stop.signal.aborted) {
        await sleep(POLL_MS, stop.signal);
        if (stop.signal.aborted) break;
        try {
          // `since` stays: with no records yet the cursor is 0, which alone would replay the whole history.
          const page = await client.logs(fn, { since, after: cursor, limit: PAGE });
          cursor = page.cursor;
          for (const r of page.records) emit(ctx, r);
          warned = false;
        } catch (e) {
          // A restarting server is normal while developing: say so once and keep polling.
          if (!(e instanceof ApiError && e.code === 'Unreachable')) throw e;
          if (!warned) ctx.err(`(${e.message}; retrying)`);
          warned = true;
        }
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
});

function emit(ctx: Context, r: LogRecord): void {
  if (ctx.json) {
    ctx.out(JSON.stringify(r));
    return;
  }
  const logs = r.logs.endsWith('\n') || r.logs === '' ? r.logs : `${r.logs}\n`;
  // Records hold the function's own lines; the CloudWatch-style frame is added unless already there.
  if (logs.includes(`START RequestId: ${r.requestId}`)) {
    ctx.out(logs.replace(/\n$/, ''));
    return;
  }
  ctx.out(
    `START RequestId: ${r.requestId} Version: ${r.version}  [${new Date(r.start).toISOString()}]\n` +
      logs +
      `END RequestId: ${r.requestId}\n` +
      reportLine(r),
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

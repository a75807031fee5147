import {
  ApiError,
  type FunctionSummary,
  type InvocationSearch,
  type InvocationView,
  type NimbusClient,
} from '../../client/index.js';
import { CliError, UsageError, defineCommand, type Context } from '../command.js';
import { parseSince } from '../format.js';
import { closest } from '../suggest.js';
import { reportLine } from '../../metering/report-line.js';
import { LogPatternError, parseLogPattern } from '../../store/log-pattern.js';
import { INVOCATION_STATUSES } from '../../store/types.js';

const PAGE = 500;
const POLL_MS = 500;
const DEFAULT_SINCE = '10m';

export default defineCommand({
  name: 'logs',
  summary: 'Print invocation logs of one, several or every function',
  description:
    "Prints the log of each invocation (START, the function's output, END, REPORT), oldest first.\n" +
    'With no function named, every function of the project; with several, each line starts with its function.\n' +
    'Filters combine: --filter matches the log text (terms all required, "exact phrase", -term excluded,\n' +
    '?term any of), --status any of the statuses given (comma-separated), --request-id one request.\n' +
    'With --follow, keeps printing new matching invocations until Ctrl+C. With --json and --follow, one JSON\n' +
    'record per line.',
  args: [
    { name: 'functions', description: 'Function names (none: every function of the project)', rest: true },
  ],
  options: {
    follow: { type: 'boolean', short: 'f', description: 'Keep printing new matching invocations' },
    filter: {
      type: 'string',
      placeholder: 'pattern',
      description: 'Only logs matching: ERROR "card declined" -healthcheck ?WARN ?FATAL',
    },
    status: {
      type: 'string',
      placeholder: 'list',
      description: `Only these statuses, comma-separated: ${INVOCATION_STATUSES.join(', ')}`,
    },
    'request-id': {
      type: 'string',
      placeholder: 'id',
      description: 'Only this request (e.g. the x-nimbus-request-id of a gateway response); any age',
    },
    limit: { type: 'number', placeholder: 'n', description: 'Only the newest n matching invocations' },
    since: {
      type: 'string',
      placeholder: 'when',
      description: `From 30s, 15m, 2h, 7d ago or an ISO date (default ${DEFAULT_SINCE}; none with --request-id)`,
    },
    until: { type: 'string', placeholder: 'when', description: 'Up to 30s, 15m, 2h, 7d ago or an ISO date' },
  },
  examples: [
    'nimbus logs hello',
    'nimbus logs',
    'nimbus logs api worker --status error,timeout --since 2h',
    'nimbus logs --filter \'ERROR -healthcheck "card declined"\'',
    'nimbus logs --request-id 3f0c9a52-…',
    'nimbus logs hello -f --filter ERROR',
  ],
  async run(ctx) {
    const functions = (ctx.args['functions'] ?? '').split(/\s+/).filter((f) => f !== '');
    const o = ctx.options;
    const now = Date.now();
    const requestId = o['request-id'];
    if (requestId !== undefined && requestId.trim() === '')
      throw new UsageError('--request-id needs a value');
    const sinceText = o.since ?? (requestId !== undefined ? undefined : DEFAULT_SINCE);
    const since = sinceText !== undefined ? parseSince(sinceText, now) : undefined;
    const until = o.until !== undefined ? parseSince(o.until, now, '--until') : undefined;
    if (since !== undefined && until !== undefined && since >= until) {
      throw new UsageError('--since must be before --until', `got ${iso(since)} and ${iso(until)}`);
    }
    if (o.follow && until !== undefined) {
      throw new UsageError(
        '--follow and --until do not go together',
        'new invocations are never before --until',
      );
    }
    const statuses = (o.status ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (o.status !== undefined && statuses.length === 0) throw new UsageError('--status needs a value');
    for (const s of statuses) {
      if (!(INVOCATION_STATUSES as readonly string[]).includes(s)) {
        const guess = closest(s, [...INVOCATION_STATUSES]);
        throw new UsageError(
          `--status "${s}" is not a status`,
          `${guess ? `did you mean "${guess}"? ` : ''}use any of ${INVOCATION_STATUSES.join(', ')}`,
        );
      }
    }
    if (o.filter !== undefined) {
      try {
        parseLogPattern(o.filter);
      } catch (e) {
        if (!(e instanceof LogPatternError)) throw e;
        throw new UsageError(`--filter is not a pattern: ${e.message}`, 'see `nimbus logs --help`');
      }
    }
    const limit = o.limit;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
      throw new UsageError(`--limit must be a whole number of at least 1, not ${limit}`);
    }

    const client = ctx.client();
    const deployed = (await client.list()).functions;
    if (functions.length > 0) mustExist(deployed, functions);
    // Functions with Lambda's JSON log format get their records rendered, not the Text frame.
    const json = new Set(deployed.filter((f) => f.logging?.logFormat === 'JSON').map((f) => f.name));
    const search: InvocationSearch = {
      ...(functions.length > 0 ? { functions } : {}),
      ...(statuses.length > 0 ? { statuses } : {}),
      ...(o.filter !== undefined ? { q: o.filter } : {}),
      ...(requestId !== undefined ? { requestId } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
    };
    const prefix = functions.length !== 1;

    const backlog =
      limit !== undefined ? await newest(client, search, limit) : await oldestFirst(client, search);
    let cursor = backlog.cursor;
    if (!o.follow) {
      if (ctx.json) ctx.printJson({ records: backlog.records, cursor });
      else if (backlog.records.length === 0) ctx.err(`No invocations ${describe(functions, search)}.`);
      else for (const r of backlog.records) emit(ctx, r, prefix, json);
      return;
    }
    for (const r of backlog.records) emit(ctx, r, prefix, json);

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
          const page = await client.searchInvocations({
            ...search,
            order: 'asc',
            after: cursor,
            limit: PAGE,
          });
          cursor = page.cursor ?? cursor;
          for (const r of page.invocations) emit(ctx, r, prefix, json);
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

interface Backlog {
  records: InvocationView[];
  cursor: number;
}

/** Every match, oldest first: pages until a short one, `after` continuing exactly where the last stopped. */
async function oldestFirst(client: NimbusClient, search: InvocationSearch): Promise<Backlog> {
  const records: InvocationView[] = [];
  let cursor = 0;
  for (;;) {
    const page = await client.searchInvocations({ ...search, order: 'asc', after: cursor, limit: PAGE });
    records.push(...page.invocations);
    cursor = page.cursor ?? cursor;
    if (page.invocations.length < PAGE) return { records, cursor };
  }
}

/** The newest `limit` matches, printed oldest first; the cursor is the newest seen, for --follow. */
async function newest(client: NimbusClient, search: InvocationSearch, limit: number): Promise<Backlog> {
  const records: InvocationView[] = [];
  let before: number | undefined;
  while (records.length < limit) {
    const want = Math.min(PAGE, limit - records.length);
    const page = await client.searchInvocations({
      ...search,
      order: 'desc',
      limit: want,
      ...(before !== undefined ? { before } : {}),
    });
    records.push(...page.invocations);
    if (page.invocations.length < want || page.cursor === null) break;
    before = page.cursor;
  }
  records.reverse();
  let cursor = records.at(-1)?.seq;
  if (cursor === undefined) {
    // Nothing matched yet: follow from the newest record of any kind, not from the start of history.
    const latest = await client.searchInvocations({ order: 'desc', limit: 1 });
    cursor = latest.invocations[0]?.seq ?? 0;
  }
  return { records, cursor };
}

/** Named functions must exist: a typo would otherwise look like a quiet function. */
function mustExist(list: FunctionSummary[], functions: string[]): void {
  const deployed = list.map((f) => f.name);
  for (const f of functions) {
    if (deployed.includes(f)) continue;
    const guess = closest(f, deployed);
    throw new CliError(
      `function "${f}" not found`,
      guess ? `did you mean "${guess}"? See \`nimbus ls\`` : 'see `nimbus ls`',
    );
  }
}

function describe(functions: string[], s: InvocationSearch): string {
  const parts = [functions.length > 0 ? `of ${functions.join(', ')}` : 'of any function'];
  if (s.requestId !== undefined) parts.push(`with request id ${s.requestId}`);
  if (s.statuses) parts.push(`with status ${s.statuses.join(' or ')}`);
  if (s.q !== undefined) parts.push(`matching ${JSON.stringify(s.q)}`);
  if (typeof s.since === 'number') parts.push(`since ${iso(s.since)}`);
  if (typeof s.until === 'number') parts.push(`until ${iso(s.until)}`);
  return parts.join(' ');
}

function iso(t: number): string {
  return new Date(t).toISOString();
}

function emit(ctx: Context, r: InvocationView, prefix: boolean, json: ReadonlySet<string>): void {
  if (ctx.json) {
    ctx.out(JSON.stringify(r));
    return;
  }
  const logs = r.logs.endsWith('\n') || r.logs === '' ? r.logs : `${r.logs}\n`;
  // Records hold the function's own lines; the CloudWatch-style frame is added unless already there. JSON
  // records (Lambda's JSON log format) carry their own platform records and are rendered line by line.
  const text = isJsonLog(r, logs, json)
    ? readableJson(r, logs)
    : logs.includes(`START RequestId: ${r.requestId}`)
      ? logs.replace(/\n$/, '')
      : `START RequestId: ${r.requestId} Version: ${r.version}  [${iso(r.start)}]\n` +
        logs +
        `END RequestId: ${r.requestId}\n` +
        reportLine(r);
  ctx.out(
    prefix
      ? text
          .split('\n')
          .map((l) => `${r.functionName} | ${l}`)
          .join('\n')
      : text,
  );
}

function isJsonLog(r: InvocationView, logs: string, json: ReadonlySet<string>): boolean {
  if (r.status === 'throttled') return false;
  return json.has(r.functionName) || logs.startsWith('{"time":') || logs.startsWith('{"timestamp":');
}

/** Each JSON line as a Text-like one: platform records as START and REPORT, console records as time, id, level. */
function readableJson(r: InvocationView, logs: string): string {
  const out: string[] = [];
  for (const line of logs.replace(/\n$/, '').split('\n')) {
    if (line === '') continue;
    const rec = line.startsWith('{') ? parseObject(line) : undefined;
    if (rec === undefined) {
      out.push(line);
      continue;
    }
    const { type, time, record } = rec as { type?: unknown; time?: unknown; record?: { version?: unknown } };
    if (type === 'platform.start') {
      out.push(
        `START RequestId: ${r.requestId} Version: ${String(record?.version ?? r.version)}  [${String(time)}]`,
      );
    } else if (type === 'platform.report') {
      out.push(reportLine(r));
    } else if (typeof rec['level'] === 'string' && 'message' in rec) {
      const { timestamp, level, requestId, message, ...rest } = rec;
      const text = typeof message === 'string' ? message : JSON.stringify(message);
      const extra = Object.keys(rest).length > 0 ? `\t${JSON.stringify(rest)}` : '';
      out.push(`${String(timestamp)}\t${String(requestId)}\t${String(level)}\t${text}${extra}`);
    } else {
      out.push(line);
    }
  }
  return out.join('\n');
}

function parseObject(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
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

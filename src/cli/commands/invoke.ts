import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CliError, UsageError, defineCommand } from '../command.js';

export default defineCommand({
  name: 'invoke',
  summary: 'Invoke a function and print its result',
  description:
    'Sends an event to a function through the Lambda Invoke API and prints the returned payload on stdout.\nA function error prints the error payload and exits with status 1.',
  args: [{ name: 'fn', description: 'Function name', required: true }],
  options: {
    data: { type: 'string', short: 'd', placeholder: 'json', description: 'Event as JSON (default: {})' },
    file: {
      type: 'string',
      short: 'f',
      placeholder: 'path',
      description: 'Read the event from a JSON file ("-" for stdin)',
    },
    event: {
      type: 'string',
      short: 'e',
      placeholder: 'source',
      description:
        'Invoke with a sample event of a trigger: http, http-v1, sqs, s3, schedule, dynamodb, email',
    },
    async: { type: 'boolean', description: 'Queue the invocation (Event type) and return at once' },
    log: { type: 'boolean', short: 'l', description: "Print the end of the invocation's log on stderr" },
  },
  examples: [
    `nimbus invoke hello --data '{"name":"Ada"}'`,
    'nimbus invoke hello --file event.json --log',
    'echo {} | nimbus invoke hello -f -',
    'nimbus invoke worker --event sqs',
  ],
  async run(ctx) {
    const fn = ctx.args['fn']!;
    // The event is checked before the API is even looked up: a typo in it is the likelier mistake.
    const { data, file, event } = ctx.options;
    if ([data, file, event].filter((v) => v !== undefined).length > 1) {
      throw new UsageError('--data, --file and --event are mutually exclusive', 'pass the event one way');
    }
    let payload = '{}';
    if (event !== undefined) {
      const { generateEvent } = await import('../samples.js');
      payload = JSON.stringify(generateEvent(event));
    }
    if (data !== undefined)
      payload = checkJson(data, '--data', `quote it for the shell, e.g. --data '{"name":"Ada"}'`);
    if (file !== undefined) {
      let text: string;
      try {
        text = file === '-' ? await readStdin() : await readFile(resolve(ctx.cwd, file), 'utf8');
      } catch (e) {
        throw new UsageError(
          `cannot read --file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
          'check the path',
        );
      }
      payload = checkJson(text, `--file ${file}`, 'the event file must hold one JSON value');
    }

    const res = await ctx.client().invoke(fn, payload, { async: ctx.options.async, tail: ctx.options.log });
    if (ctx.options.log && res.logResult) ctx.err(res.logResult.replace(/\n$/, ''));
    if (ctx.json) {
      ctx.printJson({
        statusCode: res.statusCode,
        requestId: res.requestId,
        executedVersion: res.executedVersion,
        ...(res.functionError ? { functionError: res.functionError } : {}),
        payload: parseOrText(res.payload),
        ...(res.logResult !== undefined ? { logResult: res.logResult } : {}),
      });
    } else if (ctx.options.async) {
      ctx.out(`Queued ${fn} (request ${res.requestId || 'id unknown'})`);
    } else {
      ctx.out(res.payload);
    }
    // The payload was still printed above: scripts get the error object, the exit status says it failed.
    if (res.functionError) {
      const err = parseOrText(res.payload);
      const detail =
        typeof err === 'object' && err !== null && 'errorType' in err
          ? `${String((err as { errorType: unknown }).errorType)}: ${String((err as { errorMessage?: unknown }).errorMessage ?? '')}`
          : res.functionError;
      throw new CliError(
        `${fn} failed (${detail})`,
        ctx.options.log ? 'its log is above' : `add --log to see its log, or run \`nimbus logs ${fn}\``,
      );
    }
  },
});

function checkJson(text: string, what: string, hint: string): string {
  try {
    JSON.parse(text);
    return text;
  } catch (e) {
    throw new UsageError(`${what} is not valid JSON (${(e as Error).message})`, hint);
  }
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

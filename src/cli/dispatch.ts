// Parses argv against the command specs (node:util parseArgs, strict), renders --help, runs the command and
// turns every failure into exactly one stderr line and an exit code: 1 for failures, 2 for usage errors.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiError, NimbusClient, resolveClientConfig } from '../client/index.js';
import { invokedAs, withInvocation } from './invoked-as.js';
import { closest } from './suggest.js';
import {
  CliError,
  UsageError,
  type Command,
  type Context,
  type OptionSpec,
  type OptionSpecs,
} from './command.js';

export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Writes to stderr as is (no newline added): a progress line redrawn in place. Absent: no progress. */
  stderrRaw?: (text: string) => void;
  /** Whether stdout is a terminal someone watches (progress is drawn only then). */
  isTTY?: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface CliSpec {
  version: string;
  commands: Command[];
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', description: 'Machine-readable output: one JSON document on stdout' },
  help: { type: 'boolean', short: 'h', description: 'Show help' },
  project: {
    type: 'string',
    description: 'Act in this project (an admin key of "default" only; default: the key\'s own project)',
    placeholder: 'name',
  },
  'api-url': {
    type: 'string',
    description:
      'The Nimbus API to talk to (default: NIMBUS_API_URL, ./.nimbus, then the running `nimbus up`)',
    placeholder: 'url',
  },
};

/** The global options a command offers: all of them, less --json where it means nothing. */
export function globalOptionsOf(c: Command): [string, OptionSpec][] {
  return Object.entries(GLOBAL_OPTIONS).filter(([name]) => name !== 'json' || c.noJson === undefined);
}

/** Runs one CLI invocation; resolves to the process exit code. */
export async function runCli(argv: string[], spec: CliSpec, io: CliIO): Promise<number> {
  let commandName = 'nimbus';
  try {
    // Only value-less global flags may precede the command, so the first bare word is always its name.
    const first = argv.findIndex((a) => !a.startsWith('-'));
    const leading = first === -1 ? argv : argv.slice(0, first);
    for (const flag of leading) {
      if (!['--help', '-h', '--version', '-v', '--json'].includes(flag)) {
        throw new UsageError(`unknown option ${flag}`, 'run `nimbus --help` to see the commands and options');
      }
    }
    if (first === -1) {
      if (leading.includes('--version') || leading.includes('-v')) {
        io.stdout(leading.includes('--json') ? JSON.stringify({ version: spec.version }) : spec.version);
        return 0;
      }
      io.stdout(topHelp(spec));
      return 0;
    }
    const name = argv[first]!;
    // `nimbus help [command]` is `nimbus [command] --help`.
    if (name === 'help') {
      const topic = argv.slice(first + 1).find((a) => !a.startsWith('-'));
      if (topic === undefined) {
        io.stdout(topHelp(spec));
        return 0;
      }
      io.stdout(commandHelp(findCommand(spec, topic)));
      return 0;
    }
    const command = findCommand(spec, name);
    commandName = command.name;
    // `nimbus --json ls` and `nimbus ls --json` mean the same thing.
    const rest = [...leading.filter((f) => f === '--json'), ...argv.slice(first + 1)];
    if (leading.includes('--help') || leading.includes('-h')) {
      io.stdout(commandHelp(command));
      return 0;
    }
    const ctx = parseCommand(command, rest, io);
    if (!ctx) {
      io.stdout(commandHelp(command));
      return 0;
    }
    if (ctx.json && command.noJson !== undefined) {
      throw new UsageError(`--json is not available for \`nimbus ${command.name}\``, command.noJson);
    }
    try {
      await command.run(ctx);
    } catch (e) {
      throw await withFunctionSuggestion(ctx, e);
    }
    return 0;
  } catch (e) {
    return reportError(commandName, e, io);
  }
}

function findCommand(spec: CliSpec, name: string): Command {
  const command = spec.commands.find((c) => c.name === name || c.aliases?.includes(name));
  if (command) return command;
  const guess = closest(name, [...spec.commands.flatMap((c) => [c.name, ...(c.aliases ?? [])]), 'help']);
  throw new UsageError(
    `unknown command "${name}"`,
    guess
      ? `did you mean \`nimbus ${guess}\`? Run \`nimbus help\` for the list`
      : 'run `nimbus help` for the list of commands',
  );
}

/** Undefined when --help was asked for. */
function parseCommand(command: Command, argv: string[], io: CliIO): Context | undefined {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, o] of Object.entries({ ...command.options, ...GLOBAL_OPTIONS })) {
    options[name] = {
      type: o.type === 'boolean' ? 'boolean' : 'string',
      ...(o.short ? { short: o.short } : {}),
    };
  }
  let parsed: {
    values: Record<string, string | boolean | (string | boolean)[] | undefined>;
    positionals: string[];
  };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageFromParseArgs(command, e);
  }
  if (parsed.values['help'] === true) return undefined;

  const args: Record<string, string | undefined> = {};
  const pos = [...parsed.positionals];
  if (command.args.at(-1)?.rest && pos.length > command.args.length) {
    pos.splice(command.args.length - 1, pos.length, pos.slice(command.args.length - 1).join(' '));
  }
  if (pos.length > command.args.length) {
    throw new UsageError(
      `unexpected argument "${pos[command.args.length]}"`,
      `run \`nimbus ${command.name} --help\` for the usage`,
    );
  }
  for (const [i, a] of command.args.entries()) {
    const v = pos[i] ?? a.default;
    if (v === undefined && a.required) {
      throw new UsageError(
        `missing <${a.name}> (${a.description.toLowerCase()})`,
        `usage: ${usageLine(command)}`,
      );
    }
    args[a.name] = v;
  }

  const values: Record<string, string | number | boolean | undefined> = {};
  for (const [name, o] of Object.entries(command.options)) {
    const given = parsed.values[name];
    const fromEnv = o.env ? io.env[o.env] : undefined;
    let raw: string | boolean | undefined;
    // Remembered so a bad value is blamed on where it came from (the flag or the variable).
    let source = `--${name}`;
    if (given !== undefined && !Array.isArray(given)) raw = given;
    else if (fromEnv !== undefined && fromEnv !== '') {
      raw = o.type === 'boolean' ? /^(1|true|yes|on)$/i.test(fromEnv) : fromEnv;
      source = o.env!;
    } else
      raw =
        o.default === undefined ? undefined : typeof o.default === 'number' ? String(o.default) : o.default;
    if (o.type === 'boolean') values[name] = raw === true;
    else if (o.type === 'number' && raw !== undefined) {
      const n = Number(raw);
      if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n)) {
        throw new UsageError(
          `${source} must be a number (got "${String(raw)}")`,
          `for example --${name} ${String(o.default ?? 8080)}`,
        );
      }
      values[name] = n;
    } else values[name] = raw;
  }

  const json = parsed.values['json'] === true;
  const flagged = parsed.values['project'];
  const project =
    (typeof flagged === 'string' && flagged !== '' ? flagged : undefined) ??
    (io.env['NIMBUS_PROJECT'] || undefined);
  const apiUrlFlag = parsed.values['api-url'];
  const clientConfig = () =>
    resolveClientConfig(io.env, io.cwd, typeof apiUrlFlag === 'string' ? apiUrlFlag : undefined);
  return {
    command: command.name,
    args,
    options: values as Context['options'],
    json,
    project,
    env: io.env,
    cwd: io.cwd,
    out: (text) => io.stdout(text),
    err: (text) => io.stderr(text),
    progress: io.isTTY && io.stderrRaw ? io.stderrRaw : undefined,
    printJson: (value) => io.stdout(JSON.stringify(value, null, 2)),
    clientConfig,
    client: () => new NimbusClient({ ...clientConfig(), ...(project ? { project } : {}) }),
  };
}

/** parseArgs' messages are multi-sentence and mention internals; users get one short line instead. */
function usageFromParseArgs(command: Command, e: unknown): UsageError {
  const code = (e as { code?: string }).code;
  const msg = e instanceof Error ? e.message : String(e);
  const flag = /'(?:-\w, )?(--?[\w-]+)/.exec(msg)?.[1] ?? '';
  const help = `run \`nimbus ${command.name} --help\` to see the options`;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(`unknown option ${flag}`, help);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/does not take an argument/.test(msg)) return new UsageError(`${flag} does not take a value`, help);
    if (/ambiguous/.test(msg))
      return new UsageError(`the value of ${flag} starts with "-"`, `write it as ${flag}=<value>`);
    return new UsageError(`${flag} needs a value`, help);
  }
  return new UsageError(msg.split('\n')[0]!.replace(/\.$/, ''), help);
}

/**
 * A command naming a function that does not exist gets the nearest deployed name, if one is near: the one
 * extra request is made only on this failure path, and its own failure leaves the original error as it was.
 */
async function withFunctionSuggestion(ctx: Context, e: unknown): Promise<unknown> {
  const fn = ctx.args['fn'];
  if (!fn || !(e instanceof ApiError) || e.status !== 404 || !/not ?found/i.test(`${e.code} ${e.message}`))
    return e;
  try {
    const { functions } = await ctx.client().list();
    const guess = closest(
      fn,
      functions.map((f) => f.name),
    );
    if (!guess) return e;
    return new CliError(`function "${fn}" not found`, `did you mean "${guess}"? See \`nimbus ls\``);
  } catch {
    return e;
  }
}

function reportError(commandName: string, e: unknown, io: CliIO): number {
  const debug = io.env['NIMBUS_DEBUG'] === '1';
  let message: string;
  let hint: string | undefined;
  let exitCode = 1;
  if (e instanceof CliError) {
    message = e.message;
    hint = e.hint;
    exitCode = e.exitCode;
  } else if (e instanceof Error) {
    message = e.message;
    const h = (e as { hint?: unknown }).hint;
    // Errors of these kinds describe the user's situation; anything else is likely a bug worth a stack trace.
    const known = ['ApiError', 'PackageError', 'ManifestError', 'SettingsError'].includes(e.name);
    hint = typeof h === 'string' ? h : known ? undefined : 'set NIMBUS_DEBUG=1 to see the stack trace';
  } else {
    message = String(e);
  }
  io.stderr(withInvocation(formatError(commandName, message, hint), invokedAs(io.env)));
  if (debug && e instanceof Error && e.stack) io.stderr(e.stack);
  return exitCode;
}

/** `nimbus <cmd>: <what happened>. <how to fix>.` on one line. */
export function formatError(command: string, message: string, hint?: string): string {
  const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, ' ').trim();
  const what = oneLine(message).replace(/[.\s]+$/, '');
  const prefix = command === 'nimbus' ? 'nimbus' : `nimbus ${command}`;
  if (!hint) return `${prefix}: ${what}.`;
  const fix = oneLine(hint);
  const capitalized = fix.charAt(0).toUpperCase() + fix.slice(1);
  return `${prefix}: ${what}. ${capitalized}${/[.!?]$/.test(capitalized) ? '' : '.'}`;
}

function usageLine(c: Command): string {
  const args = c.args.map((a) =>
    a.required ? `<${a.name}>` : `[${a.name}${a.default ? `=${a.default}` : ''}]`,
  );
  return ['nimbus', c.name, ...args, '[options]'].join(' ');
}

function optionLabel(name: string, o: OptionSpec): string {
  const value = o.type === 'boolean' ? '' : ` <${o.placeholder ?? (o.type === 'number' ? 'n' : 'value')}>`;
  return `${o.short ? `-${o.short}, ` : '    '}--${name}${value}`;
}

export function commandHelp(c: Command): string {
  const lines = [`Usage: ${usageLine(c)}`, '', c.description ?? c.summary];
  if (c.aliases?.length) lines.push('', `Aliases: ${c.aliases.join(', ')}`);
  if (c.args.length) {
    lines.push('', 'Arguments:');
    const w = Math.max(...c.args.map((a) => a.name.length)) + 2;
    for (const a of c.args) {
      lines.push(`  ${a.name.padEnd(w)}${a.description}${a.default ? ` (default: ${a.default})` : ''}`);
    }
  }
  const all: [string, OptionSpec][] = [...Object.entries(c.options as OptionSpecs), ...globalOptionsOf(c)];
  const labels = all.map(([n, o]) => optionLabel(n, o));
  const w = Math.max(...labels.map((l) => l.length)) + 2;
  lines.push('', 'Options:');
  for (const [i, [, o]] of all.entries()) {
    const extra = [
      o.env ? `env ${o.env}` : '',
      o.default !== undefined && o.default !== false ? `default: ${String(o.default)}` : '',
    ].filter(Boolean);
    lines.push(`  ${labels[i]!.padEnd(w)}${o.description}${extra.length ? ` (${extra.join(', ')})` : ''}`);
  }
  if (c.examples?.length) lines.push('', 'Examples:', ...c.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

export function topHelp(spec: CliSpec): string {
  const w = Math.max(...spec.commands.map((c) => c.name.length)) + 2;
  return [
    `nimbus ${spec.version}: Lambda-compatible Node.js functions on your own machine`,
    '',
    'Usage: nimbus <command> [options]',
    '',
    'Commands:',
    ...spec.commands.map((c) => `  ${c.name.padEnd(w)}${c.summary}`),
    `  ${'help'.padEnd(w)}Show help for a command (also \`nimbus <command> --help\`)`,
    '',
    'Global options:',
    '  --json          Machine-readable output: one JSON document on stdout',
    '  --project NAME  Act in another project (admin keys of "default" only; also NIMBUS_PROJECT)',
    '  --api-url URL   The API to talk to (also NIMBUS_API_URL)',
    '  -h, --help      Show help (also `nimbus <command> --help`)',
    '  -v, --version   Print the version',
    '',
    'Finding the server: --api-url, then NIMBUS_API_URL or NIMBUS_DATA, then ./.nimbus, then the',
    'servers `nimbus up` recorded in $XDG_STATE_HOME/nimbus (default ~/.local/state/nimbus).',
    '',
    'Environment:',
    "  NIMBUS_API_URL, NIMBUS_API_KEY   Where the API is, and the key (a project's key, or ./.nimbus/api-key)",
    '  NIMBUS_PROJECT                   The project to act in (admin keys of "default" only)',
    '  NIMBUS_DATA                      Data folder (default ./.nimbus)',
    '  NIMBUS_REQUEST_TIMEOUT           Seconds a request may take (default 30; deploys and invokes longer)',
    '  NIMBUS_RETRIES                   Retries of GET, PUT and DELETE after a connection error (default 2)',
    '  NIMBUS_DEBUG=1                   Print stack traces with errors',
  ].join('\n');
}

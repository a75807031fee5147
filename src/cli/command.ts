// Commands are data: one object per command declares its arguments and options, and the dispatcher derives
// parsing, validation and --help from it. A command's run() sees typed option values, never raw argv.
import type { ClientConfig, NimbusClient } from '../client/index.js';

export type OptionType = 'string' | 'boolean' | 'number';

export interface OptionSpec {
  type: OptionType;
  short?: string;
  description: string;
  default?: string | number | boolean;
  /** Environment variable consulted when the flag is absent (flag > env > default). */
  env?: string;
  /** Name of the value in help, e.g. "json" for --data <json>. */
  placeholder?: string;
}

export interface ArgSpec {
  name: string;
  description: string;
  required?: boolean;
  default?: string;
  /** The last argument only: it takes every remaining word (joined by spaces), so none is "unexpected". */
  rest?: boolean;
}

export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean'
  ? boolean
  : S['type'] extends 'number'
    ? S extends { default: number }
      ? number
      : number | undefined
    : S extends { default: string }
      ? string
      : string | undefined;

export type OptionValues<O extends OptionSpecs> = { [K in keyof O]: ValueOf<O[K]> };

export interface Context<O extends OptionSpecs = OptionSpecs> {
  /** The command's name as declared (not the alias typed). */
  command: string;
  args: Record<string, string | undefined>;
  options: OptionValues<O>;
  /** --json: print exactly one JSON document on stdout. */
  json: boolean;
  /** --project (or NIMBUS_PROJECT): the project to act in, when not the key's own. */
  project: string | undefined;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** A line (or lines) of result on stdout. */
  out(text: string): void;
  /** Progress and diagnostics on stderr, so stdout stays clean for results. */
  err(text: string): void;
  /** Raw stderr for a progress line redrawn in place; present only when stdout is a terminal. */
  progress: ((text: string) => void) | undefined;
  printJson(value: unknown): void;
  /** Where the API is and its key (client/discovery.ts); throws a fixable error if none is found. */
  clientConfig(): ClientConfig;
  /** A client for that API. */
  client(): NimbusClient;
}

export interface Command<O extends OptionSpecs = OptionSpecs> {
  name: string;
  aliases?: string[];
  summary: string;
  description?: string;
  args: ArgSpec[];
  options: O;
  examples?: string[];
  /**
   * Set for a command whose output is not a result (a long-running loop, a script): why --json has no
   * meaning there and what to run instead. The flag is then refused with this as the hint, and left out of
   * the command's help and completion.
   */
  noJson?: string;
  run(ctx: Context<O>): Promise<void>;
}

export function defineCommand<const O extends OptionSpecs>(command: Command<O>): Command<O> {
  return command;
}

/** A failure the user can act on: printed as `nimbus <cmd>: <message>. <hint>` with no stack. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** Wrong flags or arguments: exit code 2. */
export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string, hint?: string) {
    super(message, hint, 2);
  }
}

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MAX_SECRET_VALUE_BYTES } from '../../config/limits.js';
import { secretNameProblem } from '../../config/secret-refs.js';
import { CliError, defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';

const ACTIONS = ['set', 'ls', 'rm'] as const;

const FROM_STDIN = 'pipe it in (`printf %s "$VALUE" | nimbus secret set NAME`) or use --file PATH';

export default defineCommand({
  name: 'secret',
  aliases: ['secrets'],
  summary: "Set, list or remove secrets for functions' environments (stored encrypted)",
  description:
    "A secret is referenced in a function's environment as ${secret:NAME} and decrypted only into its instances.\n" +
    '  nimbus secret set <name> [--file PATH]  sets a secret from stdin (or a file); never from the command line\n' +
    '  nimbus secret ls                        lists names, dates and the functions using each (never values)\n' +
    '  nimbus secret rm <name>                 removes a secret no deployed function references\n' +
    'One trailing newline of the value is dropped (what `echo` or an editor adds). Setting a secret a function\n' +
    'uses retires its idle instances, so its next invocation sees the new value.',
  args: [
    { name: 'action', description: 'set, ls or rm', required: true },
    { name: 'name', description: 'The secret name (set, rm)' },
    {
      name: 'value',
      description: 'Refused: a value on the command line stays in shell history and shows in `ps`',
      rest: true,
    },
  ],
  options: {
    file: {
      type: 'string',
      description: 'Read the value from this file instead of stdin (set)',
      placeholder: 'path',
    },
  },
  examples: [
    'printf %s "$DB_PASSWORD" | nimbus secret set db-password',
    'nimbus secret set tls/key --file ./key.pem',
    'nimbus secret ls',
    'nimbus secret rm db-password',
  ],
  async run(ctx) {
    const action = ctx.args['action']!;
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not a secret action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    // Checked before anything else, and never echoed: the value must not reach a terminal or a log.
    if (ctx.args['value'] !== undefined) {
      throw new UsageError(
        action === 'set'
          ? 'a secret value is never taken from the command line: it would stay in your shell history and be visible to other users in `ps`'
          : `nimbus secret ${action} takes at most one name`,
        action === 'set' ? FROM_STDIN : `see \`nimbus secret --help\``,
      );
    }
    if (action === 'ls') {
      if (ctx.args['name'] !== undefined) {
        throw new UsageError('nimbus secret ls takes no name', 'run `nimbus secret ls`');
      }
      const secrets = await ctx.client().secrets();
      if (ctx.json) return ctx.printJson({ secrets });
      if (secrets.length === 0) {
        ctx.out('No secrets yet. Set one with `printf %s "$VALUE" | nimbus secret set <name>`.');
        return;
      }
      ctx.out(
        table(
          ['name', 'created', 'updated', 'used by'],
          secrets.map((s) => [
            s.name,
            new Date(s.createdAt).toISOString(),
            new Date(s.updatedAt).toISOString(),
            s.usedBy.join(', ') || '-',
          ]),
        ),
      );
      return;
    }
    const name = ctx.args['name'];
    if (name === undefined) {
      throw new UsageError(`nimbus secret ${action} needs a secret name`, 'for example db-password');
    }
    const problem = secretNameProblem(name);
    if (problem) throw new UsageError(problem, 'for example db-password or app/db.password');
    if (action === 'rm') {
      const r = await ctx.client().removeSecret(name);
      if (ctx.json) return ctx.printJson(r);
      ctx.out(`Removed secret ${r.removed}.`);
      return;
    }
    const value = await readValue(ctx.options.file, ctx.cwd, name, ctx.err);
    const r = await ctx.client().setSecret(name, value);
    if (ctx.json) return ctx.printJson(r);
    const restarted =
      r.restarted.length > 0
        ? `; idle instances of ${r.restarted.join(', ')} were retired, so their next invocations use the new value`
        : '';
    ctx.out(`Secret ${r.name} ${r.created ? 'created' : 'updated'}${restarted}.`);
  },
});

/** The value from --file or stdin, without one trailing newline. */
async function readValue(
  file: string | undefined,
  cwd: string,
  name: string,
  err: (text: string) => void,
): Promise<Buffer> {
  let raw: Buffer;
  if (file !== undefined) {
    try {
      raw = readFileSync(resolve(cwd, file));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new CliError(`cannot read ${file} (${code})`, 'check the path given to --file');
    }
  } else if (process.stdin.isTTY) {
    raw = await readHidden(`Value of ${name} (not shown; Enter to finish): `, err);
  } else {
    raw = await readStdin();
  }
  const value = stripNewline(raw);
  if (value.length === 0) {
    throw new CliError(
      `the value of ${name} is empty`,
      file === undefined ? FROM_STDIN : `write the value into ${file}`,
    );
  }
  if (value.length > MAX_SECRET_VALUE_BYTES) {
    throw new CliError(
      `a secret value is at most ${MAX_SECRET_VALUE_BYTES} bytes; this one has ${value.length}`,
      'keep large files in a bucket and the key to them in a secret',
    );
  }
  return value;
}

function stripNewline(b: Buffer): Buffer {
  if (b.length > 0 && b[b.length - 1] === 0x0a) {
    return b.subarray(0, b.length > 1 && b[b.length - 2] === 0x0d ? -2 : -1);
  }
  return b;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    chunks.push(b);
    size += b.length;
    // Enough to know it is too large (with a trailing newline's slack): stop reading a runaway pipe.
    if (size > MAX_SECRET_VALUE_BYTES + 2) break;
  }
  return Buffer.concat(chunks);
}

/** One line typed at a terminal, with echo off. */
function readHidden(prompt: string, err: (text: string) => void): Promise<Buffer> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolvePromise, reject) => {
    let typed = '';
    const done = (fn: () => void): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      err('');
      fn();
    };
    const onData = (d: Buffer): void => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004')
          return done(() => resolvePromise(Buffer.from(typed)));
        if (ch === '\u0003') return done(() => reject(new CliError('cancelled', 'nothing was set')));
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}

import { userInfo } from 'node:os';
import type { CredentialView } from '../../client/index.js';
import { defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';

const ACTIONS = ['create', 'ls', 'rm'] as const;

export default defineCommand({
  name: 'credentials',
  aliases: ['credential'],
  summary: 'Issue, list or remove access keys for the AWS APIs (SigV4)',
  description:
    'Access keys sign requests to the Lambda, DynamoDB and S3 APIs with SigV4, as AWS SDKs and CLIs do.\n' +
    '  nimbus credentials create [--name N] [--tables a,b] [--buckets c,d]  issues a key; its secret is shown once\n' +
    "  nimbus credentials ls                                lists keys (yours and each function's own)\n" +
    '  nimbus credentials rm <access key id>                removes a key: it stops working at once\n' +
    'Without --tables and --buckets a key may use every table and bucket of the project; with either, only those named.',
  args: [
    { name: 'action', description: 'create, ls or rm', required: true },
    { name: 'id', description: 'The access key id (rm)' },
  ],
  options: {
    name: {
      type: 'string',
      description: 'A label for the key (default: your user name)',
      placeholder: 'name',
    },
    tables: {
      type: 'string',
      description: 'The tables it may use, comma-separated (default: every table)',
      placeholder: 'a,b',
    },
    buckets: {
      type: 'string',
      description: 'The buckets whose objects it may use, comma-separated',
      placeholder: 'c,d',
    },
  },
  examples: [
    'nimbus credentials create --name ci --tables items,orders',
    'nimbus credentials ls',
    'nimbus credentials rm NIMBEXAMPLE7Q2J4K5L6',
  ],
  async run(ctx) {
    const action = ctx.args['action']!;
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not a credentials action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    if (action === 'create') {
      const name = ctx.options.name ?? defaultName();
      const tables = list(ctx.options.tables);
      const buckets = list(ctx.options.buckets);
      const k = await ctx
        .client()
        .createCredential({ name, ...(tables ? { tables } : {}), ...(buckets ? { buckets } : {}) });
      if (ctx.json) return ctx.printJson(k);
      ctx.out(
        [
          `Access key id      ${k.accessKeyId}`,
          `Secret access key  ${k.secretAccessKey}`,
          `Name               ${k.name}`,
          `Tables             ${tablesOf(k)}`,
          `Buckets            ${bucketsOf(k)}`,
          'The secret will not be shown again: store it now (for an AWS SDK: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).',
        ].join('\n'),
      );
      return;
    }
    if (action === 'ls') {
      const credentials = await ctx.client().credentials();
      if (ctx.json) return ctx.printJson({ credentials });
      if (credentials.length === 0) {
        ctx.out('No access keys yet. Issue one with `nimbus credentials create --name <label>`.');
        return;
      }
      ctx.out(
        table(
          ['access key id', 'name', 'kind', 'tables', 'created'],
          credentials.map((c) => [
            c.accessKeyId,
            c.name,
            c.kind,
            tablesOf(c),
            new Date(c.createdAt).toISOString(),
          ]),
        ),
      );
      return;
    }
    const id = ctx.args['id'];
    if (!id)
      throw new UsageError('nimbus credentials rm needs an access key id', 'see `nimbus credentials ls`');
    const r = await ctx.client().removeCredential(id);
    if (ctx.json) return ctx.printJson(r);
    ctx.out(`Removed ${r.removed}: requests signed with it are refused from now on.`);
  },
});

function tablesOf(c: Pick<CredentialView, 'permissions'>): string {
  if (c.permissions === null) return 'every table';
  return c.permissions.tables.length === 0 ? 'none' : c.permissions.tables.join(', ');
}

function defaultName(): string {
  try {
    const user = userInfo().username;
    if (/^[A-Za-z0-9]/.test(user)) return user;
  } catch {
    // No user entry (some containers): fall through.
  }
  return 'cli';
}

function bucketsOf(c: Pick<CredentialView, 'permissions'>): string {
  if (c.permissions === null) return 'every bucket';
  const b = c.permissions.buckets ?? [];
  return b.length === 0 ? 'none' : b.join(', ');
}

/** A comma-separated option as a list; undefined when not given. */
function list(v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return v
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

// nimbus key: a project's bearer API keys, with roles. A key's text is printed once, when created or rotated;
// the server keeps only its hash. Every command acts in its key's project.
import { defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';

const ACTIONS = ['create', 'ls', 'revoke', 'rotate'] as const;
const ROLES = ['admin', 'deploy', 'invoke', 'read'];

export default defineCommand({
  name: 'key',
  aliases: ['keys'],
  summary: 'Create, list, revoke or rotate API keys of a project, with roles',
  description:
    'API keys are what the CLI, the control API and (signing with SigV4) AWS SDKs authenticate with.\n' +
    '  nimbus key create --role <role> [--name N]   creates a key; it is printed once\n' +
    "  nimbus key ls                                lists the project's keys (never their secrets)\n" +
    '  nimbus key revoke <id>                       the key stops working at once\n' +
    '  nimbus key rotate <id>                       a new secret for the key; the old one stops working\n' +
    'Roles, each including the ones after it: admin (keys, credentials, secrets, audit), deploy (deploy, remove,\n' +
    'drop tables, purge queues), invoke (invoke, send messages, replay events, write data), read.\n' +
    'Managing keys takes an admin key of the project; --project names another one (admin keys of "default").',
  args: [
    { name: 'action', description: 'create, ls, revoke or rotate', required: true },
    { name: 'id', description: 'The key id (revoke, rotate)' },
  ],
  options: {
    role: { type: 'string', description: `The role of a new key: ${ROLES.join(', ')}`, placeholder: 'role' },
    name: { type: 'string', description: 'A label for the key (default: its role)', placeholder: 'name' },
  },
  examples: [
    'nimbus key create --role deploy --name ci',
    'nimbus key create --role admin --project team-a',
    'nimbus key ls',
    'nimbus key rotate NIMKEXAMPLE7Q2J4K5L6M',
  ],
  async run(ctx) {
    const action = ctx.args['action']!;
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not a key action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    const client = ctx.client();
    if (action === 'create') {
      const role = ctx.options.role;
      if (!role || !ROLES.includes(role)) {
        throw new UsageError(
          role ? `"${role}" is not a role` : 'nimbus key create needs --role',
          `use --role with one of: ${ROLES.join(', ')}`,
        );
      }
      const k = await client.createKey(role, ctx.options.name);
      if (ctx.json) return ctx.printJson(k);
      ctx.out(
        [
          `Key     ${k.key}`,
          `Key id  ${k.id}`,
          `Role    ${k.role}`,
          'The key will not be shown again: store it now (for the CLI: NIMBUS_API_KEY=<key>).',
        ].join('\n'),
      );
      return;
    }
    if (action === 'ls') {
      const keys = await client.keys();
      if (ctx.json) return ctx.printJson({ keys });
      ctx.out(
        table(
          ['key id', 'name', 'role', 'created', 'rotated'],
          keys.map((k) => [k.id, k.name, k.role, date(k.createdAt), date(k.rotatedAt)]),
        ),
      );
      return;
    }
    const id = ctx.args['id'];
    if (!id) throw new UsageError(`nimbus key ${action} needs a key id`, 'see `nimbus key ls`');
    if (action === 'revoke') {
      const r = await client.revokeKey(id);
      if (ctx.json) return ctx.printJson(r);
      ctx.out(`Revoked ${r.revoked}: requests with it are refused from now on.`);
      return;
    }
    const k = await client.rotateKey(id);
    if (ctx.json) return ctx.printJson(k);
    ctx.out(
      [
        `Key     ${k.key}`,
        `Key id  ${k.id}`,
        `Role    ${k.role}`,
        'The old secret is refused from now on; this one will not be shown again.',
      ].join('\n'),
    );
  },
});

function date(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString();
}

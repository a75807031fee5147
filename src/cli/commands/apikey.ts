// nimbus apikey: the keys callers of the gateway send in x-api-key, issued under a usage plan of the project
// (http.usagePlans in a service's nimbus.yaml). A key's text is printed once; the server keeps only its hash.
import { defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';

const ACTIONS = ['create', 'ls', 'rm'] as const;

export default defineCommand({
  name: 'apikey',
  aliases: ['apikeys'],
  summary: "Create, list or revoke the gateway's API keys (usage plans)",
  description:
    "Routes with apiKeyRequired: true take a key of one of their service's usage plans in the x-api-key header.\n" +
    '  nimbus apikey create --plan <plan> [--name N]   issues a key under a plan; it is printed once\n' +
    "  nimbus apikey ls                                 the project's keys, their plans and this period's usage\n" +
    '  nimbus apikey rm <id>                            revokes a key: its requests get 403 from then on\n' +
    "Acts in the key's project and takes a deploy or admin key; --project names another one.",
  args: [
    { name: 'action', description: 'create, ls or rm', required: true },
    { name: 'id', description: 'The key id (rm)' },
  ],
  options: {
    plan: { type: 'string', description: 'The usage plan of a new key', placeholder: 'plan' },
    name: { type: 'string', description: 'A label for the key (default: its plan)', placeholder: 'name' },
  },
  examples: [
    'nimbus apikey create --plan free --name partner-a',
    'nimbus apikey ls',
    'nimbus apikey rm NIMGEXAMPLE7Q2J4K5L6M',
  ],
  async run(ctx) {
    const action = ctx.args['action']!;
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not an apikey action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    const client = ctx.client();
    if (action === 'create') {
      const plan = ctx.options.plan;
      if (!plan) throw new UsageError('nimbus apikey create needs --plan', 'name a plan of http.usagePlans');
      const k = await client.createGatewayKey(plan, ctx.options.name);
      if (ctx.json) return ctx.printJson(k);
      ctx.out(
        [
          `API key  ${k.key}`,
          `Key id   ${k.id}`,
          `Plan     ${k.plan}${k.quota ? ` (${k.quota.limit} requests per ${k.quota.period})` : ''}`,
          'Callers send it in the x-api-key header. It will not be shown again: store it now.',
        ].join('\n'),
      );
      return;
    }
    if (action === 'ls') {
      const keys = await client.gatewayKeys();
      if (ctx.json) return ctx.printJson({ apiKeys: keys });
      if (keys.length === 0) {
        ctx.out('No API keys yet. Issue one with `nimbus apikey create --plan <plan>`.');
        return;
      }
      ctx.out(
        table(
          ['key id', 'name', 'plan', 'throttle', 'quota used', 'created'],
          keys.map((k) => [
            k.id,
            k.name,
            k.planDeclared ? k.plan : `${k.plan} (not declared)`,
            k.throttle ? `${k.throttle.rate}/s, burst ${k.throttle.burst}` : '-',
            k.quota ? `${k.quota.used} of ${k.quota.limit} this ${k.quota.period}` : '-',
            new Date(k.createdAt).toISOString(),
          ]),
        ),
      );
      return;
    }
    const id = ctx.args['id'];
    if (!id) throw new UsageError('nimbus apikey rm needs a key id', 'see `nimbus apikey ls`');
    const r = await client.removeGatewayKey(id);
    if (ctx.json) return ctx.printJson(r);
    ctx.out(`Revoked ${r.revoked}: requests with it get 403 from now on.`);
  },
});

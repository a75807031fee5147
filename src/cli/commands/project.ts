// nimbus project: create, list and remove projects (an admin key of "default" only). A new project's first
// admin key is printed once; everything it deploys, stores and logs is apart from every other project's.
import { defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';

const ACTIONS = ['create', 'ls', 'rm'] as const;

export default defineCommand({
  name: 'project',
  aliases: ['projects'],
  summary: 'Create, list or remove projects (tenants with their own keys, functions and data)',
  description:
    'A project is a namespace: its functions, tables, buckets, queues, logs and keys are its own.\n' +
    '  nimbus project create <name>   creates it and prints its first admin key, once\n' +
    '  nimbus project ls              lists projects\n' +
    '  nimbus project rm <name>       removes an empty project and its keys\n' +
    'Only an admin key of the "default" project (the key in <data dir>/api-key) manages projects.',
  args: [
    { name: 'action', description: 'create, ls or rm', required: true },
    { name: 'name', description: 'The project name (create, rm)' },
  ],
  options: {},
  examples: ['nimbus project create team-a', 'nimbus project ls', 'nimbus project rm team-a'],
  async run(ctx) {
    const action = ctx.args['action']!;
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not a project action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    const client = ctx.client();
    if (action === 'ls') {
      const projects = await client.projects();
      if (ctx.json) return ctx.printJson({ projects });
      ctx.out(
        table(
          ['project', 'created'],
          projects.map((p) => [p.name, new Date(p.createdAt).toISOString()]),
        ),
      );
      return;
    }
    const name = ctx.args['name'];
    if (!name) throw new UsageError(`nimbus project ${action} needs a project name`, 'for example team-a');
    if (action === 'create') {
      const r = await client.createProject(name);
      if (ctx.json) return ctx.printJson(r);
      ctx.out(
        [
          `Created project ${r.project}.`,
          `Admin key  ${r.key.key}`,
          `Key id     ${r.key.id}`,
          'The key will not be shown again: store it now (NIMBUS_API_KEY=<key> makes every command act in the project).',
        ].join('\n'),
      );
      return;
    }
    const r = await client.removeProject(name);
    if (ctx.json) return ctx.printJson(r);
    ctx.out(`Removed project ${r.removed} and its keys.`);
  },
});

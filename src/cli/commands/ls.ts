import { defineCommand } from '../command.js';
import { table } from '../format.js';

export default defineCommand({
  name: 'ls',
  aliases: ['list'],
  summary: 'List deployed functions',
  args: [],
  options: {},
  async run(ctx) {
    const { functions } = await ctx.client().list();
    if (ctx.json) {
      ctx.printJson({ functions });
      return;
    }
    // An empty table looks like a failure; say what to do next instead.
    if (functions.length === 0) {
      ctx.out('No functions deployed yet. Deploy a service folder with `nimbus deploy <dir>`.');
      return;
    }
    ctx.out(
      table(
        ['name', 'version', 'memory', 'timeout', 'routes'],
        [...functions]
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
          .map((f) => [
            f.name,
            String(f.version),
            `${f.memory} MB`,
            `${f.timeout} s`,
            f.routes.join(', ') || '-',
          ]),
      ),
    );
  },
});

import { defineCommand } from '../command.js';

export default defineCommand({
  name: 'rm',
  aliases: ['remove'],
  summary: 'Remove a function and all its versions',
  args: [{ name: 'fn', description: 'Function name', required: true }],
  options: {},
  examples: ['nimbus rm hello'],
  async run(ctx) {
    const res = await ctx.client().remove(ctx.args['fn']!);
    if (ctx.json) ctx.printJson(res);
    else ctx.out(`Removed ${res.removed}`);
  },
});

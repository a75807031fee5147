import { CliError, UsageError, defineCommand } from '../command.js';
import { stageNameProblem, stagedService } from '../../config/stage-name.js';

export default defineCommand({
  name: 'rm',
  aliases: ['remove'],
  summary: 'Remove a function and all its versions, or every function of a service',
  description:
    "Removes a function and all its versions; its routes stop matching at once and its invocation records stay.\nWith --service, removes every function of that service (the service's queues, tables and buckets stay).",
  args: [{ name: 'fn', description: 'Function name (leave out with --service)' }],
  options: {
    service: { type: 'string', placeholder: 'name', description: 'Remove every function of this service' },
    stage: {
      type: 'string',
      placeholder: 'name',
      description: 'With --service: remove the copy deployed with nimbus deploy --stage <name>',
    },
  },
  examples: ['nimbus rm hello', 'nimbus rm --service todo', 'nimbus rm --service todo --stage prod'],
  async run(ctx) {
    const fn = ctx.args['fn'];
    const service =
      ctx.options.service === undefined ? undefined : stagedService(ctx.options.service, ctx.options.stage);
    if ((fn === undefined) === (service === undefined)) {
      throw new UsageError(
        fn === undefined ? 'missing <fn> or --service' : 'give either <fn> or --service, not both',
        'usage: nimbus rm <fn>, or nimbus rm --service <name>',
      );
    }
    const stage = ctx.options.stage;
    if (stage !== undefined && service === undefined) {
      throw new UsageError(
        '--stage goes with --service',
        'usage: nimbus rm --service <name> --stage <stage>',
      );
    }
    const problem = stage === undefined ? undefined : stageNameProblem(stage);
    if (problem) throw new CliError(problem);
    const client = ctx.client();
    if (fn !== undefined) {
      const res = await client.remove(fn);
      if (ctx.json) ctx.printJson(res);
      else ctx.out(`Removed ${res.removed}`);
      return;
    }
    const { functions } = await client.list();
    const names = functions
      .filter((f) => f.service === service)
      .map((f) => f.name)
      .sort();
    if (names.length === 0) {
      const services = [...new Set(functions.map((f) => f.service))].sort();
      throw new CliError(
        `no deployed function belongs to service "${service}"`,
        services.length > 0 ? `deployed services: ${services.join(', ')}` : 'nothing is deployed',
      );
    }
    // One at a time, so a failure names the function it stopped at and the ones already gone.
    const removed: string[] = [];
    for (const name of names) {
      try {
        await client.remove(name);
      } catch (e) {
        const done = removed.length > 0 ? `; removed before it: ${removed.join(', ')}` : '';
        throw new CliError(`removing ${name} of service ${service} failed: ${(e as Error).message}${done}`);
      }
      removed.push(name);
    }
    if (ctx.json) ctx.printJson({ service, removed });
    else ctx.out(`Removed service ${service}: ${removed.join(', ')}`);
  },
});

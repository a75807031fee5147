// nimbus project: create, list and remove projects, and set their quotas (an admin key of "default" only). A
// new project's first admin key is printed once; everything it deploys, stores and logs is apart from every
// other project's.
import type { ProjectQuotaView } from '../../client/index.js';
import { defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';
import { formatBytes, parseCount, parseSize } from '../quota-values.js';

const ACTIONS = ['create', 'ls', 'rm', 'quota'] as const;

export default defineCommand({
  name: 'project',
  aliases: ['projects'],
  summary: 'Create, list or remove projects (tenants with their own keys, functions and data), set quotas',
  description:
    'A project is a namespace: its functions, tables, buckets, queues, logs and keys are its own.\n' +
    '  nimbus project create <name>   creates it and prints its first admin key, once\n' +
    '  nimbus project ls              lists projects with their quotas and usage\n' +
    '  nimbus project rm <name>       removes an empty project and its keys\n' +
    '  nimbus project quota <name>    shows its quotas and usage; with --concurrency, --memory or --storage\n' +
    '                                 sets them (none or 0 clears one)\n' +
    'Concurrency and memory are per node (what the answering node runs); storage is the bytes of its\n' +
    'objects, table items and queue messages. Only an admin key of the "default" project (the key in\n' +
    "<data dir>/api-key) manages projects; a project's own keys may show its quota.",
  args: [
    { name: 'action', description: 'create, ls, rm or quota', required: true },
    { name: 'name', description: 'The project name (create, rm, quota)' },
  ],
  options: {
    concurrency: {
      type: 'string',
      description: 'quota: concurrent executions of its functions per node (none: no limit)',
      placeholder: 'n',
    },
    memory: {
      type: 'string',
      description: 'quota: MB of memory its instances may hold per node (none: no limit)',
      placeholder: 'MB',
    },
    storage: {
      type: 'string',
      description: 'quota: bytes it may store, e.g. 500MB or 2GB (none: no limit)',
      placeholder: 'size',
    },
  },
  examples: [
    'nimbus project create team-a',
    'nimbus project ls',
    'nimbus project quota team-a --concurrency 20 --memory 4096 --storage 2GB',
    'nimbus project quota team-a --storage none',
    'nimbus project rm team-a',
  ],
  async run(ctx) {
    const action = ctx.args['action']!;
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not a project action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    const { concurrency, memory, storage } = ctx.options;
    const setting = concurrency !== undefined || memory !== undefined || storage !== undefined;
    if (setting && action !== 'quota') {
      throw new UsageError(
        `--concurrency, --memory and --storage belong to nimbus project quota`,
        'for example nimbus project quota team-a --concurrency 10',
      );
    }
    // Bad values are refused before anything is sent.
    const patch: Partial<ProjectQuotaView['quota']> = {
      ...(concurrency !== undefined ? { concurrency: parseCount('concurrency', concurrency) } : {}),
      ...(memory !== undefined ? { memoryMB: parseCount('memory', memory) } : {}),
      ...(storage !== undefined ? { storageBytes: parseSize('storage', storage) } : {}),
    };
    const client = ctx.client();
    if (action === 'ls') {
      const projects = await client.projects();
      if (ctx.json) return ctx.printJson({ projects });
      ctx.out(
        table(
          ['project', 'created', 'concurrency', 'memory', 'storage'],
          projects.map((p) => [p.name, new Date(p.createdAt).toISOString(), ...usageCells(p)]),
        ),
      );
      return;
    }
    const name = ctx.args['name'];
    if (!name) throw new UsageError(`nimbus project ${action} needs a project name`, 'for example team-a');
    if (action === 'quota') {
      const r = setting ? await client.setProjectQuota(name, patch) : await client.projectQuota(name);
      if (ctx.json) return ctx.printJson(r);
      const [c, m, s] = usageCells(r);
      ctx.out(
        [
          `${setting ? 'Set the quota of' : 'Project'} ${r.project} (used of quota):`,
          `  concurrency  ${c}  (running on this node)`,
          `  memory       ${m}  (instances on this node)`,
          `  storage      ${s}`,
        ].join('\n'),
      );
      return;
    }
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

/** "used / quota" for concurrency, memory and storage; "no limit" where there is none. */
function usageCells(v: ProjectQuotaView): [string, string, string] {
  const of = (used: string, quota: string | null) => `${used} / ${quota ?? 'no limit'}`;
  const { quota: q, usage: u } = v;
  return [
    of(String(u.concurrency), q.concurrency === null ? null : String(q.concurrency)),
    of(`${u.memoryMB} MB`, q.memoryMB === null ? null : `${q.memoryMB} MB`),
    of(formatBytes(u.storageBytes), q.storageBytes === null ? null : formatBytes(q.storageBytes)),
  ];
}

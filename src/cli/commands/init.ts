import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, UsageError, defineCommand } from '../command.js';
import { closest } from '../suggest.js';
import { table } from '../format.js';

// templates/ sits at the package root, beside src/ and dist/: this file is src/cli/commands/init.ts or
// dist/cli/commands/init.js, three levels below it either way. It is not under src/, so the build never
// compiles the TypeScript template, and both `npx nimbus` in a checkout and dist/ read the same files.
const TEMPLATES = fileURLToPath(new URL('../../../templates/', import.meta.url));

/** In the order `nimbus init --list` shows them. */
export const TEMPLATE_DESCRIPTIONS: Record<string, string> = {
  'http-js': 'JavaScript HTTP API: GET /hello and POST /echo',
  'http-ts': 'TypeScript HTTP API (bundled at deploy): GET /greeting',
  schedule: 'A scheduled job that runs every hour (and on `nimbus invoke`)',
  'queue-worker': 'A queue, a worker it triggers, and POST /jobs that enqueues',
  'crud-table': 'A table-backed CRUD API for notes (DynamoDB via the provided AWS SDK)',
};

// The gateway's default address; `nimbus info` prints the real one.
const GW = 'http://localhost:8080';

/** How to call each template once deployed, printed after init. */
const NEXT_STEPS: Record<string, string[]> = {
  'http-js': [`curl '${GW}/hello?name=Ada'`, `curl -X POST ${GW}/echo -d '{"hi":1}'`],
  'http-ts': [`curl '${GW}/greeting?name=Ada'`],
  schedule: ['nimbus invoke tick'],
  'queue-worker': [`curl -X POST ${GW}/jobs -d '{"task":"resize"}'`, 'nimbus logs worker'],
  'crud-table': [
    `curl -X POST ${GW}/notes -d '{"text":"buy milk"}'`,
    `curl ${GW}/notes/<id from the answer>`,
  ],
};

/** The service name put in nimbus.yaml: the folder's name when it is a valid one, else the template's. */
function serviceName(dir: string, template: string): string {
  const name = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .slice(0, 64)
    .replace(/-+$/, '');
  return name || template;
}

function files(dir: string, base = dir): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? files(p, base) : [relative(base, p)];
    });
}

export default defineCommand({
  name: 'init',
  summary: 'Create a new service from a template (http-js, http-ts, schedule, queue-worker, crud-table)',
  description:
    'Writes a working service into <dir> (default: the current folder): nimbus.yaml, the handlers, a README\nand a test to run with `node --test`. The folder must be empty or not exist yet; nothing is overwritten.',
  args: [
    { name: 'template', description: Object.keys(TEMPLATE_DESCRIPTIONS).join(', ') },
    { name: 'dir', description: 'Folder to create the service in (default: the current folder)' },
  ],
  options: {
    list: { type: 'boolean', description: 'List the templates with what each one is' },
  },
  examples: ['nimbus init --list', 'nimbus init http-js my-api', 'nimbus init crud-table .'],
  async run(ctx) {
    const names = Object.keys(TEMPLATE_DESCRIPTIONS);
    if (ctx.options.list) {
      if (ctx.json) {
        ctx.printJson({
          templates: names.map((name) => ({ name, description: TEMPLATE_DESCRIPTIONS[name] })),
        });
      } else {
        ctx.out(
          table(
            ['template', 'what'],
            names.map((n) => [n, TEMPLATE_DESCRIPTIONS[n]!]),
          ),
        );
      }
      return;
    }
    const template = ctx.args['template'];
    if (template === undefined) {
      throw new UsageError('missing <template>', `choose one of ${names.join(', ')} (nimbus init --list)`);
    }
    if (!Object.hasOwn(TEMPLATE_DESCRIPTIONS, template)) {
      const near = closest(template, names);
      throw new UsageError(
        `unknown template "${template}"`,
        `${near ? `did you mean ${near}? ` : ''}Templates: ${names.join(', ')}`,
      );
    }
    const dir = resolve(ctx.cwd, ctx.args['dir'] ?? '.');
    if (existsSync(dir)) {
      if (!statSync(dir).isDirectory()) throw new CliError(`${dir} is a file, not a folder`, 'give a folder');
      const present = readdirSync(dir);
      if (present.length > 0) {
        throw new CliError(
          `${dir} is not empty (${present.length} entr${present.length === 1 ? 'y' : 'ies'}); nothing was written`,
          'give a new or empty folder: nimbus init ' + template + ' <dir>',
        );
      }
    }
    const src = join(TEMPLATES, template);
    const service = serviceName(dir, template);
    const outFiles = files(src);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      const why = {
        ENOTDIR: 'a part of the path is a file',
        EACCES: 'permission denied',
        EROFS: 'read-only',
      };
      const code = (e as NodeJS.ErrnoException).code ?? '';
      throw new CliError(
        `cannot create ${dir}: ${why[code as keyof typeof why] ?? code}; nothing was written`,
        'give a folder you can write to',
      );
    }
    for (const f of outFiles) {
      const target = join(dir, f);
      mkdirSync(join(target, '..'), { recursive: true });
      writeFileSync(target, readFileSync(join(src, f), 'utf8').replaceAll('__SERVICE__', service));
    }
    if (ctx.json) {
      ctx.printJson({ template, dir, service, files: outFiles });
      return;
    }
    // A path the user can type from where they are: relative below the current folder, absolute elsewhere.
    const rel = relative(ctx.cwd, dir).startsWith('..') ? dir : relative(ctx.cwd, dir);
    ctx.out(
      [
        `Created service ${service} from template ${template} in ${rel === '' ? 'the current folder' : rel}:`,
        ...outFiles.map((f) => `  ${f}`),
        '',
        'Next steps:',
        ...(rel === '' ? [] : [`  cd ${rel}`]),
        '  nimbus deploy',
        ...NEXT_STEPS[template]!.map((l) => `  ${l}`),
        '  node --test',
      ].join('\n'),
    );
  },
});

import { resolve } from 'node:path';
import { ApiError, formatBytes } from '../../client/index.js';
import { CliError, defineCommand, type Context } from '../command.js';
import { table } from '../format.js';
import type { PackageResult } from '../../build/package.js';
import { stageNameProblem } from '../../config/stage-name.js';

function printDryRun(ctx: Context, pkg: PackageResult): void {
  if (ctx.json) {
    ctx.printJson({
      service: pkg.manifest.service,
      files: pkg.listing,
      totalBytes: pkg.bytes,
      archiveBytes: pkg.archive.length,
      sha256: pkg.sha256,
    });
    return;
  }
  ctx.out(
    table(
      ['size', 'path'],
      pkg.listing.map((f) => [formatBytes(f.size), f.path]),
    ),
  );
  ctx.out('');
  ctx.out(
    `Would upload ${pkg.files} file${pkg.files === 1 ? '' : 's'}, ${formatBytes(pkg.bytes)} ` +
      `(${formatBytes(pkg.archive.length)} compressed) for ${pkg.manifest.service}; nothing was uploaded`,
  );
}

/** "Uploading 4.2 MB of 15.0 MB (28%)" on one line of stderr, redrawn at most once per percent. */
export function uploadProgress(
  write: (text: string) => void,
  done: () => void,
): (sent: number, total: number) => void {
  let shown = -1;
  return (sent, total) => {
    const pct = total === 0 ? 100 : Math.floor((sent / total) * 100);
    if (pct === shown) return;
    shown = pct;
    write(`\r\x1b[2KUploading ${formatBytes(sent)} of ${formatBytes(total)} (${pct}%)`);
    if (sent >= total) {
      write('\n');
      done();
    }
  };
}

export default defineCommand({
  name: 'deploy',
  summary: 'Bundle a service folder and deploy its functions',
  description:
    'Reads nimbus.yaml in the folder, bundles TypeScript handlers with esbuild, uploads the folder as one archive\nand prints the version each function now runs. Unchanged functions keep their version. Before the new\nversions go live, every handler is loaded in a sandbox; one that does not load fails the deploy.',
  args: [{ name: 'dir', description: 'Service folder containing nimbus.yaml', default: '.' }],
  options: {
    'no-verify': {
      type: 'boolean',
      description: 'Skip loading each handler in a sandbox before the new version goes live',
    },
    'dry-run': {
      type: 'boolean',
      description: 'List the files that would be uploaded, with their sizes, and upload nothing',
    },
    stage: {
      type: 'string',
      placeholder: 'name',
      description:
        'Deploy a separate copy of the service for this stage: names <x>-<name>, routes under /<name>',
    },
  },
  examples: [
    'nimbus deploy',
    'nimbus deploy examples/hello --json',
    'nimbus deploy --dry-run',
    'nimbus deploy --no-verify',
    'nimbus deploy --stage prod',
  ],
  async run(ctx) {
    const dryRun = ctx.options['dry-run'];
    const stage = ctx.options.stage;
    const problem = stage === undefined ? undefined : stageNameProblem(stage);
    if (problem) throw new CliError(problem);
    // Resolve the API first: a missing server should fail before a possibly long bundling step.
    const client = dryRun ? undefined : ctx.client();
    const dir = resolve(ctx.cwd, ctx.args['dir'] ?? '.');
    // Loaded on demand: esbuild, zod and yaml double the start-up time of every other command.
    const { packageService } = await import('../../build/package.js');
    const pkg = await packageService(dir, (step) => ctx.err(step), { stage });
    if (!client) return printDryRun(ctx, pkg);
    const verify = !ctx.options['no-verify'];
    // Bytes and percent, redrawn in place, only where someone watches a terminal.
    const checking = (): void => {
      if (verify) ctx.err('Checking that every handler loads…');
    };
    const progress = ctx.progress ? uploadProgress(ctx.progress, checking) : undefined;
    const step = (text: string): void => {
      ctx.err(text);
      checking();
    };
    const res = await client
      .deploy(pkg.archive, step, { verify, ...(progress ? { progress } : {}) })
      .catch((e: unknown) => {
        throw loadFailures(e, ctx.err) ?? e;
      });
    for (const w of res.warnings ?? []) ctx.err(`warning: ${w}`);
    if (ctx.json) {
      ctx.printJson({ ...res, sha256: pkg.sha256, archiveBytes: pkg.archive.length, files: pkg.files });
      return;
    }
    const changed = res.functions.filter((f) => f.changed).length;
    ctx.out(
      `Deployed ${res.service}: ${res.functions.length} function${res.functions.length === 1 ? '' : 's'}, ` +
        `${changed} changed (${pkg.files} files, ${formatBytes(pkg.archive.length)})`,
    );
    ctx.out('');
    ctx.out(
      table(
        ['function', 'version', 'status', 'routes'],
        res.functions.map((f) => [
          f.name,
          String(f.version),
          f.changed ? 'updated' : 'unchanged',
          f.routes.join(', ') || '-',
        ]),
      ),
    );
    if (res.gatewayUrl && res.functions.some((f) => f.routes.length > 0)) {
      ctx.out(`\nRoutes served at ${res.gatewayUrl}`);
    }
    const q = res.queues;
    if (q && q.created.length + q.updated.length + q.unchanged.length > 0) {
      const parts = [
        ...q.created.map((n) => `${n} (created)`),
        ...q.updated.map((n) => `${n} (updated)`),
        ...q.unchanged.map((n) => n),
      ];
      ctx.out(`\nQueues: ${parts.join(', ')}`);
    }
    const tb = res.tables;
    if (tb && tb.created.length + tb.updated.length + tb.unchanged.length > 0) {
      const parts = [
        ...tb.created.map((n) => `${n} (created)`),
        ...tb.updated.map((n) => `${n} (updated)`),
        ...tb.unchanged,
      ];
      ctx.out(`\nTables: ${parts.join(', ')}`);
    }
    const bk = res.buckets;
    if (bk && bk.created.length + bk.unchanged.length > 0) {
      ctx.out(`\nBuckets: ${[...bk.created.map((n) => `${n} (created)`), ...bk.unchanged].join(', ')}`);
    }
    if (res.removed.length) ctx.out(`\nRemoved (no longer in nimbus.yaml): ${res.removed.join(', ')}`);
    if (q?.removed.length)
      ctx.out(`\nRemoved queues (no longer in nimbus.yaml, messages deleted): ${q.removed.join(', ')}`);
  },
});

/** A deploy refused because handlers did not load: one line per function, then what to do. */
function loadFailures(e: unknown, err: (text: string) => void): CliError | undefined {
  if (!(e instanceof ApiError) || e.code !== 'HandlerLoadFailed') return undefined;
  const failures = e.details?.['failures'];
  if (!Array.isArray(failures)) return undefined;
  for (const f of failures as { function?: unknown; message?: unknown }[]) {
    err(`nimbus deploy: function ${String(f.function)}: ${String(f.message)}`);
  }
  const n = failures.length;
  return new CliError(
    `${n === 1 ? '1 function' : `${n} functions`} failed to load in a sandbox; nothing was deployed`,
    'fix the code and deploy again, or skip the check with --no-verify',
  );
}

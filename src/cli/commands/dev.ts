import { readFileSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';
import { ApiError, NimbusClient, type ClientConfig, type DeployResponse } from '../../client/index.js';
import { CliError, defineCommand, type Context } from '../command.js';
import { stageNameProblem } from '../../config/stage-name.js';
import { loadDevEnv, envFiles, type DevEnv } from '../dev-env.js';
import { startDevServer, type DevServer } from '../dev-server.js';
import type { Fingerprints } from '../../build/fingerprint.js';

/** Saves that arrive this close together (an editor writing a file and its backup) are one reload. */
const DEBOUNCE_MS = 60;

export default defineCommand({
  name: 'dev',
  summary: 'Deploy a service folder, then redeploy the functions a save changes',
  description:
    'Uses the running Nimbus (found as every command finds it) or starts one, deploys the folder, and watches\nit: on every save the functions whose code or config changed are redeployed, the others keep their warm\ninstances. An error is shown with its file and line, and the last good version keeps serving.\n.env, .env.local (and .env.<stage> with --stage) fill ${env:NAME} in nimbus.yaml; they are never uploaded.\nCtrl+C stops watching, and stops the server if dev started it.',
  args: [{ name: 'dir', description: 'Service folder containing nimbus.yaml', default: '.' }],
  noJson:
    'dev runs until stopped and prints what each save reloads; for a machine-readable result, run `nimbus deploy --json`, and `nimbus logs --follow --json` for invocations',
  options: {
    stage: {
      type: 'string',
      placeholder: 'name',
      description: 'Develop a separate copy of the service: names <x>-<name>, routes under /<name>',
    },
    inspect: {
      type: 'string',
      placeholder: 'function',
      description: "Open a Node inspector on the function's instance (127.0.0.1; refused in production mode)",
    },
    'inspect-port': {
      type: 'number',
      description: 'Port of the inspector on 127.0.0.1 (default 9229, 0 picks a free one)',
    },
    port: { type: 'number', short: 'p', description: 'Gateway port of a server dev starts (default 8080)' },
    'api-port': { type: 'number', description: 'API port of a server dev starts (default 8081)' },
    data: { type: 'string', placeholder: 'dir', description: 'Data folder of a server dev starts' },
  },
  examples: [
    'nimbus dev',
    'nimbus dev examples/hello',
    'nimbus dev --inspect api',
    'nimbus dev --stage test',
  ],
  async run(ctx) {
    const stage = ctx.options.stage;
    const problem = stage === undefined ? undefined : stageNameProblem(stage);
    if (problem) throw new CliError(problem);
    const inspect = ctx.options.inspect;
    if (inspect !== undefined && ctx.env['NODE_ENV'] === 'production') {
      throw new CliError(
        '--inspect is refused in production mode (NODE_ENV=production): a debugger runs any code in the function',
        'debug on a development machine, without NODE_ENV=production',
      );
    }
    const dir = resolve(ctx.cwd, ctx.args['dir'] ?? '.');
    const { packageService } = await import('../../build/package.js');
    const devEnv = loadDevEnv(dir, stage, ctx.env);
    // The manifest is read before any server starts: a folder without one fails at once.
    await packageService(dir, undefined, { stage, env: devEnv.env });

    const { config, server } = await findOrStartServer(ctx);
    const client = new NimbusClient({ ...config, ...(ctx.project ? { project: ctx.project } : {}) });
    const loop = new DevLoop(ctx, client, dir, stage, devEnv);
    const stopped = new Promise<string>((done) => {
      const onSignal = (signal: NodeJS.Signals): void => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        done(signal);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      void server?.exited.then(() => done('server exit'));
    });
    let inspector: Inspecting | undefined;
    try {
      await loop.reload([], true);
      if (inspect !== undefined) inspector = await startInspecting(ctx, client, inspect);
      await loop.watch();
      ctx.out(`Watching ${displayDir(ctx.cwd, dir)} for changes. Press Ctrl+C to stop.`);
      const why = await stopped;
      if (why === 'server exit') throw new CliError('the server dev started has stopped');
      ctx.err(`Stopping (${why})…`);
    } finally {
      await inspector?.stop();
      await loop.close();
      await server?.stop();
    }
  },
});

/** The running server every command would use, or a new `nimbus up` when there is none. */
async function findOrStartServer(ctx: Context): Promise<{ config: ClientConfig; server?: DevServer }> {
  try {
    const config = ctx.clientConfig();
    const client = new NimbusClient(config);
    await client.health();
    ctx.out(`Using the Nimbus at ${config.apiUrl} (found in ${config.foundIn ?? 'the environment'})`);
    return { config };
  } catch (e) {
    if (!(e instanceof ApiError) || !['NotConfigured', 'StaleServer'].includes(e.code)) throw e;
  }
  const upArgs: string[] = [];
  if (ctx.options['port'] !== undefined) upArgs.push('--port', String(ctx.options['port']));
  if (ctx.options['api-port'] !== undefined) upArgs.push('--api-port', String(ctx.options['api-port']));
  if (typeof ctx.options['data'] === 'string') upArgs.push('--data', resolve(ctx.cwd, ctx.options['data']));
  // Dev mode is what lets --inspect open a debugger; never in production.
  const env = { ...ctx.env, ...(ctx.env['NODE_ENV'] === 'production' ? {} : { NIMBUS_DEV: '1' }) };
  ctx.err('Starting Nimbus…');
  const server = await startDevServer({
    cwd: ctx.cwd,
    env,
    upArgs,
    onOutput: (text) => process.stderr.write(text),
  });
  ctx.out(`Started Nimbus: gateway ${server.gatewayUrl}, API ${server.apiUrl} (${server.sandboxLevel})`);
  const apiKey = ctx.env['NIMBUS_API_KEY']?.trim() || readFileSync(server.keyFile, 'utf8').trim();
  return { config: { apiUrl: server.apiUrl, apiKey, foundIn: 'nimbus dev' }, server };
}

interface Inspecting {
  stop(): Promise<void>;
}

/** How often the session's lease (30 s on the server) is renewed, and the inspector's targets polled. */
const RENEW_MS = 10_000;
const POLL_MS = 1_000;

/**
 * Opens the function's inspector, prints where to attach, renews the lease while dev runs and prints each
 * new instance's DevTools URL as it appears (Node's /json/list through the server's port).
 */
async function startInspecting(ctx: Context, client: NimbusClient, name: string): Promise<Inspecting> {
  const port = ctx.options['inspect-port'];
  const s = await client.inspect(name, typeof port === 'number' ? port : undefined);
  ctx.out(
    `Inspector for ${s.function} on ${s.address} (127.0.0.1 only; the function's timeout is off while a debugger is attached)`,
  );
  ctx.out(
    `  Chrome: chrome://inspect, Configure… ${s.address}; VS Code: "request": "attach", "port": ${s.port}`,
  );
  ctx.out('  The first request to the function starts its instance; then attach.');
  const seen = new Set<string>();
  const poll = async (): Promise<void> => {
    try {
      const res = await fetch(`http://${s.address}/json/list`, { signal: AbortSignal.timeout(2000) });
      const targets = (await res.json()) as {
        id?: string;
        devtoolsFrontendUrl?: string;
        webSocketDebuggerUrl?: string;
      }[];
      for (const t of targets) {
        if (!t.id || seen.has(t.id)) continue;
        seen.add(t.id);
        ctx.out(
          `[${clock()}] Debugger ready for ${name}: ${t.devtoolsFrontendUrl ?? t.webSocketDebuggerUrl ?? ''}`,
        );
      }
    } catch {
      // The server is busy or stopping: the next poll tells.
    }
  };
  const poller = setInterval(() => void poll(), POLL_MS);
  const renew = setInterval(() => {
    client
      .inspect(name, s.port)
      .catch((e: unknown) =>
        ctx.err(`warning: the inspector could not be renewed (${(e as Error).message})`),
      );
  }, RENEW_MS);
  return {
    async stop() {
      clearInterval(poller);
      clearInterval(renew);
      await client.stopInspect(name).catch(() => undefined);
    },
  };
}

function displayDir(cwd: string, dir: string): string {
  const rel = relative(cwd, dir);
  return rel === '' ? '.' : rel.startsWith('..') ? dir : `.${sep}${rel}`;
}

function clock(): string {
  return new Date().toTimeString().slice(0, 8);
}

/** One service folder: packaged and deployed on start and after every batch of saves, one at a time. */
class DevLoop {
  /** Per function, the digest and version it was last deployed with. */
  private deployed: Fingerprints = new Map();
  private versions = new Map<string, number>();
  private lastSha = '';
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private watcher: { close(): Promise<void> } | undefined;
  private firstChangeAt = 0;

  constructor(
    private readonly ctx: Context,
    private readonly client: NimbusClient,
    private readonly dir: string,
    private readonly stage: string | undefined,
    private devEnv: DevEnv,
  ) {
    if (devEnv.loaded.length > 0) this.envLine();
  }

  private envLine(): void {
    const n = this.devEnv.names.length;
    this.ctx.out(
      `Loaded ${this.devEnv.loaded.join(', ')} (${n} variable${n === 1 ? '' : 's'} for \${env:...}; never uploaded)`,
    );
  }

  async watch(): Promise<void> {
    const { watch } = await import('chokidar');
    const { ignoreRules } = await import('../../build/package.js');
    const rules = ignoreRules(this.dir);
    const envNames = new Set(envFiles(this.stage));
    const watcher = watch(this.dir, {
      ignoreInitial: true,
      ignored: (path, stats) => {
        const rel = relative(this.dir, path).split(sep).join('/');
        if (rel === '') return false;
        if (rel.startsWith('..')) return true;
        if (envNames.has(rel)) return false;
        // node_modules is not watched (tens of thousands of folders); its changes count at the next save.
        if (rel === 'node_modules' || rel.startsWith('node_modules/')) return true;
        if (rel === '.nimbusignore' || rel === 'nimbus.yaml') return false;
        return rules.ignores(stats?.isDirectory() ? `${rel}/` : rel);
      },
    });
    const onEvent = (path: string): void => this.changed(relative(this.dir, path).split(sep).join('/'));
    watcher.on('add', onEvent).on('change', onEvent).on('unlink', onEvent);
    await new Promise<void>((r) => watcher.once('ready', () => r()));
    this.watcher = watcher;
  }

  private changed(rel: string): void {
    if (this.pending.size === 0 && !this.timer) this.firstChangeAt = performance.now();
    this.pending.add(rel);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.next();
    }, DEBOUNCE_MS);
  }

  /** Runs the pending reload after the one in progress, never two at once. */
  private async next(): Promise<void> {
    if (this.running) return;
    while (this.pending.size > 0) {
      const paths = [...this.pending].sort();
      this.pending.clear();
      this.running = this.reload(paths, false);
      await this.running;
      this.running = undefined;
    }
  }

  async reload(paths: string[], first: boolean): Promise<void> {
    const started = first ? performance.now() : this.firstChangeAt;
    const ctx = this.ctx;
    if (paths.length > 0) ctx.out(`[${clock()}] ${describePaths(paths)} changed`);
    const envNames = new Set(envFiles(this.stage));
    if (paths.some((p) => envNames.has(p))) {
      this.devEnv = loadDevEnv(this.dir, this.stage, this.ctx.env);
      this.envLine();
    }
    const { packageService } = await import('../../build/package.js');
    const { fingerprintFunctions } = await import('../../build/fingerprint.js');
    try {
      const pkg = await packageService(this.dir, undefined, { stage: this.stage, env: this.devEnv.env });
      if (!first && pkg.sha256 === this.lastSha) {
        ctx.out(`[${clock()}] nothing to reload: the packaged service is unchanged`);
        return;
      }
      const prints = await fingerprintFunctions(this.dir, pkg);
      const keep: Record<string, number> = {};
      for (const f of pkg.manifest.functions) {
        const v = this.versions.get(f.name);
        if (v !== undefined && this.deployed.get(f.name) === prints.get(f.name)) keep[f.name] = v;
      }
      const res = await this.client.deploy(pkg.archive, undefined, { verify: true, keep });
      this.lastSha = pkg.sha256;
      this.deployed = prints;
      this.versions = new Map(res.functions.map((f) => [f.name, f.version]));
      for (const w of res.warnings ?? []) ctx.err(`warning: ${w}`);
      const ms = Math.round(performance.now() - started);
      if (first) this.printDeployed(res, ms);
      else this.printReloaded(res, ms);
    } catch (e) {
      this.printFailure(e);
    }
  }

  private printDeployed(res: DeployResponse, ms: number): void {
    const ctx = this.ctx;
    ctx.out(`Deployed ${res.service} in ${ms} ms:`);
    for (const f of res.functions) {
      const routes = f.routes.length > 0 ? `  ${f.routes.join(', ')}` : '';
      ctx.out(`  ${f.name} v${f.version}${routes}`);
    }
    if (res.gatewayUrl && res.functions.some((f) => f.routes.length > 0))
      ctx.out(`Routes served at ${res.gatewayUrl}`);
  }

  private printReloaded(res: DeployResponse, ms: number): void {
    const changed = res.functions.filter((f) => f.changed);
    const kept = res.functions.filter((f) => !f.changed);
    const what =
      changed.length === 0
        ? 'no function changed (service settings applied)'
        : `reloaded ${changed.map((f) => `${f.name} (v${f.version})`).join(', ')}`;
    const rest = kept.length > 0 ? `; ${kept.map((f) => f.name).join(', ')} kept warm` : '';
    const removed = res.removed.length > 0 ? `; removed ${res.removed.join(', ')}` : '';
    this.ctx.out(`[${clock()}] ✓ ${what} in ${ms} ms${rest}${removed}`);
  }

  /** An error inline, with the file and line the bundler or the load check named; nothing was deployed. */
  private printFailure(e: unknown): void {
    const ctx = this.ctx;
    const serving =
      this.versions.size > 0
        ? `still serving ${[...this.versions].map(([n, v]) => `${n} v${v}`).join(', ')}`
        : 'nothing is deployed yet';
    if (e instanceof ApiError && e.code === 'HandlerLoadFailed' && Array.isArray(e.details?.['failures'])) {
      for (const f of e.details['failures'] as { function?: unknown; message?: unknown }[]) {
        ctx.out(`[${clock()}] ✗ ${String(f.function)}: ${String(f.message)}`);
      }
    } else {
      const hint = (e as { hint?: unknown }).hint;
      const message = e instanceof Error ? e.message : String(e);
      ctx.out(`[${clock()}] ✗ ${message}${typeof hint === 'string' ? ` (${hint})` : ''}`);
    }
    ctx.out(`  ${serving}; fix it and save again`);
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.pending.clear();
    await this.watcher?.close();
    await this.running;
  }
}

function describePaths(paths: string[]): string {
  return paths.length <= 3
    ? paths.join(', ')
    : `${paths.slice(0, 3).join(', ')} and ${paths.length - 3} more`;
}

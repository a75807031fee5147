import { existsSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { CliError, defineCommand } from '../command.js';
import { PACKAGE_ROOT } from '../format.js';
import {
  DATA_DIR_RECORD,
  removeRecord,
  userRecordPath,
  writeRecord,
  type ServerRecord,
} from '../../datadir/server-record.js';

/** How often `nimbus up` under npm checks that its parent (npm's shell) is still there. */
const ORPHAN_POLL_MS = 500;

export default defineCommand({
  name: 'up',
  summary: 'Start Nimbus (gateway and API) in the foreground',
  description:
    'Starts the HTTP gateway and the control/Lambda API, prints where they listen, and runs until Ctrl+C.\nSettings come from the flags, then the NIMBUS_* environment, then the defaults.',
  args: [],
  // No defaults or env here on purpose: the server resolves flag > env > default itself and names the source
  // of a bad value; the CLI passes on only what was typed.
  options: {
    host: {
      type: 'string',
      placeholder: 'addr',
      description: 'Gateway address (env NIMBUS_HOST, default 127.0.0.1)',
    },
    port: {
      type: 'number',
      short: 'p',
      description: 'Gateway port, 0 picks a free one (env NIMBUS_PORT, default 8080)',
    },
    'gateway-domain': {
      type: 'string',
      placeholder: 'name',
      description:
        "Project p's routes are served on the host p.<name> (env NIMBUS_GATEWAY_DOMAIN, default localhost)",
    },
    'api-port': { type: 'number', description: 'API port (env NIMBUS_API_PORT, default 8081)' },
    data: {
      type: 'string',
      placeholder: 'dir',
      description: 'Data folder: database, code, API key (env NIMBUS_DATA, default ./.nimbus)',
    },
    'smtp-port': {
      type: 'number',
      description: 'SMTP port for e-mail events, 0 picks a free one (env NIMBUS_SMTP_PORT, default 2525)',
    },
    store: {
      type: 'string',
      placeholder: 'url',
      description:
        'State: "sqlite" in the data folder, or a postgresql:// URL (env NIMBUS_STORE, default sqlite)',
    },
    'tls-cert': {
      type: 'string',
      placeholder: 'file',
      description: 'PEM certificate: gateway and API serve HTTPS (needs --tls-key; env NIMBUS_TLS_CERT)',
    },
    'tls-key': {
      type: 'string',
      placeholder: 'file',
      description: 'PEM private key for --tls-cert (env NIMBUS_TLS_KEY)',
    },
    examples: {
      type: 'boolean',
      env: 'NIMBUS_EXAMPLES',
      description: 'Deploy the bundled examples at start',
    },
  },
  examples: ['nimbus up', 'nimbus up --port 3000 --examples', 'NIMBUS_DATA=/var/lib/nimbus nimbus up --json'],
  async run(ctx) {
    const deployDirs = ctx.options.examples ? findExamples() : [];
    if (ctx.options.examples && deployDirs.length === 0) {
      ctx.err(`(no examples found in ${join(PACKAGE_ROOT, 'examples')})`);
    }
    const { startNimbus } = await import('../../server.js');
    const running = await startNimbus({
      ...(ctx.options.host !== undefined ? { host: ctx.options.host } : {}),
      ...(ctx.options.port !== undefined ? { port: ctx.options.port } : {}),
      ...(ctx.options['api-port'] !== undefined ? { apiPort: ctx.options['api-port'] } : {}),
      ...(ctx.options['gateway-domain'] !== undefined
        ? { gatewayDomain: ctx.options['gateway-domain'] }
        : {}),
      ...(ctx.options.data !== undefined ? { dataDir: resolve(ctx.cwd, ctx.options.data) } : {}),
      ...(ctx.options.store !== undefined ? { store: ctx.options.store } : {}),
      ...(ctx.options['smtp-port'] !== undefined ? { smtpPort: ctx.options['smtp-port'] } : {}),
      ...(ctx.options['tls-cert'] !== undefined
        ? { tlsCert: resolve(ctx.cwd, ctx.options['tls-cert']) }
        : {}),
      ...(ctx.options['tls-key'] !== undefined ? { tlsKey: resolve(ctx.cwd, ctx.options['tls-key']) } : {}),
      deployDirs,
    }).catch((e: unknown) => {
      // A busy port or data dir, or an unreachable database, is the user's to fix, and the server's message
      // already says how: no debug hint.
      const fixable = (e as { userFacing?: boolean; code?: string }) ?? {};
      if (e instanceof Error && (fixable.userFacing || fixable.code === 'DataDirInUse')) {
        throw new CliError(e.message);
      }
      if (e instanceof Error && /already in use/.test(e.message)) throw new CliError(e.message);
      throw e;
    });

    // Where later commands find this server, from this folder or any other (client/discovery.ts).
    const record: ServerRecord = {
      dataDir: running.dataDir,
      gatewayUrl: running.gatewayUrl,
      apiUrl: running.apiUrl,
      keyFile: running.keyFile,
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      cwd: ctx.cwd,
    };
    const recordFiles = [join(running.dataDir, DATA_DIR_RECORD), userRecordPath(ctx.env, running.dataDir)];
    const forget = (): void => recordFiles.forEach((f) => removeRecord(f));
    try {
      for (const f of recordFiles) writeRecord(f, record);
    } catch (e) {
      // Only discovery from other folders suffers: say so, and keep serving.
      ctx.err(`warning: cannot record this server for other commands (${(e as Error).message})`);
    }

    // The handlers come before the banner: whoever reads it may send SIGTERM at once (a supervisor, a test).
    const stopped = new Promise<void>((done) => {
      let stopping = false;
      const onSignal = (signal: NodeJS.Signals): void => {
        if (stopping) {
          // A second Ctrl+C means "now": skip the graceful drain.
          ctx.err('Stopping immediately.');
          forget();
          process.exit(130);
        }
        stopping = true;
        ctx.err(`Stopping (${signal}): finishing running invocations…`);
        running.stop().then(
          () => {
            forget();
            done();
          },
          (e: unknown) => {
            ctx.err(`nimbus up: stopping failed: ${e instanceof Error ? e.message : String(e)}.`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      // npx and npm scripts run us through `sh -c`, and sh dies of the SIGTERM npm passes on without handing
      // it to us: under npm, our parent going away is the stop signal. (Not otherwise: `nimbus up &` from a
      // shell that then exits must keep running.) `npm start` execs node directly, so it gets the signal.
      if (ctx.env['npm_lifecycle_event']) {
        const parent = process.ppid;
        const watch = setInterval(() => {
          if (process.ppid !== parent) {
            clearInterval(watch);
            if (!stopping) onSignal('SIGTERM');
          }
        }, ORPHAN_POLL_MS);
        watch.unref();
      }
    });

    const info = {
      gatewayUrl: running.gatewayUrl,
      apiUrl: running.apiUrl,
      keyFile: running.keyFile,
      sandboxLevel: running.sandboxLevel,
      store: running.store,
      nodeId: running.nodeId,
      smtp: running.smtp(),
      deployed: running.deployed,
    };
    const api = new URL(info.apiUrl);
    if (api.protocol === 'http:' && !['127.0.0.1', '[::1]', 'localhost'].includes(api.hostname)) {
      ctx.err(
        `warning: the API listens on ${api.hostname} beyond loopback without TLS; API keys cross the network in clear (pass --tls-cert and --tls-key)`,
      );
    }
    if (ctx.json) {
      ctx.out(JSON.stringify(info));
    } else {
      ctx.out(
        [
          'Nimbus is up',
          `  Gateway   ${info.gatewayUrl}`,
          `  API       ${info.apiUrl}`,
          `  Console   ${info.apiUrl}/console/`,
          `  API key   ${info.keyFile}`,
          `  Sandbox   ${info.sandboxLevel}`,
          `  Store     ${info.store}`,
          ...(info.smtp ? [`  SMTP      ${info.smtp}`] : []),
          ...info.deployed.map((d) => `  Deployed  ${d.service}: ${d.functions.join(', ')}`),
          'Press Ctrl+C to stop.',
        ].join('\n'),
      );
    }

    await stopped;
    // Whatever handle a subsystem forgot to unref must not keep a stopped server alive.
    process.exit(0);
  },
});

/** examples/* folders with a nimbus.yaml, relative to the Nimbus package (not the current folder). */
function findExamples(): string[] {
  const root = join(PACKAGE_ROOT, 'examples');
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'nimbus.yaml')))
    .map((d) => join(root, d.name))
    .sort();
}

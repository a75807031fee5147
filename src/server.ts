// The one assembly point: resolve settings, choose backends, wire everything, start and stop. No other module
// picks an implementation.
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { resolveSettings, type Settings, type SettingsInput } from './config/settings.js';
import { createApiServer } from './api/server.js';
import { Deployer } from './api/deploy.js';
import { AsyncEvents } from './events/async.js';
import { createGateway } from './gateway/server.js';
import { RouteConflictError, Router } from './gateway/router.js';
import { CodeCache } from './invoker/code-cache.js';
import { DefaultInvoker } from './invoker/invoker.js';
import { FunctionRegistry } from './invoker/registry.js';
import { detectSandbox, releaseCgroupParent } from './sandbox/detect.js';
import { StemCellPool } from './sandbox/pool.js';
import { FixedKeepAlive, type KeepAlivePolicy } from './scaler/policy.js';
import { HybridHistogramPolicy } from './scaler/hybrid.js';
import { openSqliteStore } from './store/sqlite/index.js';
import { packageService } from './build/package.js';

export interface StartOptions extends Partial<SettingsInput> {
  /** Service folders (each with a nimbus.yaml) to deploy at start, e.g. the examples. */
  deployDirs?: string[];
  /** Settings already resolved by the caller (the CLI); otherwise they come from the other fields and env. */
  settings?: Settings;
  logger?: Logger;
}

export interface RunningNimbus {
  gatewayUrl: string;
  apiUrl: string;
  keyFile: string;
  apiKey: string;
  dataDir: string;
  sandboxLevel: string;
  deployed: { service: string; functions: string[] }[];
  stop(): Promise<void>;
}

export async function startNimbus(opts: StartOptions = {}): Promise<RunningNimbus> {
  const { deployDirs = [], logger: givenLogger, settings: given, ...flags } = opts;
  const settings = given ?? resolveSettings(flags);
  const log = givenLogger ?? pino({ level: settings.logLevel }, pino.destination(2));
  const dataDir = resolve(settings.dataDir);

  // The data dir holds the key and the database: others may traverse it (sandboxes are linked below it) but
  // not list it, and every secret in it is 0600.
  mkdirSync(dataDir, { recursive: true, mode: 0o711 });
  chmodSync(dataDir, 0o711);
  const keyFile = join(dataDir, 'api-key');
  if (!existsSync(keyFile))
    writeFileSync(keyFile, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
  chmodSync(keyFile, 0o600);
  const apiKey = readFileSync(keyFile, 'utf8').trim();

  const caps = detectSandbox({ disableBwrap: settings.disableBwrap, disableCgroup: settings.disableCgroup });
  if (settings.requireBwrap && !caps.bwrap) {
    throw new Error(
      'bubblewrap is required (NIMBUS_REQUIRE_BWRAP) but bwrap is missing or does not work here',
    );
  }
  const { sandboxRoot, runtimeFile } = prepareSandboxRoot(dataDir, caps.uid !== null, (msg) => log.warn(msg));

  // Everything opened while starting is undone if a later step fails (a busy port, a bad example), so a
  // failed start leaves no listener, process or open database behind.
  const undo: (() => unknown)[] = [];
  try {
    const store = openSqliteStore({ path: join(dataDir, 'nimbus.db') });
    undo.push(() => store.close());
    const registry = new FunctionRegistry(store);
    await registry.load();
    const code = new CodeCache(join(dataDir, 'code'), store);
    const pool = new StemCellPool({
      env: { caps, sandboxRoot, runtimeFile },
      target: settings.stemCells,
      onError: (err) => log.error({ err }, 'stem cell failed to start'),
    });
    undo.push(() => pool.close());
    for (const f of registry.all()) pool.ensure(f.config.memory);
    const fixed = new FixedKeepAlive(settings.keepAliveSec * 1000);
    const policies: Record<string, KeepAlivePolicy> = {
      fixed,
      hybrid: new HybridHistogramPolicy({ fallbackKeepAliveMs: settings.keepAliveSec * 1000 }),
    };
    const invoker = new DefaultInvoker({
      store,
      registry,
      pool,
      code,
      keepAlive: policies[settings.keepAlivePolicy] ?? fixed,
      policies,
      maxConcurrency: settings.maxConcurrency,
      memoryBudgetMB: settings.memoryBudgetMB,
      scaleOut: { burst: settings.scaleOutBurst, perSecond: settings.scaleOutPerSec },
      queueing: settings.queueing,
      region: settings.region,
      accountId: settings.accountId,
      onError: (err, context) => log.error({ err }, context),
    });
    undo.push(() => invoker.close());
    const events = new AsyncEvents({
      store,
      invoker,
      onError: (err, context) => log.error({ err }, context),
    });
    const deployer = new Deployer({
      store,
      code,
      registry,
      pool,
      checkRoutes: (m) => {
        // The candidate table: every other service's routes plus the new manifest's.
        const others = registry
          .all()
          .filter((f) => f.service !== m.service && !m.functions.some((n) => n.name === f.name));
        try {
          new Router([
            ...others.flatMap((f) => f.config.routes.map((route) => ({ functionName: f.name, route }))),
            ...m.functions.flatMap((f) => f.routes.map((route) => ({ functionName: f.name, route }))),
          ]);
          return null;
        } catch (err) {
          return err instanceof RouteConflictError ? err.message : String(err);
        }
      },
    });

    let router = buildRouter(registry);
    registry.onChange(() => {
      router = buildRouter(registry);
    });

    const deployed: RunningNimbus['deployed'] = [];
    for (const dir of deployDirs) {
      const pkg = await packageService(dir);
      const r = await deployer.deploy(pkg.archive);
      deployed.push({ service: r.service, functions: r.functions.map((f) => f.name) });
    }

    const gateway = createGateway({
      invoker,
      router: () => router,
      logger: log,
      accountId: settings.accountId,
    });
    const api = createApiServer({
      apiKey,
      store,
      registry,
      invoker,
      events,
      deployer,
      region: settings.region,
      accountId: settings.accountId,
      logger: log,
      stemCells: () => pool.stats(),
      status: () => ({
        sandbox: caps.level,
        inFlight: invoker.inFlightCount,
        stemCells: pool.stats(),
        functions: invoker.stats(),
      }),
    });
    undo.push(
      () => close(gateway),
      () => close(api),
    );
    const gatewayPort = await listen(gateway, settings.port, settings.host);
    const apiPort = await listen(api, settings.apiPort, settings.apiHost);
    const gatewayUrl = `http://${urlHost(settings.host)}:${gatewayPort}`;
    const apiUrl = `http://${urlHost(settings.apiHost)}:${apiPort}`;
    writeFileSync(join(dataDir, 'api-url'), apiUrl, { mode: 0o600 });
    await events.start();
    log.debug({ gatewayUrl, apiUrl, sandbox: caps.level }, 'nimbus started');
    let stopping: Promise<void> | null = null;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        // Stop taking requests, let running invocations finish, then write every record before closing.
        const closed = Promise.all([close(gateway), close(api)]);
        events.stop();
        await invoker.drain();
        invoker.close();
        pool.close();
        // Responses of the last invocations are written after the invoker settles: close connections as
        // they go idle, and cut only what is still open after a grace period.
        const sweep = setInterval(() => {
          gateway.closeIdleConnections();
          api.closeIdleConnections();
        }, 20);
        await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
        clearInterval(sweep);
        gateway.closeAllConnections();
        api.closeAllConnections();
        await closed;
        await store.close();
        await releaseCgroupParent(caps);
      })();
      return stopping;
    };

    return { gatewayUrl, apiUrl, keyFile, apiKey, dataDir, sandboxLevel: caps.level, deployed, stop };
  } catch (err) {
    undo.unshift(() => releaseCgroupParent(caps));
    for (const fn of undo.reverse()) {
      try {
        await fn();
      } catch {
        // keep undoing the rest
      }
    }
    throw err;
  }
}

/**
 * Where instance directories and the runtime live. The sandbox uid must be able to traverse every parent of
 * it; a data dir under a private parent (/root, a 0700 temp dir) cannot serve, so a private-by-name folder
 * in the system temp dir stands in. Leftovers of a crashed run are swept first.
 */
function prepareSandboxRoot(
  dataDir: string,
  dropsUid: boolean,
  warn: (msg: string) => void,
): { sandboxRoot: string; runtimeFile: string } {
  let root = join(dataDir, 'sandboxes');
  if (dropsUid && !traversableByOthers(dataDir)) {
    const id = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
    root = join(tmpdir(), `nimbus-sandboxes-${id}`);
    warn(`the data dir ${dataDir} is not reachable by the sandbox user; instance folders go to ${root}`);
  }
  if (existsSync(root)) rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true, mode: 0o711 });
  chmodSync(root, 0o711);
  const runtimeFile = join(root, 'bootstrap.cjs');
  copyFileSync(findRuntime(), runtimeFile);
  chmodSync(runtimeFile, 0o644);
  return { sandboxRoot: root, runtimeFile };
}

function traversableByOthers(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (dirname(d) === d) return true;
  }
}

function buildRouter(registry: FunctionRegistry): Router {
  return new Router(
    registry.all().flatMap((f) => f.config.routes.map((route) => ({ functionName: f.name, route }))),
  );
}

/** dist/runtime/bootstrap.cjs, whether this module runs from dist/ or from src/ (tests). */
function findRuntime(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const p of [
    join(here, 'runtime', 'bootstrap.cjs'),
    join(here, '..', 'dist', 'runtime', 'bootstrap.cjs'),
  ]) {
    if (existsSync(p)) return p;
  }
  throw new Error('the sandbox runtime is not built (dist/runtime/bootstrap.cjs); run `npm run build`');
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolveListen, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(
              `port ${port} on ${host} is already in use; stop the other process or pass another port (0 picks a free one)`,
            )
          : err,
      );
    });
    server.listen(port, host, () => resolveListen((server.address() as AddressInfo).port));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

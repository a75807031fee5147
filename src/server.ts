// The one assembly point: resolve settings, choose backends, wire everything, start and stop. No other module
// picks an implementation. What runs is a list of Components started in order and stopped in reverse; a start
// that fails part way stops what had started, so it leaves no listener, process, lock or connection behind.
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
import { createSecureContext } from 'node:tls';
import { dirname, join, resolve } from 'node:path';
import { hostname, tmpdir } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { systemClock, type Clock, type Timer } from './clock/clock.js';
import { component, ComponentStartError, Lifecycle, type Component } from './component.js';
import { priceTable, type PriceTable } from './metering/price.js';
import { InvocationRetention } from './metering/retention.js';
import { UsageMeter, usagePrices, type ProvisionedMeter } from './metering/usage-meter.js';
import { usagePlansOf, type Manifest, type UsagePlan } from './config/manifest.js';
import { resolveSettings, type Settings, type SettingsInput } from './config/settings.js';
import { createApiServer } from './api/server.js';
import { createDynamoService } from './api/dynamodb/service.js';
import { createSqsService } from './api/sqs/service.js';
import { createS3Service } from './api/s3/service.js';
import { FileByteStore } from './objects/file-bytes.js';
import { OrphanSweep } from './objects/sweep.js';
import { Deployer } from './api/deploy.js';
import { InspectSessions } from './api/inspect.js';
import { lockDataDir, type DataDirLock } from './datadir/lock.js';
import { nodeIdFor } from './datadir/node-id.js';
import { AsyncEventSource } from './events/async.js';
import { ScheduleSource } from './events/schedules.js';
import { EmailSource } from './events/email.js';
import { QueueSource } from './events/queues.js';
import { TableStreamSource } from './events/table-streams.js';
import { StorageEventSource } from './events/storage.js';
import type { TriggerSource } from './events/types.js';
import { createGateway, type AccessEntry } from './gateway/server.js';
import { RouteConflictError, Router } from './gateway/router.js';
import { projectGatewayUrl } from './gateway/hosts.js';
import { KeyQuotas } from './gateway/quotas.js';
import { GatewayKeys } from './security/gateway-keys.js';
import { CodeCache } from './invoker/code-cache.js';
import { DefaultInvoker, type InvokerOptions } from './invoker/invoker.js';
import { FunctionRegistry } from './invoker/registry.js';
import { detectSandbox, releaseCgroupParent, type SandboxCapabilities } from './sandbox/detect.js';
import { ENDPOINT_SOCKET } from './sandbox/instance.js';
import { StemCellPool } from './sandbox/pool.js';
import { HelperSpawner } from './sandbox/spawner.js';
import { installProvidedSdk } from './sandbox/provided-sdk.js';
import { FixedKeepAlive, type KeepAlivePolicy } from './scaler/policy.js';
import { HybridHistogramPolicy } from './scaler/hybrid.js';
import { openSqliteStore } from './store/sqlite/index.js';
import { openPostgresStore } from './store/postgres/index.js';
import { DEFAULT_PROJECT, type InvocationRecord, type Store } from './store/types.js';
import { packageService } from './build/package.js';
import { AccessKeys } from './security/access-keys.js';
import { FunctionKeys } from './security/function-keys.js';
import { deriveKey, loadMasterKey, SecretBox } from './security/secrets.js';
import { ApiKeys } from './security/api-keys.js';
import { ProjectSecrets, SecretUnavailableError } from './security/stored-secrets.js';
import { TtlSweeper } from './tables/ttl.js';
import { ipOrigin } from './http/origin.js';
import { Metrics, timedPart } from './observability/metrics.js';
import { otlpRequested, Tracing } from './observability/tracing.js';
import { packageVersion } from './cli/format.js';
import { Health } from './observability/health.js';

export interface StartOptions extends Partial<SettingsInput> {
  /** Service folders (each with a nimbus.yaml) to deploy at start, e.g. the examples. */
  deployDirs?: string[];
  /** Settings already resolved by the caller (the CLI); otherwise they come from the other fields and env. */
  settings?: Settings;
  logger?: Logger;
  clock?: Clock;
}

export interface RunningNimbus {
  gatewayUrl: string;
  /** Where a project's routes are served: gatewayUrl for the default project, <project>.<domain> for others. */
  gatewayUrlFor(project: string): string;
  apiUrl: string;
  keyFile: string;
  apiKey: string;
  dataDir: string;
  sandboxLevel: string;
  /** "sqlite <file>" or "postgresql <url without password>". */
  store: string;
  nodeId: string;
  /** Where incoming mail is taken, once a function declares an e-mail event (null before). */
  smtp(): string | null;
  deployed: { service: string; functions: string[] }[];
  stop(): Promise<void>;
}

/** How often a node renews its heartbeat in the store. */
const HEARTBEAT_MS = 10_000;
/** How long listeners wait for open connections to finish after the last invocation, before cutting them. */
const CLOSE_GRACE_MS = 3000;

export async function startNimbus(opts: StartOptions = {}): Promise<RunningNimbus> {
  const { deployDirs = [], logger: givenLogger, settings: given, clock = systemClock, ...flags } = opts;
  const settings = given ?? resolveSettings(flags);
  // Before anything starts: a bad certificate leaves nothing behind.
  const tls = loadTls(settings);
  // JSON lines (pino) for journald, docker and log shippers; one readable line each on a terminal.
  const log =
    givenLogger ??
    pino({ level: settings.logLevel }, process.stderr.isTTY ? prettyDestination() : pino.destination(2));
  const dataDir = resolve(settings.dataDir);
  const lifecycle = new Lifecycle((err, name) => log.error({ err }, `stopping ${name} failed`));
  const onError = (err: unknown, context: string) => log.error({ err }, context);

  try {
    // The lock comes first: everything after it (the sandbox root is swept below) belongs to one process.
    let lock: DataDirLock | undefined;
    await lifecycle.start(
      component(
        'data dir lock',
        () => (lock = lockDataDir(dataDir)),
        () => lock?.release(),
      ),
    );
    const { keyFile, apiKey } = prepareDataDir(dataDir);
    const masterKey = loadMasterKey(dataDir);
    const nodeId = nodeIdFor(dataDir);

    const caps = detectSandbox({
      disableBwrap: settings.disableBwrap,
      disableCgroup: settings.disableCgroup,
    });
    await lifecycle.start(
      component(
        'cgroup',
        () => checkSandbox(settings, caps),
        () => releaseCgroupParent(caps),
      ),
    );
    const { sandboxRoot, runtimeFile, endpointDir } = prepareSandboxRoot(dataDir, caps.uid !== null, (m) =>
      log.warn(m),
    );
    // Under bubblewrap each sandbox has its own network namespace and reaches the AWS endpoint through a
    // unix socket in this folder (see Listeners); without it, sandboxes share the host's loopback.
    const sandboxEndpoint = caps.bwrap ? endpointDir : undefined;

    // Off, nothing counts: no sink, no gateway hook, no timed store calls (NIMBUS_METRICS=off).
    const metrics = settings.metrics
      ? new Metrics(settings.store === 'sqlite' ? 'sqlite' : 'postgresql')
      : undefined;
    const store = await openStore(
      settings,
      dataDir,
      clock,
      log,
      metrics && ((ms) => metrics.storeCall('invocations.write', ms)),
    );
    await lifecycle.start(
      component(
        'store',
        () => {},
        () => store.close(),
      ),
    );
    // Off (NIMBUS_TRACES=off and no OTLP endpoint) nothing is built: every hook is undefined.
    const otlp = otlpRequested();
    const tracing =
      settings.traces || otlp
        ? new Tracing({
            otlp,
            ...(settings.traces ? { store: store.spans } : {}),
            version: packageVersion(),
            onError,
          })
        : undefined;
    // Started after the store, so stopped before it: the last spans are written at a clean stop.
    if (tracing) await lifecycle.start(tracing);
    const registry = new FunctionRegistry(store.functions);
    await registry.load();

    // Sandboxes are forked by a helper process, never on this event loop (sandbox/spawner.ts). Stopped after
    // the pool, so the stem cells and instances stopping have ended first.
    const spawner = new HelperSpawner({ onError: (err) => log.error({ err }, 'sandbox spawner') });
    await lifecycle.start(
      component(
        'sandbox spawner',
        () => {},
        () => spawner.close(),
      ),
    );
    const pool = new StemCellPool({
      env: {
        caps,
        sandboxRoot,
        runtimeFile,
        spawner,
        ...(sandboxEndpoint ? { endpointDir: sandboxEndpoint } : {}),
      },
      target: settings.stemCells,
      onError: (err) => log.error({ err }, 'stem cell failed to start'),
    });
    await lifecycle.start(
      component(
        'stem-cell pool',
        () => {},
        () => pool.close(),
      ),
    );
    for (const f of registry.all()) pool.ensure(f.config.memory, f.config.ephemeralStorage, f.config.network);

    if (store.backend === 'postgresql' && masterKey.source === 'file') {
      log.info(
        `issued secrets are encrypted with the key in ${masterKey.file}; nodes that share this store need the same key: set NIMBUS_MASTER_KEY to its contents on each`,
      );
    }
    const box = new SecretBox(masterKey.key);
    const accessKeys = new AccessKeys({
      store: store.credentials,
      secrets: box,
      clock,
      onError,
    });
    const secrets = new ProjectSecrets({ store: store.secrets, box });
    const functionKeys = new FunctionKeys({
      keys: accessKeys,
      projects: async () => (await store.projects.list()).map((p) => p.name),
      onError,
    });
    functionKeys.sync(registry.all());
    registry.onChange(() => functionKeys.sync(registry.all()));

    const prices = priceTable(
      settings.priceRequests,
      settings.priceGbSecond,
      settings.freeTier,
      settings.priceProvisionedDurationGbSecond,
    );
    // Data requests, stored bytes and provisioned time, counted in memory and flushed in batches. Started
    // before the invoker, so it stops after it: the provisioned instances' last second is counted too.
    const usageMeter = new UsageMeter({
      usage: store.usage,
      quotas: store.quotas,
      clock,
      prices: usagePrices({
        dynamodbWritesPerMillion: settings.priceDynamodbWrites,
        dynamodbReadsPerMillion: settings.priceDynamodbReads,
        s3Tier1PerThousand: settings.priceS3Tier1,
        s3Tier2PerThousand: settings.priceS3Tier2,
        sqsRequestsPerMillion: settings.priceSqsRequests,
        storageGbMonth: settings.priceStorageGbMonth,
        provisionedGbSecond: settings.priceProvisionedGbSecond,
      }),
      onError,
    });
    await lifecycle.start(usageMeter);
    const retentionMs = settings.invocationRetentionDays * 86_400_000;
    const serverLog = serverLogSink(log, settings.functionLogs === 'stdout');
    const invoker = createInvoker(settings, {
      ...(serverLog ? { serverLog } : {}),
      prices,
      provisionedMeter: usageMeter,
      store,
      metrics,
      tracing,
      registry,
      pool,
      clock,
      onError,
      dataDir,
      awsEnv: (fn) => functionKeys.env(fn),
      // Secrets are decrypted here only: into the environment of the instance being started.
      environment: async (fv) => {
        try {
          return { ok: true, env: await secrets.resolve(fv.project, fv.config.environment) };
        } catch (err) {
          if (err instanceof SecretUnavailableError) return { ok: false, message: err.message };
          throw err;
        }
      },
    });
    // Project quotas bind this node's scaler; set again at each heartbeat with a shared store (another node's
    // operator may have changed them) and at once by this node's API.
    const applyQuotas = async (): Promise<void> => {
      for (const q of await store.quotas.list()) {
        invoker.setProjectLimits(q.project, { concurrency: q.quota.concurrency, memoryMB: q.quota.memoryMB });
      }
    };
    await applyQuotas();
    await lifecycle.start(
      component(
        'invoker',
        () => {},
        async () => {
          await invoker.drain();
          invoker.close();
        },
      ),
    );
    // Every function has its key before anything can invoke it (the trigger sources start next).
    await lifecycle.start(functionKeys);

    const events = new AsyncEventSource({
      queue: metrics ? timedPart(store.events, 'events', metrics) : store.events,
      ...(metrics ? { observer: metrics } : {}),
      invoker,
      nodeId,
      clock,
      onError,
      concurrency: settings.eventConcurrency,
      retryBaseMs: settings.retryBaseMs,
      deadRetentionMs: settings.failedEventRetentionDays * 86_400_000,
      functionExists: async (ref) => (await store.functions.getFunction(ref)) !== undefined,
      recordsWritten: () => store.invocations.flush(),
      asyncConfigs: () => store.functions.listAsyncConfigs(),
      refreshFunctions: () => registry.load(),
      queues: store.queues,
      onQueued: (project, queue) => queues.notify(project, queue),
      headroom: (ref) => invoker.headroom(ref, settings.eventConcurrencyShare),
      region: settings.region,
      accountId: settings.accountId,
    });
    const queues = new QueueSource({
      queues: store.queues,
      invoker,
      clock,
      share: settings.eventConcurrencyShare,
      recordsWritten: () => store.invocations.flush(),
      region: settings.region,
      accountId: settings.accountId,
      onError,
    });
    const schedules = new ScheduleSource({
      schedules: store.schedules,
      queue: store.events,
      clock,
      catchUp: settings.scheduleCatchUp,
      onEnqueued: () => events.notify(),
      region: settings.region,
      accountId: settings.accountId,
      onError,
    });
    const email = new EmailSource({
      queue: store.events,
      host: settings.smtpHost,
      port: settings.smtpPort,
      maxBytes: settings.maxEmailBytes,
      inlineAttachmentBytes: settings.emailInlineBytes,
      onEnqueued: () => events.notify(),
      onError,
    });
    const streams = new TableStreamSource({
      tables: store.tables,
      queues: store.queues,
      onQueued: (project, queue) => queues.notify(project, queue),
      invoker,
      clock,
      share: settings.eventConcurrencyShare,
      recordsWritten: () => store.invocations.flush(),
      region: settings.region,
      accountId: settings.accountId,
      onError,
    });
    const storage = new StorageEventSource({
      objects: store.objects,
      queue: store.events,
      clock,
      onEnqueued: () => events.notify(),
      region: settings.region,
      accountId: settings.accountId,
      onError,
    });
    const triggers: TriggerSource[] = [events, schedules, email, queues, streams, storage];
    for (const t of triggers) t.sync(registry.all());
    registry.onChange(() => {
      for (const t of triggers) t.sync(registry.all());
    });
    await lifecycle.startAll(triggers);
    // Expired items go in the background, with their stream records, for as long as the store is open.
    await lifecycle.start(new TtlSweeper({ tables: store.tables, clock, onError }));
    await lifecycle.start(
      new InvocationRetention({ log: store.invocations, spans: store.spans, clock, retentionMs, onError }),
    );
    // Object bytes under the data dir; what a crash left unreferenced goes in the background.
    const bytes = new FileByteStore(join(dataDir, 'objects'));
    await lifecycle.start(
      new OrphanSweep({
        bytes,
        objects: store.objects,
        onError: (err) => onError(err, 'object orphan sweep failed'),
        onDone: (n) => n > 0 && log.info(`deleted the bytes of ${n} unreferenced object(s)`),
      }),
    );

    // What a deploy or a removal waits for before it answers: the triggers and function keys caught up.
    const synced = async (): Promise<void> => {
      await Promise.all([...triggers.map((t) => t.synced?.()), functionKeys.synced()]);
    };
    const deployer = new Deployer({
      functions: store.functions,
      queues: store.queues,
      tables: store.tables,
      objects: store.objects,
      secrets: store.secrets,
      code: invoker.code,
      registry,
      pool,
      checkRoutes: (m, project) => checkRoutes(registry, m, project),
      triggersSynced: synced,
      maxConcurrency: settings.maxConcurrency,
      quotas: async (project) => (await store.quotas.get(project)).quota,
      checkLoad: (fv) => invoker.checkLoad(fv),
      onError,
    });
    // What earlier runs (or other nodes' deploys) left unused goes in the background.
    void deployer.collectCode();
    metrics?.setSources({
      instances: () => invoker.stats(),
      stemCells: () => pool.stats(),
      events: () => store.events.stats(),
      now: () => clock.now(),
    });
    let stopping = false;
    const health = new Health({
      // One indexed row: reaches the database (a connection on PostgreSQL) without scanning anything.
      store: () => store.projects.get(DEFAULT_PROJECT),
      pool: () => pool.ready(),
      stopping: () => stopping,
    });
    const routes = new RouteTables(registry, (err, project) =>
      log.error({ err, project }, 'the route table of a project could not be rebuilt; it keeps its last one'),
    );
    registry.onChange((changed) => routes.rebuild(new Set(changed.map((r) => r.project))));

    const deployed: RunningNimbus['deployed'] = [];
    for (const dir of deployDirs) {
      const pkg = await packageService(dir);
      // The bundled examples are checked by Nimbus's own tests; loading each again would only slow the start.
      const r = await deployer.deploy(pkg.archive, DEFAULT_PROJECT, { verify: false });
      deployed.push({ service: r.service, functions: r.functions.map((f) => f.name) });
    }

    const gatewayKeys = new GatewayKeys(store.gatewayKeys, clock);
    // Started before the listeners and so stopped after them: the last requests' counts are settled.
    const quotas = new KeyQuotas({ store: store.gatewayKeys, clock, onError });
    await lifecycle.start(quotas);
    const gateway = createGateway(
      {
        invoker,
        router: (project) => routes.get(project),
        project: DEFAULT_PROJECT,
        domain: settings.gatewayDomain,
        apiKeys: gatewayKeys,
        quotas,
        logger: log,
        ...(settings.accessLog && log.isLevelEnabled('info') ? { accessLog: accessLogger(log) } : {}),
        accountId: settings.accountId,
        region: settings.region,
        clock,
        health,
        ...(metrics ? { metrics } : {}),
        ...(tracing ? { tracer: tracing } : {}),
      },
      tls,
    );
    const sqs = createSqsService({
      store,
      usage: usageMeter,
      region: settings.region,
      accountId: settings.accountId,
      clock,
      notifyQueue: (project, queue) => queues.notify(project, queue),
    });
    // Known once the listeners are up; /v1/health reports it, so `nimbus info` can print route URLs.
    const publicUrls = { gateway: '' };
    // Known once the gateway listens (its port may be picked at start); nothing asks before that.
    let gatewayUrlFor: (project: string) => string = () => '';
    // `nimbus dev --inspect`, only in dev mode, and never under NODE_ENV=production (checked per request).
    const inspector = settings.dev
      ? new InspectSessions({
          allowed: () =>
            process.env['NODE_ENV'] === 'production'
              ? 'an inspector is refused in production mode (NODE_ENV=production): a debugger runs any code in the function'
              : null,
          isolated: pool.isolatesNetwork,
          start: (ref) => invoker.inspect(ref),
        })
      : undefined;
    const apiOptions: Parameters<typeof createApiServer>[0] = {
      apiKey,
      clock,
      store,
      metering: { prices, retentionMs },
      usageMeter,
      registry,
      invoker,
      events,
      deployer,
      notifyQueue: (project, queue) => {
        queues.notify(project, queue);
        sqs.notify(project, queue);
      },
      synced,
      services: [
        createS3Service({
          objects: store.objects,
          usage: usageMeter,
          bytes,
          region: settings.region,
          onChange: () => storage.notify(),
        }),
        createDynamoService({
          store,
          usage: usageMeter,
          region: settings.region,
          accountId: settings.accountId,
          clock,
          iteratorKey: deriveKey(masterKey.key, 'dynamodb shard iterators'),
        }),
        sqs,
      ],
      accessKeys,
      apiKeys: new ApiKeys(store.apiKeys, new SecretBox(masterKey.key)),
      secrets,
      recycle: (refs) => invoker.recycle(refs),
      nodeQuotas: {
        apply: (project, q) => invoker.setProjectLimits(project, q),
        usage: (project) => invoker.projectUsage(project),
      },
      health,
      ...(metrics ? { metrics } : {}),
      ...(tracing ? { tracer: tracing, traces: tracing } : {}),
      region: settings.region,
      accountId: settings.accountId,
      logger: log,
      gatewayUrl: (project) => gatewayUrlFor(project),
      ...(inspector ? { inspector } : {}),
      gatewayKeys,
      gatewayKeyUsage: store.gatewayKeys,
      quotas,
      stemCells: () => pool.stats(),
      status: () => ({
        gatewayUrl: publicUrls.gateway,
        sandbox: caps.level,
        store: store.backend,
        node: nodeId,
        inFlight: invoker.inFlightCount,
        stemCells: pool.stats(),
        functions: invoker.stats(),
      }),
    };
    // The web console is served by the public control listener only, not the sandboxes' endpoints.
    const api = createApiServer({ ...apiOptions, console: {} }, tls);
    if (inspector)
      await lifecycle.start(
        component(
          'inspector',
          () => undefined,
          () => inspector.stop(),
        ),
      );
    // With TLS the public listener is HTTPS, which sandboxes neither trust nor need: functions reach the
    // AWS endpoint on a plain listener of their own on loopback (as they reach the whole API without TLS).
    const internalApi = tls ? createApiServer(apiOptions) : null;
    const socketApi = sandboxEndpoint
      ? { server: createApiServer(apiOptions), path: join(sandboxEndpoint, ENDPOINT_SOCKET) }
      : null;
    const listeners = new Listeners(gateway, api, settings, internalApi, socketApi);
    await lifecycle.start(listeners);
    functionKeys.setEndpoint(ipOrigin((internalApi ?? api).address()));
    const scheme = tls ? 'https' : 'http';
    const gatewayUrl = `${scheme}://${urlHost(settings.host)}:${listeners.gatewayPort}`;
    gatewayUrlFor = (project) =>
      projectGatewayUrl(gatewayUrl, settings.gatewayDomain, project, DEFAULT_PROJECT);
    const apiUrl = `${scheme}://${urlHost(settings.apiHost)}:${listeners.apiPort}`;
    publicUrls.gateway = gatewayUrl;
    writeFileSync(join(dataDir, 'api-url'), apiUrl, { mode: 0o600 });
    // Registered last, with its URLs: a node in the registry is one that serves.
    // With a shared store, other nodes deploy too: each heartbeat also catches up with their deploys.
    const onBeat =
      store.backend === 'postgresql'
        ? () => Promise.all([registry.load(), applyQuotas()]).then(() => undefined)
        : undefined;
    await lifecycle.start(nodeRegistration(store, clock, nodeId, { gatewayUrl, apiUrl }, onError, onBeat));
    log.debug({ gatewayUrl, apiUrl, sandbox: caps.level, store: store.location }, 'nimbus started');

    return {
      gatewayUrl,
      gatewayUrlFor,
      apiUrl,
      keyFile,
      apiKey,
      dataDir,
      sandboxLevel: caps.level,
      store: `${store.backend} ${store.location}`,
      nodeId,
      smtp: () => (email.port === null ? null : `smtp://${urlHost(settings.smtpHost)}:${email.port}`),
      deployed,
      stop: () => {
        stopping = true;
        return lifecycle.stop();
      },
    };
  } catch (err) {
    await lifecycle.stop();
    // The component that failed is named in logs; the user sees the cause's own (fixable) message.
    throw err instanceof ComponentStartError ? err.cause : err;
  }
}

/** The data dir holds the key and the database: others may traverse it (sandboxes are linked below it) but
 *  not list it, and every secret in it is 0600. */
function prepareDataDir(dataDir: string): { keyFile: string; apiKey: string } {
  mkdirSync(dataDir, { recursive: true, mode: 0o711 });
  chmodSync(dataDir, 0o711);
  const keyFile = join(dataDir, 'api-key');
  if (!existsSync(keyFile))
    writeFileSync(keyFile, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
  chmodSync(keyFile, 0o600);
  return { keyFile, apiKey: readFileSync(keyFile, 'utf8').trim() };
}

function checkSandbox(settings: Settings, caps: SandboxCapabilities): void {
  if (settings.requireBwrap && !caps.bwrap) {
    throw userError(
      'bubblewrap is required (NIMBUS_REQUIRE_BWRAP) but bwrap is missing or does not work here; install it with `apt-get install bubblewrap`',
    );
  }
}

async function openStore(
  settings: Settings,
  dataDir: string,
  clock: Clock,
  log: Logger,
  onBatchWritten?: (ms: number) => void,
): Promise<Store> {
  const onError = (err: Error) => log.error({ err }, 'invocation records could not be written');
  if (settings.store === 'sqlite')
    return openSqliteStore({
      path: join(dataDir, 'nimbus.db'),
      clock,
      onError,
      ...(onBatchWritten ? { onBatchWritten } : {}),
      itemCollectionLimit: settings.itemCollectionLimit,
    });
  try {
    return await openPostgresStore({
      url: settings.store,
      clock,
      onError,
      ...(onBatchWritten ? { onBatchWritten } : {}),
      itemCollectionLimit: settings.itemCollectionLimit,
    });
  } catch (err) {
    throw userError(err instanceof Error ? err.message : String(err));
  }
}

interface InvokerDeps {
  store: Store;
  /** A second sink after the invocation log, when metrics are on. */
  metrics: Metrics | undefined;
  tracing: Tracing | undefined;
  registry: FunctionRegistry;
  pool: StemCellPool;
  clock: Clock;
  prices: PriceTable;
  provisionedMeter: ProvisionedMeter;
  dataDir: string;
  onError: (err: unknown, context: string) => void;
  /** Function errors (and, with NIMBUS_FUNCTION_LOGS=stdout, function log lines) on the server's output. */
  serverLog?: { write(rec: InvocationRecord): void };
  awsEnv?: InvokerOptions['awsEnv'];
  environment?: InvokerOptions['environment'];
}

function createInvoker(settings: Settings, d: InvokerDeps): DefaultInvoker & { code: CodeCache } {
  const code = new CodeCache(join(d.dataDir, 'code'), d.store.functions);
  const fixed = new FixedKeepAlive(settings.keepAliveSec * 1000);
  const policies: Record<string, KeepAlivePolicy> = {
    fixed,
    hybrid: new HybridHistogramPolicy({ fallbackKeepAliveMs: settings.keepAliveSec * 1000 }),
  };
  const invoker = new DefaultInvoker({
    sinks: [d.store.invocations, ...(d.metrics ? [d.metrics] : []), ...(d.serverLog ? [d.serverLog] : [])],
    prices: d.prices,
    provisionedMeter: d.provisionedMeter,
    registry: d.registry,
    pool: d.pool,
    code,
    clock: d.clock,
    keepAlive: policies[settings.keepAlivePolicy] ?? fixed,
    policies,
    maxConcurrency: settings.maxConcurrency,
    memoryBudgetMB: settings.memoryBudgetMB,
    scaleOut: { burst: settings.scaleOutBurst, perSecond: settings.scaleOutPerSec },
    queueing: settings.queueing,
    v8CodeCache: settings.codeCache,
    ...(d.metrics ? { onCodeCache: d.metrics.codeCache } : {}),
    region: settings.region,
    accountId: settings.accountId,
    onError: d.onError,
    ...(d.awsEnv ? { awsEnv: d.awsEnv } : {}),
    ...(d.environment ? { environment: d.environment } : {}),
    ...(d.tracing ? { tracer: d.tracing } : {}),
  });
  return Object.assign(invoker, { code });
}

/** The node's entry in the store's registry, renewed while it runs and removed when it stops cleanly. */
function nodeRegistration(
  store: Store,
  clock: Clock,
  id: string,
  urls: { gatewayUrl: string; apiUrl: string },
  onError: (err: unknown, context: string) => void,
  onBeat?: () => Promise<void>,
): Component {
  let timer: Timer | null = null;
  const register = () => store.nodes.register({ id, host: hostname(), pid: process.pid, ...urls });
  const beat = async (): Promise<void> => {
    // Removed as dead by another node (a long pause, a network cut): register again rather than vanish.
    if (!(await store.nodes.heartbeat(id))) await register();
    await onBeat?.();
  };
  const loop = (): void => {
    beat()
      .catch((err: unknown) => onError(err, 'node heartbeat'))
      .finally(() => {
        if (timer) timer = clock.setTimeout(loop, HEARTBEAT_MS);
      });
  };
  return component(
    'node registration',
    async () => {
      await register();
      timer = clock.setTimeout(loop, HEARTBEAT_MS);
    },
    async () => {
      timer?.cancel();
      timer = null;
      await store.nodes.remove(id);
    },
  );
}

/** The gateway and the control listener, started together and stopped together with one grace period. */
class Listeners implements Component {
  readonly name = 'listeners';
  gatewayPort = 0;
  apiPort = 0;

  private readonly servers: Server[];

  constructor(
    private readonly gateway: Server,
    private readonly api: Server,
    private readonly settings: Settings,
    /** The plain loopback listener functions use when the API serves HTTPS (see start). */
    private readonly internal: Server | null = null,
    /** The plain API on a unix socket bound into sandboxes that have a network namespace of their own. */
    private readonly socket: { server: Server; path: string } | null = null,
  ) {
    this.servers = [gateway, api, ...(internal ? [internal] : []), ...(socket ? [socket.server] : [])];
  }

  async start(): Promise<void> {
    this.gatewayPort = await listen(this.gateway, this.settings.port, this.settings.host);
    try {
      this.apiPort = await listen(this.api, this.settings.apiPort, this.settings.apiHost);
      if (this.internal) await listen(this.internal, 0, '127.0.0.1');
      if (this.socket) await listenOnSocket(this.socket.server, this.socket.path);
    } catch (err) {
      await Promise.all([
        close(this.gateway),
        ...(this.apiPort ? [close(this.api)] : []),
        ...(this.internal?.listening ? [close(this.internal)] : []),
      ]);
      throw err;
    }
  }

  /** Stops taking connections; requests in flight finish (the invoker is still running), idle ones close. */
  async stop(): Promise<void> {
    const closed = Promise.all(this.servers.map((s) => close(s)));
    const sweep = setInterval(() => {
      for (const s of this.servers) s.closeIdleConnections();
    }, 20);
    await Promise.race([closed, new Promise((r) => setTimeout(r, CLOSE_GRACE_MS))]);
    clearInterval(sweep);
    for (const s of this.servers) s.closeAllConnections();
    await closed;
  }
}

/**
 * Where instance directories and the runtime live. The sandbox uid must be able to traverse every parent of
 * it; a data dir under a private parent (/root, a 0700 temp dir) cannot serve, so a private-by-name folder
 * in the system temp dir stands in. Leftovers of a crashed run are swept first (the data dir lock makes sure
 * they are not a running Nimbus's).
 */
function prepareSandboxRoot(
  dataDir: string,
  dropsUid: boolean,
  warn: (msg: string) => void,
): { sandboxRoot: string; runtimeFile: string; endpointDir: string } {
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
  installProvidedSdk(join(dirname(findRuntime()), 'node_modules'), root);
  // A unix socket's path has room for 107 bytes; a long data dir path gets a short folder in the temp dir.
  let endpointDir = join(root, 'endpoint');
  if (Buffer.byteLength(join(endpointDir, ENDPOINT_SOCKET)) > 100) {
    const id = createHash('sha256').update(root).digest('hex').slice(0, 16);
    endpointDir = join(tmpdir(), `nimbus-endpoint-${id}`);
    rmSync(endpointDir, { recursive: true, force: true });
  }
  mkdirSync(endpointDir, { recursive: true, mode: 0o711 });
  chmodSync(endpointDir, 0o711);
  return { sandboxRoot: root, runtimeFile, endpointDir };
}

function traversableByOthers(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (dirname(d) === d) return true;
  }
}

/**
 * One route table per project, each rebuilt only when one of its functions changed: the gateway serves
 * <project>.<domain> from its project's table, so one project's routes never collide with another's.
 */
class RouteTables {
  private tables = new Map<string, Router>();

  constructor(
    private readonly registry: FunctionRegistry,
    private readonly onError: (err: unknown, project: string) => void,
  ) {
    this.rebuild(new Set(registry.all().map((f) => f.project)));
  }

  /** Undefined for a project with no routes (or none at all). */
  get(project: string): Router | undefined {
    return this.tables.get(project);
  }

  rebuild(projects: Set<string>): void {
    const next = new Map(this.tables);
    for (const project of projects) {
      const bindings = this.registry
        .all(project)
        .flatMap((f) => f.config.routes.map((route) => ({ functionName: f.name, route })));
      try {
        if (bindings.length === 0) next.delete(project);
        else next.set(project, new Router(bindings));
      } catch (err) {
        // Deploys check routes within the project first; a conflict that still got in (two nodes deploying
        // at once) must not take the project's other routes, or any other project's, down with it.
        this.onError(err, project);
      }
    }
    this.tables = next;
  }
}

/** The candidate table: the project's other services' routes plus the new manifest's; and its usage plans,
 *  since a plan name means one thing in a project (a key is issued under the name). */
function checkRoutes(
  registry: FunctionRegistry,
  m: Manifest,
  project: string,
): string | { field: string; problem: string } | null {
  const others = registry
    .all(project)
    .filter((f) => f.service !== m.service && !m.functions.some((n) => n.name === f.name));
  const theirs = usagePlansOf(others);
  for (const [name, { plan }] of usagePlansOf(
    m.functions.map((config) => ({ service: m.service, config })),
  )) {
    const other = theirs.get(name);
    if (other && JSON.stringify(canonicalPlan(other.plan)) !== JSON.stringify(canonicalPlan(plan))) {
      return {
        field: `http.usagePlans.${name}`,
        problem: `usage plan "${name}" is declared with other limits by service "${other.service}" of this project; declare it the same way in both, or give it another name`,
      };
    }
  }
  try {
    new Router([
      ...others.flatMap((f) => f.config.routes.map((route) => ({ functionName: f.name, route }))),
      ...m.functions.flatMap((f) => f.routes.map((route) => ({ functionName: f.name, route }))),
    ]);
    return null;
  } catch (err) {
    return err instanceof RouteConflictError ? err.message : String(err);
  }
}

function canonicalPlan(p: UsagePlan): unknown {
  return [p.throttle?.rate, p.throttle?.burst, p.quota?.limit, p.quota?.period];
}

/** dist/runtime/bootstrap.cjs (the provided SDK is beside it), whether this module runs from dist/ or from src/ (tests). */
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
          ? userError(
              `port ${port} on ${host} is already in use; stop the other process or pass another port (0 picks a free one)`,
            )
          : err,
      );
    });
    server.listen(port, host, () => resolveListen((server.address() as AddressInfo).port));
  });
}

/** The certificate and key files, read and checked as a pair; undefined when neither is set. */
function loadTls(settings: Settings): { cert: Buffer; key: Buffer } | undefined {
  const { tlsCert, tlsKey } = settings;
  if (tlsCert === undefined && tlsKey === undefined) return undefined;
  if (tlsCert === undefined || tlsKey === undefined) {
    throw userError(
      'TLS needs both a certificate and a key: pass --tls-cert and --tls-key (or NIMBUS_TLS_CERT and NIMBUS_TLS_KEY)',
    );
  }
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (e) {
      throw userError(
        `cannot read the TLS ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
      );
    }
  };
  const cert = read('certificate', tlsCert);
  const key = read('key', tlsKey);
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw userError(`the TLS certificate ${tlsCert} and key ${tlsKey} are not a usable PEM pair: ${reason}`);
  }
  return { cert, key };
}

/** Listens on a unix socket the sandbox uid can connect to (SigV4 is required on it as on every listener). */
async function listenOnSocket(server: Server, path: string): Promise<void> {
  rmSync(path, { force: true });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolveListen());
  });
  chmodSync(path, 0o666);
}

function close(server: Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** An error whose message is the whole story for a user (the CLI prints it as one line, without a hint). */
function userError(message: string): Error {
  return Object.assign(new Error(message), { userFacing: true });
}

/** The gateway's request line, built only when called (the caller checks the level once, at start). */
function accessLogger(log: Logger): (e: AccessEntry) => void {
  return (e) => {
    const ms = Math.round(e.ms * 10) / 10;
    const fn = e.functionName ?? '-';
    const cold = e.cold === undefined ? '' : e.cold ? ' cold' : ' warm';
    log.info(
      {
        kind: 'request',
        method: e.method,
        path: e.path,
        status: e.status,
        ms,
        function: e.functionName ?? null,
        requestId: e.requestId,
        cold: e.cold ?? null,
      },
      `${e.method} ${e.path} ${e.status} ${ms}ms ${fn} ${e.requestId}${cold}`,
    );
  };
}

/** Every failed invocation as an error line; with toStdout, the function's log lines on stdout too. */
function serverLogSink(log: Logger, toStdout: boolean): { write(rec: InvocationRecord): void } | undefined {
  const errors = log.isLevelEnabled('error');
  if (!errors && !toStdout) return undefined;
  return {
    write(rec) {
      if (toStdout && rec.logs !== '') {
        const prefix = `${rec.functionName} ${rec.requestId} `;
        const lines = rec.logs.endsWith('\n') ? rec.logs.slice(0, -1) : rec.logs;
        process.stdout.write(prefix + lines.split('\n').join(`\n${prefix}`) + '\n');
      }
      if (errors && rec.status !== 'ok') {
        log.error(
          {
            kind: 'function-error',
            function: rec.functionName,
            project: rec.project,
            requestId: rec.requestId,
            status: rec.status,
            errorType: rec.errorType,
            errorMessage: rec.errorMessage,
          },
          `${rec.functionName} ${rec.requestId} ${rec.status}: ${rec.errorType ?? rec.status}: ${rec.errorMessage ?? ''}`,
        );
      }
    },
  };
}

/** pino's JSON turned into "HH:MM:SS LEVEL message" for a person at a terminal. */
function prettyDestination(): { write(line: string): void } {
  const names: Record<number, string> = {
    10: 'TRACE',
    20: 'DEBUG',
    30: 'INFO',
    40: 'WARN',
    50: 'ERROR',
    60: 'FATAL',
  };
  return {
    write(line) {
      try {
        const o = JSON.parse(line) as { level: number; time: number; msg?: string; err?: { stack?: string } };
        const t = new Date(o.time).toISOString().slice(11, 19);
        const extra = o.err?.stack ? `\n${o.err.stack}` : '';
        process.stderr.write(
          `${t} ${(names[o.level] ?? String(o.level)).padEnd(5)} ${o.msg ?? ''}${extra}\n`,
        );
      } catch {
        process.stderr.write(line);
      }
    },
  };
}

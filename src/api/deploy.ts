// Turning an uploaded service archive into deployed function versions. Used by the control API and by
// `nimbus up` for the bundled examples, so both paths validate the same way.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkTrigger,
  ManifestError,
  parseManifest,
  type FunctionConfig,
  type Manifest,
  type QueueConfig,
} from '../config/manifest.js';
import type { LoadCheck } from '../invoker/types.js';
import { canonicalJson } from '../store/canonical-json.js';
import { checkLoads, deployWarnings } from './deploy-check.js';
import { secretRefs } from '../config/secret-refs.js';
import { minUnreservedConcurrency } from '../config/limits.js';
import { quotaMisfit, type QuotaCaps } from '../config/quota-fit.js';
import type { CodeCache } from '../invoker/code-cache.js';
import type { FunctionRegistry } from '../invoker/registry.js';
import type { StemCellPool } from '../sandbox/pool.js';
import type {
  DeployResult,
  FunctionStore,
  FunctionVersion,
  QueueStore,
  StoredTable,
  ObjectStore,
  SecretStore,
  TableStore,
} from '../store/types.js';
import type { TableDef } from '../tables/types.js';

export interface DeployResponse {
  service: string;
  functions: { name: string; version: number; changed: boolean; routes: string[] }[];
  removed: string[];
  queues: DeployResult['queues'];
  /** The service's tables; one left out of the manifest keeps its data (`nimbus table rm` drops it). */
  tables: { created: string[]; updated: string[]; unchanged: string[] };
  /** The service's buckets; one left out of the manifest keeps its objects. */
  buckets: { created: string[]; unchanged: string[] };
  /** Likely mistakes the deploy went ahead despite (printed by `nimbus deploy`). */
  warnings: string[];
}

export interface DeployOptions {
  /** Load every handler in a sandbox first and refuse the deploy if one fails (default true). */
  verify?: boolean;
  /** Functions that keep their deployed version although the archive is new (DeployInput.keep). */
  keep?: Readonly<Record<string, number>>;
}

export class Deployer {
  constructor(
    private readonly o: {
      functions: FunctionStore;
      queues: Pick<QueueStore, 'listQueues'>;
      tables: Pick<TableStore, 'listTables' | 'createTable' | 'updateTable'>;
      objects: Pick<ObjectStore, 'listBuckets' | 'createBucket'>;
      /** The project's secrets, to refuse a deploy that references one that does not exist. */
      secrets?: Pick<SecretStore, 'list'>;
      code: CodeCache;
      registry: FunctionRegistry;
      pool: StemCellPool;
      /** Checks the new routes against every other service's (the route table lives in the gateway). */
      checkRoutes?: (
        manifest: Manifest,
        project: string,
      ) => string | { field: string; problem: string } | null;
      /** Resolves once the trigger sources have taken in the new functions (their schedules stored), so
       *  what the deploy answers is what `nimbus ls` shows next. */
      triggersSynced?: () => Promise<void>;
      /** The node's concurrency limit, which reservations are carved out of; unset, they are not checked. */
      maxConcurrency?: number;
      /** The project's concurrency and memory quotas, which its functions' reservations must fit. */
      quotas?: (project: string) => Promise<QuotaCaps>;
      /** Loads a version that is not deployed yet in a sandbox (DefaultInvoker.checkLoad); unset, deploys
       *  are not checked. */
      checkLoad?: (fv: FunctionVersion) => Promise<LoadCheck>;
      onError?: (err: unknown, context: string) => void;
    },
  ) {}

  /** Reservations of deploys that passed the check and are not in the registry yet: a deploy running
   *  beside them counts them, so two deploys cannot each take the last of the unreserved pool. */
  private pending = new Set<Reservations>();

  async deploy(archive: Buffer, project: string, opts: DeployOptions = {}): Promise<DeployResponse> {
    const sha256 = await sha256Of(archive);
    // Code extracted only for this deploy is removed again if the deploy is refused: nothing left behind.
    const fresh = !this.o.code.has(sha256);
    const release = this.o.code.hold(sha256);
    let res: DeployResponse;
    try {
      const dir = await this.o.code.put(sha256, archive);
      res = await this.deployExtracted(sha256, archive, project, dir, opts);
    } catch (err) {
      release();
      // Unless a second deploy of the same bytes, running beside this one, still uses it.
      if (fresh && !this.o.code.isHeld(sha256)) await this.o.code.discard(sha256);
      throw err;
    } finally {
      release();
    }
    await this.collectCode();
    return res;
  }

  /**
   * After a deploy or a removal: versions no longer served are dropped with the archives only they used, in
   * the store and as extracted under the data dir. A failure here fails nothing: the next one collects.
   */
  async collectCode(): Promise<void> {
    try {
      await this.o.functions.pruneVersions();
      const live = new Set((await this.o.functions.listFunctions()).map((f) => f.codeSha256));
      await this.o.code.collect(live);
    } catch (err) {
      this.o.onError?.(err, 'collecting unused code');
    }
  }

  private async deployExtracted(
    sha256: string,
    archive: Buffer,
    project: string,
    dir: string,
    opts: DeployOptions,
  ): Promise<DeployResponse> {
    const verify = opts.verify ?? true;
    const keep = opts.keep ?? {};
    const manifestPath = join(dir, 'nimbus.yaml');
    if (!existsSync(manifestPath)) {
      throw new ManifestError(
        'nimbus.yaml',
        '',
        'is missing from the uploaded archive; deploy a folder that has one',
      );
    }
    const manifest = parseManifest(readFileSync(manifestPath, 'utf8'), 'nimbus.yaml');
    checkHandlers(manifest, dir);
    checkNetwork(manifest, this.o.pool.isolatesNetwork);
    checkDestinations(manifest, project, this.o.registry);
    checkQueues(manifest, await this.o.queues.listQueues(project), this.o.registry.all(project));
    const existingTables = await this.o.tables.listTables(project);
    const tablePlan = planTables(manifest, existingTables);
    checkPermissions(manifest, existingTables);
    const existingBuckets = new Set((await this.o.objects.listBuckets(project)).map((b) => b.name));
    checkBucketPermissions(manifest, existingBuckets);
    checkTableTriggers(manifest, existingTables);
    if (this.o.secrets)
      checkSecrets(manifest, new Set((await this.o.secrets.list(project)).map((s) => s.name)));
    const conflict = this.o.checkRoutes?.(manifest, project);
    if (typeof conflict === 'string') throw new ManifestError('nimbus.yaml', 'events', conflict);
    if (conflict) throw new ManifestError('nimbus.yaml', conflict.field, conflict.problem);
    const held = reservationsOf(manifest, project);
    if (this.o.quotas) await this.checkQuota(manifest, project, held);
    if (this.o.maxConcurrency !== undefined)
      checkReservations(held, this.o.maxConcurrency, this.o.registry.all(), [...this.pending]);
    // Last, being the slow one: every other refusal is known without starting a process.
    let warnings: string[] = [];
    const checkLoad = this.o.checkLoad;
    if (verify && checkLoad) {
      // A function that keeps its version keeps its code, which was checked when it was deployed.
      const kept = (f: FunctionConfig): boolean => {
        const now = this.o.registry.get({ project, name: f.name });
        return (
          now !== undefined &&
          Object.hasOwn(keep, f.name) &&
          keep[f.name] === now.version &&
          canonicalJson(now.config) === canonicalJson(f)
        );
      };
      const loadWarnings = await checkLoads(
        manifest.functions.filter((f) => !kept(f)),
        dir,
        (f) => checkLoad(pendingVersion(project, manifest.service, f, sha256, archive.length)),
      );
      warnings = [...loadWarnings, ...(await deployWarnings(dir))];
    }
    this.pending.add(held);
    try {
      return { ...(await this.apply(manifest, project, sha256, archive, tablePlan, keep)), warnings };
    } finally {
      // The registry has been reloaded (or the deploy failed): it alone holds the reservations now.
      this.pending.delete(held);
    }
  }

  /** The project's functions as they will be after this deploy (others' pending deploys aside) fit its quota. */
  private async checkQuota(manifest: Manifest, project: string, mine: Reservations): Promise<void> {
    // Only what reserves or provisions can break a quota; the rest always deploys.
    if (!manifest.functions.some((f) => f.reservedConcurrency || f.provisionedConcurrency)) return;
    const caps = await this.o.quotas!(project);
    if (caps.concurrency === null && caps.memoryMB === null) return;
    const kept = this.o.registry
      .all(project)
      .filter((f) => !supersedes(mine, f))
      .map((f) => f.config);
    const misfit = quotaMisfit(project, caps, [...manifest.functions, ...kept]);
    if (misfit) {
      const inManifest = manifest.functions.some((f) => f.name === misfit.function);
      throw new ManifestError(
        'nimbus.yaml',
        inManifest ? `functions.${misfit.function}.${misfit.field}` : 'functions',
        misfit.message,
        misfit.hint,
      );
    }
  }

  private async apply(
    manifest: Manifest,
    project: string,
    sha256: string,
    archive: Buffer,
    tablePlan: ReturnType<typeof planTables>,
    keep: Readonly<Record<string, number>>,
  ): Promise<Omit<DeployResponse, 'warnings'>> {
    // Tables first: a function of this deploy never runs before the tables it was deployed with exist.
    for (const def of tablePlan.create) await this.o.tables.createTable(project, def, manifest.service);
    for (const def of tablePlan.update) await this.o.tables.updateTable(project, def);
    const bucketsCreated: string[] = [];
    for (const b of manifest.buckets) {
      if (await this.o.objects.createBucket(project, b, manifest.service)) bucketsCreated.push(b);
    }
    const result: DeployResult = await this.o.functions.deploy({
      project,
      service: manifest.service,
      functions: manifest.functions,
      queues: manifest.queues,
      code: { sha256, archive },
      keep,
    });
    for (const f of manifest.functions) this.o.pool.ensure(f.memory, f.ephemeralStorage, f.network);
    await this.o.registry.load();
    await this.o.triggersSynced?.();
    return {
      service: manifest.service,
      functions: result.functions.map((f) => ({
        ...f,
        routes: (manifest.functions.find((m) => m.name === f.name)?.routes ?? []).map(
          (r) => `${r.method} ${r.path}`,
        ),
      })),
      removed: result.removed,
      queues: result.queues,
      tables: {
        created: tablePlan.create.map((t) => t.name),
        updated: tablePlan.update.map((t) => t.name),
        unchanged: tablePlan.unchanged,
      },
      buckets: {
        created: bucketsCreated,
        unchanged: manifest.buckets.filter((b) => !bucketsCreated.includes(b)),
      },
    };
  }
}

/** In 1 MB steps with a turn of the event loop between: hashing 15 MB at once holds the gateway 50 ms. */
async function sha256Of(archive: Buffer): Promise<string> {
  const hash = createHash('sha256');
  const STEP = 1024 * 1024;
  for (let at = 0; at < archive.length; at += STEP) {
    hash.update(archive.subarray(at, at + STEP));
    if (at + STEP < archive.length) await new Promise<void>((r) => setImmediate(r));
  }
  return hash.digest('hex');
}

/** A version as it will be once deployed, for loading it before it is. */
function pendingVersion(
  project: string,
  service: string,
  config: FunctionConfig,
  sha256: string,
  size: number,
): FunctionVersion {
  return {
    project,
    name: config.name,
    service,
    version: 0,
    config,
    codeSha256: sha256,
    codeSize: size,
    deployedAt: 0,
  };
}

/** The reservations a deploy leaves for its service's functions, and the functions it replaces or removes. */
interface Reservations {
  project: string;
  service: string;
  names: ReadonlySet<string>;
  reserved: { name: string; reserved: number }[];
}

function reservationsOf(manifest: Manifest, project: string): Reservations {
  return {
    project,
    service: manifest.service,
    names: new Set(manifest.functions.map((f) => f.name)),
    reserved: manifest.functions.flatMap((f) =>
      f.reservedConcurrency ? [{ name: f.name, reserved: f.reservedConcurrency }] : [],
    ),
  };
}

/** Whether a deploy replaces or removes a deployed function: it is of the same service, or has its name. */
function supersedes(r: Reservations, f: FunctionVersion): boolean {
  return f.project === r.project && (f.service === r.service || r.names.has(f.name));
}

/**
 * As Lambda: reservations, over every project on the node, must leave the unreserved pool its minimum. Only a
 * deploy that raises the total is refused, so a node whose limit was lowered below its reservations can still
 * deploy what lowers them or reserves nothing.
 */
function checkReservations(
  mine: Reservations,
  limit: number,
  deployed: readonly FunctionVersion[],
  pending: readonly Reservations[],
): void {
  const sum = (rs: readonly { reserved: number }[]) => rs.reduce((n, r) => n + r.reserved, 0);
  const reservedOf = (f: FunctionVersion) => f.config.reservedConcurrency ?? 0;
  // Deployed functions a running deploy is about to replace count as what that deploy reserves instead.
  const standing = deployed.filter((f) => reservedOf(f) > 0 && !pending.some((p) => supersedes(p, f)));
  const others = standing.filter((f) => !supersedes(mine, f));
  const pendingTotal = sum(pending.flatMap((p) => p.reserved));
  const othersTotal = others.reduce((n, f) => n + reservedOf(f), 0) + pendingTotal;
  const before = standing.reduce((n, f) => n + reservedOf(f), 0) + pendingTotal;
  const total = othersTotal + sum(mine.reserved);
  const min = minUnreservedConcurrency(limit);
  if (limit - total >= min || total <= before) return;
  const largest = [...mine.reserved].sort((a, b) => b.reserved - a.reserved)[0]!;
  const named = [...others]
    .sort((a, b) => reservedOf(b) - reservedOf(a))
    .map((f) => `${f.project}/${f.name} ${reservedOf(f)}`);
  const elsewhere =
    named.length === 0 ? '' : `: ${named.slice(0, 3).join(', ')}${named.length > 3 ? ', ...' : ''}`;
  throw new ManifestError(
    'nimbus.yaml',
    `functions.${largest.name}.concurrency.reserved`,
    `reservations would total ${total} of the node's concurrency limit of ${limit} (this service ` +
      `${sum(mine.reserved)}, other functions ${othersTotal}${elsewhere}), leaving ${Math.max(0, limit - total)} ` +
      `for unreserved functions; at least ${min} (a tenth of the limit, at least 1) must stay unreserved`,
    `reserve at most ${Math.max(0, largest.reserved - (total - (limit - min)))} for ${largest.name}, lower ` +
      `concurrency.reserved of another function, or raise NIMBUS_MAX_CONCURRENCY`,
  );
}

/** A handler whose module file is absent fails every invocation; say so at deploy time instead. */
function checkHandlers(manifest: Manifest, dir: string): void {
  for (const f of manifest.functions) {
    const lastSlash = f.handler.lastIndexOf('/');
    const dot = f.handler.indexOf('.', lastSlash + 1);
    const modulePath = f.handler.slice(0, dot);
    const candidates = ['', '.js', '.mjs', '.cjs'].map((ext) => join(dir, modulePath + ext));
    if (!candidates.some((p) => existsSync(p) && statSync(p).isFile())) {
      throw new ManifestError(
        'nimbus.yaml',
        `functions.${f.name}.handler`,
        `module "${modulePath}" was not found in the uploaded service (looked for ${modulePath}.js, .mjs and .cjs); check the path, or deploy with \`nimbus deploy\`, which bundles .ts files`,
      );
    }
  }
}

/** A destination must be a function that exists once this deploy is done: declared here, or deployed by
 *  another service of the project (this service's undeclared functions are about to be removed). */
function checkDestinations(manifest: Manifest, project: string, registry: FunctionRegistry): void {
  const declared = new Set(manifest.functions.map((f) => f.name));
  for (const f of manifest.functions) {
    for (const key of ['onSuccess', 'onFailure'] as const) {
      if (f.async?.[key]?.queue !== undefined) continue;
      const target = f.async?.[key]?.function;
      if (target === undefined || declared.has(target)) continue;
      const other = registry.get({ project, name: target });
      if (other && other.service !== manifest.service) continue;
      throw new ManifestError(
        'nimbus.yaml',
        `functions.${f.name}.async.${key}.function`,
        `names "${target}", which is not a function of this service or of another deployed service; declare it or deploy it first`,
      );
    }
  }
}

/**
 * Every queue the manifest names (a trigger, a dead-letter queue, a destination) must exist once this deploy
 * is done: declared here, or a queue of another service or of the API (this service's undeclared queues are
 * about to be removed). Lambda's rules that need the queue's settings are checked against whichever it is.
 */
function checkQueues(
  manifest: Manifest,
  stored: readonly (QueueConfig & { service: string | null })[],
  deployed: readonly FunctionVersion[],
): void {
  const declared = new Map(manifest.queues.map((q) => [q.name, q]));
  const usable = (name: string): QueueConfig | undefined => {
    const own = declared.get(name);
    if (own) return own;
    const other = stored.find((q) => q.name === name);
    return other && other.service !== manifest.service ? other : undefined;
  };
  const missing = (name: string) =>
    `names queue "${name}", which is not declared under "queues:" here or by another deployed service; declare it or deploy it first`;
  for (const q of manifest.queues) {
    if (q.deadLetterQueue === undefined) continue;
    const dlq = usable(q.deadLetterQueue);
    const field = `queues.${q.name}.deadLetterQueue`;
    if (!dlq) throw new ManifestError('nimbus.yaml', field, missing(q.deadLetterQueue));
    if (dlq.fifo !== q.fifo) {
      throw new ManifestError(
        'nimbus.yaml',
        field,
        `names "${dlq.name}", a ${dlq.fifo ? 'FIFO' : 'standard'} queue; the dead-letter queue of a ${q.fifo ? 'FIFO' : 'standard'} queue must be ${q.fifo ? 'FIFO' : 'standard'} too`,
      );
    }
  }
  for (const f of manifest.functions) {
    for (const t of f.queueTriggers ?? []) {
      const field = `functions.${f.name}.events`;
      const q = usable(t.queue);
      if (!q) throw new ManifestError('nimbus.yaml', field, missing(t.queue));
      checkTrigger('nimbus.yaml', field, t, q, f.timeout);
    }
    for (const key of ['onSuccess', 'onFailure'] as const) {
      const name = f.async?.[key]?.queue;
      if (name === undefined) continue;
      const field = `functions.${f.name}.async.${key}.queue`;
      const q = usable(name);
      if (!q) throw new ManifestError('nimbus.yaml', field, missing(name));
      if (q.fifo) {
        throw new ManifestError(
          'nimbus.yaml',
          field,
          `names "${name}", a FIFO queue; destinations must be standard queues, as on Lambda`,
        );
      }
    }
  }
  // A queue this deploy removes must not be one that another service still uses.
  for (const q of stored) {
    if (q.service !== manifest.service || declared.has(q.name)) continue;
    const user =
      deployed.find(
        (f) =>
          f.service !== manifest.service &&
          ((f.config.queueTriggers ?? []).some((t) => t.queue === q.name) ||
            f.config.async?.onSuccess?.queue === q.name ||
            f.config.async?.onFailure?.queue === q.name),
      )?.name ?? stored.find((o) => o.service !== manifest.service && o.deadLetterQueue === q.name)?.name;
    if (user !== undefined) {
      throw new ManifestError(
        'nimbus.yaml',
        'queues',
        `no longer declares queue "${q.name}", but "${user}" of another service still uses it; keep declaring it, or change "${user}" first`,
      );
    }
  }
}

/** What the deploy does to the tables it declares; refuses what would change a key or take another's table. */
function planTables(
  manifest: Manifest,
  existing: readonly StoredTable[],
): { create: TableDef[]; update: TableDef[]; unchanged: string[] } {
  const plan = { create: [] as TableDef[], update: [] as TableDef[], unchanged: [] as string[] };
  for (const def of manifest.tables) {
    const t = existing.find((x) => x.name === def.name);
    const field = `tables.${def.name}`;
    if (!t) {
      plan.create.push(def);
      continue;
    }
    if (t.service !== manifest.service && t.service !== null) {
      throw new ManifestError(
        'nimbus.yaml',
        field,
        `table "${def.name}" belongs to service "${t.service}"; use it from there (permissions: { tables: [${def.name}] }) or rename this one`,
      );
    }
    if (JSON.stringify(t.key) !== JSON.stringify(def.key)) {
      throw new ManifestError(
        'nimbus.yaml',
        `${field}.key`,
        `changes the key of table "${def.name}" (DynamoDB cannot change a table's key); declare a new table, or drop this one with \`nimbus table rm ${def.name}\` first (its items are deleted)`,
      );
    }
    const same =
      JSON.stringify(t.indexes) === JSON.stringify(def.indexes) &&
      JSON.stringify(t.stream ?? null) === JSON.stringify(def.stream ?? null) &&
      (t.ttlAttribute ?? null) === (def.ttlAttribute ?? null);
    if (same) plan.unchanged.push(def.name);
    else
      plan.update.push({
        ...def,
        billingMode: t.billingMode,
        ...(t.provisionedThroughput ? { provisionedThroughput: t.provisionedThroughput } : {}),
      });
  }
  return plan;
}

/** A function may be granted tables of this deploy or of the project; a name that is neither is a typo. */
function checkPermissions(manifest: Manifest, existing: readonly StoredTable[]): void {
  const known = new Set([...manifest.tables.map((t) => t.name), ...existing.map((t) => t.name)]);
  for (const f of manifest.functions) {
    for (const t of f.permissions?.tables ?? []) {
      if (!known.has(t)) {
        throw new ManifestError(
          'nimbus.yaml',
          `functions.${f.name}.permissions.tables`,
          `names table "${t}", which is not declared under "tables:" here and does not exist in the project; declare it or create it first`,
        );
      }
    }
  }
}

/** Buckets a function is granted must be declared here or exist in the project. */
function checkBucketPermissions(manifest: Manifest, existing: ReadonlySet<string>): void {
  for (const f of manifest.functions) {
    for (const b of f.permissions?.buckets ?? []) {
      if (!existing.has(b) && !manifest.buckets.includes(b)) {
        throw new ManifestError(
          'nimbus.yaml',
          `functions.${f.name}.permissions.buckets`,
          `names bucket "${b}", which is not declared under "buckets:" here and does not exist in the project; declare it or create it first`,
        );
      }
    }
  }
}

/** Every ${secret:NAME} in an environment must name a secret of the project: the function would not start. */
function checkSecrets(manifest: Manifest, existing: ReadonlySet<string>): void {
  for (const f of manifest.functions) {
    for (const { variable, secret } of secretRefs(f.environment)) {
      if (existing.has(secret)) continue;
      throw new ManifestError(
        'nimbus.yaml',
        `functions.${f.name}.environment.${variable}`,
        `references secret "${secret}", which does not exist in this project; set it with \`nimbus secret set ${secret}\` and deploy again`,
      );
    }
  }
}

/** A table trigger needs a table with a stream: declared here (checked with the manifest) or in the project. */
function checkTableTriggers(manifest: Manifest, existing: readonly StoredTable[]): void {
  const declared = new Set(manifest.tables.map((t) => t.name));
  for (const f of manifest.functions) {
    for (const t of f.tableTriggers ?? []) {
      if (declared.has(t.table)) continue;
      const stored = existing.find((x) => x.name === t.table);
      const field = `functions.${f.name}.events`;
      if (!stored) {
        throw new ManifestError(
          'nimbus.yaml',
          field,
          `names table "${t.table}", which is not declared under "tables:" here and does not exist in the project; declare it (with stream: true) or create it first`,
        );
      }
      if (!stored.stream) {
        throw new ManifestError(
          'nimbus.yaml',
          field,
          `table "${t.table}" has no stream; turn one on (stream: true where it is declared, or UpdateTable with a StreamSpecification)`,
        );
      }
    }
  }
}

/**
 * `network: none` is a promise the fallback level cannot keep (its sandboxes share the host's network), so
 * such a deploy is refused there rather than run with the network it asked to be without.
 */
function checkNetwork(manifest: Manifest, isolated: boolean): void {
  if (isolated) return;
  const f = manifest.functions.find((fn) => fn.network === 'none');
  if (!f) return;
  throw new ManifestError(
    'nimbus.yaml',
    `functions.${f.name}.network`,
    '"none" needs bubblewrap, which this node lacks: functions here share the host\'s network (install bubblewrap, see docs/security.md)',
  );
}

// FunctionStore on SQLite: functions, their immutable versions and the content-addressed code archives.
import { canonicalJson } from '../canonical-json.js';
import { ProjectNotFoundError, StoreConflictError } from '../errors.js';
import type { AsyncConfig } from '../../config/manifest.js';
import type {
  DeployInput,
  DeployResult,
  FunctionRef,
  FunctionStore,
  FunctionVersion,
  StoredAsyncConfig,
} from '../types.js';
import { checkDeployInput, sameCode } from '../validate.js';
import type { SqliteDb } from './db.js';
import { SqliteQueueDeploy } from './queues.js';
import { toVersion, type VersionRow } from '../rows.js';

type Ref = [project: string, name: string];

/** Archives above this size are written in chunks of it: about 1-9 ms per chunk measured, where the whole
 *  15 MB blob took 250-350 ms in one write. */
const CHUNK_BYTES = 256 * 1024;
const EMPTY = Buffer.alloc(0);

interface AsyncRow {
  project: string;
  name: string;
  config: string;
  updated_at: number;
}

export class SqliteFunctionStore implements FunctionStore {
  private readonly st: ReturnType<typeof prepare>;
  private readonly queues: SqliteQueueDeploy;

  constructor(private readonly s: SqliteDb) {
    this.st = prepare(s);
    this.queues = new SqliteQueueDeploy(s);
  }

  /** Archives being written in chunks by a deploy that has not committed yet: the collector spares them. */
  private readonly staging = new Map<string, number>();

  async deploy(input: DeployInput): Promise<DeployResult> {
    this.s.assertOpen();
    await checkDeployInput(input);
    const configs = input.functions.map((f) => canonicalJson(f));
    const { sha256 } = input.code;
    // A large archive goes in first, a chunk per turn of the event loop and synced off the thread, so the
    // deploy's own transaction (fsynced, on the thread) writes only rows.
    const chunked = input.code.archive.length > CHUNK_BYTES && this.needsCode(input, configs);
    if (chunked) {
      this.staging.set(sha256, (this.staging.get(sha256) ?? 0) + 1);
      const resume = this.s.pauseCheckpoints();
      try {
        await this.stageChunks(sha256, input.code.archive);
        await this.s.checkpointOffThread();
        await this.s.synced();
      } catch (err) {
        this.unstage(sha256);
        throw err;
      } finally {
        resume();
      }
    }
    try {
      this.s.assertOpen();
      const deployedAt = this.s.clock.now();
      return this.s.durably(() =>
        this.s.transaction(() => this.deployRows(input, configs, deployedAt, chunked)),
      );
    } finally {
      if (chunked) this.unstage(sha256);
    }
  }

  /** Whether this deploy stores its archive: the code is new and some function gets a version of it. */
  private needsCode(input: DeployInput, configs: string[]): boolean {
    if (this.st.codeExists.get(input.code.sha256)) return false;
    return input.functions.some((f, i) => {
      const fn = this.st.getFunctionRow.get(input.project, f.name);
      const latest = fn ? this.st.getVersionRow.get(input.project, f.name, fn.latest_version) : undefined;
      return !(
        latest &&
        latest.config === configs[i] &&
        sameCode(input, f.name, latest.version, latest.code_sha256)
      );
    });
  }

  private async stageChunks(sha256: string, archive: Buffer): Promise<void> {
    for (let seq = 0, at = 0; at < archive.length; seq++, at += CHUNK_BYTES) {
      this.s.assertOpen();
      this.st.putChunk.run(sha256, seq, archive.subarray(at, at + CHUNK_BYTES));
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** The last deploy staging an archive is done: chunks no code row took (a refused or unchanged deploy,
   *  or a deploy of the same bytes that stored them first) are dropped. */
  private unstage(sha256: string): void {
    const n = (this.staging.get(sha256) ?? 1) - 1;
    if (n > 0) return void this.staging.set(sha256, n);
    this.staging.delete(sha256);
    if (this.s.closed) return;
    if (!this.st.codeExists.get(sha256)) this.st.deleteChunks.run(sha256);
  }

  /** Chunks whose archive no code row holds (a deploy cut short by a crash), except those being staged. */
  private collectChunks(): void {
    for (const { sha256 } of this.st.orphanChunks.all()) {
      if (!this.staging.has(sha256)) this.st.deleteChunks.run(sha256);
    }
  }

  /** The body of deploy's transaction; a throw anywhere rolls back everything it wrote. */
  private deployRows(
    input: DeployInput,
    configs: string[],
    deployedAt: number,
    chunked: boolean,
  ): DeployResult {
    const { project, service, functions, code } = input;
    if (!this.st.projectExists.get(project)) throw new ProjectNotFoundError(project);
    for (const f of functions) {
      const owner = this.st.getFunctionRow.get(project, f.name);
      if (owner && owner.service !== service) throw new StoreConflictError(f.name, owner.service, service);
    }
    const queues = this.queues.apply(input, deployedAt);
    const results: DeployResult['functions'] = [];
    let codeStored = false;
    for (const [i, f] of functions.entries()) {
      const config = configs[i]!;
      const fn = this.st.getFunctionRow.get(project, f.name);
      const latest = fn ? this.st.getVersionRow.get(project, f.name, fn.latest_version) : undefined;
      if (latest && latest.config === config && sameCode(input, f.name, latest.version, latest.code_sha256)) {
        results.push({ name: f.name, version: latest.version, changed: false });
        continue;
      }
      if (!codeStored && !this.st.codeExists.get(code.sha256)) {
        // Chunked: the bytes are in code_chunks already, and the row's empty blob says so.
        this.st.insertCode.run(code.sha256, code.archive.length, chunked ? EMPTY : code.archive);
      }
      codeStored = true;
      const version = (fn?.latest_version ?? 0) + 1;
      this.st.upsertFunction.run(project, f.name, service, version);
      this.st.insertVersion.run(
        project,
        f.name,
        version,
        service,
        config,
        code.sha256,
        code.archive.length,
        deployedAt,
      );
      results.push({ name: f.name, version, changed: true });
    }
    const declared = new Set(functions.map((f) => f.name));
    const removed = this.st.functionsOfService
      .all(project, service)
      .map((r) => r.name)
      .filter((n) => !declared.has(n))
      .sort();
    for (const name of removed) this.deleteFunctionRows(project, name);
    if (removed.length > 0) this.gcCode();
    return { functions: results, removed, queues };
  }

  async getFunction(ref: FunctionRef): Promise<FunctionVersion | undefined> {
    this.s.assertOpen();
    const row = this.st.getLatest.get(ref.project, ref.name);
    return row && toVersion(row);
  }

  async getVersion(ref: FunctionRef, version: number): Promise<FunctionVersion | undefined> {
    this.s.assertOpen();
    const row = this.st.getVersionRow.get(ref.project, ref.name, version);
    return row && toVersion(row);
  }

  async listFunctions(project?: string): Promise<FunctionVersion[]> {
    this.s.assertOpen();
    const rows = project === undefined ? this.st.listLatest.all() : this.st.listLatestOf.all(project);
    return rows.map(toVersion);
  }

  async removeFunction(ref: FunctionRef): Promise<boolean> {
    this.s.assertOpen();
    return this.s.durably(() =>
      this.s.transaction((): boolean => {
        const existed = this.deleteFunctionRows(ref.project, ref.name);
        if (existed) this.gcCode();
        return existed;
      }),
    );
  }

  async getCode(sha256: string): Promise<Buffer | undefined> {
    this.s.assertOpen();
    const archive = this.st.getCode.get(sha256)?.archive;
    if (archive === undefined || archive.length > 0) return archive;
    return Buffer.concat(this.st.getChunks.all(sha256).map((c) => c.bytes));
  }

  private gcCode(): void {
    this.st.gcCode.run();
    this.collectChunks();
  }

  async pruneVersions(): Promise<string[]> {
    this.s.assertOpen();
    return this.s.durably(() =>
      this.s.transaction((): string[] => {
        this.st.deleteSuperseded.run();
        const deleted = this.st.deleteUnusedCode.all().map((r) => r.sha256);
        this.collectChunks();
        return deleted;
      }),
    );
  }

  async setAsyncConfig(ref: FunctionRef, config: AsyncConfig | null): Promise<boolean> {
    this.s.assertOpen();
    return this.s.durably(() =>
      this.s.transaction(() => {
        if (!this.st.functionExists.get(ref.project, ref.name)) return false;
        if (config === null) this.st.deleteAsync.run(ref.project, ref.name);
        else this.st.upsertAsync.run(ref.project, ref.name, canonicalJson(config), this.s.clock.now());
        return true;
      }),
    );
  }

  async listAsyncConfigs(project?: string): Promise<StoredAsyncConfig[]> {
    this.s.assertOpen();
    const rows = project === undefined ? this.st.listAsync.all() : this.st.listAsyncOf.all(project);
    return rows.map((r) => ({
      project: r.project,
      name: r.name,
      config: JSON.parse(r.config) as AsyncConfig,
      updatedAt: r.updated_at,
    }));
  }

  /** Deletes dependent rows explicitly rather than trusting ON DELETE CASCADE, which needs foreign_keys on. */
  private deleteFunctionRows(project: string, name: string): boolean {
    this.st.deleteAsync.run(project, name);
    this.st.deleteVersions.run(project, name);
    return this.st.deleteFunction.run(project, name).changes > 0;
  }
}

function prepare({ db }: SqliteDb) {
  const cols = 'v.project, v.name, v.version, v.service, v.config, v.code_sha256, v.code_size, v.deployed_at';
  const latest = `SELECT ${cols} FROM functions f
    JOIN versions v ON v.project = f.project AND v.name = f.name AND v.version = f.latest_version`;
  return {
    projectExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM projects WHERE name = ?'),
    getFunctionRow: db.prepare<Ref, { service: string; latest_version: number }>(
      'SELECT service, latest_version FROM functions WHERE project = ? AND name = ?',
    ),
    functionsOfService: db.prepare<[string, string], { name: string }>(
      'SELECT name FROM functions WHERE project = ? AND service = ?',
    ),
    upsertFunction: db.prepare<[string, string, string, number]>(
      `INSERT INTO functions (project, name, service, latest_version) VALUES (?, ?, ?, ?)
       ON CONFLICT (project, name) DO UPDATE SET service = excluded.service, latest_version = excluded.latest_version`,
    ),
    deleteFunction: db.prepare<Ref>('DELETE FROM functions WHERE project = ? AND name = ?'),
    getVersionRow: db.prepare<[string, string, number], VersionRow>(
      `SELECT ${cols} FROM versions v WHERE v.project = ? AND v.name = ? AND v.version = ?`,
    ),
    getLatest: db.prepare<Ref, VersionRow>(`${latest} WHERE f.project = ? AND f.name = ?`),
    listLatest: db.prepare<[], VersionRow>(`${latest} ORDER BY f.project, f.name`),
    listLatestOf: db.prepare<[string], VersionRow>(`${latest} WHERE f.project = ? ORDER BY f.name`),
    insertVersion: db.prepare<[string, string, number, string, string, string, number, number]>(
      `INSERT INTO versions (project, name, version, service, config, code_sha256, code_size, deployed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deleteVersions: db.prepare<Ref>('DELETE FROM versions WHERE project = ? AND name = ?'),
    functionExists: db.prepare<Ref, { one: number }>(
      'SELECT 1 AS one FROM functions WHERE project = ? AND name = ?',
    ),
    upsertAsync: db.prepare<[string, string, string, number]>(
      `INSERT INTO async_configs (project, name, config, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (project, name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
    ),
    deleteAsync: db.prepare<Ref>('DELETE FROM async_configs WHERE project = ? AND name = ?'),
    listAsync: db.prepare<[], AsyncRow>('SELECT * FROM async_configs ORDER BY project, name'),
    listAsyncOf: db.prepare<[string], AsyncRow>(
      'SELECT * FROM async_configs WHERE project = ? ORDER BY name',
    ),
    codeExists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM code WHERE sha256 = ?'),
    insertCode: db.prepare<[string, number, Buffer]>(
      'INSERT INTO code (sha256, size, archive) VALUES (?, ?, ?)',
    ),
    getCode: db.prepare<[string], { archive: Buffer }>('SELECT archive FROM code WHERE sha256 = ?'),
    putChunk: db.prepare<[string, number, Buffer]>(
      'INSERT OR REPLACE INTO code_chunks (sha256, seq, bytes) VALUES (?, ?, ?)',
    ),
    getChunks: db.prepare<[string], { bytes: Buffer }>(
      'SELECT bytes FROM code_chunks WHERE sha256 = ? ORDER BY seq',
    ),
    deleteChunks: db.prepare<[string]>('DELETE FROM code_chunks WHERE sha256 = ?'),
    orphanChunks: db.prepare<[], { sha256: string }>(
      `SELECT DISTINCT sha256 FROM code_chunks c WHERE NOT EXISTS (SELECT 1 FROM code WHERE code.sha256 = c.sha256)`,
    ),
    deleteSuperseded: db.prepare<[]>(
      `DELETE FROM versions WHERE version < (SELECT f.latest_version FROM functions f
         WHERE f.project = versions.project AND f.name = versions.name)`,
    ),
    deleteUnusedCode: db.prepare<[], { sha256: string }>(
      `DELETE FROM code WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.code_sha256 = code.sha256)
       RETURNING sha256`,
    ),
    gcCode: db.prepare<[]>(
      'DELETE FROM code WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.code_sha256 = code.sha256)',
    ),
  };
}

// FunctionStore on PostgreSQL: a deploy is one transaction, serialized per project across every node by a
// transaction-scoped advisory lock, so two nodes deploying at once produce versions 1 and 2, never a clash.
import type { PoolClient } from 'pg';
import type { Clock } from '../../clock/clock.js';
import { canonicalJson } from '../canonical-json.js';
import { ProjectNotFoundError, StoreConflictError } from '../errors.js';
import type {
  DeployInput,
  DeployResult,
  FunctionRef,
  FunctionStore,
  FunctionVersion,
  StoredAsyncConfig,
} from '../types.js';
import type { AsyncConfig } from '../../config/manifest.js';
import { checkDeployInput, sameCode } from '../validate.js';
import { type Db, pgCode } from './db.js';
import { deployQueues } from './queues.js';
import { toVersion, type VersionRow } from '../rows.js';

interface OwnerRow {
  name: string;
  service: string;
  latest_version: number;
  config: string;
  code_sha256: string;
}

const VERSION_COLS =
  'v.project, v.name, v.version, v.service, v.config, v.code_sha256, v.code_size, v.deployed_at';
const LATEST = `FROM functions f JOIN versions v
  ON v.project = f.project AND v.name = f.name AND v.version = f.latest_version`;

export class PgFunctionStore implements FunctionStore {
  constructor(
    private readonly db: Db,
    private readonly schema: string,
    private readonly clock: Clock,
  ) {}

  async deploy(input: DeployInput): Promise<DeployResult> {
    this.db.assertOpen();
    await checkDeployInput(input);
    const configs = input.functions.map((f) => canonicalJson(f));
    // One time for the whole deploy, taken before waiting for the project lock, as the caller saw it start.
    const deployedAt = this.clock.now();
    return this.db.tx(async (c) => {
      await lockProject(c, this.schema, input.project);
      const exists = await c.query('SELECT 1 FROM projects WHERE name = $1', [input.project]);
      if (exists.rowCount === 0) throw new ProjectNotFoundError(input.project);
      const current = await currentRows(c, input);
      const queues = await deployQueues(c, input, deployedAt);
      const functions = await writeVersions(c, input, configs, current, deployedAt);
      // Their versions go with them (ON DELETE CASCADE); their archives go in collectCode if nothing else uses them.
      const removed = await c.query<{ name: string }>(
        `DELETE FROM functions WHERE project = $1 AND service = $2 AND NOT (name = ANY($3::text[]))
         RETURNING name`,
        [input.project, input.service, input.functions.map((f) => f.name)],
      );
      await collectCode(c);
      return { functions, removed: removed.rows.map((r) => r.name).sort(), queues };
    });
  }

  async getFunction(ref: FunctionRef): Promise<FunctionVersion | undefined> {
    const rows = await this.db.rows<VersionRow>(
      `SELECT ${VERSION_COLS} ${LATEST} WHERE f.project = $1 AND f.name = $2`,
      [ref.project, ref.name],
    );
    return rows[0] && toVersion(rows[0]);
  }

  async getVersion(ref: FunctionRef, version: number): Promise<FunctionVersion | undefined> {
    // pg would reject a fraction or NaN for an integer column; no such version exists either way.
    if (!Number.isSafeInteger(version)) return undefined;
    const rows = await this.db.rows<VersionRow>(
      `SELECT ${VERSION_COLS} FROM versions v WHERE v.project = $1 AND v.name = $2 AND v.version = $3`,
      [ref.project, ref.name, version],
    );
    return rows[0] && toVersion(rows[0]);
  }

  async listFunctions(project?: string): Promise<FunctionVersion[]> {
    const rows =
      project === undefined
        ? await this.db.rows<VersionRow>(`SELECT ${VERSION_COLS} ${LATEST} ORDER BY f.project, f.name`)
        : await this.db.rows<VersionRow>(
            `SELECT ${VERSION_COLS} ${LATEST} WHERE f.project = $1 ORDER BY f.name`,
            [project],
          );
    return rows.map(toVersion);
  }

  async removeFunction(ref: FunctionRef): Promise<boolean> {
    return this.db.tx(async (c) => {
      await lockProject(c, this.schema, ref.project);
      const res = await c.query('DELETE FROM functions WHERE project = $1 AND name = $2', [
        ref.project,
        ref.name,
      ]);
      if (res.rowCount === 0) return false;
      await collectCode(c);
      return true;
    });
  }

  async pruneVersions(): Promise<string[]> {
    return this.db.tx(async (c) => {
      await c.query(
        `DELETE FROM versions v USING functions f
         WHERE f.project = v.project AND f.name = v.name AND v.version < f.latest_version`,
      );
      return collectCode(c);
    });
  }

  async getCode(sha256: string): Promise<Buffer | undefined> {
    const rows = await this.db.rows<{ archive: Buffer }>('SELECT archive FROM code WHERE sha256 = $1', [
      sha256,
    ]);
    return rows[0]?.archive;
  }

  async setAsyncConfig(ref: FunctionRef, config: AsyncConfig | null): Promise<boolean> {
    this.db.assertOpen();
    return this.db.tx(async (c) => {
      const fn = await c.query('SELECT 1 FROM functions WHERE project = $1 AND name = $2 FOR UPDATE', [
        ref.project,
        ref.name,
      ]);
      if (fn.rowCount === 0) return false;
      if (config === null) {
        await c.query('DELETE FROM async_configs WHERE project = $1 AND name = $2', [ref.project, ref.name]);
      } else {
        await c.query(
          `INSERT INTO async_configs (project, name, config, updated_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (project, name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`,
          [ref.project, ref.name, canonicalJson(config), this.clock.now()],
        );
      }
      return true;
    });
  }

  async listAsyncConfigs(project?: string): Promise<StoredAsyncConfig[]> {
    this.db.assertOpen();
    const rows = await this.db.rows<{ project: string; name: string; config: string; updated_at: number }>(
      project === undefined
        ? 'SELECT * FROM async_configs ORDER BY project, name'
        : 'SELECT * FROM async_configs WHERE project = $1 ORDER BY name',
      project === undefined ? [] : [project],
    );
    return rows.map((r) => ({
      project: r.project,
      name: r.name,
      config: JSON.parse(r.config) as AsyncConfig,
      updatedAt: r.updated_at,
    }));
  }
}

/** Deploys, removals and project removal of one project run one at a time, whichever node runs them. */
export async function lockProject(c: PoolClient, schema: string, project: string): Promise<void> {
  await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`nimbus:deploy:${schema}:${project}`]);
}

/** The functions this deploy names that exist already, with their latest version; refuses other owners. */
async function currentRows(c: PoolClient, input: DeployInput): Promise<Map<string, OwnerRow>> {
  const res = await c.query<OwnerRow>(
    `SELECT f.name, f.service, f.latest_version, v.config, v.code_sha256 ${LATEST}
     WHERE f.project = $1 AND f.name = ANY($2::text[])`,
    [input.project, input.functions.map((f) => f.name)],
  );
  const byName = new Map(res.rows.map((r) => [r.name, r]));
  for (const f of input.functions) {
    const owner = byName.get(f.name);
    if (owner && owner.service !== input.service) {
      throw new StoreConflictError(f.name, owner.service, input.service);
    }
  }
  return byName;
}

async function writeVersions(
  c: PoolClient,
  input: DeployInput,
  configs: string[],
  current: Map<string, OwnerRow>,
  deployedAt: number,
): Promise<DeployResult['functions']> {
  const { project, service, functions, code } = input;
  const results: DeployResult['functions'] = [];
  let codeStored = false;
  for (const [i, f] of functions.entries()) {
    const config = configs[i]!;
    const latest = current.get(f.name);
    if (
      latest &&
      latest.config === config &&
      sameCode(input, f.name, latest.latest_version, latest.code_sha256)
    ) {
      results.push({ name: f.name, version: latest.latest_version, changed: false });
      continue;
    }
    // Only a changed function needs the archive: an unchanged redeploy never uploads it again.
    if (!codeStored) await storeCode(c, code);
    codeStored = true;
    const version = (latest?.latest_version ?? 0) + 1;
    await c.query(
      `INSERT INTO functions (project, name, service, latest_version) VALUES ($1, $2, $3, $4)
       ON CONFLICT (project, name) DO UPDATE SET service = excluded.service, latest_version = excluded.latest_version`,
      [project, f.name, service, version],
    );
    await c.query(
      `INSERT INTO versions (project, name, version, service, config, code_sha256, code_size, deployed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [project, f.name, version, service, config, code.sha256, code.archive.length, deployedAt],
    );
    results.push({ name: f.name, version, changed: true });
  }
  return results;
}

async function storeCode(c: PoolClient, code: DeployInput['code']): Promise<void> {
  // KEY SHARE keeps another project's code collection from deleting the row before this deploy commits, and
  // the check spares sending a large archive the database holds already.
  const has = await c.query('SELECT 1 FROM code WHERE sha256 = $1 FOR KEY SHARE', [code.sha256]);
  if (has.rowCount !== 0) return;
  await c.query(
    'INSERT INTO code (sha256, size, archive) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING',
    [code.sha256, code.archive.length, code.archive],
  );
}

/**
 * Deletes archives no version uses. Rows a concurrent deploy (of another project) holds are skipped, and a
 * reference committed meanwhile only undoes the collection, never the deploy: the next one collects them.
 */
async function collectCode(c: PoolClient): Promise<string[]> {
  await c.query('SAVEPOINT collect_code');
  try {
    const res = await c.query<{ sha256: string }>(
      `DELETE FROM code WHERE sha256 IN (
         SELECT c.sha256 FROM code c
         WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.code_sha256 = c.sha256)
         FOR UPDATE OF c SKIP LOCKED)
       RETURNING sha256`,
    );
    await c.query('RELEASE SAVEPOINT collect_code');
    return res.rows.map((r) => r.sha256);
  } catch (err) {
    if (pgCode(err) !== '23503') throw err;
    await c.query('ROLLBACK TO SAVEPOINT collect_code');
    return [];
  }
}

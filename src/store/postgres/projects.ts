// ProjectStore and NodeRegistry on PostgreSQL: the namespace every entity lives in, and the nodes sharing it.
import type { Clock } from '../../clock/clock.js';
import { ProjectNotEmptyError, ProjectNotFoundError } from '../errors.js';
import {
  DEFAULT_PROJECT,
  type NodeInfo,
  type NodeRegistry,
  type Project,
  type ProjectQuota,
  type ProjectQuotaUsage,
  type ProjectStore,
  type QuotaStore,
} from '../types.js';
import { pgCode, type Db } from './db.js';
import { lockProject } from './functions.js';
import {
  toProject,
  toNode,
  toQuotaUsage,
  checkProjectName,
  checkQuotaPatch,
  type ProjectRow,
  type NodeRow,
  type QuotaRow,
} from '../rows.js';

export class PgProjectStore implements ProjectStore {
  constructor(
    private readonly db: Db,
    private readonly schema: string,
    private readonly clock: Clock,
  ) {}

  async ensure(name: string): Promise<Project> {
    this.db.assertOpen();
    checkProjectName(name);
    // One statement, so two nodes ensuring the same project both get the row that won.
    const rows = await this.db.rows<ProjectRow>(
      `WITH ins AS (
         INSERT INTO projects (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING *)
       SELECT name, created_at FROM ins UNION ALL SELECT name, created_at FROM projects WHERE name = $1`,
      [name, this.clock.now()],
    );
    if (rows[0]) return toProject(rows[0]);
    // The insert lost a race to a concurrent one whose row this statement's snapshot could not see yet.
    const again = await this.get(name);
    if (!again) throw new Error(`project "${name}" could not be created`);
    return again;
  }

  async get(name: string): Promise<Project | undefined> {
    const rows = await this.db.rows<ProjectRow>('SELECT name, created_at FROM projects WHERE name = $1', [
      name,
    ]);
    return rows[0] && toProject(rows[0]);
  }

  async list(): Promise<Project[]> {
    const rows = await this.db.rows<ProjectRow>('SELECT name, created_at FROM projects ORDER BY name');
    return rows.map(toProject);
  }

  async remove(name: string): Promise<boolean> {
    this.db.assertOpen();
    // Every single-tenant caller relies on it existing, so it is refused rather than answered false.
    if (name === DEFAULT_PROJECT) throw new Error(`the "${DEFAULT_PROJECT}" project cannot be removed`);
    return this.db.tx(async (c) => {
      // The deploy lock: no deploy can add a function between the count and the delete.
      await lockProject(c, this.schema, name);
      const res = await c.query<{ n: number }>('SELECT count(*) AS n FROM functions WHERE project = $1', [
        name,
      ]);
      const n = res.rows[0]?.n ?? 0;
      if (n > 0) throw new ProjectNotEmptyError(name, n);
      // Its API keys (control and gateway, with their counters) go with it; anything else it still holds
      // (tables, buckets, queues, access keys) keeps it.
      await c.query('DELETE FROM api_keys WHERE project = $1', [name]);
      await c.query('DELETE FROM gateway_keys WHERE project = $1', [name]);
      try {
        return ((await c.query('DELETE FROM projects WHERE name = $1', [name])).rowCount ?? 0) > 0;
      } catch (err) {
        if (pgCode(err) !== '23503') throw err;
        throw new ProjectNotEmptyError(name, 0, 'tables, buckets, queues or access keys');
      }
    });
  }
}

export class PgNodeRegistry implements NodeRegistry {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  /** A node registering again under its id has restarted: its start time is now, not its first one. */
  async register(node: Omit<NodeInfo, 'startedAt' | 'heartbeatAt'>): Promise<NodeInfo> {
    const now = this.clock.now();
    const rows = await this.db.rows<NodeRow>(
      `INSERT INTO nodes (id, host, pid, started_at, heartbeat_at, gateway_url, api_url)
       VALUES ($1, $2, $3, $4, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
         heartbeat_at = excluded.heartbeat_at, gateway_url = excluded.gateway_url, api_url = excluded.api_url
       RETURNING *`,
      [node.id, node.host, node.pid, now, node.gatewayUrl, node.apiUrl],
    );
    return toNode(rows[0]!);
  }

  async heartbeat(id: string): Promise<boolean> {
    const n = await this.db.changed('UPDATE nodes SET heartbeat_at = $2 WHERE id = $1', [
      id,
      this.clock.now(),
    ]);
    return n > 0;
  }

  /** Alive includes a heartbeat exactly aliveWithinMs old; the cast admits a window with a fraction. */
  async list(opts: { aliveWithinMs?: number } = {}): Promise<NodeInfo[]> {
    const rows =
      opts.aliveWithinMs === undefined
        ? await this.db.rows<NodeRow>('SELECT * FROM nodes ORDER BY id')
        : await this.db.rows<NodeRow>(
            'SELECT * FROM nodes WHERE heartbeat_at >= $1::double precision ORDER BY id',
            [this.clock.now() - opts.aliveWithinMs],
          );
    return rows.map(toNode);
  }

  async remove(id: string): Promise<boolean> {
    return (await this.db.changed('DELETE FROM nodes WHERE id = $1', [id])) > 0;
  }
}

const QUOTA_SELECT = `SELECT p.name AS project, q.concurrency, q.memory_mb, q.storage_bytes AS storage_quota,
    u.storage_bytes
  FROM projects p LEFT JOIN project_quotas q ON q.project = p.name LEFT JOIN project_usage u ON u.project = p.name`;

export class PgQuotaStore implements QuotaStore {
  constructor(private readonly db: Db) {}

  async get(project: string): Promise<ProjectQuotaUsage> {
    const rows = await this.db.rows<QuotaRow>(`${QUOTA_SELECT} WHERE p.name = $1`, [project]);
    if (!rows[0]) throw new ProjectNotFoundError(project);
    return toQuotaUsage(rows[0]);
  }

  async list(): Promise<ProjectQuotaUsage[]> {
    return (await this.db.rows<QuotaRow>(`${QUOTA_SELECT} ORDER BY p.name`)).map(toQuotaUsage);
  }

  async set(project: string, patch: Partial<ProjectQuota>): Promise<ProjectQuotaUsage> {
    this.db.assertOpen();
    checkQuotaPatch(patch);
    return this.db.tx(async (c) => {
      // The project's row locked: two operators setting different fields both keep theirs.
      const found = await c.query<QuotaRow>(`${QUOTA_SELECT} WHERE p.name = $1 FOR UPDATE OF p`, [project]);
      if (!found.rows[0]) throw new ProjectNotFoundError(project);
      const q = { ...toQuotaUsage(found.rows[0]).quota, ...patch };
      await c.query(
        `INSERT INTO project_quotas (project, concurrency, memory_mb, storage_bytes) VALUES ($1, $2, $3, $4)
         ON CONFLICT (project) DO UPDATE SET concurrency = excluded.concurrency,
           memory_mb = excluded.memory_mb, storage_bytes = excluded.storage_bytes`,
        [project, q.concurrency, q.memoryMB, q.storageBytes],
      );
      const after = await c.query<QuotaRow>(`${QUOTA_SELECT} WHERE p.name = $1`, [project]);
      return toQuotaUsage(after.rows[0]!);
    });
  }
}

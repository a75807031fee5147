// ProjectStore and NodeRegistry on SQLite.
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
import { ProjectNotEmptyError, ProjectNotFoundError } from '../errors.js';
import type { SqliteDb } from './db.js';
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

const OTHERS = 'tables, buckets, queues or access keys';

export class SqliteProjectStore implements ProjectStore {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      insert: db.prepare<[string, number]>(
        'INSERT INTO projects (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
      ),
      get: db.prepare<[string], ProjectRow>('SELECT name, created_at FROM projects WHERE name = ?'),
      list: db.prepare<[], ProjectRow>('SELECT name, created_at FROM projects ORDER BY name'),
      functions: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM functions WHERE project = ?'),
      remove: db.prepare<[string]>('DELETE FROM projects WHERE name = ?'),
      removeKeys: db.prepare<[string]>('DELETE FROM api_keys WHERE project = ?'),
      removeGatewayUsage: db.prepare<[string]>('DELETE FROM gateway_key_usage WHERE project = ?'),
      removeGatewayKeys: db.prepare<[string]>('DELETE FROM gateway_keys WHERE project = ?'),
    };
  }

  async ensure(name: string): Promise<Project> {
    this.s.assertOpen();
    checkProjectName(name);
    this.s.durably(() => this.st.insert.run(name, this.s.clock.now()));
    return toProject(this.st.get.get(name)!);
  }

  async get(name: string): Promise<Project | undefined> {
    this.s.assertOpen();
    const row = this.st.get.get(name);
    return row && toProject(row);
  }

  async list(): Promise<Project[]> {
    this.s.assertOpen();
    return this.st.list.all().map(toProject);
  }

  async remove(name: string): Promise<boolean> {
    this.s.assertOpen();
    if (name === DEFAULT_PROJECT) throw new Error('the default project cannot be removed');
    return this.s.durably(() =>
      this.s.transaction(() => {
        const n = this.st.functions.get(name)?.n ?? 0;
        if (n > 0) throw new ProjectNotEmptyError(name, n);
        // Its API keys (control and gateway) go with it; anything else it still holds (tables, buckets,
        // queues, access keys) keeps it.
        this.st.removeKeys.run(name);
        this.st.removeGatewayUsage.run(name);
        this.st.removeGatewayKeys.run(name);
        try {
          return this.st.remove.run(name).changes > 0;
        } catch (err) {
          if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_FOREIGNKEY') throw err;
          throw new ProjectNotEmptyError(name, 0, OTHERS);
        }
      }),
    );
  }
}

export class SqliteNodeRegistry implements NodeRegistry {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      upsert: db.prepare(
        `INSERT INTO nodes (id, host, pid, started_at, heartbeat_at, gateway_url, api_url)
         VALUES (@id, @host, @pid, @now, @now, @gatewayUrl, @apiUrl)
         ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,
           heartbeat_at = excluded.heartbeat_at, gateway_url = excluded.gateway_url, api_url = excluded.api_url`,
      ),
      heartbeat: db.prepare<[number, string]>('UPDATE nodes SET heartbeat_at = ? WHERE id = ?'),
      get: db.prepare<[string], NodeRow>('SELECT * FROM nodes WHERE id = ?'),
      list: db.prepare<[number], NodeRow>('SELECT * FROM nodes WHERE heartbeat_at >= ? ORDER BY id'),
      remove: db.prepare<[string]>('DELETE FROM nodes WHERE id = ?'),
    };
  }

  async register(node: Omit<NodeInfo, 'startedAt' | 'heartbeatAt'>): Promise<NodeInfo> {
    this.s.assertOpen();
    this.st.upsert.run({ ...node, now: this.s.clock.now() });
    return toNode(this.st.get.get(node.id)!);
  }

  async heartbeat(id: string): Promise<boolean> {
    this.s.assertOpen();
    return this.st.heartbeat.run(this.s.clock.now(), id).changes > 0;
  }

  async list(opts: { aliveWithinMs?: number } = {}): Promise<NodeInfo[]> {
    this.s.assertOpen();
    const since = opts.aliveWithinMs === undefined ? -Infinity : this.s.clock.now() - opts.aliveWithinMs;
    return this.st.list.all(since).map(toNode);
  }

  async remove(id: string): Promise<boolean> {
    this.s.assertOpen();
    return this.st.remove.run(id).changes > 0;
  }
}

const QUOTA_SELECT = `SELECT p.name AS project, q.concurrency, q.memory_mb, q.storage_bytes AS storage_quota,
    u.storage_bytes
  FROM projects p LEFT JOIN project_quotas q ON q.project = p.name LEFT JOIN project_usage u ON u.project = p.name`;

export class SqliteQuotaStore implements QuotaStore {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      get: db.prepare<[string], QuotaRow>(`${QUOTA_SELECT} WHERE p.name = ?`),
      list: db.prepare<[], QuotaRow>(`${QUOTA_SELECT} ORDER BY p.name`),
      upsert: db.prepare(
        `INSERT INTO project_quotas (project, concurrency, memory_mb, storage_bytes)
         VALUES (@project, @concurrency, @memoryMB, @storageBytes)
         ON CONFLICT (project) DO UPDATE SET concurrency = excluded.concurrency,
           memory_mb = excluded.memory_mb, storage_bytes = excluded.storage_bytes`,
      ),
    };
  }

  async get(project: string): Promise<ProjectQuotaUsage> {
    this.s.assertOpen();
    const row = this.st.get.get(project);
    if (!row) throw new ProjectNotFoundError(project);
    return toQuotaUsage(row);
  }

  async list(): Promise<ProjectQuotaUsage[]> {
    this.s.assertOpen();
    return this.st.list.all().map(toQuotaUsage);
  }

  async set(project: string, patch: Partial<ProjectQuota>): Promise<ProjectQuotaUsage> {
    this.s.assertOpen();
    checkQuotaPatch(patch);
    return this.s.durably(() =>
      this.s.transaction(() => {
        const row = this.st.get.get(project);
        if (!row) throw new ProjectNotFoundError(project);
        const quota = { ...toQuotaUsage(row).quota, ...patch };
        this.st.upsert.run({ project, ...quota });
        return toQuotaUsage(this.st.get.get(project)!);
      }),
    );
  }
}

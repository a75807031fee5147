// ApiKeyStore and AuditLog on PostgreSQL.
import type { Clock } from '../../clock/clock.js';
import { toApiKey, toAudit, type ApiKeyRow, type AuditRow } from '../rows.js';
import type { ApiKeyStore, AuditEntry, AuditLog, AuditQuery, NewApiKey, StoredApiKey } from '../types.js';
import { pgCode, type Db } from './db.js';

export class PgApiKeyStore implements ApiKeyStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async create(k: NewApiKey): Promise<StoredApiKey> {
    this.db.assertOpen();
    try {
      const rows = await this.db.rows<ApiKeyRow>(
        `INSERT INTO api_keys (id, project, name, role, key_hash, sigv4_ciphertext, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
        [k.id, k.project, k.name, k.role, k.keyHash, k.sigv4Ciphertext, this.clock.now()],
      );
      return toApiKey(rows[0]!);
    } catch (err) {
      if (pgCode(err) === '23505') throw new Error(`API key "${k.id}" exists already`, { cause: err });
      throw err;
    }
  }

  async get(id: string): Promise<StoredApiKey | undefined> {
    const rows = await this.db.rows<ApiKeyRow>('SELECT * FROM api_keys WHERE id = $1', [id]);
    return rows[0] && toApiKey(rows[0]);
  }

  async list(project: string): Promise<StoredApiKey[]> {
    const rows = await this.db.rows<ApiKeyRow>(
      'SELECT * FROM api_keys WHERE project = $1 ORDER BY created_at, id',
      [project],
    );
    return rows.map(toApiKey);
  }

  async remove(project: string, id: string): Promise<boolean> {
    this.db.assertOpen();
    return (await this.db.changed('DELETE FROM api_keys WHERE project = $1 AND id = $2', [project, id])) > 0;
  }

  async rotate(
    project: string,
    id: string,
    keyHash: string,
    sigv4Ciphertext: string,
  ): Promise<StoredApiKey | undefined> {
    this.db.assertOpen();
    const rows = await this.db.rows<ApiKeyRow>(
      `UPDATE api_keys SET key_hash = $1, sigv4_ciphertext = $2, rotated_at = $3
       WHERE project = $4 AND id = $5 RETURNING *`,
      [keyHash, sigv4Ciphertext, this.clock.now(), project, id],
    );
    return rows[0] && toApiKey(rows[0]);
  }
}

export class PgAuditLog implements AuditLog {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async append(e: Omit<AuditEntry, 'seq' | 'at'>): Promise<AuditEntry> {
    this.db.assertOpen();
    const rows = await this.db.rows<AuditRow>(
      `INSERT INTO audit (at, project, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)
       RETURNING *`,
      [
        this.clock.now(),
        e.project,
        e.actor,
        e.action,
        e.target,
        e.detail === null ? null : JSON.stringify(e.detail),
      ],
    );
    return toAudit(rows[0]!);
  }

  async list(q: AuditQuery): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (q.project !== undefined) add('project = ?', q.project);
    if (q.since !== undefined) add('at >= ?', q.since);
    if (q.action !== undefined) add('action = ?', q.action);
    params.push(q.limit ?? 100);
    const rows = await this.db.rows<AuditRow>(
      `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(toAudit);
  }
}

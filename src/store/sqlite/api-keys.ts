// ApiKeyStore and AuditLog on SQLite. Both change rarely and matter after a power cut (a key shown once must
// keep working; an audit entry must not vanish after its action landed), so every write is durable.
import { toApiKey, toAudit, type ApiKeyRow, type AuditRow } from '../rows.js';
import type { ApiKeyStore, AuditEntry, AuditLog, AuditQuery, NewApiKey, StoredApiKey } from '../types.js';
import type { SqliteDb } from './db.js';

export class SqliteApiKeyStore implements ApiKeyStore {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      insert: db.prepare(
        `INSERT INTO api_keys (id, project, name, role, key_hash, sigv4_ciphertext, created_at)
         VALUES (@id, @project, @name, @role, @keyHash, @sigv4Ciphertext, @now)`,
      ),
      get: db.prepare<[string], ApiKeyRow>('SELECT * FROM api_keys WHERE id = ?'),
      list: db.prepare<[string], ApiKeyRow>(
        'SELECT * FROM api_keys WHERE project = ? ORDER BY created_at, id',
      ),
      remove: db.prepare<[string, string]>('DELETE FROM api_keys WHERE project = ? AND id = ?'),
      rotate: db.prepare<[string, string, number, string, string]>(
        'UPDATE api_keys SET key_hash = ?, sigv4_ciphertext = ?, rotated_at = ? WHERE project = ? AND id = ?',
      ),
    };
  }

  async create(k: NewApiKey): Promise<StoredApiKey> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.durably(() =>
      this.s.transaction(() => {
        if (this.st.get.get(k.id)) throw new Error(`API key "${k.id}" exists already`);
        this.st.insert.run({ ...k, now });
        return toApiKey(this.st.get.get(k.id)!);
      }),
    );
  }

  async get(id: string): Promise<StoredApiKey | undefined> {
    this.s.assertOpen();
    const row = this.st.get.get(id);
    return row && toApiKey(row);
  }

  async list(project: string): Promise<StoredApiKey[]> {
    this.s.assertOpen();
    return this.st.list.all(project).map(toApiKey);
  }

  async remove(project: string, id: string): Promise<boolean> {
    this.s.assertOpen();
    return this.s.durably(() => this.st.remove.run(project, id).changes > 0);
  }

  async rotate(
    project: string,
    id: string,
    keyHash: string,
    sigv4Ciphertext: string,
  ): Promise<StoredApiKey | undefined> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.durably(() => {
      if (this.st.rotate.run(keyHash, sigv4Ciphertext, now, project, id).changes === 0) return undefined;
      return toApiKey(this.st.get.get(id)!);
    });
  }
}

export class SqliteAuditLog implements AuditLog {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      insert: db.prepare(
        `INSERT INTO audit (at, project, actor, action, target, detail)
         VALUES (@at, @project, @actor, @action, @target, @detail) RETURNING *`,
      ),
    };
  }

  async append(e: Omit<AuditEntry, 'seq' | 'at'>): Promise<AuditEntry> {
    this.s.assertOpen();
    const row = this.s.durably(
      () =>
        this.st.insert.get({
          ...e,
          at: this.s.clock.now(),
          detail: e.detail === null ? null : JSON.stringify(e.detail),
        }) as AuditRow,
    );
    return toAudit(row);
  }

  async list(q: AuditQuery): Promise<AuditEntry[]> {
    this.s.assertOpen();
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown): void => {
      where.push(sql);
      params.push(v);
    };
    if (q.project !== undefined) add('project = ?', q.project);
    if (q.since !== undefined) add('at >= ?', q.since);
    if (q.action !== undefined) add('action = ?', q.action);
    params.push(q.limit ?? 100);
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    return this.s.db
      .prepare<unknown[], AuditRow>(sql)
      .all(...params)
      .map(toAudit);
  }
}

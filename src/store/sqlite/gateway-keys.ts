// GatewayKeyStore on SQLite. Keys are written durably (a key shown once must keep working after a power cut);
// counters change every flush of every node, so they are written without an fsync of their own: a crash may
// roll a settle back, which leaves its requests counted as reserved (the quota is still never passed).
import { toGatewayKey, toGatewayKeyUsage, type GatewayKeyRow, type GatewayKeyUsageRow } from '../rows.js';
import type { GatewayKeyStore, GatewayKeyUsage, NewGatewayKey, StoredGatewayKey } from '../types.js';
import type { SqliteDb } from './db.js';

export class SqliteGatewayKeyStore implements GatewayKeyStore {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      insert: db.prepare(
        `INSERT INTO gateway_keys (id, project, name, plan, key_hash, created_at)
         VALUES (@id, @project, @name, @plan, @keyHash, @now)`,
      ),
      get: db.prepare<[string], GatewayKeyRow>('SELECT * FROM gateway_keys WHERE id = ?'),
      list: db.prepare<[string], GatewayKeyRow>(
        'SELECT * FROM gateway_keys WHERE project = ? ORDER BY created_at, id',
      ),
      removeUsage: db.prepare<[string, string]>(
        'DELETE FROM gateway_key_usage WHERE project = ? AND key_id = ?',
      ),
      remove: db.prepare<[string, string]>('DELETE FROM gateway_keys WHERE project = ? AND id = ?'),
      exists: db.prepare<[string, string], { id: string }>(
        'SELECT id FROM gateway_keys WHERE project = ? AND id = ?',
      ),
      open: db.prepare<[string, string, string]>(
        `INSERT INTO gateway_key_usage (project, key_id, period, used, reserved) VALUES (?, ?, ?, 0, 0)
         ON CONFLICT DO NOTHING`,
      ),
      counter: db.prepare<[string, string, string], GatewayKeyUsageRow>(
        'SELECT * FROM gateway_key_usage WHERE project = ? AND key_id = ? AND period = ?',
      ),
      addReserved: db.prepare<[number, string, string, string]>(
        'UPDATE gateway_key_usage SET reserved = reserved + ? WHERE project = ? AND key_id = ? AND period = ?',
      ),
      settle: db.prepare<[number, number, string, string, string]>(
        `UPDATE gateway_key_usage SET used = used + ?, reserved = max(0, reserved - ?)
         WHERE project = ? AND key_id = ? AND period = ?`,
      ),
      usage: db.prepare<[string], GatewayKeyUsageRow>(
        'SELECT * FROM gateway_key_usage WHERE project = ? ORDER BY key_id, period',
      ),
      usageOf: db.prepare<[string, string], GatewayKeyUsageRow>(
        'SELECT * FROM gateway_key_usage WHERE project = ? AND key_id = ? ORDER BY period',
      ),
    };
  }

  async create(k: NewGatewayKey): Promise<StoredGatewayKey> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.durably(() =>
      this.s.transaction(() => {
        if (this.st.get.get(k.id)) throw new Error(`gateway API key "${k.id}" exists already`);
        this.st.insert.run({ ...k, now });
        return toGatewayKey(this.st.get.get(k.id)!);
      }),
    );
  }

  async get(id: string): Promise<StoredGatewayKey | undefined> {
    this.s.assertOpen();
    const row = this.st.get.get(id);
    return row && toGatewayKey(row);
  }

  async list(project: string): Promise<StoredGatewayKey[]> {
    this.s.assertOpen();
    return this.st.list.all(project).map(toGatewayKey);
  }

  async remove(project: string, id: string): Promise<boolean> {
    this.s.assertOpen();
    return this.s.durably(() =>
      this.s.transaction(() => {
        // Dependent rows go explicitly rather than by ON DELETE CASCADE, which needs foreign_keys on.
        this.st.removeUsage.run(project, id);
        return this.st.remove.run(project, id).changes > 0;
      }),
    );
  }

  async reserve(project: string, keyId: string, period: string, n: number, limit: number): Promise<number> {
    this.s.assertOpen();
    return this.s.transaction(() => {
      if (!this.st.exists.get(project, keyId)) return 0;
      this.st.open.run(project, keyId, period);
      const c = toGatewayKeyUsage(this.st.counter.get(project, keyId, period)!);
      const granted = Math.max(0, Math.min(n, limit - c.used - c.reserved));
      if (granted > 0) this.st.addReserved.run(granted, project, keyId, period);
      return granted;
    });
  }

  async settle(
    project: string,
    keyId: string,
    period: string,
    admitted: number,
    released: number,
  ): Promise<void> {
    this.s.assertOpen();
    this.st.settle.run(admitted, admitted + released, project, keyId, period);
  }

  async usage(project: string, keyId?: string): Promise<GatewayKeyUsage[]> {
    this.s.assertOpen();
    const rows = keyId === undefined ? this.st.usage.all(project) : this.st.usageOf.all(project, keyId);
    return rows.map(toGatewayKeyUsage);
  }
}

// GatewayKeyStore on PostgreSQL: nodes reserve blocks of a key's quota with one row lock each, so two nodes
// reserving at once never set aside more than the limit between them.
import type { Clock } from '../../clock/clock.js';
import { toGatewayKey, toGatewayKeyUsage, type GatewayKeyRow, type GatewayKeyUsageRow } from '../rows.js';
import type { GatewayKeyStore, GatewayKeyUsage, NewGatewayKey, StoredGatewayKey } from '../types.js';
import { pgCode, type Db } from './db.js';

export class PgGatewayKeyStore implements GatewayKeyStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async create(k: NewGatewayKey): Promise<StoredGatewayKey> {
    this.db.assertOpen();
    try {
      const rows = await this.db.rows<GatewayKeyRow>(
        `INSERT INTO gateway_keys (id, project, name, plan, key_hash, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [k.id, k.project, k.name, k.plan, k.keyHash, this.clock.now()],
      );
      return toGatewayKey(rows[0]!);
    } catch (err) {
      if (pgCode(err) === '23505')
        throw new Error(`gateway API key "${k.id}" exists already`, { cause: err });
      throw err;
    }
  }

  async get(id: string): Promise<StoredGatewayKey | undefined> {
    const rows = await this.db.rows<GatewayKeyRow>('SELECT * FROM gateway_keys WHERE id = $1', [id]);
    return rows[0] && toGatewayKey(rows[0]);
  }

  async list(project: string): Promise<StoredGatewayKey[]> {
    const rows = await this.db.rows<GatewayKeyRow>(
      'SELECT * FROM gateway_keys WHERE project = $1 ORDER BY created_at, id',
      [project],
    );
    return rows.map(toGatewayKey);
  }

  async remove(project: string, id: string): Promise<boolean> {
    this.db.assertOpen();
    // Its counters go by ON DELETE CASCADE.
    return (
      (await this.db.changed('DELETE FROM gateway_keys WHERE project = $1 AND id = $2', [project, id])) > 0
    );
  }

  async reserve(project: string, keyId: string, period: string, n: number, limit: number): Promise<number> {
    this.db.assertOpen();
    // The counter row is created if missing (only for a live key of the project), then locked and grown by
    // what is left of the limit, up to n.
    await this.db.changed(
      `INSERT INTO gateway_key_usage (project, key_id, period, used, reserved)
       SELECT $1, $2, $3, 0, 0 WHERE EXISTS (SELECT 1 FROM gateway_keys WHERE project = $1 AND id = $2)
       ON CONFLICT DO NOTHING`,
      [project, keyId, period],
    );
    // The subquery's row lock makes a second reserver wait and then see the first one's reservation.
    const rows = await this.db.rows<{ granted: number | string }>(
      `UPDATE gateway_key_usage u
       SET reserved = u.reserved + g.granted
       FROM (
         SELECT project, key_id, period,
           GREATEST(0, LEAST($4::bigint, $5::bigint - used - reserved)) AS granted
         FROM gateway_key_usage WHERE project = $1 AND key_id = $2 AND period = $3 FOR UPDATE
       ) g
       WHERE u.project = g.project AND u.key_id = g.key_id AND u.period = g.period
       RETURNING g.granted`,
      [project, keyId, period, n, limit],
    );
    return rows[0] ? Number(rows[0].granted) : 0;
  }

  async settle(
    project: string,
    keyId: string,
    period: string,
    admitted: number,
    released: number,
  ): Promise<void> {
    this.db.assertOpen();
    await this.db.changed(
      `UPDATE gateway_key_usage SET used = used + $1, reserved = GREATEST(0, reserved - $2)
       WHERE project = $3 AND key_id = $4 AND period = $5`,
      [admitted, admitted + released, project, keyId, period],
    );
  }

  async usage(project: string, keyId?: string): Promise<GatewayKeyUsage[]> {
    const rows =
      keyId === undefined
        ? await this.db.rows<GatewayKeyUsageRow>(
            'SELECT * FROM gateway_key_usage WHERE project = $1 ORDER BY key_id, period',
            [project],
          )
        : await this.db.rows<GatewayKeyUsageRow>(
            'SELECT * FROM gateway_key_usage WHERE project = $1 AND key_id = $2 ORDER BY period',
            [project, keyId],
          );
    return rows.map(toGatewayKeyUsage);
  }
}

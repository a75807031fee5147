// SecretStore on PostgreSQL. One upsert decides between nodes setting the same secret at once: the last
// writer's value stays, and exactly one of them hears that it created the secret.
import type { Clock } from '../../clock/clock.js';
import { secretNameProblem } from '../../config/secret-refs.js';
import { toSecret, toSecretWithCiphertext, type SecretRow } from '../rows.js';
import type { SecretStore, StoredSecret } from '../types.js';
import type { Db } from './db.js';

export class PgSecretStore implements SecretStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async put(
    project: string,
    name: string,
    ciphertext: string,
  ): Promise<{ secret: StoredSecret; created: boolean }> {
    this.db.assertOpen();
    const problem = secretNameProblem(name);
    if (problem) throw new Error(problem);
    // xmax is 0 on a row this statement inserted, and the updating transaction's id on one it updated.
    const rows = await this.db.rows<SecretRow & { created: boolean }>(
      `INSERT INTO secrets (project, name, ciphertext, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (project, name) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, updated_at = EXCLUDED.updated_at
       RETURNING *, (xmax = 0) AS created`,
      [project, name, ciphertext, this.clock.now()],
    );
    const row = rows[0]!;
    return { secret: toSecret(row), created: row.created };
  }

  async get(project: string, name: string): Promise<(StoredSecret & { ciphertext: string }) | undefined> {
    const rows = await this.db.rows<SecretRow>('SELECT * FROM secrets WHERE project = $1 AND name = $2', [
      project,
      name,
    ]);
    return rows[0] && toSecretWithCiphertext(rows[0]);
  }

  async list(project: string): Promise<StoredSecret[]> {
    const rows = await this.db.rows<SecretRow>('SELECT * FROM secrets WHERE project = $1 ORDER BY name', [
      project,
    ]);
    return rows.map(toSecret);
  }

  async remove(project: string, name: string): Promise<boolean> {
    return (
      (await this.db.changed('DELETE FROM secrets WHERE project = $1 AND name = $2', [project, name])) > 0
    );
  }
}

// CredentialStore on PostgreSQL. The primary key and the (project, function_name) unique constraint decide
// between nodes issuing keys at once; the loser hears which one it collided with.
import type { Clock } from '../../clock/clock.js';
import { toCredential, toSecretCredential, type CredentialRow } from '../rows.js';
import type { CredentialStore, NewCredential, Permissions, StoredCredential } from '../types.js';
import { pgCode, type Db } from './db.js';

type Secret = StoredCredential & { secretCiphertext: string };

export class PgCredentialStore implements CredentialStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async create(c: NewCredential): Promise<StoredCredential> {
    this.db.assertOpen();
    try {
      const rows = await this.db.rows<CredentialRow>(
        `INSERT INTO credentials (access_key_id, project, name, kind, function_name, permissions, secret_ciphertext,
           created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
        [
          c.accessKeyId,
          c.project,
          c.name,
          c.kind,
          c.functionName,
          c.permissions === null ? null : JSON.stringify(c.permissions),
          c.secretCiphertext,
          this.clock.now(),
        ],
      );
      return toCredential(rows[0]!);
    } catch (err) {
      if (pgCode(err) !== '23505') throw err;
      const constraint = (err as { constraint?: string }).constraint ?? '';
      throw new Error(
        constraint.endsWith('_pkey')
          ? `access key "${c.accessKeyId}" exists already`
          : `function "${c.functionName}" has an access key already`,
        { cause: err },
      );
    }
  }

  async get(accessKeyId: string): Promise<Secret | undefined> {
    const rows = await this.db.rows<CredentialRow>('SELECT * FROM credentials WHERE access_key_id = $1', [
      accessKeyId,
    ]);
    return rows[0] && toSecretCredential(rows[0]);
  }

  async list(project: string): Promise<StoredCredential[]> {
    const rows = await this.db.rows<CredentialRow>(
      'SELECT * FROM credentials WHERE project = $1 ORDER BY name, access_key_id',
      [project],
    );
    return rows.map(toCredential);
  }

  async remove(project: string, accessKeyId: string): Promise<boolean> {
    const n = await this.db.changed('DELETE FROM credentials WHERE project = $1 AND access_key_id = $2', [
      project,
      accessKeyId,
    ]);
    return n > 0;
  }

  async forFunction(project: string, functionName: string): Promise<Secret | undefined> {
    const rows = await this.db.rows<CredentialRow>(
      'SELECT * FROM credentials WHERE project = $1 AND function_name = $2',
      [project, functionName],
    );
    return rows[0] && toSecretCredential(rows[0]);
  }

  async setPermissions(accessKeyId: string, permissions: Permissions | null): Promise<boolean> {
    const n = await this.db.changed('UPDATE credentials SET permissions = $2 WHERE access_key_id = $1', [
      accessKeyId,
      permissions === null ? null : JSON.stringify(permissions),
    ]);
    return n > 0;
  }
}

// CredentialStore on SQLite. Keys change rarely (a deploy, `nimbus credentials`), and an issued key must not
// vanish in a power cut after its secret was shown, so every change is durable.
import { toCredential, toSecretCredential, type CredentialRow } from '../rows.js';
import type { CredentialStore, NewCredential, Permissions, StoredCredential } from '../types.js';
import type { SqliteDb } from './db.js';

type Secret = StoredCredential & { secretCiphertext: string };

export class SqliteCredentialStore implements CredentialStore {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      insert: db.prepare(
        `INSERT INTO credentials (access_key_id, project, name, kind, function_name, permissions,
           secret_ciphertext, created_at)
         VALUES (@accessKeyId, @project, @name, @kind, @functionName, @permissions, @secret, @now)`,
      ),
      get: db.prepare<[string], CredentialRow>('SELECT * FROM credentials WHERE access_key_id = ?'),
      list: db.prepare<[string], CredentialRow>(
        'SELECT * FROM credentials WHERE project = ? ORDER BY name, access_key_id',
      ),
      remove: db.prepare<[string, string]>('DELETE FROM credentials WHERE project = ? AND access_key_id = ?'),
      forFunction: db.prepare<[string, string], CredentialRow>(
        'SELECT * FROM credentials WHERE project = ? AND function_name = ?',
      ),
      setPermissions: db.prepare<[string | null, string]>(
        'UPDATE credentials SET permissions = ? WHERE access_key_id = ?',
      ),
    };
  }

  async create(c: NewCredential): Promise<StoredCredential> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.durably(() =>
      this.s.transaction(() => {
        if (this.st.get.get(c.accessKeyId)) throw new Error(`access key "${c.accessKeyId}" exists already`);
        if (c.functionName !== null && this.st.forFunction.get(c.project, c.functionName)) {
          throw new Error(`function "${c.functionName}" has an access key already`);
        }
        this.st.insert.run({
          accessKeyId: c.accessKeyId,
          project: c.project,
          name: c.name,
          kind: c.kind,
          functionName: c.functionName,
          permissions: c.permissions === null ? null : JSON.stringify(c.permissions),
          secret: c.secretCiphertext,
          now,
        });
        return toCredential(this.st.get.get(c.accessKeyId)!);
      }),
    );
  }

  async get(accessKeyId: string): Promise<Secret | undefined> {
    this.s.assertOpen();
    const row = this.st.get.get(accessKeyId);
    return row && toSecretCredential(row);
  }

  async list(project: string): Promise<StoredCredential[]> {
    this.s.assertOpen();
    return this.st.list.all(project).map(toCredential);
  }

  async remove(project: string, accessKeyId: string): Promise<boolean> {
    this.s.assertOpen();
    return this.s.durably(() => this.st.remove.run(project, accessKeyId).changes > 0);
  }

  async forFunction(project: string, functionName: string): Promise<Secret | undefined> {
    this.s.assertOpen();
    const row = this.st.forFunction.get(project, functionName);
    return row && toSecretCredential(row);
  }

  async setPermissions(accessKeyId: string, permissions: Permissions | null): Promise<boolean> {
    this.s.assertOpen();
    const text = permissions === null ? null : JSON.stringify(permissions);
    return this.s.durably(() => this.st.setPermissions.run(text, accessKeyId).changes > 0);
  }
}

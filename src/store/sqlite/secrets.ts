// SecretStore on SQLite. A value set must survive a power cut once `nimbus secret set` said so, so every
// change is durable; secrets change rarely, so the fsync costs nothing that matters.
import { secretNameProblem } from '../../config/secret-refs.js';
import { toSecret, toSecretWithCiphertext, type SecretRow } from '../rows.js';
import type { SecretStore, StoredSecret } from '../types.js';
import type { SqliteDb } from './db.js';

export class SqliteSecretStore implements SecretStore {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      get: db.prepare<[string, string], SecretRow>('SELECT * FROM secrets WHERE project = ? AND name = ?'),
      insert: db.prepare(
        `INSERT INTO secrets (project, name, ciphertext, created_at, updated_at)
         VALUES (@project, @name, @ciphertext, @now, @now)`,
      ),
      update: db.prepare(
        'UPDATE secrets SET ciphertext = @ciphertext, updated_at = @now WHERE project = @project AND name = @name',
      ),
      list: db.prepare<[string], SecretRow>('SELECT * FROM secrets WHERE project = ? ORDER BY name'),
      remove: db.prepare<[string, string]>('DELETE FROM secrets WHERE project = ? AND name = ?'),
    };
  }

  async put(
    project: string,
    name: string,
    ciphertext: string,
  ): Promise<{ secret: StoredSecret; created: boolean }> {
    this.s.assertOpen();
    checkName(name);
    const now = this.s.clock.now();
    return this.s.durably(() =>
      this.s.transaction(() => {
        const created = this.st.get.get(project, name) === undefined;
        (created ? this.st.insert : this.st.update).run({ project, name, ciphertext, now });
        return { secret: toSecret(this.st.get.get(project, name)!), created };
      }),
    );
  }

  async get(project: string, name: string): Promise<(StoredSecret & { ciphertext: string }) | undefined> {
    this.s.assertOpen();
    const row = this.st.get.get(project, name);
    return row && toSecretWithCiphertext(row);
  }

  async list(project: string): Promise<StoredSecret[]> {
    this.s.assertOpen();
    return this.st.list.all(project).map(toSecret);
  }

  async remove(project: string, name: string): Promise<boolean> {
    this.s.assertOpen();
    return this.s.durably(() => this.st.remove.run(project, name).changes > 0);
  }
}

function checkName(name: string): void {
  const problem = secretNameProblem(name);
  if (problem) throw new Error(problem);
}

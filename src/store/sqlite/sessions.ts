// SessionStore on SQLite. Sign-in and sign-out are durable (a session a browser was given must survive a
// power cut, and one ended must stay ended); marking a session seen is not, since losing it only shortens
// the session by the idle interval.
import { toSession, type SessionRow } from '../rows.js';
import type { NewSession, SessionStore, StoredSession } from '../types.js';
import type { SqliteDb } from './db.js';

export class SqliteSessionStore implements SessionStore {
  private readonly st;

  constructor(private readonly s: SqliteDb) {
    const { db } = s;
    this.st = {
      insert: db.prepare(
        `INSERT INTO sessions (id_hash, project, key_id, key_fingerprint, created_at, last_seen_at, expires_at)
         VALUES (@idHash, @project, @keyId, @keyFingerprint, @now, @now, @expiresAt)`,
      ),
      byHash: db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id_hash = ?'),
      live: db.prepare<[string, number, number], SessionRow>(
        'SELECT * FROM sessions WHERE id_hash = ? AND expires_at > ? AND last_seen_at >= ?',
      ),
      touch: db.prepare<[number, string]>('UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?'),
      remove: db.prepare<[string]>('DELETE FROM sessions WHERE id_hash = ?'),
      removeForKey: db.prepare<[string]>('DELETE FROM sessions WHERE key_id = ?'),
      prune: db.prepare<[number, number]>('DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?'),
    };
  }

  async create(n: NewSession): Promise<StoredSession> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.durably(() =>
      this.s.transaction(() => {
        if (this.st.byHash.get(n.idHash)) throw new Error('a session with this id exists already');
        this.st.insert.run({ ...n, now });
        return toSession(this.st.byHash.get(n.idHash)!);
      }),
    );
  }

  async get(idHash: string, idleSince: number): Promise<StoredSession | undefined> {
    this.s.assertOpen();
    const row = this.st.live.get(idHash, this.s.clock.now(), idleSince);
    return row && toSession(row);
  }

  async touch(idHash: string): Promise<boolean> {
    this.s.assertOpen();
    return this.st.touch.run(this.s.clock.now(), idHash).changes > 0;
  }

  async remove(idHash: string): Promise<boolean> {
    this.s.assertOpen();
    return this.s.durably(() => this.st.remove.run(idHash).changes > 0);
  }

  async removeForKey(keyId: string): Promise<number> {
    this.s.assertOpen();
    return this.s.durably(() => this.st.removeForKey.run(keyId).changes);
  }

  async prune(idleSince: number): Promise<number> {
    this.s.assertOpen();
    return this.st.prune.run(this.s.clock.now(), idleSince).changes;
  }
}

// SessionStore on PostgreSQL: one statement per operation, so a sign-out on one node is seen by every node
// at the session's next request.
import type { Clock } from '../../clock/clock.js';
import { toSession, type SessionRow } from '../rows.js';
import type { NewSession, SessionStore, StoredSession } from '../types.js';
import { pgCode, type Db } from './db.js';

export class PgSessionStore implements SessionStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async create(n: NewSession): Promise<StoredSession> {
    this.db.assertOpen();
    const now = this.clock.now();
    try {
      const rows = await this.db.rows<SessionRow>(
        `INSERT INTO sessions (id_hash, project, key_id, key_fingerprint, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING *`,
        [n.idHash, n.project, n.keyId, n.keyFingerprint, now, n.expiresAt],
      );
      return toSession(rows[0]!);
    } catch (err) {
      if (pgCode(err) === '23505') throw new Error('a session with this id exists already', { cause: err });
      throw err;
    }
  }

  async get(idHash: string, idleSince: number): Promise<StoredSession | undefined> {
    this.db.assertOpen();
    const rows = await this.db.rows<SessionRow>(
      'SELECT * FROM sessions WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at >= $3',
      [idHash, this.clock.now(), idleSince],
    );
    return rows[0] && toSession(rows[0]);
  }

  async touch(idHash: string): Promise<boolean> {
    this.db.assertOpen();
    const n = await this.db.changed('UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2', [
      this.clock.now(),
      idHash,
    ]);
    return n > 0;
  }

  async remove(idHash: string): Promise<boolean> {
    this.db.assertOpen();
    return (await this.db.changed('DELETE FROM sessions WHERE id_hash = $1', [idHash])) > 0;
  }

  async removeForKey(keyId: string): Promise<number> {
    this.db.assertOpen();
    return this.db.changed('DELETE FROM sessions WHERE key_id = $1', [keyId]);
  }

  async prune(idleSince: number): Promise<number> {
    this.db.assertOpen();
    return this.db.changed('DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2', [
      this.clock.now(),
      idleSince,
    ]);
  }
}

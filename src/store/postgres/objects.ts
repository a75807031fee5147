// ObjectStore on PostgreSQL. A write takes the bucket's row lock to draw its sequencer, which also orders it
// against a DeleteBucket from another node (that one checks for objects under the same lock). Listings are
// range scans of the objects primary key, whose bytea keys compare byte by byte.
import type { PoolClient } from 'pg';
import type { Clock } from '../../clock/clock.js';
import { BucketNotEmptyError, BucketNotFoundError } from '../errors.js';
import { listObjectsBy } from '../object-listing.js';
import {
  changeContextJson,
  objectMetaJson,
  toBucket,
  toObject,
  toObjectChange,
  type BucketRow,
  type ObjectChangeRow,
  type ObjectRow,
} from '../rows.js';
import type {
  ChangeContext,
  NewObject,
  ObjectChange,
  ObjectEventName,
  ObjectListQuery,
  ObjectPage,
  ObjectStore,
  StoredBucket,
  StoredObject,
} from '../types.js';
import type { Db } from './db.js';

const COLUMNS = 'project, bucket, key, byte_ref, size, etag, meta, last_modified, seq';

export class PgObjectStore implements ObjectStore {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async createBucket(project: string, name: string, service: string | null): Promise<boolean> {
    const n = await this.db.changed(
      `INSERT INTO buckets (project, name, service, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING`,
      [project, name, service, this.clock.now()],
    );
    return n > 0;
  }

  async getBucket(project: string, name: string): Promise<StoredBucket | undefined> {
    const rows = await this.db.rows<BucketRow>('SELECT * FROM buckets WHERE project = $1 AND name = $2', [
      project,
      name,
    ]);
    return rows[0] && toBucket(rows[0]);
  }

  async listBuckets(project: string): Promise<StoredBucket[]> {
    const rows = await this.db.rows<BucketRow>('SELECT * FROM buckets WHERE project = $1 ORDER BY name', [
      project,
    ]);
    return rows.map(toBucket);
  }

  async deleteBucket(project: string, name: string): Promise<boolean> {
    return this.db.tx(async (c) => {
      const locked = await c.query('SELECT 1 FROM buckets WHERE project = $1 AND name = $2 FOR UPDATE', [
        project,
        name,
      ]);
      if (locked.rowCount === 0) return false;
      const any = await c.query('SELECT 1 FROM objects WHERE project = $1 AND bucket = $2 LIMIT 1', [
        project,
        name,
      ]);
      if ((any.rowCount ?? 0) > 0) throw new BucketNotEmptyError(project, name);
      await c.query('DELETE FROM buckets WHERE project = $1 AND name = $2', [project, name]);
      return true;
    });
  }

  async putObject(
    project: string,
    o: NewObject,
    change?: ChangeContext,
  ): Promise<{ object: StoredObject; replaced: string | null }> {
    const now = this.clock.now();
    return this.db.tx(async (c) => {
      const seq = await nextSeq(c, project, o.bucket);
      const key = Buffer.from(o.key, 'utf8');
      const old = await c.query<{ byte_ref: string }>(
        'SELECT byte_ref FROM objects WHERE project = $1 AND bucket = $2 AND key = $3',
        [project, o.bucket, key],
      );
      await c.query(
        `INSERT INTO objects (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (project, bucket, key) DO UPDATE SET byte_ref = excluded.byte_ref, size = excluded.size,
           etag = excluded.etag, meta = excluded.meta, last_modified = excluded.last_modified, seq = excluded.seq`,
        [project, o.bucket, key, o.ref, o.size, o.etag, objectMetaJson(o), now, seq],
      );
      await logChanges(c, project, o.bucket, change?.event ?? 'ObjectCreated:Put', [o], seq, now, change);
      const object: StoredObject = { ...o, project, lastModified: now, sequencer: seq };
      return { object, replaced: old.rows[0]?.byte_ref ?? null };
    });
  }

  async getObject(project: string, bucket: string, key: string): Promise<StoredObject | undefined> {
    const rows = await this.db.rows<ObjectRow>(
      `SELECT ${COLUMNS} FROM objects WHERE project = $1 AND bucket = $2 AND key = $3`,
      [project, bucket, Buffer.from(key, 'utf8')],
    );
    return rows[0] && toObject(rows[0]);
  }

  async deleteObjects(
    project: string,
    bucket: string,
    keys: readonly string[],
    change?: ChangeContext,
  ): Promise<StoredObject[]> {
    const now = this.clock.now();
    return this.db.tx(async (c) => {
      const seq = await nextSeq(c, project, bucket);
      const res = await c.query<ObjectRow>(
        `DELETE FROM objects WHERE project = $1 AND bucket = $2 AND key = ANY($3::bytea[]) RETURNING ${COLUMNS}`,
        [project, bucket, keys.map((k) => Buffer.from(k, 'utf8'))],
      );
      const gone = res.rows.map(toObject);
      await logChanges(c, project, bucket, 'ObjectRemoved:Delete', gone, seq, now, change);
      return gone;
    });
  }

  async changes(limit: number): Promise<ObjectChange[]> {
    const rows = await this.db.rows<ObjectChangeRow>('SELECT * FROM object_changes ORDER BY seq LIMIT $1', [
      limit,
    ]);
    return rows.map(toObjectChange);
  }

  async forgetChanges(seqs: readonly number[]): Promise<void> {
    if (seqs.length === 0) return;
    await this.db.changed('DELETE FROM object_changes WHERE seq = ANY($1::bigint[])', [seqs]);
  }

  async listObjects(project: string, bucket: string, q: ObjectListQuery): Promise<ObjectPage> {
    if (!(await this.getBucket(project, bucket))) throw new BucketNotFoundError(project, bucket);
    return listObjectsBy(async (from, inclusive, to, limit) => {
      const rows = await this.db.rows<ObjectRow>(
        `SELECT ${COLUMNS} FROM objects WHERE project = $1 AND bucket = $2 AND key ${inclusive ? '>=' : '>'} $3
         ${to ? 'AND key < $5' : ''} ORDER BY key LIMIT $4`,
        [project, bucket, from, limit, ...(to ? [to] : [])],
      );
      return rows.map(toObject);
    }, q);
  }

  async referenced(refs: readonly string[]): Promise<Set<string>> {
    const rows = await this.db.rows<{ byte_ref: string }>(
      'SELECT byte_ref FROM objects WHERE byte_ref = ANY($1::text[])',
      [refs],
    );
    return new Set(rows.map((r) => r.byte_ref));
  }
}

/** The change log's entries for one write, in its transaction: one multi-row insert. */
async function logChanges(
  c: PoolClient,
  project: string,
  bucket: string,
  event: ObjectEventName,
  objects: readonly { key: string; size: number; etag: string }[],
  sequencer: number,
  at: number,
  change: ChangeContext | undefined,
): Promise<void> {
  if (objects.length === 0) return;
  await c.query(
    `INSERT INTO object_changes (project, bucket, key, event, size, etag, sequencer, at, context)
     SELECT $1, $2, k, $3, s, e, $4, $5, $6 FROM unnest($7::text[], $8::bigint[], $9::text[]) AS t(k, s, e)`,
    [
      project,
      bucket,
      event,
      sequencer,
      at,
      changeContextJson(change),
      objects.map((o) => o.key),
      objects.map((o) => o.size),
      objects.map((o) => o.etag),
    ],
  );
}

/** The bucket's next sequencer, under its row lock; throws BucketNotFoundError. */
async function nextSeq(c: PoolClient, project: string, bucket: string): Promise<number> {
  const res = await c.query<{ seq: number }>(
    'UPDATE buckets SET seq = seq + 1 WHERE project = $1 AND name = $2 RETURNING seq',
    [project, bucket],
  );
  const seq = res.rows[0]?.seq;
  if (seq === undefined) throw new BucketNotFoundError(project, bucket);
  return Number(seq);
}

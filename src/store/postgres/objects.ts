// ObjectStore on PostgreSQL. A write takes the bucket's row lock to draw its sequencer, which also orders it
// against a DeleteBucket from another node (that one checks for objects under the same lock). Listings are
// range scans of the objects primary key, whose bytea keys compare byte by byte.
import type { PoolClient } from 'pg';
import type { Clock } from '../../clock/clock.js';
import { BucketNotEmptyError, BucketNotFoundError, UploadNotFoundError } from '../errors.js';
import { listObjectsBy, listUploadsBy } from '../object-listing.js';
import {
  changeContextJson,
  objectMetaJson,
  toBucket,
  toObject,
  toObjectChange,
  toPart,
  toUpload,
  uploadMetaJson,
  withTags,
  type BucketRow,
  type ObjectChangeRow,
  type ObjectRow,
  type PartRow,
  type UploadRow,
} from '../rows.js';
import type {
  ChangeContext,
  CorsRule,
  NewObject,
  NewUpload,
  ObjectChange,
  ObjectEventName,
  ObjectListQuery,
  ObjectPage,
  ObjectStore,
  StoredBucket,
  StoredObject,
  StoredPart,
  StoredUpload,
  UploadListQuery,
  UploadPart,
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
      // Uploads in progress go with the bucket; their parts' bytes are orphans for the sweep.
      await c.query('DELETE FROM upload_parts WHERE project = $1 AND bucket = $2', [project, name]);
      await c.query('DELETE FROM uploads WHERE project = $1 AND bucket = $2', [project, name]);
      await c.query('DELETE FROM buckets WHERE project = $1 AND name = $2', [project, name]);
      return true;
    });
  }

  async putObject(
    project: string,
    o: NewObject,
    change?: ChangeContext,
  ): Promise<{ object: StoredObject; replaced: string | null }> {
    return this.db.tx((c) => this.upsertObject(c, project, o, change));
  }

  /** Inside a transaction: the object written with the bucket's next sequencer, and its change logged. */
  private async upsertObject(
    c: PoolClient,
    project: string,
    o: NewObject,
    change?: ChangeContext,
  ): Promise<{ object: StoredObject; replaced: string | null }> {
    const now = this.clock.now();
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
      `SELECT byte_ref FROM objects WHERE byte_ref = ANY($1::text[])
       UNION ALL SELECT byte_ref FROM upload_parts WHERE byte_ref = ANY($1::text[])`,
      [refs],
    );
    return new Set(rows.map((r) => r.byte_ref));
  }

  async setObjectTags(
    project: string,
    bucket: string,
    key: string,
    tags: Record<string, string>,
  ): Promise<boolean> {
    return this.db.tx(async (c) => {
      const k = Buffer.from(key, 'utf8');
      const res = await c.query<{ meta: string }>(
        'SELECT meta FROM objects WHERE project = $1 AND bucket = $2 AND key = $3 FOR UPDATE',
        [project, bucket, k],
      );
      const row = res.rows[0];
      if (!row) return false;
      await c.query('UPDATE objects SET meta = $1 WHERE project = $2 AND bucket = $3 AND key = $4', [
        withTags(row.meta, tags),
        project,
        bucket,
        k,
      ]);
      return true;
    });
  }

  async getBucketCors(project: string, bucket: string): Promise<CorsRule[] | null | undefined> {
    const rows = await this.db.rows<{ cors: string | null }>(
      'SELECT cors FROM buckets WHERE project = $1 AND name = $2',
      [project, bucket],
    );
    const row = rows[0];
    if (!row) return undefined;
    return row.cors === null ? null : (JSON.parse(row.cors) as CorsRule[]);
  }

  async setBucketCors(project: string, bucket: string, rules: CorsRule[] | null): Promise<boolean> {
    const n = await this.db.changed('UPDATE buckets SET cors = $1 WHERE project = $2 AND name = $3', [
      rules === null ? null : JSON.stringify(rules),
      project,
      bucket,
    ]);
    return n > 0;
  }

  async createUpload(project: string, u: NewUpload): Promise<StoredUpload> {
    const now = this.clock.now();
    // The bucket's row lock orders this against a DeleteBucket on another node.
    return this.db.tx(async (c) => {
      const b = await c.query('SELECT 1 FROM buckets WHERE project = $1 AND name = $2 FOR SHARE', [
        project,
        u.bucket,
      ]);
      if (b.rowCount === 0) throw new BucketNotFoundError(project, u.bucket);
      await c.query(
        'INSERT INTO uploads (project, bucket, upload_id, key, meta, initiated) VALUES ($1, $2, $3, $4, $5, $6)',
        [project, u.bucket, u.uploadId, Buffer.from(u.key, 'utf8'), uploadMetaJson(u), now],
      );
      return { ...u, project, initiated: now };
    });
  }

  async getUpload(project: string, bucket: string, uploadId: string): Promise<StoredUpload | undefined> {
    const rows = await this.db.rows<UploadRow>(
      'SELECT * FROM uploads WHERE project = $1 AND bucket = $2 AND upload_id = $3',
      [project, bucket, uploadId],
    );
    return rows[0] && toUpload(rows[0]);
  }

  async listUploads(project: string, bucket: string, q: UploadListQuery): Promise<StoredUpload[]> {
    if (!(await this.getBucket(project, bucket))) throw new BucketNotFoundError(project, bucket);
    return listUploadsBy(async (key, id, limit) => {
      const rows = await this.db.rows<UploadRow>(
        `SELECT * FROM uploads WHERE project = $1 AND bucket = $2 AND (key > $3 OR (key = $3 AND upload_id > $4))
         ORDER BY key, upload_id LIMIT $5`,
        [project, bucket, key, id, limit],
      );
      return rows.map(toUpload);
    }, q);
  }

  async putPart(
    project: string,
    bucket: string,
    uploadId: string,
    p: UploadPart,
  ): Promise<{ replaced: string | null }> {
    const now = this.clock.now();
    return this.db.tx(async (c) => {
      // The upload's row lock: a Complete or Abort running elsewhere either sees this part or makes it fail.
      const u = await c.query(
        'SELECT 1 FROM uploads WHERE project = $1 AND bucket = $2 AND upload_id = $3 FOR UPDATE',
        [project, bucket, uploadId],
      );
      if (u.rowCount === 0) throw new UploadNotFoundError(project, bucket, uploadId);
      const old = await c.query<{ byte_ref: string }>(
        `SELECT byte_ref FROM upload_parts WHERE project = $1 AND bucket = $2 AND upload_id = $3
         AND part_number = $4`,
        [project, bucket, uploadId, p.partNumber],
      );
      await c.query(
        `INSERT INTO upload_parts (project, bucket, upload_id, part_number, byte_ref, size, etag, last_modified)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (project, bucket, upload_id, part_number) DO UPDATE SET byte_ref = excluded.byte_ref,
           size = excluded.size, etag = excluded.etag, last_modified = excluded.last_modified`,
        [project, bucket, uploadId, p.partNumber, p.ref, p.size, p.etag, now],
      );
      return { replaced: old.rows[0]?.byte_ref ?? null };
    });
  }

  async listParts(project: string, bucket: string, uploadId: string): Promise<StoredPart[]> {
    if (!(await this.getUpload(project, bucket, uploadId)))
      throw new UploadNotFoundError(project, bucket, uploadId);
    const rows = await this.db.rows<PartRow>(
      `SELECT * FROM upload_parts WHERE project = $1 AND bucket = $2 AND upload_id = $3 ORDER BY part_number`,
      [project, bucket, uploadId],
    );
    return rows.map(toPart);
  }

  async completeUpload(
    project: string,
    uploadId: string,
    o: NewObject,
    change?: ChangeContext,
  ): Promise<{ object: StoredObject; replaced: string | null; parts: string[] }> {
    const logged: ChangeContext = { ...change, event: 'ObjectCreated:CompleteMultipartUpload' };
    return this.db.tx(async (c) => {
      const parts = await dropUpload(c, project, o.bucket, uploadId);
      if (!parts) throw new UploadNotFoundError(project, o.bucket, uploadId);
      return { ...(await this.upsertObject(c, project, o, logged)), parts };
    });
  }

  async abortUpload(project: string, bucket: string, uploadId: string): Promise<string[] | undefined> {
    return this.db.tx((c) => dropUpload(c, project, bucket, uploadId));
  }
}

/** Inside a transaction: deletes the upload and its parts under the upload's row lock; the parts' refs. */
async function dropUpload(
  c: PoolClient,
  project: string,
  bucket: string,
  uploadId: string,
): Promise<string[] | undefined> {
  const u = await c.query(
    'SELECT 1 FROM uploads WHERE project = $1 AND bucket = $2 AND upload_id = $3 FOR UPDATE',
    [project, bucket, uploadId],
  );
  if (u.rowCount === 0) return undefined;
  const parts = await c.query<{ byte_ref: string }>(
    'DELETE FROM upload_parts WHERE project = $1 AND bucket = $2 AND upload_id = $3 RETURNING byte_ref',
    [project, bucket, uploadId],
  );
  await c.query('DELETE FROM uploads WHERE project = $1 AND bucket = $2 AND upload_id = $3', [
    project,
    bucket,
    uploadId,
  ]);
  return parts.rows.map((r) => r.byte_ref);
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

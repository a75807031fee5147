// QueueStore on PostgreSQL, and the queue half of a deploy. Receivers on several nodes run at once: on a
// standard queue each locks the messages it picks with FOR UPDATE SKIP LOCKED, so no message goes to two of
// them; a FIFO queue's receivers and senders take the queue's advisory lock, so a receiver sees every group's
// in-flight messages exactly and sequence numbers are committed in order. Every "now" is the store clock's.
import { randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { Clock } from '../../clock/clock.js';
import { QueueExistsError, QueueNotFoundError } from '../errors.js';
import {
  DEDUP_WINDOW_MS,
  DEFAULT_PEEK_LIMIT,
  MAX_PEEK_LIMIT,
  checkMessages,
  checkQueueConfigs,
  expiredBefore,
  maxReceives,
  mergeTags,
  parseReceiptHandle,
  planQueues,
  queueConfigText,
  receiveLimits,
  sequenceNumber,
  visibilityMs,
  type CurrentQueue,
  type MessageRow,
} from '../queue-rules.js';
import { toQueue, toQueueMessage, type QueueMessageRow, type QueueRow } from '../rows.js';
import type { QueueConfig } from '../../config/manifest.js';
import type {
  DeployInput,
  DeployResult,
  NewMessage,
  QueueMessage,
  QueueStats,
  QueueStore,
  ReceiveOptions,
  SentMessage,
  StoredQueue,
} from '../types.js';
import { queryLimit } from '../validate.js';
import type { Db } from './db.js';
import { timeOrderedId } from '../../ids.js';

/** A queue's retention in milliseconds, read from its stored config. */
const RETENTION_MS = `(q.config::jsonb ->> 'messageRetentionPeriod')::double precision * 1000`;

// $1 project, $2 queue, $3 now, $4 expiry cutoff, $5 seqs this receive already took or moved, $6 limit.
const CANDIDATES = `SELECT * FROM queue_messages
  WHERE project = $1 AND queue = $2 AND sent_at > $4 AND visible_at <= $3 AND NOT (seq = ANY($5::bigint[]))
  ORDER BY visible_at, seq LIMIT $6
  FOR UPDATE SKIP LOCKED`;

// Under the queue's advisory lock. Receivable when no message of its group is in flight and none before it
// is hidden (what this receive already took does not count: a group's messages may come in one batch).
const FIFO_CANDIDATES = `SELECT * FROM queue_messages m
  WHERE m.project = $1 AND m.queue = $2 AND m.sent_at > $4 AND m.visible_at <= $3
    AND NOT (m.seq = ANY($5::bigint[]))
    AND NOT EXISTS (
      SELECT 1 FROM queue_messages h
      WHERE h.project = m.project AND h.queue = m.queue AND h.group_id = m.group_id
        AND h.sent_at > $4 AND h.visible_at > $3 AND (h.receipt IS NOT NULL OR h.seq < m.seq)
        AND NOT (h.seq = ANY($5::bigint[])))
  ORDER BY m.seq LIMIT $6`;

export class PgQueueStore implements QueueStore {
  constructor(
    private readonly db: Db,
    private readonly schema: string,
    private readonly clock: Clock,
  ) {}

  async getQueue(project: string, name: string): Promise<StoredQueue | undefined> {
    const rows = await this.db.rows<QueueRow>('SELECT * FROM queues WHERE project = $1 AND name = $2', [
      project,
      name,
    ]);
    return rows[0] && toQueue(rows[0]);
  }

  async listQueues(project?: string): Promise<StoredQueue[]> {
    const rows =
      project === undefined
        ? await this.db.rows<QueueRow>('SELECT * FROM queues ORDER BY project, name')
        : await this.db.rows<QueueRow>('SELECT * FROM queues WHERE project = $1 ORDER BY name', [project]);
    return rows.map(toQueue);
  }

  async send(project: string, queue: string, messages: readonly NewMessage[]): Promise<SentMessage[]> {
    this.db.assertOpen();
    const now = this.clock.now();
    return this.db.tx(async (c) => {
      // KEY SHARE: a deploy cannot remove the queue under the messages being stored.
      const q = await queueIn(c, project, queue, 'FOR KEY SHARE');
      const rows = checkMessages(q, messages);
      if (!q.fifo) return sendStandard(c, q, rows, now);
      await lockQueues(c, this.schema, project, [queue]);
      const sent: SentMessage[] = [];
      for (const m of rows) sent.push(await sendFifo(c, q, m, now));
      return sent;
    });
  }

  async receive(project: string, queue: string, opts: ReceiveOptions): Promise<QueueMessage[]> {
    this.db.assertOpen();
    const now = this.clock.now();
    return this.db.tx(async (c) => {
      const q = await queueIn(c, project, queue);
      const { max, hideMs } = receiveLimits(q, opts);
      const dlq = await deadLetterQueue(c, q);
      if (q.fifo) await lockQueues(c, this.schema, project, dlq === undefined ? [queue] : [queue, dlq]);
      const moveAt = maxReceives(q) ?? Infinity;
      const handled: number[] = [];
      const out: QueueMessage[] = [];
      // Messages moved to the dead-letter queue do not count: look again until max or nothing is left.
      while (out.length < max) {
        const { rows } = await c.query<QueueMessageRow>(q.fifo ? FIFO_CANDIDATES : CANDIDATES, [
          project,
          queue,
          now,
          expiredBefore(q, now),
          handled,
          max - out.length,
        ]);
        if (rows.length === 0) break;
        handled.push(...rows.map((r) => r.seq));
        const dead = rows.filter((r) => dlq !== undefined && r.receive_count >= moveAt);
        const take = rows.filter((r) => !dead.includes(r));
        if (dead.length > 0) await moveToDeadLetters(c, dead, dlq!, now);
        if (take.length > 0) out.push(...(await markReceived(c, take, now, now + hideMs)));
      }
      return out;
    });
  }

  async delete(project: string, queue: string, receiptHandle: string): Promise<boolean> {
    this.db.assertOpen();
    const h = parseReceiptHandle(receiptHandle);
    // A handle that does not parse matches no row (receipt = NULL is never true); the queue is still checked.
    return this.changedIfQueue(
      project,
      queue,
      'DELETE FROM queue_messages WHERE project = $1 AND queue = $2 AND id = $3 AND receipt = $4',
      [h?.id ?? null, h?.token ?? null],
    ).then((n) => n > 0);
  }

  async deleteBatch(project: string, queue: string, receiptHandles: readonly string[]): Promise<boolean[]> {
    this.db.assertOpen();
    const parsed = receiptHandles.map((handle) => parseReceiptHandle(handle));
    const rows = await this.db.rows<{ queue: boolean; deleted: string[] | null }>(
      `WITH w AS (
         DELETE FROM queue_messages m USING unnest($3::text[], $4::text[]) AS h(id, receipt)
         WHERE m.project = $1 AND m.queue = $2 AND m.id = h.id AND m.receipt = h.receipt
         RETURNING m.id || ':' || m.receipt AS handle)
       SELECT EXISTS (SELECT 1 FROM queues WHERE project = $1 AND name = $2) AS queue,
         (SELECT array_agg(handle) FROM w) AS deleted`,
      [project, queue, parsed.map((h) => h?.id ?? null), parsed.map((h) => h?.token ?? null)],
    );
    if (!rows[0]?.queue) throw new QueueNotFoundError(project, queue);
    const deleted = new Set(rows[0].deleted ?? []);
    // A handle named twice deletes once, as it would one after the other.
    return parsed.map((h) => h !== undefined && deleted.delete(`${h.id}:${h.token}`));
  }

  async changeVisibility(
    project: string,
    queue: string,
    receiptHandle: string,
    seconds: number,
  ): Promise<boolean> {
    this.db.assertOpen();
    const visibleAt = this.clock.now() + visibilityMs(seconds);
    const h = parseReceiptHandle(receiptHandle);
    const n = await this.changedIfQueue(
      project,
      queue,
      'UPDATE queue_messages SET visible_at = $5 WHERE project = $1 AND queue = $2 AND id = $3 AND receipt = $4',
      [h?.id ?? null, h?.token ?? null, visibleAt],
    );
    return n > 0;
  }

  async purge(project: string, queue: string): Promise<number> {
    this.db.assertOpen();
    return this.changedIfQueue(
      project,
      queue,
      'DELETE FROM queue_messages WHERE project = $1 AND queue = $2',
    );
  }

  /** Runs a write on the queue's messages ($1 project, $2 queue, then params) in one statement that also
   *  tells whether the queue exists; returns the rows written, or throws QueueNotFoundError. */
  private async changedIfQueue(
    project: string,
    queue: string,
    write: string,
    params: unknown[] = [],
  ): Promise<number> {
    const rows = await this.db.rows<{ queue: boolean; n: number }>(
      `WITH w AS (${write} RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM queues WHERE project = $1 AND name = $2) AS queue,
         (SELECT count(*) FROM w) AS n`,
      [project, queue, ...params],
    );
    if (!rows[0]?.queue) throw new QueueNotFoundError(project, queue);
    return rows[0].n;
  }

  async peek(project: string, queue: string, limit?: number): Promise<QueueMessage[]> {
    this.db.assertOpen();
    const q = await this.getQueue(project, queue);
    if (!q) throw new QueueNotFoundError(project, queue);
    const rows = await this.db.rows<QueueMessageRow>(
      'SELECT * FROM queue_messages WHERE project = $1 AND queue = $2 AND sent_at > $3 ORDER BY seq LIMIT $4',
      [
        project,
        queue,
        expiredBefore(q, this.clock.now()),
        queryLimit(limit, DEFAULT_PEEK_LIMIT, MAX_PEEK_LIMIT),
      ],
    );
    return rows.map(toQueueMessage);
  }

  async stats(project?: string): Promise<QueueStats[]> {
    this.db.assertOpen();
    const params: unknown[] = [this.clock.now()];
    const where = project === undefined ? '' : `WHERE q.project = $${params.push(project)}`;
    // Messages past their queue's retention are gone for every reader, whether or not expire() has run yet.
    const rows = await this.db.rows<{
      project: string;
      queue: string;
      visible: number;
      in_flight: number;
      delayed: number;
      oldest: number | null;
    }>(
      `SELECT q.project, q.name AS queue,
         count(m.seq) FILTER (WHERE m.visible_at <= $1) AS visible,
         count(m.seq) FILTER (WHERE m.visible_at > $1 AND m.receipt IS NOT NULL) AS in_flight,
         count(m.seq) FILTER (WHERE m.visible_at > $1 AND m.receipt IS NULL) AS delayed,
         min(m.sent_at) AS oldest
       FROM queues q LEFT JOIN queue_messages m ON m.project = q.project AND m.queue = q.name
         AND m.sent_at > $1 - ${RETENTION_MS}
       ${where} GROUP BY q.project, q.name ORDER BY q.project, q.name`,
      params,
    );
    return rows.map((r) => ({
      project: r.project,
      queue: r.queue,
      visible: r.visible,
      inFlight: r.in_flight,
      delayed: r.delayed,
      oldestSentAt: r.oldest,
    }));
  }

  async nextVisibleAt(project: string, queue: string): Promise<number | undefined> {
    this.db.assertOpen();
    const rows = await this.db.rows<{ at: number | null }>(
      `SELECT min(m.visible_at) AS at FROM queues q
       JOIN queue_messages m ON m.project = q.project AND m.queue = q.name
       WHERE q.project = $1 AND q.name = $2 AND m.visible_at > $3 AND m.sent_at > $3 - ${RETENTION_MS}`,
      [project, queue, this.clock.now()],
    );
    return rows[0]?.at ?? undefined;
  }

  async expire(): Promise<number> {
    this.db.assertOpen();
    const now = this.clock.now();
    return this.db.tx(async (c) => {
      const res = await c.query(
        `DELETE FROM queue_messages m USING queues q
         WHERE m.project = q.project AND m.queue = q.name AND m.sent_at <= $1 - ${RETENTION_MS}`,
        [now],
      );
      await c.query('DELETE FROM queue_dedup WHERE expires_at <= $1', [now]);
      return res.rowCount ?? 0;
    });
  }

  async createQueue(
    project: string,
    config: QueueConfig,
    tags: Record<string, string> = {},
  ): Promise<StoredQueue> {
    this.db.assertOpen();
    checkQueueConfigs('the API', [config]);
    const text = mergeTags({}, tags);
    const now = this.clock.now();
    return this.db.tx((c) => createQueueIn(c, project, config, text, now));
  }

  async updateQueue(project: string, config: QueueConfig): Promise<StoredQueue> {
    this.db.assertOpen();
    checkQueueConfigs('the API', [config]);
    const rows = await this.db.rows<QueueRow>(
      'UPDATE queues SET config = $3, updated_at = $4 WHERE project = $1 AND name = $2 RETURNING *',
      [project, config.name, queueConfigText(config), this.clock.now()],
    );
    if (!rows[0]) throw new QueueNotFoundError(project, config.name);
    return toQueue(rows[0]);
  }

  async deleteQueue(project: string, name: string): Promise<boolean> {
    this.db.assertOpen();
    // Its messages and deduplication ids go with it (ON DELETE CASCADE).
    return (
      (await this.db.changed('DELETE FROM queues WHERE project = $1 AND name = $2', [project, name])) > 0
    );
  }

  async queueTags(project: string, name: string): Promise<Record<string, string>> {
    this.db.assertOpen();
    const rows = await this.db.rows<{ tags: string }>(
      'SELECT tags FROM queues WHERE project = $1 AND name = $2',
      [project, name],
    );
    if (!rows[0]) throw new QueueNotFoundError(project, name);
    return JSON.parse(rows[0].tags) as Record<string, string>;
  }

  async tagQueue(
    project: string,
    name: string,
    tags: Record<string, string>,
    remove: readonly string[] = [],
  ): Promise<Record<string, string>> {
    this.db.assertOpen();
    return this.db.tx(async (c) => {
      const res = await c.query<{ tags: string }>(
        'SELECT tags FROM queues WHERE project = $1 AND name = $2 FOR UPDATE',
        [project, name],
      );
      if (!res.rows[0]) throw new QueueNotFoundError(project, name);
      const next = mergeTags(JSON.parse(res.rows[0].tags) as Record<string, string>, tags, remove);
      await c.query('UPDATE queues SET tags = $3 WHERE project = $1 AND name = $2', [project, name, next]);
      return JSON.parse(next) as Record<string, string>;
    });
  }
}

/** The queue-set half of PgQueueStore: SQS's CreateQueue, SetQueueAttributes, DeleteQueue and tags. */
async function createQueueIn(
  c: PoolClient,
  project: string,
  config: QueueConfig,
  tags: string,
  now: number,
): Promise<StoredQueue> {
  const res = await c.query<QueueRow>(
    `INSERT INTO queues (project, name, service, config, created_at, updated_at, tags)
     VALUES ($1, $2, NULL, $3, $4, $4, $5) ON CONFLICT (project, name) DO NOTHING RETURNING *`,
    [project, config.name, queueConfigText(config), now, tags],
  );
  if (!res.rows[0]) throw new QueueExistsError(project, config.name);
  return toQueue(res.rows[0]);
}

async function queueIn(c: PoolClient, project: string, name: string, lock = ''): Promise<StoredQueue> {
  const res = await c.query<QueueRow>(`SELECT * FROM queues WHERE project = $1 AND name = $2 ${lock}`, [
    project,
    name,
  ]);
  if (!res.rows[0]) throw new QueueNotFoundError(project, name);
  return toQueue(res.rows[0]);
}

/** The dead-letter queue messages move to: only one that exists and is of the same kind (FIFO or not), since
 *  a FIFO queue's messages need a group there. KEY SHARE keeps it there until the receive commits. */
async function deadLetterQueue(c: PoolClient, q: StoredQueue): Promise<string | undefined> {
  if (q.deadLetterQueue === undefined) return undefined;
  const res = await c.query<QueueRow>('SELECT * FROM queues WHERE project = $1 AND name = $2 FOR KEY SHARE', [
    q.project,
    q.deadLetterQueue,
  ]);
  return res.rows[0] && toQueue(res.rows[0]).fifo === q.fifo ? res.rows[0].name : undefined;
}

/**
 * Serializes the senders and receivers of FIFO queues across nodes until the transaction ends. Several
 * queues (a receive that may move messages into its dead-letter queue) are locked in one order, so two
 * receivers never wait for each other.
 */
async function lockQueues(c: PoolClient, schema: string, project: string, queues: string[]): Promise<void> {
  for (const q of [...queues].sort()) {
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`nimbus:queue:${schema}:${project}/${q}`]);
  }
}

/** One statement for the whole batch; the rows take their seqs in the order given. */
async function sendStandard(
  c: PoolClient,
  q: StoredQueue,
  rows: MessageRow[],
  now: number,
): Promise<SentMessage[]> {
  const ids = rows.map(() => timeOrderedId());
  await c.query(
    `INSERT INTO queue_messages (project, queue, id, body, md5, attributes, trace, sent_at, visible_at)
     SELECT $1, $2, m.id, m.body, m.md5, m.attributes, m.trace, $3, $3 + m.delay
     FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::double precision[])
       WITH ORDINALITY AS m (id, body, md5, attributes, trace, delay, ord)
     ORDER BY m.ord`,
    [
      q.project,
      q.name,
      now,
      ids,
      rows.map((m) => m.body),
      rows.map((m) => m.md5),
      rows.map((m) => m.attributes),
      rows.map((m) => m.trace),
      rows.map((m) => m.delayMs),
    ],
  );
  return rows.map((m, i) => ({ id: ids[i]!, md5OfBody: m.md5, sequenceNumber: null, duplicate: false }));
}

/** Under the queue's lock, so a deduplication id is checked and recorded with nobody in between. */
async function sendFifo(c: PoolClient, q: StoredQueue, m: MessageRow, now: number): Promise<SentMessage> {
  const seen = await c.query<{ message_id: string; seq: number }>(
    `SELECT message_id, seq FROM queue_dedup
     WHERE project = $1 AND queue = $2 AND dedup_id = $3 AND expires_at > $4`,
    [q.project, q.name, m.dedupId, now],
  );
  if (seen.rows[0]) {
    const { message_id: id, seq } = seen.rows[0];
    return { id, md5OfBody: m.md5, sequenceNumber: sequenceNumber(seq), duplicate: true };
  }
  const id = timeOrderedId();
  const res = await c.query<{ seq: number }>(
    `INSERT INTO queue_messages (project, queue, id, body, md5, attributes, group_id, dedup_id, trace, sent_at,
       visible_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING seq`,
    [q.project, q.name, id, m.body, m.md5, m.attributes, m.groupId, m.dedupId, m.trace, now, now + m.delayMs],
  );
  const seq = res.rows[0]!.seq;
  // An expired id of the same value is replaced: the window counts from the latest accepted send.
  await c.query(
    `INSERT INTO queue_dedup (project, queue, dedup_id, message_id, seq, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (project, queue, dedup_id) DO UPDATE
       SET message_id = excluded.message_id, seq = excluded.seq, expires_at = excluded.expires_at`,
    [q.project, q.name, m.dedupId, id, seq, now + DEDUP_WINDOW_MS],
  );
  return { id, md5OfBody: m.md5, sequenceNumber: sequenceNumber(seq), duplicate: false };
}

/**
 * SQS keeps the original send time, so a dead letter expires when it would have in its first queue. Fresh
 * seqs (in the order the messages had) put them at the end of the dead-letter queue; a message whose id is
 * there already keeps that copy.
 */
async function moveToDeadLetters(
  c: PoolClient,
  rows: QueueMessageRow[],
  dlq: string,
  now: number,
): Promise<void> {
  const seqs = rows.map((r) => r.seq);
  // Each row is deleted before its copy is inserted, so the project's stored bytes (counted by triggers in
  // that order) never hold a message twice: a move at the storage quota is not refused.
  await c.query(
    `WITH gone AS (DELETE FROM queue_messages WHERE seq = ANY($1::bigint[]) RETURNING *)
     INSERT INTO queue_messages (project, queue, id, body, md5, attributes, group_id, dedup_id, trace, sent_at,
       visible_at, dead_letter_source)
     SELECT project, $2, id, body, md5, attributes, group_id, dedup_id, trace, sent_at, $3, queue
     FROM gone ORDER BY seq
     ON CONFLICT (project, queue, id) DO NOTHING`,
    [seqs, dlq, now],
  );
}

/** Hides the messages and gives each a new receipt token; returns them in the order given. */
async function markReceived(
  c: PoolClient,
  rows: QueueMessageRow[],
  now: number,
  visibleAt: number,
): Promise<QueueMessage[]> {
  const res = await c.query<QueueMessageRow>(
    `UPDATE queue_messages m SET receive_count = m.receive_count + 1,
       first_received_at = COALESCE(m.first_received_at, $1), visible_at = $2, receipt = r.token
     FROM unnest($3::bigint[], $4::text[]) AS r (seq, token)
     WHERE m.seq = r.seq
     RETURNING m.*`,
    [now, visibleAt, rows.map((r) => r.seq), rows.map(() => randomUUID())],
  );
  const bySeq = new Map(res.rows.map((r) => [r.seq, r]));
  return rows.flatMap((r) => {
    const updated = bySeq.get(r.seq);
    return updated ? [toQueueMessage(updated)] : [];
  });
}

/** The queue half of FunctionStore.deploy, inside its transaction and under its project lock. Throws
 *  QueueOwnedError (before any write) for a queue another service or the API owns. */
export async function deployQueues(
  c: PoolClient,
  input: DeployInput,
  now: number,
): Promise<DeployResult['queues']> {
  const { project, service } = input;
  const declared = input.queues ?? [];
  const current = await c.query<CurrentQueue>(
    `SELECT name, service, config FROM queues WHERE project = $1 AND (service = $2 OR name = ANY($3::text[]))`,
    [project, service, declared.map((q) => q.name)],
  );
  const plan = planQueues(service, declared, current.rows);
  for (const q of plan.create) {
    await c.query(
      `INSERT INTO queues (project, name, service, config, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)`,
      [project, q.name, service, queueConfigText(q), now],
    );
  }
  for (const q of plan.update) {
    await c.query('UPDATE queues SET config = $3, updated_at = $4 WHERE project = $1 AND name = $2', [
      project,
      q.name,
      queueConfigText(q),
      now,
    ]);
  }
  // Their messages and deduplication ids go with them (ON DELETE CASCADE).
  await c.query('DELETE FROM queues WHERE project = $1 AND name = ANY($2::text[])', [
    project,
    plan.result.removed,
  ]);
  return plan.result;
}

// QueueStore on SQLite, and the queue half of a deploy. Every write is one IMMEDIATE transaction on the one
// connection, so a receive sees and hides its messages before any other caller runs: nothing is received
// twice while hidden, and a FIFO group's in-flight check is exact.
import { randomUUID } from 'node:crypto';
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
import type { SqliteDb } from './db.js';
import { timeOrderedId } from '../../ids.js';

type Ref = [project: string, queue: string];

interface Candidates {
  project: string;
  queue: string;
  now: number;
  cutoff: number;
  /** JSON array of the seqs this receive already took or moved. */
  handled: string;
  limit: number;
}

const LIVE = 'project = @project AND queue = @queue AND sent_at > @cutoff';

export class SqliteQueueStore implements QueueStore {
  private readonly st: ReturnType<typeof prepare>;

  constructor(private readonly s: SqliteDb) {
    this.st = prepare(s);
  }

  async getQueue(project: string, name: string): Promise<StoredQueue | undefined> {
    this.s.assertOpen();
    const row = this.st.getQueue.get(project, name);
    return row && toQueue(row);
  }

  async listQueues(project?: string): Promise<StoredQueue[]> {
    this.s.assertOpen();
    const rows = project === undefined ? this.st.listQueues.all() : this.st.listQueuesOf.all(project);
    return rows.map(toQueue);
  }

  async send(project: string, queue: string, messages: readonly NewMessage[]): Promise<SentMessage[]> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.grouped(
      () =>
        this.s.transaction(() => {
          const q = this.queue(project, queue);
          return checkMessages(q, messages).map((m) => this.sendOne(q, m, now));
        }),
      true,
    );
  }

  private sendOne(q: StoredQueue, m: MessageRow, now: number): SentMessage {
    if (m.dedupId !== null) {
      const seen = this.st.dedup.get(q.project, q.name, m.dedupId, now);
      if (seen) {
        return {
          id: seen.message_id,
          md5OfBody: m.md5,
          sequenceNumber: sequenceNumber(seen.seq),
          duplicate: true,
        };
      }
    }
    const id = timeOrderedId();
    const seq = Number(
      this.st.insert.run({
        project: q.project,
        queue: q.name,
        id,
        body: m.body,
        md5: m.md5,
        attributes: m.attributes,
        groupId: m.groupId,
        dedupId: m.dedupId,
        trace: m.trace,
        now,
        visibleAt: now + m.delayMs,
      }).lastInsertRowid,
    );
    if (m.dedupId !== null)
      this.st.remember.run(q.project, q.name, m.dedupId, id, seq, now + DEDUP_WINDOW_MS);
    return { id, md5OfBody: m.md5, sequenceNumber: q.fifo ? sequenceNumber(seq) : null, duplicate: false };
  }

  async receive(project: string, queue: string, opts: ReceiveOptions): Promise<QueueMessage[]> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.grouped(() =>
      this.s.transaction(() => {
        const q = this.queue(project, queue);
        const { max, hideMs } = receiveLimits(q, opts);
        const dlq = this.deadLetterQueue(q);
        const moveAt = maxReceives(q) ?? Infinity;
        const pick = q.fifo ? this.st.fifoCandidates : this.st.candidates;
        const handled: number[] = [];
        const out: QueueMessage[] = [];
        // Messages moved to the dead-letter queue do not count: look again until max or nothing is left.
        while (out.length < max) {
          const rows = pick.all({
            project,
            queue,
            now,
            cutoff: expiredBefore(q, now),
            handled: JSON.stringify(handled),
            limit: max - out.length,
          });
          if (rows.length === 0) break;
          for (const r of rows) {
            handled.push(r.seq);
            if (dlq !== undefined && r.receive_count >= moveAt) {
              // Deleted before it is copied, so the project's stored bytes never count it twice (a move at
              // the storage quota would be refused otherwise).
              this.st.deleteSeq.run(r.seq);
              this.st.moveToDeadLetters.run({ ...r, dlq, now });
              continue;
            }
            const received = {
              ...r,
              receive_count: r.receive_count + 1,
              first_received_at: r.first_received_at ?? now,
              receipt: randomUUID(),
              visible_at: now + hideMs,
            };
            this.st.markReceived.run(
              received.receive_count,
              received.first_received_at,
              received.receipt,
              received.visible_at,
              r.seq,
            );
            out.push(toQueueMessage(received));
          }
        }
        return out;
      }),
    );
  }

  /** The dead-letter queue messages move to: only one that exists and is of the same kind (FIFO or not),
   *  since a FIFO queue's messages need a group there. */
  private deadLetterQueue(q: StoredQueue): string | undefined {
    if (q.deadLetterQueue === undefined) return undefined;
    const row = this.st.getQueue.get(q.project, q.deadLetterQueue);
    return row && toQueue(row).fifo === q.fifo ? row.name : undefined;
  }

  async delete(project: string, queue: string, receiptHandle: string): Promise<boolean> {
    this.s.assertOpen();
    return this.s.grouped(() =>
      this.s.transaction(() => {
        this.queue(project, queue);
        const h = parseReceiptHandle(receiptHandle);
        return h !== undefined && this.st.deleteReceived.run(project, queue, h.id, h.token).changes > 0;
      }),
    );
  }

  async deleteBatch(project: string, queue: string, receiptHandles: readonly string[]): Promise<boolean[]> {
    this.s.assertOpen();
    return this.s.grouped(() =>
      this.s.transaction(() => {
        this.queue(project, queue);
        return receiptHandles.map((handle) => {
          const h = parseReceiptHandle(handle);
          return h !== undefined && this.st.deleteReceived.run(project, queue, h.id, h.token).changes > 0;
        });
      }),
    );
  }

  async changeVisibility(
    project: string,
    queue: string,
    receiptHandle: string,
    seconds: number,
  ): Promise<boolean> {
    this.s.assertOpen();
    const hideMs = visibilityMs(seconds);
    const visibleAt = this.s.clock.now() + hideMs;
    return this.s.grouped(() =>
      this.s.transaction(() => {
        this.queue(project, queue);
        const h = parseReceiptHandle(receiptHandle);
        if (h === undefined) return false;
        return this.st.hide.run(visibleAt, project, queue, h.id, h.token).changes > 0;
      }),
    );
  }

  async purge(project: string, queue: string): Promise<number> {
    this.s.assertOpen();
    return this.s.grouped(
      () =>
        this.s.transaction(() => {
          this.queue(project, queue);
          return this.st.purge.run(project, queue).changes;
        }),
      true,
    );
  }

  async peek(project: string, queue: string, limit?: number): Promise<QueueMessage[]> {
    this.s.assertOpen();
    const q = this.queue(project, queue);
    const n = queryLimit(limit, DEFAULT_PEEK_LIMIT, MAX_PEEK_LIMIT);
    const cutoff = expiredBefore(q, this.s.clock.now());
    return this.st.peek.all({ project, queue, cutoff, limit: n }).map(toQueueMessage);
  }

  async stats(project?: string): Promise<QueueStats[]> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    const rows = project === undefined ? this.st.stats.all({ now }) : this.st.statsOf.all({ now, project });
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
    this.s.assertOpen();
    const row = this.st.getQueue.get(project, queue);
    if (!row) return undefined;
    const now = this.s.clock.now();
    return (
      this.st.nextVisible.get({ project, queue, now, cutoff: expiredBefore(toQueue(row), now) })?.at ??
      undefined
    );
  }

  async expire(): Promise<number> {
    this.s.assertOpen();
    const now = this.s.clock.now();
    return this.s.durably(() =>
      this.s.transaction(() => {
        let deleted = 0;
        for (const q of this.st.listQueues.all().map(toQueue)) {
          deleted += this.st.expire.run(q.project, q.name, expiredBefore(q, now)).changes;
        }
        this.st.expireDedup.run(now);
        return deleted;
      }),
    );
  }

  async createQueue(
    project: string,
    config: QueueConfig,
    tags: Record<string, string> = {},
  ): Promise<StoredQueue> {
    this.s.assertOpen();
    checkQueueConfigs('the API', [config]);
    const tagText = mergeTags({}, tags);
    const now = this.s.clock.now();
    return this.s.grouped(
      () =>
        this.s.transaction(() => {
          if (this.st.getQueue.get(project, config.name)) throw new QueueExistsError(project, config.name);
          this.st.create.run(project, config.name, queueConfigText(config), now, now, tagText);
          return this.queue(project, config.name);
        }),
      true,
    );
  }

  async updateQueue(project: string, config: QueueConfig): Promise<StoredQueue> {
    this.s.assertOpen();
    checkQueueConfigs('the API', [config]);
    const now = this.s.clock.now();
    return this.s.grouped(
      () =>
        this.s.transaction(() => {
          if (this.st.setConfig.run(queueConfigText(config), now, project, config.name).changes === 0) {
            throw new QueueNotFoundError(project, config.name);
          }
          return this.queue(project, config.name);
        }),
      true,
    );
  }

  async deleteQueue(project: string, name: string): Promise<boolean> {
    this.s.assertOpen();
    return this.s.grouped(
      () =>
        this.s.transaction(() => {
          // Dependent rows go explicitly rather than by ON DELETE CASCADE, which needs foreign_keys on.
          this.st.purge.run(project, name);
          this.st.deleteDedup.run(project, name);
          return this.st.deleteQueue.run(project, name).changes > 0;
        }),
      true,
    );
  }

  async queueTags(project: string, name: string): Promise<Record<string, string>> {
    this.s.assertOpen();
    const row = this.st.getQueue.get(project, name);
    if (!row) throw new QueueNotFoundError(project, name);
    return JSON.parse(row.tags) as Record<string, string>;
  }

  async tagQueue(
    project: string,
    name: string,
    tags: Record<string, string>,
    remove: readonly string[] = [],
  ): Promise<Record<string, string>> {
    this.s.assertOpen();
    return this.s.grouped(
      () =>
        this.s.transaction(() => {
          const row = this.st.getQueue.get(project, name);
          if (!row) throw new QueueNotFoundError(project, name);
          const next = mergeTags(JSON.parse(row.tags) as Record<string, string>, tags, remove);
          this.st.setTags.run(next, project, name);
          return JSON.parse(next) as Record<string, string>;
        }),
      true,
    );
  }

  private queue(project: string, name: string): StoredQueue {
    const row = this.st.getQueue.get(project, name);
    if (!row) throw new QueueNotFoundError(project, name);
    return toQueue(row);
  }
}

/** The queue half of FunctionStore.deploy, run inside its transaction. */
export class SqliteQueueDeploy {
  private readonly st;

  constructor({ db }: SqliteDb) {
    this.st = {
      current: db.prepare<[string, string, string], CurrentQueue>(
        `SELECT name, service, config FROM queues
         WHERE project = ? AND (service = ? OR name IN (SELECT value FROM json_each(?)))`,
      ),
      insert: db.prepare<[string, string, string, string, number, number]>(
        'INSERT INTO queues (project, name, service, config, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      update: db.prepare<[string, number, string, string]>(
        'UPDATE queues SET config = ?, updated_at = ? WHERE project = ? AND name = ?',
      ),
      deleteMessages: db.prepare<Ref>('DELETE FROM queue_messages WHERE project = ? AND queue = ?'),
      deleteDedup: db.prepare<Ref>('DELETE FROM queue_dedup WHERE project = ? AND queue = ?'),
      deleteQueue: db.prepare<Ref>('DELETE FROM queues WHERE project = ? AND name = ?'),
    };
  }

  /** Throws QueueOwnedError (before any write) for a queue another service or the API owns. */
  apply(input: DeployInput, now: number): DeployResult['queues'] {
    const { project, service } = input;
    const declared = input.queues ?? [];
    const current = this.st.current.all(project, service, JSON.stringify(declared.map((q) => q.name)));
    const plan = planQueues(service, declared, current);
    for (const q of plan.create) this.st.insert.run(project, q.name, service, queueConfigText(q), now, now);
    for (const q of plan.update) this.st.update.run(queueConfigText(q), now, project, q.name);
    // Dependent rows go explicitly rather than by ON DELETE CASCADE, which needs foreign_keys on.
    for (const name of plan.result.removed) {
      this.st.deleteMessages.run(project, name);
      this.st.deleteDedup.run(project, name);
      this.st.deleteQueue.run(project, name);
    }
    return plan.result;
  }
}

interface StatsRow {
  project: string;
  queue: string;
  visible: number;
  in_flight: number;
  delayed: number;
  oldest: number | null;
}

// Messages past their queue's retention are gone for every reader, whether or not expire() has run yet.
const STATS = `SELECT q.project, q.name AS queue,
    coalesce(sum(m.visible_at <= @now), 0) AS visible,
    coalesce(sum(m.visible_at > @now AND m.receipt IS NOT NULL), 0) AS in_flight,
    coalesce(sum(m.visible_at > @now AND m.receipt IS NULL), 0) AS delayed,
    min(m.sent_at) AS oldest
  FROM queues q LEFT JOIN queue_messages m ON m.project = q.project AND m.queue = q.name
    AND m.sent_at > @now - json_extract(q.config, '$.messageRetentionPeriod') * 1000`;

function prepare({ db }: SqliteDb) {
  return {
    getQueue: db.prepare<Ref, QueueRow>('SELECT * FROM queues WHERE project = ? AND name = ?'),
    listQueues: db.prepare<[], QueueRow>('SELECT * FROM queues ORDER BY project, name'),
    listQueuesOf: db.prepare<[string], QueueRow>('SELECT * FROM queues WHERE project = ? ORDER BY name'),
    dedup: db.prepare<[string, string, string, number], { message_id: string; seq: number }>(
      `SELECT message_id, seq FROM queue_dedup
       WHERE project = ? AND queue = ? AND dedup_id = ? AND expires_at > ?`,
    ),
    insert: db.prepare(
      `INSERT INTO queue_messages (project, queue, id, body, md5, attributes, group_id, dedup_id, trace, sent_at,
         visible_at)
       VALUES (@project, @queue, @id, @body, @md5, @attributes, @groupId, @dedupId, @trace, @now, @visibleAt)`,
    ),
    // An expired id of the same value is replaced: the window counts from the latest accepted send.
    remember: db.prepare<[string, string, string, string, number, number]>(
      `INSERT INTO queue_dedup (project, queue, dedup_id, message_id, seq, expires_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (project, queue, dedup_id) DO UPDATE
         SET message_id = excluded.message_id, seq = excluded.seq, expires_at = excluded.expires_at`,
    ),
    candidates: db.prepare<[Candidates], QueueMessageRow>(
      `SELECT * FROM queue_messages
       WHERE ${LIVE} AND visible_at <= @now AND seq NOT IN (SELECT value FROM json_each(@handled))
       ORDER BY visible_at, seq LIMIT @limit`,
    ),
    // A FIFO message is receivable when no message of its group is in flight and none before it is hidden
    // (what this receive already took does not count: a group's messages may come in one batch).
    fifoCandidates: db.prepare<[Candidates], QueueMessageRow>(
      `SELECT * FROM queue_messages m
       WHERE m.project = @project AND m.queue = @queue AND m.sent_at > @cutoff AND m.visible_at <= @now
         AND m.seq NOT IN (SELECT value FROM json_each(@handled))
         AND NOT EXISTS (
           SELECT 1 FROM queue_messages h
           WHERE h.project = m.project AND h.queue = m.queue AND h.group_id = m.group_id
             AND h.sent_at > @cutoff AND h.visible_at > @now AND (h.receipt IS NOT NULL OR h.seq < m.seq)
             AND h.seq NOT IN (SELECT value FROM json_each(@handled)))
       ORDER BY m.seq LIMIT @limit`,
    ),
    markReceived: db.prepare<[number, number, string, number, number]>(
      `UPDATE queue_messages SET receive_count = ?, first_received_at = ?, receipt = ?, visible_at = ?
       WHERE seq = ?`,
    ),
    // SQS keeps the original send time, so a dead letter expires when it would have in its first queue. A
    // fresh seq puts it at the end of the dead-letter queue; one already there (same id) is kept.
    moveToDeadLetters: db.prepare<[QueueMessageRow & { dlq: string; now: number }]>(
      `INSERT INTO queue_messages (project, queue, id, body, md5, attributes, group_id, dedup_id, trace, sent_at,
         visible_at, dead_letter_source)
       VALUES (@project, @dlq, @id, @body, @md5, @attributes, @group_id, @dedup_id, @trace, @sent_at, @now, @queue)
       ON CONFLICT (project, queue, id) DO NOTHING`,
    ),
    deleteSeq: db.prepare<[number]>('DELETE FROM queue_messages WHERE seq = ?'),
    create: db.prepare<[string, string, string, number, number, string]>(
      `INSERT INTO queues (project, name, service, config, created_at, updated_at, tags)
       VALUES (?, ?, NULL, ?, ?, ?, ?)`,
    ),
    setConfig: db.prepare<[string, number, string, string]>(
      'UPDATE queues SET config = ?, updated_at = ? WHERE project = ? AND name = ?',
    ),
    setTags: db.prepare<[string, string, string]>(
      'UPDATE queues SET tags = ? WHERE project = ? AND name = ?',
    ),
    deleteDedup: db.prepare<Ref>('DELETE FROM queue_dedup WHERE project = ? AND queue = ?'),
    deleteQueue: db.prepare<Ref>('DELETE FROM queues WHERE project = ? AND name = ?'),
    deleteReceived: db.prepare<[string, string, string, string]>(
      'DELETE FROM queue_messages WHERE project = ? AND queue = ? AND id = ? AND receipt = ?',
    ),
    hide: db.prepare<[number, string, string, string, string]>(
      'UPDATE queue_messages SET visible_at = ? WHERE project = ? AND queue = ? AND id = ? AND receipt = ?',
    ),
    purge: db.prepare<Ref>('DELETE FROM queue_messages WHERE project = ? AND queue = ?'),
    peek: db.prepare<[{ project: string; queue: string; cutoff: number; limit: number }], QueueMessageRow>(
      `SELECT * FROM queue_messages WHERE ${LIVE} ORDER BY seq LIMIT @limit`,
    ),
    nextVisible: db.prepare<
      [{ project: string; queue: string; now: number; cutoff: number }],
      { at: number | null }
    >(`SELECT min(visible_at) AS at FROM queue_messages WHERE ${LIVE} AND visible_at > @now`),
    stats: db.prepare<[{ now: number }], StatsRow>(
      `${STATS} GROUP BY q.project, q.name ORDER BY q.project, q.name`,
    ),
    statsOf: db.prepare<[{ now: number; project: string }], StatsRow>(
      `${STATS} WHERE q.project = @project GROUP BY q.project, q.name ORDER BY q.name`,
    ),
    expire: db.prepare<[string, string, number]>(
      'DELETE FROM queue_messages WHERE project = ? AND queue = ? AND sent_at <= ?',
    ),
    expireDedup: db.prepare<[number]>('DELETE FROM queue_dedup WHERE expires_at <= ?'),
  };
}

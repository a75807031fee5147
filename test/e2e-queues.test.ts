// Queues and queue triggers through the public surface, on both stores: SQS's record shape, partial batch
// failures, dead letters after maxReceiveCount, FIFO order and deduplication, filter criteria, queue
// destinations, back-pressure against a function's HTTP traffic, and the deploys and sends that must be refused.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, BIN, FIXTURES, eventually, startTestNimbus, type TestNimbus } from './helpers.js';

const run = promisify(execFile);

describe.each(BACKENDS)('queues on %s', (backend) => {
  let n: TestNimbus;

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'queues'));
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${n.apiUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${n.apiKey}`, 'content-type': 'application/json', ...init.headers },
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const records = async (fn: string) =>
    (await api(`/v1/invocations?function=${fn}&limit=1000`)).body.invocations as any[];
  const logged = async (fn: string, tag: string) =>
    (await records(fn))
      .sort((a, b) => a.seq - b.seq)
      .flatMap((r) => [...String(r.logs).matchAll(new RegExp(`${tag} (.*)\\n`, 'g'))].map((m) => m[1]!));

  it('delivers SQS records, deletes what succeeded, retries only the batchItemFailures, then dead-letters them', async () => {
    const sent = await n.client.sendMessages('orders', [
      { body: JSON.stringify({ n: 1 }), attributes: { type: 'order', qty: 3 } },
      { body: JSON.stringify({ n: 2, fail: 'item' }) },
      { body: JSON.stringify({ n: 3 }) },
    ]);
    expect(sent).toHaveLength(3);
    const [ok, bad] = sent;
    expect(ok!.md5OfBody).toBe(
      createHash('md5')
        .update(JSON.stringify({ n: 1 }))
        .digest('hex'),
    );
    // Received, failed, received again after the 2 s visibility timeout, failed, then moved to orders-dlq.
    const dead = await eventually(async () => {
      const m = await n.client.peekMessages('orders-dlq');
      return m.find((x) => x.messageId === bad!.messageId);
    }, 20_000);
    expect(dead).toMatchObject({ deadLetterSource: 'orders', body: JSON.stringify({ n: 2, fail: 'item' }) });
    const got = (await logged('worker', 'GOT')).map((l) => JSON.parse(l));
    const counts = (id: string) => got.filter((g) => g.id === id).map((g) => g.count);
    expect(counts(ok!.messageId)).toEqual([1]);
    expect(counts(sent[2]!.messageId)).toEqual([1]);
    expect(counts(bad!.messageId)).toEqual([1, 2]);
    const record = (await logged('worker', 'RECORD'))
      .map((l) => JSON.parse(l))
      .find((r) => r.messageId === ok!.messageId);
    expect(record).toMatchObject({
      messageId: ok!.messageId,
      receiptHandle: expect.any(String),
      body: JSON.stringify({ n: 1 }),
      md5OfBody: ok!.md5OfBody,
      md5OfMessageAttributes: ok!.md5OfMessageAttributes,
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:orders',
      awsRegion: 'us-east-1',
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: expect.stringMatching(/^\d{13}$/),
        ApproximateFirstReceiveTimestamp: expect.stringMatching(/^\d{13}$/),
        SenderId: expect.any(String),
      },
      messageAttributes: {
        type: { stringValue: 'order', dataType: 'String', stringListValues: [], binaryListValues: [] },
        qty: { stringValue: '3', dataType: 'Number' },
      },
    });
    const invocations = (await records('worker')).filter((r) => r.trigger === 'queue');
    expect(invocations.length).toBeGreaterThanOrEqual(2);
    const q = await eventually(async () => {
      const v = await n.client.queue('orders');
      return v.visible + v.inFlight === 0 ? v : undefined;
    });
    expect(q.deadLetters).toBe(1);
  });

  it('makes the whole batch visible again when the function throws', async () => {
    const [m] = await n.client.sendMessages('orders', [{ body: JSON.stringify({ n: 4, fail: 'all' }) }]);
    await eventually(
      async () => (await n.client.peekMessages('orders-dlq')).some((x) => x.messageId === m!.messageId),
      20_000,
    );
    const got = (await logged('worker', 'GOT'))
      .map((l) => JSON.parse(l))
      .filter((g) => g.id === m!.messageId);
    expect(got.map((g) => g.count)).toEqual([1, 2]);
    const failed = (await records('worker')).filter((r) => r.status === 'error');
    expect(failed.length).toBeGreaterThanOrEqual(2);
  });

  it('keeps FIFO order per group, holds a group back behind a failed message, and deduplicates by content', async () => {
    const send = (body: string, group: string) =>
      n.client.sendMessages('jobs.fifo', [{ body, groupId: group }]);
    await n.client.sendMessages('jobs.fifo', [
      { body: 'a1', groupId: 'a' },
      { body: 'b1', groupId: 'b' },
      { body: 'fail-once', groupId: 'c' },
      { body: 'c2', groupId: 'c' },
      { body: 'a2', groupId: 'a' },
    ]);
    const first = await send('a3', 'a');
    const dup = await send('a3', 'a');
    expect(dup[0]).toMatchObject({ duplicate: true, messageId: first[0]!.messageId });
    expect(first[0]!.sequenceNumber).toMatch(/^\d{20}$/);
    const seen = await eventually(async () => {
      const all = (await logged('sequencer', 'FIFO')).map((l) => JSON.parse(l));
      return all.filter((x) => x.body === 'c2').length >= 2 ? all : undefined;
    }, 20_000);
    const of = (g: string) => seen.filter((x) => x.group === g).map((x) => `${x.body}#${x.count}`);
    expect(of('a')).toEqual(['a1#1', 'a2#1', 'a3#1']);
    expect(of('b')).toEqual(['b1#1']);
    // c2 waited for fail-once's retry, though it was in the first batch too.
    expect(of('c')).toEqual(['fail-once#1', 'c2#1', 'fail-once#2', 'c2#2']);
  });

  it('invokes only for messages that match the filter criteria and deletes the rest', async () => {
    await n.client.sendMessages('filtered', [
      { body: JSON.stringify({ type: 'order', id: 1 }) },
      { body: JSON.stringify({ type: 'refund', id: 2 }) },
      { body: 'plain text' },
      { body: 'urgent', attributes: { priority: 'high' } },
    ]);
    await eventually(async () => {
      const q = await n.client.queue('filtered');
      return q.visible + q.inFlight === 0 && (await logged('picky', 'PICKED')).length >= 2;
    });
    expect((await logged('picky', 'PICKED')).sort()).toEqual(
      ['urgent', JSON.stringify({ type: 'order', id: 1 })].sort(),
    );
  });

  it('sends the failure record of an async invocation to a queue destination', async () => {
    const { requestId } = await n.client.invoke('failing', JSON.stringify({ x: 1 }), { async: true });
    const msg = await eventually(async () =>
      (await n.client.peekMessages('failures')).find(
        (m) => JSON.parse(m.body).requestContext.requestId === requestId,
      ),
    );
    expect(JSON.parse(msg.body)).toMatchObject({
      requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: 1 },
      requestPayload: { x: 1 },
      responsePayload: { errorMessage: 'failing on purpose' },
    });
  });

  it("leaves HTTP its share of a function's reserved concurrency while a backlog drains", async () => {
    await n.client.sendMessages(
      'busy',
      Array.from({ length: 10 }, (_, i) => ({ body: `m${i}` })),
    );
    await n.client.sendMessages(
      'busy',
      Array.from({ length: 10 }, (_, i) => ({ body: `n${i}` })),
    );
    await eventually(async () => (await records('slow')).some((r) => r.trigger === 'queue'));
    // While queue batches run, HTTP calls of the same function still get through (reserved 5, events use 4).
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${n.gatewayUrl}/slow`)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    const done = await eventually(async () => {
      const rs = (await records('slow')).filter((r) => r.trigger === 'queue');
      return rs.length === 20 ? rs : undefined;
    }, 30_000);
    // No more than 4 queue batches overlapped at any moment.
    const edges = done
      .flatMap((r) => [
        [r.start, 1],
        [r.start + r.durationMs, -1],
      ])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let now = 0;
    let peak = 0;
    for (const [, d] of edges) peak = Math.max(peak, (now += d));
    expect(peak).toBeLessThanOrEqual(4);
    expect(done.every((r) => r.status === 'ok')).toBe(true);
  });

  it('leaves HTTP its share while a backlog of async events drains too', async () => {
    const before = (await records('slow')).filter((r) => r.trigger === 'event').length;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => n.client.invoke('slow', JSON.stringify({ i }), { async: true })),
    );
    await eventually(async () => (await records('slow')).some((r) => r.trigger === 'event'));
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${n.gatewayUrl}/slow`)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    const done = await eventually(async () => {
      const rs = (await records('slow')).filter((r) => r.trigger === 'event');
      return rs.length - before === 20 ? rs : undefined;
    }, 30_000);
    expect(done.every((r) => r.status === 'ok')).toBe(true);
  });

  it('shows queues with depth, in flight, oldest age and dead letters in the API and the CLI', async () => {
    const env = { ...process.env, NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey };
    const sent = await run(
      process.execPath,
      [BIN, 'queue', 'send', 'failures', '--body', 'hello', '--attributes', '{"k":"v"}'],
      { env },
    );
    expect(sent.stdout).toMatch(/^Sent [0-9a-f-]{36} to failures\.\n$/);
    const ls = await run(process.execPath, [BIN, 'queue', 'ls'], { env });
    expect(ls.stdout).toMatch(/orders\s+standard\s+0\s+0\s+0\s+-\s+2 \(orders-dlq\)/);
    expect(ls.stdout).toMatch(/jobs\.fifo\s+fifo/);
    const listing = await run(process.execPath, [BIN, 'ls'], { env });
    expect(listing.stdout).toMatch(/Queue failures: \d+ waiting, 0 in flight, oldest \d+ s/);
    const { body } = await api('/v1/queues');
    expect(body.queues.map((q: any) => q.name).sort()).toEqual(
      ['busy', 'failures', 'filtered', 'jobs.fifo', 'orders', 'orders-dlq'].sort(),
    );
    const bad = await run(process.execPath, [BIN, 'queue', 'send', 'jobs.fifo', '--body', 'x'], {
      env,
    }).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/group/i);
  });

  it('refuses bad messages with a 400 or 404 and stores none of them', async () => {
    const before = (await n.client.queue('failures')).visible;
    const tooBig = await api('/v1/queues/failures/messages', {
      method: 'POST',
      body: JSON.stringify({ messages: [{ body: 'fine' }, { body: 'x'.repeat(300_000) }] }),
    });
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.error.message).toMatch(/262144|size|large/i);
    const fifo = await api('/v1/queues/jobs.fifo/messages', {
      method: 'POST',
      body: JSON.stringify({ body: 'x' }),
    });
    expect(fifo.status).toBe(400);
    const missing = await api('/v1/queues/nope/messages', {
      method: 'POST',
      body: JSON.stringify({ body: 'x' }),
    });
    expect(missing.status).toBe(404);
    const garbage = await api('/v1/queues/failures/messages', { method: 'POST', body: '{not json' });
    expect(garbage.status).toBe(400);
    expect((await n.client.queue('failures')).visible).toBe(before);
  });

  describe('deploys that name queues wrongly are refused and write nothing', () => {
    const cases: [string, string, RegExp][] = [
      ['an undeclared queue', 'events: [{ queue: nowhere }]', /queue "nowhere".*not declared/],
      [
        'a batch size out of range',
        'events: [{ queue: { name: q, batchSize: 10001 } }]',
        /batchSize.*at most 10000/,
      ],
      ['a batch size of zero', 'events: [{ queue: { name: q, batchSize: 0 } }]', /batchSize.*at least 1/],
      [
        'a large batch without a window',
        'events: [{ queue: { name: q, batchSize: 100 } }]',
        /maximumBatchingWindow/,
      ],
      [
        'a visibility timeout shorter than the timeout',
        'timeout: 60\n    events: [{ queue: q }]',
        /visibilityTimeout of 30 s, less than/,
      ],
      [
        'a bad filter pattern',
        'events: [{ queue: { name: q, filterCriteria: { filters: [{ pattern: "{nope" }] } } }]',
        /pattern/,
      ],
      ['an unknown destination queue', 'async: { onFailure: { queue: gone } }', /queue "gone"/],
    ];
    it.each(cases)('%s', async (_, fn, message) => {
      const dir = mkdtempSync(join(tmpdir(), 'nimbus-bad-queue-'));
      try {
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, 'index.js'), 'exports.h = async () => ({});\n');
        writeFileSync(
          join(dir, 'nimbus.yaml'),
          `service: badq\nqueues:\n  q: {}\nfunctions:\n  badfn:\n    handler: index.h\n    ${fn}\n`,
        );
        const err = await n.deploy(dir).catch((e: unknown) => e as { code: string; message: string });
        expect(err).toMatchObject({ message: expect.stringMatching(message) });
        expect((await n.client.list()).functions.map((f) => f.name)).not.toContain('badfn');
        expect((await n.client.queues()).map((q) => q.name)).not.toContain('q');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

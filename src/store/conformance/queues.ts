// QueueStore conformance: queues follow deploys, and messages behave as on SQS (visibility timeouts, receipt
// handles, delays, FIFO order and deduplication, dead letters, retention), all in store time (a ManualClock).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { FunctionConfig, QueueConfig } from '../../config/manifest.js';
import { QueueExistsError, QueueInputError, QueueNotFoundError, QueueOwnedError } from '../errors.js';
import type { NewMessage, QueueMessage } from '../types.js';
import { codeOf, deployOf, fn, useHarness, type HarnessFactory } from './harness.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

export function queue(name: string, over: Partial<QueueConfig> = {}): QueueConfig {
  return {
    name,
    fifo: name.endsWith('.fifo'),
    contentBasedDeduplication: false,
    visibilityTimeout: 30,
    messageRetentionPeriod: 345_600,
    delaySeconds: 0,
    maximumMessageSize: 262_144,
    ...over,
  };
}

export function queueStoreConformance(name: string, make: HarnessFactory): void {
  describe(`QueueStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const q = () => ctx.store.queues;
    const deploy = (
      service: string,
      queues: QueueConfig[],
      functions: FunctionConfig[] = [fn(`${service}-fn`)],
      project?: string,
    ) => ctx.store.functions.deploy({ ...deployOf(service, functions, codeOf(service), project), queues });
    const send = (queueName: string, ...messages: NewMessage[]) => q().send('default', queueName, messages);
    const sendOne = async (queueName: string, m: NewMessage) => (await send(queueName, m))[0]!;
    const receive = (queueName: string, max = 10, visibilityTimeout?: number) =>
      q().receive('default', queueName, { max, visibilityTimeout });
    const bodies = (ms: QueueMessage[]) => ms.map((m) => m.body);
    const fifo = (body: string, groupId: string, deduplicationId = body): NewMessage => ({
      body,
      groupId,
      deduplicationId,
    });

    describe('deploy', () => {
      it('creates, updates, keeps and removes the queues a service declares, and reports each', async () => {
        const t0 = ctx.clock.now();
        const first = await deploy('svc', [queue('a'), queue('b'), queue('c.fifo')]);
        expect(first.queues).toEqual({
          created: ['a', 'b', 'c.fifo'],
          updated: [],
          unchanged: [],
          removed: [],
        });
        expect(await q().getQueue('default', 'a')).toStrictEqual({
          ...queue('a'),
          project: 'default',
          service: 'svc',
          createdAt: t0,
          updatedAt: t0,
        });
        await sendOne('b', { body: 'kept' });
        await sendOne('c.fifo', fifo('gone', 'g', 'd1'));

        ctx.clock.advance(1000);
        const second = await deploy('svc', [queue('b', { visibilityTimeout: 60 }), queue('a')]);
        expect(second.queues).toEqual({ created: [], updated: ['b'], unchanged: ['a'], removed: ['c.fifo'] });
        expect(await q().getQueue('default', 'b')).toMatchObject({
          visibilityTimeout: 60,
          createdAt: t0,
          updatedAt: t0 + 1000,
        });
        expect((await q().getQueue('default', 'a'))?.updatedAt).toBe(t0);
        expect(bodies(await q().peek('default', 'b'))).toEqual(['kept']);
        expect(await q().getQueue('default', 'c.fifo')).toBeUndefined();
        expect((await q().listQueues()).map((x) => x.name)).toEqual(['a', 'b']);

        // Declared again, it starts empty: its messages and deduplication ids went with it.
        await deploy('svc', [queue('a'), queue('b', { visibilityTimeout: 60 }), queue('c.fifo')]);
        expect(await q().peek('default', 'c.fifo')).toEqual([]);
        expect((await sendOne('c.fifo', fifo('again', 'g', 'd1'))).duplicate).toBe(false);

        const none = await deploy('svc', []);
        expect(none.queues).toEqual({
          created: [],
          updated: [],
          unchanged: [],
          removed: ['a', 'b', 'c.fifo'],
        });
        expect(await q().listQueues()).toEqual([]);
      });

      it("refuses a queue another service owns, writing nothing (not even the deploy's functions)", async () => {
        await deploy('owner', [queue('shared')], [fn('a')]);
        await deploy('intruder', [], [fn('b')]);
        const before = await ctx.store.functions.listFunctions();
        const err = await deploy(
          'intruder',
          [queue('mine'), queue('shared', { delaySeconds: 5 })],
          [fn('b', { memory: 512 }), fn('c')],
        ).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(QueueOwnedError);
        expect(err).toMatchObject({
          code: 'QueueOwnedByOtherService',
          queue: 'shared',
          ownerService: 'owner',
          service: 'intruder',
        });
        expect(await ctx.store.functions.listFunctions()).toStrictEqual(before);
        expect(await q().getQueue('default', 'mine')).toBeUndefined();
        expect(await q().getQueue('default', 'shared')).toMatchObject({ service: 'owner', delaySeconds: 0 });
      });

      it('refuses invalid queue configs with QueueInputError, writing nothing', async () => {
        const bad: QueueConfig[][] = [
          [queue('a'), queue('a')],
          [queue('has space')],
          [queue('x'.repeat(81))],
          [queue('plain', { fifo: true })],
          [{ ...queue('f.fifo'), fifo: false }],
          [queue('std', { contentBasedDeduplication: true })],
          [queue('v', { visibilityTimeout: 43_201 })],
          [queue('r', { messageRetentionPeriod: 59 })],
          [queue('d', { delaySeconds: 1.5 })],
          [queue('m', { maximumMessageSize: 1_048_577 })],
          [queue('n', { deadLetterQueue: 'dead', maxReceiveCount: 0 })],
          [queue('self', { deadLetterQueue: 'self' })],
          [queue('s', { deadLetterQueue: 'dead.fifo' }), queue('dead.fifo')],
        ];
        for (const queues of bad) {
          await expect(deploy('svc', queues)).rejects.toBeInstanceOf(QueueInputError);
        }
        expect(await q().listQueues()).toEqual([]);
        expect(await ctx.store.functions.listFunctions()).toEqual([]);
        // The longest names allowed.
        await deploy('svc', [queue('x'.repeat(80)), queue(`${'y'.repeat(75)}.fifo`)]);
        expect(await q().listQueues()).toHaveLength(2);
      });

      it('keeps queues of the same name in two projects apart', async () => {
        await ctx.store.projects.ensure('p2');
        await deploy('one', [queue('jobs')]);
        await deploy('two', [queue('jobs', { delaySeconds: 3 })], [fn('w')], 'p2');
        await sendOne('jobs', { body: 'default' });
        expect((await q().getQueue('p2', 'jobs'))?.service).toBe('two');
        expect((await q().listQueues()).map((x) => [x.project, x.name])).toEqual([
          ['default', 'jobs'],
          ['p2', 'jobs'],
        ]);
        expect((await q().stats('p2')).map((s) => [s.queue, s.visible])).toEqual([['jobs', 0]]);
        expect(await q().peek('p2', 'jobs')).toEqual([]);
      });
    });

    describe('messages', () => {
      it('sends, receives and deletes a message with its attributes, md5 and trace', async () => {
        await deploy('svc', [queue('jobs')]);
        const t0 = ctx.clock.now();
        const attributes = {
          color: { DataType: 'String', StringValue: 'grün' },
          count: { DataType: 'Number.int', StringValue: '-12.5e3' },
          blob: { DataType: 'Binary', BinaryValue: Buffer.from([0, 1, 2, 255]).toString('base64') },
        };
        const sent = await sendOne('jobs', { body: 'héllo ✓', attributes, trace: 'Root=1-abc;Lineage=1' });
        expect(sent).toStrictEqual({
          id: sent.id,
          md5OfBody: md5('héllo ✓'),
          sequenceNumber: null,
          duplicate: false,
        });
        expect(sent.id).toMatch(UUID);

        ctx.clock.advance(5);
        const [m, ...rest] = await receive('jobs');
        expect(rest).toEqual([]);
        expect(m).toStrictEqual({
          id: sent.id,
          project: 'default',
          queue: 'jobs',
          body: 'héllo ✓',
          md5OfBody: md5('héllo ✓'),
          attributes,
          groupId: null,
          deduplicationId: null,
          sequenceNumber: null,
          trace: 'Root=1-abc;Lineage=1',
          sentAt: t0,
          firstReceivedAt: t0 + 5,
          receiveCount: 1,
          receiptHandle: m!.receiptHandle,
          deadLetterSource: null,
        });
        expect(typeof m!.receiptHandle).toBe('string');
        expect(await receive('jobs')).toEqual([]);
        expect(await q().delete('default', 'jobs', m!.receiptHandle!)).toBe(true);
        expect(await q().delete('default', 'jobs', m!.receiptHandle!)).toBe(false);
        expect(await q().peek('default', 'jobs')).toEqual([]);
      });

      it('hides a received message for the visibility timeout, then gives it out again with a new handle', async () => {
        await deploy('svc', [queue('jobs', { visibilityTimeout: 30 })]);
        await sendOne('jobs', { body: 'x' });
        const t0 = ctx.clock.now();
        const [first] = await receive('jobs');
        ctx.clock.advance(29_999);
        expect(await receive('jobs')).toEqual([]);
        ctx.clock.advance(1);
        const [second] = await receive('jobs', 10, 5);
        expect(second).toMatchObject({ id: first!.id, receiveCount: 2, firstReceivedAt: t0 });
        expect(second!.receiptHandle).not.toBe(first!.receiptHandle);
        // The first receiver's timeout ran out and someone else took the message: its handle is stale.
        expect(await q().delete('default', 'jobs', first!.receiptHandle!)).toBe(false);
        expect(await q().changeVisibility('default', 'jobs', first!.receiptHandle!, 0)).toBe(false);
        // The timeout given to receive() replaces the queue's.
        expect(await q().nextVisibleAt('default', 'jobs')).toBe(ctx.clock.now() + 5000);
        ctx.clock.advance(5000);
        const [third] = await receive('jobs');
        expect(third?.receiveCount).toBe(3);
        expect(await q().delete('default', 'jobs', second!.receiptHandle!)).toBe(false);
        expect(await q().delete('default', 'jobs', third!.receiptHandle!)).toBe(true);
      });

      it('changes the visibility of a received message, and refuses a timeout out of range', async () => {
        await deploy('svc', [queue('jobs')]);
        await sendOne('jobs', { body: 'x' });
        const [m] = await receive('jobs');
        expect(await q().changeVisibility('default', 'jobs', m!.receiptHandle!, 0)).toBe(true);
        const [again] = await receive('jobs');
        expect(again?.receiveCount).toBe(2);
        expect(await q().changeVisibility('default', 'jobs', again!.receiptHandle!, 120)).toBe(true);
        ctx.clock.advance(119_999);
        expect(await receive('jobs')).toEqual([]);
        ctx.clock.advance(1);
        expect(await receive('jobs')).toHaveLength(1);
        for (const seconds of [-1, 43_201, 1.5, Number.NaN]) {
          await expect(
            q().changeVisibility('default', 'jobs', again!.receiptHandle!, seconds),
          ).rejects.toBeInstanceOf(QueueInputError);
        }
        await expect(receive('jobs', 1, 43_201)).rejects.toBeInstanceOf(QueueInputError);
      });

      it('answers false, never throws, for handles that are not a current one', async () => {
        await deploy('svc', [queue('jobs'), queue('other')]);
        await sendOne('jobs', { body: 'x' });
        const [m] = await receive('jobs');
        const forged = [
          '',
          'garbage',
          '%%%',
          Buffer.from('a:b:c').toString('base64url'),
          Buffer.from(`${m!.id}:wrong`).toString('base64url'),
          'x'.repeat(5000),
        ];
        for (const h of forged) {
          expect(await q().delete('default', 'jobs', h)).toBe(false);
          expect(await q().changeVisibility('default', 'jobs', h, 0)).toBe(false);
        }
        // A real handle names a message of its own queue only.
        expect(await q().delete('default', 'other', m!.receiptHandle!)).toBe(false);
        expect(await q().delete('default', 'jobs', m!.receiptHandle!)).toBe(true);
      });

      it('deletes a batch of handles in one call and says which of them deleted a message', async () => {
        await deploy('svc', [queue('jobs')]);
        await send('jobs', { body: 'a' }, { body: 'b' }, { body: 'c' });
        const [a, b, c] = await receive('jobs');
        // b's visibility runs out and another receiver takes it: b's first handle no longer deletes it.
        await q().changeVisibility('default', 'jobs', b!.receiptHandle!, 0);
        const [b2] = await receive('jobs');
        expect(
          await q().deleteBatch('default', 'jobs', [
            a!.receiptHandle!,
            b!.receiptHandle!,
            'garbage',
            c!.receiptHandle!,
            c!.receiptHandle!,
          ]),
        ).toEqual([true, false, false, true, false]);
        expect(bodies(await q().peek('default', 'jobs'))).toEqual(['b']);
        expect(await q().deleteBatch('default', 'jobs', [b2!.receiptHandle!])).toEqual([true]);
        expect(await q().deleteBatch('default', 'jobs', [])).toEqual([]);
        await expect(q().deleteBatch('default', 'nope', [])).rejects.toBeInstanceOf(QueueNotFoundError);
      });

      it('gives out the oldest messages first, up to max (at least one)', async () => {
        await deploy('svc', [queue('jobs')]);
        for (const body of ['a', 'b', 'c']) await sendOne('jobs', { body });
        await send('jobs', { body: 'd' }, { body: 'e' });
        expect(bodies(await receive('jobs', 2))).toEqual(['a', 'b']);
        expect(bodies(await receive('jobs', 0))).toEqual(['c']);
        expect(bodies(await receive('jobs', 10))).toEqual(['d', 'e']);
      });

      it("delays messages by the queue's delay or the message's own", async () => {
        await deploy('svc', [queue('slow', { delaySeconds: 10 }), queue('jobs')]);
        const t0 = ctx.clock.now();
        await sendOne('slow', { body: 'queue delay' });
        await sendOne('slow', { body: 'no delay', delaySeconds: 0 });
        await sendOne('jobs', { body: 'own delay', delaySeconds: 5 });
        expect(bodies(await receive('slow'))).toEqual(['no delay']);
        expect(await receive('jobs')).toEqual([]);
        expect((await q().stats()).map((s) => [s.queue, s.delayed])).toEqual([
          ['jobs', 1],
          ['slow', 1],
        ]);
        expect(await q().nextVisibleAt('default', 'jobs')).toBe(t0 + 5000);
        ctx.clock.advance(5000);
        expect(bodies(await receive('jobs'))).toEqual(['own delay']);
        ctx.clock.advance(4999);
        expect(await receive('slow')).toEqual([]);
        ctx.clock.advance(1);
        expect(bodies(await receive('slow'))).toEqual(['queue delay']);
        await expect(sendOne('jobs', { body: 'x', delaySeconds: 901 })).rejects.toBeInstanceOf(
          QueueInputError,
        );
      });

      it('peeks without changing anything, oldest first, 100 by default', async () => {
        await deploy('svc', [queue('jobs')]);
        await send('jobs', ...Array.from({ length: 105 }, (_, i) => ({ body: `m${i}` })));
        const all = await q().peek('default', 'jobs');
        expect(all).toHaveLength(100);
        expect(all[0]).toMatchObject({
          body: 'm0',
          receiveCount: 0,
          receiptHandle: null,
          firstReceivedAt: null,
        });
        expect(bodies(await q().peek('default', 'jobs', 3))).toEqual(['m0', 'm1', 'm2']);
        expect((await receive('jobs', 1))[0]).toMatchObject({ body: 'm0', receiveCount: 1 });
      });

      it('purges every message of a queue and says how many', async () => {
        await deploy('svc', [queue('jobs'), queue('other')]);
        await send('jobs', { body: 'a' }, { body: 'b' });
        await sendOne('other', { body: 'stays' });
        await receive('jobs', 1);
        expect(await q().purge('default', 'jobs')).toBe(2);
        expect(await q().purge('default', 'jobs')).toBe(0);
        expect(await q().peek('default', 'jobs')).toEqual([]);
        expect(bodies(await q().peek('default', 'other'))).toEqual(['stays']);
      });

      it('counts visible, in-flight and delayed messages per queue, empty ones too', async () => {
        await deploy('svc', [queue('b-empty'), queue('a')]);
        const t0 = ctx.clock.now();
        await send('a', { body: 'flight' }, { body: 'visible' }, { body: 'later', delaySeconds: 60 });
        await receive('a', 1);
        ctx.clock.advance(10);
        expect(await q().stats()).toStrictEqual([
          { project: 'default', queue: 'a', visible: 1, inFlight: 1, delayed: 1, oldestSentAt: t0 },
          { project: 'default', queue: 'b-empty', visible: 0, inFlight: 0, delayed: 0, oldestSentAt: null },
        ]);
        expect(await q().stats('nope')).toEqual([]);
      });

      it('refuses every message of a send when one is invalid, storing none', async () => {
        await deploy('svc', [queue('small', { maximumMessageSize: 1024 }), queue('jobs'), queue('f.fifo')]);
        const refused = async (name: string, messages: NewMessage[], field: string | RegExp) => {
          const err = await q()
            .send('default', name, messages)
            .catch((e: unknown) => e);
          expect(err).toBeInstanceOf(QueueInputError);
          if (typeof field === 'string') expect((err as QueueInputError).field).toBe(field);
          else expect((err as QueueInputError).field).toMatch(field);
        };
        const ok = { body: 'fine' };
        await refused('small', [ok, { body: 'x'.repeat(1025) }], 'body');
        // Bytes, not characters: 513 two-byte characters.
        await refused('small', [{ body: 'é'.repeat(513) }], 'body');
        // Attribute names, types and values count too.
        await refused(
          'small',
          [
            {
              body: 'x'.repeat(1000),
              attributes: { n: { DataType: 'String', StringValue: 'y'.repeat(20) } },
            },
          ],
          'body',
        );
        await refused('jobs', [ok, { body: '' }], 'body');
        await refused('jobs', [{ body: 'nul \u0000' }], 'body');
        await refused('jobs', [ok, { body: 'x', groupId: 'g' }], 'groupId');
        await refused('jobs', [{ body: 'x', deduplicationId: 'd' }], 'deduplicationId');
        const attr = (a: unknown) => [ok, { body: 'x', attributes: { a } } as NewMessage];
        await refused('jobs', attr({ DataType: 'Number', StringValue: 'abc' }), 'attributes.a');
        await refused('jobs', attr({ DataType: 'Date', StringValue: '2026' }), 'attributes.a');
        await refused('jobs', attr({ DataType: 'String' }), 'attributes.a');
        await refused('jobs', attr({ DataType: 'String', StringValue: '' }), 'attributes.a');
        await refused('jobs', attr({ DataType: 'String', BinaryValue: 'AA==' }), 'attributes.a');
        await refused('jobs', attr({ DataType: 'Binary', BinaryValue: 'not base64!' }), 'attributes.a');
        await refused(
          'jobs',
          [{ body: 'x', attributes: { 'AWS.x': { DataType: 'String', StringValue: 'v' } } }],
          /^attributes\./,
        );
        const eleven = Object.fromEntries(
          Array.from({ length: 11 }, (_, i) => [`a${i}`, { DataType: 'String', StringValue: 'v' }]),
        );
        await refused('jobs', [{ body: 'x', attributes: eleven }], 'attributes');
        await refused('f.fifo', [fifo('a', 'g'), { body: 'no group', deduplicationId: 'd' }], 'groupId');
        await refused('f.fifo', [fifo('a', 'g'), { body: 'no dedup', groupId: 'g' }], 'deduplicationId');
        await refused('f.fifo', [fifo('a', 'g'), fifo('b', 'x'.repeat(129))], 'groupId');
        await refused('f.fifo', [fifo('a', 'g'), { ...fifo('b', 'g'), delaySeconds: 1 }], 'delaySeconds');
        for (const name of ['small', 'jobs', 'f.fifo']) expect(await q().peek('default', name)).toEqual([]);

        // At the limits it is accepted.
        await send('small', { body: 'x'.repeat(1024) });
        await send('jobs', { body: 'x', attributes: Object.fromEntries(Object.entries(eleven).slice(1)) });
      });

      it('answers QueueNotFoundError for a queue that does not exist', async () => {
        await deploy('svc', [queue('jobs')]);
        const calls = [
          () => q().send('default', 'nope', [{ body: 'x' }]),
          () => q().receive('default', 'nope', { max: 1 }),
          () => q().delete('default', 'nope', 'h'),
          () => q().changeVisibility('default', 'nope', 'h', 0),
          () => q().purge('default', 'nope'),
          () => q().peek('default', 'nope'),
          () => q().send('p2', 'jobs', [{ body: 'x' }]),
        ];
        for (const call of calls) {
          await expect(call()).rejects.toMatchObject({ code: 'QueueDoesNotExist' });
          await expect(call()).rejects.toBeInstanceOf(QueueNotFoundError);
        }
        expect(await q().getQueue('default', 'nope')).toBeUndefined();
        expect(await q().nextVisibleAt('default', 'nope')).toBeUndefined();
      });

      it('keeps queues, messages and receipt handles across a reopen', async () => {
        await deploy('svc', [queue('jobs')]);
        await send('jobs', { body: 'a' }, { body: 'b' });
        const [m] = await receive('jobs', 1);
        const before = await q().peek('default', 'jobs');
        await ctx.reopen();
        expect(await q().peek('default', 'jobs')).toStrictEqual(before);
        expect(await q().delete('default', 'jobs', m!.receiptHandle!)).toBe(true);
        expect(bodies(await receive('jobs'))).toEqual(['b']);
      });

      it('refuses every call once the store is closed', async () => {
        await deploy('svc', [queue('jobs')]);
        await ctx.store.close();
        await expect(q().send('default', 'jobs', [{ body: 'x' }])).rejects.toThrow(/closed/);
        await expect(q().receive('default', 'jobs', { max: 1 })).rejects.toThrow(/closed/);
        await expect(q().listQueues()).rejects.toThrow(/closed/);
        await expect(q().stats()).rejects.toThrow(/closed/);
        await expect(q().expire()).rejects.toThrow(/closed/);
      });
    });

    describe('queues of no manifest (the SQS API)', () => {
      it('creates a queue with service null that no deploy removes, changes or takes over', async () => {
        const t0 = ctx.clock.now();
        const made = await q().createQueue('default', queue('api-q', { delaySeconds: 5 }), { team: 'a' });
        expect(made).toStrictEqual({
          ...queue('api-q', { delaySeconds: 5 }),
          project: 'default',
          service: null,
          createdAt: t0,
          updatedAt: t0,
        });
        expect(await q().getQueue('default', 'api-q')).toStrictEqual(made);
        expect(await q().queueTags('default', 'api-q')).toEqual({ team: 'a' });
        await deploy('svc', [queue('mine')]);
        await deploy('svc', []);
        expect(await q().getQueue('default', 'api-q')).toStrictEqual(made);
        await expect(deploy('svc', [queue('api-q')])).rejects.toBeInstanceOf(QueueOwnedError);
        await expect(q().createQueue('default', queue('api-q'))).rejects.toBeInstanceOf(QueueExistsError);
        // A manifest's queue is taken too.
        await deploy('svc', [queue('mine')]);
        await expect(q().createQueue('default', queue('mine'))).rejects.toBeInstanceOf(QueueExistsError);
        expect((await q().getQueue('default', 'mine'))?.service).toBe('svc');
      });

      it('refuses a config SQS refuses, writing nothing', async () => {
        await expect(
          q().createQueue('default', queue('bad', { visibilityTimeout: 50_000 })),
        ).rejects.toBeInstanceOf(QueueInputError);
        await expect(q().createQueue('default', queue('bad', { fifo: true }))).rejects.toBeInstanceOf(
          QueueInputError,
        );
        await expect(
          q().createQueue('default', queue('bad', { receiveMessageWaitTimeSeconds: 21 })),
        ).rejects.toBeInstanceOf(QueueInputError);
        expect(await q().getQueue('default', 'bad')).toBeUndefined();
      });

      it('updates the config and keeps the messages; a deploy sets its own queue back', async () => {
        await q().createQueue('default', queue('u'));
        await sendOne('u', { body: 'stays' });
        ctx.clock.advance(500);
        const next = queue('u', { visibilityTimeout: 90, receiveMessageWaitTimeSeconds: 20 });
        const updated = await q().updateQueue('default', next);
        expect(updated).toMatchObject({ visibilityTimeout: 90, receiveMessageWaitTimeSeconds: 20 });
        expect(updated.updatedAt).toBe(updated.createdAt + 500);
        expect(bodies(await q().peek('default', 'u'))).toEqual(['stays']);
        await expect(q().updateQueue('default', queue('nope'))).rejects.toBeInstanceOf(QueueNotFoundError);
        await expect(q().updateQueue('default', queue('u', { delaySeconds: 901 }))).rejects.toBeInstanceOf(
          QueueInputError,
        );
        expect((await q().getQueue('default', 'u'))?.delaySeconds).toBe(0);

        await deploy('svc', [queue('m')]);
        await q().updateQueue('default', queue('m', { visibilityTimeout: 5 }));
        const again = await deploy('svc', [queue('m')]);
        expect(again.queues.updated).toEqual(['m']);
        expect((await q().getQueue('default', 'm'))?.visibilityTimeout).toBe(30);
      });

      it('deletes a queue with its messages and deduplication ids; a new one of the name starts empty', async () => {
        await q().createQueue('default', queue('d.fifo'));
        const first = await sendOne('d.fifo', fifo('one', 'g', 'dup'));
        expect(await q().deleteQueue('default', 'd.fifo')).toBe(true);
        expect(await q().deleteQueue('default', 'd.fifo')).toBe(false);
        expect(await q().getQueue('default', 'd.fifo')).toBeUndefined();
        await expect(q().receive('default', 'd.fifo', { max: 1 })).rejects.toBeInstanceOf(QueueNotFoundError);
        await q().createQueue('default', queue('d.fifo'));
        expect(await q().peek('default', 'd.fifo')).toEqual([]);
        const second = await sendOne('d.fifo', fifo('one', 'g', 'dup'));
        expect(second.duplicate).toBe(false);
        expect(second.id).not.toBe(first.id);
      });

      it('adds, replaces and removes tags, one project at a time', async () => {
        await q().createQueue('default', queue('t'));
        expect(await q().queueTags('default', 't')).toEqual({});
        expect(await q().tagQueue('default', 't', { a: '1', b: '2' })).toEqual({ a: '1', b: '2' });
        expect(await q().tagQueue('default', 't', { b: '3', c: '' }, ['a'])).toEqual({ b: '3', c: '' });
        expect(await q().queueTags('default', 't')).toEqual({ b: '3', c: '' });
        await expect(q().queueTags('default', 'nope')).rejects.toBeInstanceOf(QueueNotFoundError);
        await expect(q().tagQueue('default', 'nope', { a: '1' })).rejects.toBeInstanceOf(QueueNotFoundError);
        await ctx.store.projects.ensure('other');
        await q().createQueue('other', queue('t'));
        expect(await q().queueTags('other', 't')).toEqual({});
        expect((await q().listQueues('other')).map((x) => x.name)).toEqual(['t']);
      });
    });

    describe('FIFO', () => {
      it('keeps order per group and holds a group back while any of its messages is in flight', async () => {
        await deploy('svc', [queue('o.fifo', { visibilityTimeout: 30 })]);
        const sent = await send(
          'o.fifo',
          fifo('g1-1', 'g1'),
          fifo('g2-1', 'g2'),
          fifo('g1-2', 'g1'),
          fifo('g2-2', 'g2'),
          fifo('g1-3', 'g1'),
          fifo('g3-1', 'g3'),
        );
        const seqs = sent.map((s) => s.sequenceNumber!);
        for (const s of seqs) expect(s).toMatch(/^\d{20}$/);
        expect([...seqs].sort()).toEqual(seqs);
        expect(new Set(seqs).size).toBe(seqs.length);

        const [a, b] = await receive('o.fifo', 2);
        expect([a!.body, b!.body]).toEqual(['g1-1', 'g2-1']);
        expect(a!.sequenceNumber).toBe(seqs[0]);
        // g1 and g2 have a message in flight: only g3 is receivable.
        expect(bodies(await receive('o.fifo'))).toEqual(['g3-1']);
        expect(await receive('o.fifo')).toEqual([]);

        await q().delete('default', 'o.fifo', a!.receiptHandle!);
        // g1 is free; its next messages come in order, together.
        const g1 = await receive('o.fifo');
        expect(bodies(g1)).toEqual(['g1-2', 'g1-3']);
        // Making the first visible again does not free the group while the second is in flight.
        await q().changeVisibility('default', 'o.fifo', g1[0]!.receiptHandle!, 0);
        expect(await receive('o.fifo')).toEqual([]);

        // g2-1 was never deleted: when its timeout runs out it comes again, before g2-2.
        ctx.clock.advance(30_000);
        const next = await receive('o.fifo', 10);
        expect(next.map((m) => [m.body, m.receiveCount])).toEqual([
          ['g2-1', 2],
          ['g1-2', 2],
          ['g2-2', 1],
          ['g1-3', 2],
          ['g3-1', 2],
        ]);
      });

      it('never gives a later message of a group while an earlier one is still delayed', async () => {
        await deploy('svc', [queue('d.fifo', { delaySeconds: 60 })]);
        await sendOne('d.fifo', fifo('first', 'g'));
        // The delay is the queue's: a redeploy that drops it makes later messages receivable at once.
        await deploy('svc', [queue('d.fifo')]);
        await send('d.fifo', fifo('second', 'g'), fifo('other', 'h'));
        expect(bodies(await receive('d.fifo', 10, 600))).toEqual(['other']);
        ctx.clock.advance(60_000);
        expect(bodies(await receive('d.fifo'))).toEqual(['first', 'second']);
      });

      it('drops a duplicate within 5 minutes, answering with the original, and accepts it after', async () => {
        await deploy('svc', [queue('d.fifo')]);
        const original = await sendOne('d.fifo', fifo('one', 'g', 'dup'));
        expect(original).toMatchObject({ duplicate: false, md5OfBody: md5('one') });
        const [again, inBatch] = await send('d.fifo', fifo('two', 'g', 'dup'), fifo('three', 'h', 'dup'));
        expect(again).toStrictEqual({
          id: original.id,
          md5OfBody: md5('two'),
          sequenceNumber: original.sequenceNumber,
          duplicate: true,
        });
        expect(inBatch).toMatchObject({ id: original.id, duplicate: true });
        expect(bodies(await q().peek('default', 'd.fifo'))).toEqual(['one']);

        // Received and deleted, it still counts as seen until the window ends.
        const [m] = await receive('d.fifo');
        await q().delete('default', 'd.fifo', m!.receiptHandle!);
        ctx.clock.advance(299_999);
        expect((await sendOne('d.fifo', fifo('four', 'g', 'dup'))).duplicate).toBe(true);
        ctx.clock.advance(1);
        const later = await sendOne('d.fifo', fifo('five', 'g', 'dup'));
        expect(later.duplicate).toBe(false);
        expect(later.id).not.toBe(original.id);
        expect(later.sequenceNumber! > original.sequenceNumber!).toBe(true);
        expect(bodies(await q().peek('default', 'd.fifo'))).toEqual(['five']);
        expect(await q().expire()).toBe(0);
        // A deduplication id is per queue.
        await deploy('svc', [queue('d.fifo'), queue('e.fifo')]);
        expect((await sendOne('e.fifo', fifo('five', 'g', 'dup'))).duplicate).toBe(false);
      });

      it('deduplicates by the body with contentBasedDeduplication', async () => {
        await deploy('svc', [queue('c.fifo', { contentBasedDeduplication: true })]);
        const first = await sendOne('c.fifo', { body: 'same', groupId: 'g' });
        expect(await sendOne('c.fifo', { body: 'same', groupId: 'other' })).toMatchObject({
          id: first.id,
          duplicate: true,
        });
        expect((await sendOne('c.fifo', { body: 'different', groupId: 'g' })).duplicate).toBe(false);
        // An explicit id wins over the body's hash.
        expect(
          (await sendOne('c.fifo', { body: 'same', groupId: 'g', deduplicationId: 'own' })).duplicate,
        ).toBe(false);
        const [m] = await q().peek('default', 'c.fifo');
        expect(m?.deduplicationId).toBe(createHash('sha256').update('same').digest('hex'));
        expect(bodies(await q().peek('default', 'c.fifo'))).toEqual(['same', 'different', 'same']);
      });
    });

    describe('dead letters and retention', () => {
      it('moves a message to the dead-letter queue at the receive after its maxReceiveCount-th', async () => {
        await deploy('svc', [
          queue('work', { visibilityTimeout: 10, deadLetterQueue: 'dead', maxReceiveCount: 2 }),
          queue('dead'),
        ]);
        const t0 = ctx.clock.now();
        const attributes = { k: { DataType: 'String', StringValue: 'v' } };
        const poison = await sendOne('work', { body: 'poison', attributes, trace: 't' });
        for (let i = 1; i <= 2; i++) {
          expect((await receive('work', 1))[0]).toMatchObject({ id: poison.id, receiveCount: i });
          ctx.clock.advance(10_000);
        }
        await sendOne('work', { body: 'fine' });
        // The caller still gets what is receivable, though the oldest message left for the dead-letter queue.
        expect(bodies(await receive('work', 1))).toEqual(['fine']);
        expect(bodies(await q().peek('default', 'work'))).toEqual(['fine']);
        const [dead] = await q().peek('default', 'dead');
        expect(dead).toStrictEqual({
          id: poison.id,
          project: 'default',
          queue: 'dead',
          body: 'poison',
          md5OfBody: md5('poison'),
          attributes,
          groupId: null,
          deduplicationId: null,
          sequenceNumber: null,
          trace: 't',
          sentAt: t0,
          firstReceivedAt: null,
          receiveCount: 0,
          receiptHandle: null,
          deadLetterSource: 'work',
        });
        expect((await q().stats()).map((s) => [s.queue, s.visible, s.inFlight])).toEqual([
          ['dead', 1, 0],
          ['work', 0, 1],
        ]);
        expect((await receive('dead'))[0]).toMatchObject({ id: poison.id, receiveCount: 1 });
      });

      it('moves FIFO dead letters with their group, and keeps receiving when the dead-letter queue is missing', async () => {
        await deploy('svc', [
          queue('w.fifo', { visibilityTimeout: 1, deadLetterQueue: 'd.fifo', maxReceiveCount: 1 }),
          queue('d.fifo'),
          queue('orphan', { visibilityTimeout: 1, deadLetterQueue: 'missing', maxReceiveCount: 1 }),
        ]);
        await send('w.fifo', fifo('p', 'g'), fifo('q', 'g'));
        expect(bodies(await receive('w.fifo', 1))).toEqual(['p']);
        ctx.clock.advance(1000);
        // p moves; q, next in its group, is received in the same call.
        expect(bodies(await receive('w.fifo', 1))).toEqual(['q']);
        expect((await q().peek('default', 'd.fifo'))[0]).toMatchObject({
          body: 'p',
          groupId: 'g',
          deduplicationId: 'p',
          deadLetterSource: 'w.fifo',
        });
        await sendOne('orphan', { body: 'o' });
        for (let i = 1; i <= 3; i++) {
          expect((await receive('orphan'))[0]?.receiveCount).toBe(i);
          ctx.clock.advance(1000);
        }
      });

      it('drops messages past the retention period from every reader, and expire() deletes them', async () => {
        await deploy('svc', [queue('short', { messageRetentionPeriod: 60 }), queue('long')]);
        await sendOne('short', { body: 'old' });
        await sendOne('long', { body: 'kept' });
        ctx.clock.advance(30_000);
        await sendOne('short', { body: 'young' });
        await receive('short', 1);
        ctx.clock.advance(29_999);
        expect((await q().stats())[1]).toMatchObject({ queue: 'short', inFlight: 1, visible: 1 });
        ctx.clock.advance(1);
        expect(bodies(await q().peek('default', 'short'))).toEqual(['young']);
        expect(bodies(await receive('short'))).toEqual(['young']);
        expect(await q().expire()).toBe(1);
        expect(await q().expire()).toBe(0);
        ctx.clock.advance(30_000);
        expect(await receive('short')).toEqual([]);
        expect((await q().stats())[1]).toMatchObject({ visible: 0, inFlight: 0, oldestSentAt: null });
        expect(await q().expire()).toBe(1);
        expect(bodies(await q().peek('default', 'long'))).toEqual(['kept']);
      });
    });
  });
}

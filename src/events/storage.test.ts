// The storage trigger source against a real (in-memory SQLite) store: each logged change becomes one event
// per matching trigger, filters and kinds respected; a failure after the enqueue (a crash before the entries
// are forgotten) enqueues nothing twice when the log is read again; changes no trigger wants are dropped.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import type { StorageTrigger } from '../config/manifest.js';
import { fn } from '../store/conformance/harness.js';
import { newObject } from '../store/conformance/objects.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/index.js';
import type { FunctionVersion, ObjectStore } from '../store/types.js';
import { eventKey, StorageEventSource } from './storage.js';

describe('StorageEventSource', () => {
  let clock: ManualClock;
  let store: SqliteStore;
  const version = (name: string, storageTriggers: StorageTrigger[]): FunctionVersion => ({
    project: 'default',
    name,
    service: 'svc',
    version: 1,
    config: { ...fn(name), storageTriggers },
    codeSha256: '0'.repeat(64),
    codeSize: 1,
    deployedAt: 0,
  });
  const make = (objects: ObjectStore = store.objects) =>
    new StorageEventSource({ objects, queue: store.events, clock, region: 'eu-west-1', accountId: '123' });
  const events = async () => store.events.list({ limit: 1000 });

  beforeEach(async () => {
    clock = new ManualClock(Date.UTC(2026, 2, 2, 9, 0, 0));
    store = openSqliteStore({ path: ':memory:', clock });
    await store.objects.createBucket('default', 'in', null);
    await store.objects.createBucket('default', 'other', null);
  });
  afterEach(async () => {
    await store.close();
  });

  it('enqueues one S3 record per change and matching trigger, and forgets the log', async () => {
    const s = make();
    s.sync([
      version('thumbs', [{ bucket: 'in', events: ['created'], prefix: 'img/', suffix: '.jpg' }]),
      version('audit', [{ bucket: 'in', events: ['created', 'removed'] }]),
    ]);
    await store.objects.putObject('default', newObject('in', 'img/a b.jpg', { size: 4, etag: 'e' }), {
      requestId: 'r1',
      principalId: 'AKID',
      trace: 'Root=1-x',
    });
    await store.objects.putObject('default', newObject('in', 'doc.txt'));
    await store.objects.putObject('default', newObject('other', 'img/x.jpg'));
    await store.objects.deleteObjects('default', 'in', ['img/a b.jpg']);
    expect(await s.readLog()).toBe(4);
    expect(await store.objects.changes(10)).toEqual([]);

    const evs = await events();
    expect(evs.map((e) => [e.functionName, JSON.parse(e.payload).Records[0].eventName]).sort()).toEqual([
      ['audit', 'ObjectCreated:Put'],
      ['audit', 'ObjectCreated:Put'],
      ['audit', 'ObjectRemoved:Delete'],
      ['thumbs', 'ObjectCreated:Put'],
    ]);
    const thumb = evs.find((e) => e.functionName === 'thumbs')!;
    expect(thumb).toMatchObject({ source: 'storage', trace: 'Root=1-x', project: 'default' });
    const [r] = JSON.parse(thumb.payload).Records;
    expect(r).toMatchObject({
      awsRegion: 'eu-west-1',
      eventTime: new Date(clock.now()).toISOString(),
      userIdentity: { principalId: 'AWS:AKID' },
      responseElements: { 'x-amz-request-id': 'r1' },
      s3: {
        configurationId: 'thumbs-storage-0',
        bucket: { name: 'in', ownerIdentity: { principalId: '123' }, arn: 'arn:aws:s3:::in' },
        object: { key: 'img/a+b.jpg', size: 4, eTag: 'e' },
      },
    });
    expect(await s.readLog()).toBe(0);
  });

  it('enqueues nothing twice when it fails after the enqueue, before forgetting', async () => {
    let failForget = true;
    const flaky: ObjectStore = Object.create(store.objects) as ObjectStore;
    flaky.forgetChanges = async (seqs) => {
      if (failForget) throw new Error('killed before forgetting');
      return store.objects.forgetChanges(seqs);
    };
    const s = make(flaky);
    s.sync([version('audit', [{ bucket: 'in', events: ['created'] }])]);
    for (const k of ['a', 'b', 'c']) await store.objects.putObject('default', newObject('in', k));
    await expect(s.readLog()).rejects.toThrow('killed before forgetting');
    expect(await events()).toHaveLength(3);
    expect(await store.objects.changes(10)).toHaveLength(3);

    failForget = false;
    // A restarted source reads the same entries: the derived ids are already in the queue.
    const again = make(flaky);
    again.sync([version('audit', [{ bucket: 'in', events: ['created'] }])]);
    expect(await again.readLog()).toBe(3);
    expect(await events()).toHaveLength(3);
    expect(await store.objects.changes(10)).toEqual([]);
  });

  it('drops changes no trigger wants, so a later trigger sees only later changes', async () => {
    const s = make();
    s.sync([]);
    await store.objects.putObject('default', newObject('in', 'early'));
    expect(await s.readLog()).toBe(1);
    s.sync([version('late', [{ bucket: 'in', events: ['created'] }])]);
    await store.objects.putObject('default', newObject('in', 'later'));
    await s.readLog();
    expect((await events()).map((e) => JSON.parse(e.payload).Records[0].s3.object.key)).toEqual(['later']);
  });

  it('encodes keys as S3 does in events', () => {
    expect(eventKey('a b/ü+(1)!*.txt')).toBe('a+b/%C3%BC%2B%281%29%21*.txt');
    expect(eventKey("it's ~ok-_.")).toBe('it%27s+%7Eok-_.');
  });
});

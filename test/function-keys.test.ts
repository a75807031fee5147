// Each function's own access key: made when the function first appears, its permissions following the
// manifest, removed with the function; and what the invoker asks for a cold start (key and endpoint).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AccessKeys } from '../src/security/access-keys.js';
import { FunctionKeys } from '../src/security/function-keys.js';
import { SecretBox } from '../src/security/secrets.js';
import type { FunctionVersion } from '../src/store/types.js';
import { MemoryCredentials } from './support/memory-credentials.js';

const secrets = new SecretBox(randomBytes(32));

function fn(name: string, version = 1, tables?: string[], project = 'default'): FunctionVersion {
  return {
    project,
    name,
    service: 'svc',
    version,
    config: {
      name,
      handler: 'index.handler',
      runtime: 'nodejs',
      memory: 128,
      timeout: 3,
      environment: {},
      reservedConcurrency: undefined,
      routes: [],
      ...(tables ? { permissions: { tables } } : {}),
    },
    codeSha256: 'ab'.repeat(32),
    codeSize: 10,
    deployedAt: 1,
  };
}

function setup(store = new MemoryCredentials(), now = Date.now) {
  const errors: unknown[] = [];
  const keys = new AccessKeys({ store, secrets });
  const fk = new FunctionKeys({
    keys,
    projects: async () => ['default', 'p2'],
    onError: (err) => errors.push(err),
    now,
    endpointWaitMs: 200,
  });
  return { store, keys, fk, errors };
}

const rows = (s: MemoryCredentials) =>
  [...s.rows.values()].map((r) => ({
    project: r.project,
    name: r.name,
    kind: r.kind,
    functionName: r.functionName,
    permissions: r.permissions,
  }));

describe('FunctionKeys', () => {
  it('makes a key per function with the tables its manifest grants, and hands it out with the endpoint', async () => {
    const { store, fk, errors } = setup();
    fk.sync([fn('a', 1, ['items']), fn('b')]);
    await fk.start();
    expect(rows(store)).toEqual([
      {
        project: 'default',
        name: 'function:a',
        kind: 'function',
        functionName: 'a',
        permissions: { tables: ['items'] },
      },
      {
        project: 'default',
        name: 'function:b',
        kind: 'function',
        functionName: 'b',
        permissions: { tables: [] },
      },
    ]);
    fk.setEndpoint('http://127.0.0.1:8081');
    const env = await fk.env({ project: 'default', name: 'a', version: 1 });
    const row = [...store.rows.values()].find((r) => r.functionName === 'a')!;
    expect(env).toEqual({
      accessKeyId: row.accessKeyId,
      secretAccessKey: secrets.decrypt(row.secretCiphertext, row.accessKeyId),
      endpointUrl: 'http://127.0.0.1:8081',
    });
    expect(JSON.stringify(row)).not.toContain(env!.secretAccessKey);
    expect(await fk.env({ project: 'default', name: 'nope', version: 1 })).toBeUndefined();
    expect(errors).toEqual([]);
    await fk.stop();
  });

  it('updates permissions on redeploy, keeps the key, and removes it with the function', async () => {
    const { store, fk } = setup();
    fk.sync([fn('a', 1, ['items'])]);
    await fk.synced();
    const id = [...store.rows.keys()][0]!;
    fk.sync([fn('a', 2, ['items', 'orders'])]);
    await fk.synced();
    expect([...store.rows.keys()]).toEqual([id]);
    expect(store.rows.get(id)!.permissions).toEqual({ tables: ['items', 'orders'] });
    fk.sync([]);
    await fk.synced();
    expect(store.rows.size).toBe(0);
    await fk.stop();
  });

  it('a key deployed before (a restart) is reused, its permissions corrected', async () => {
    const store = new MemoryCredentials();
    const first = setup(store);
    first.fk.sync([fn('a', 1, ['items'])]);
    await first.fk.synced();
    await first.fk.stop();
    const id = [...store.rows.keys()][0]!;
    const second = setup(store);
    second.fk.sync([fn('a', 1, ['other'])]);
    await second.fk.start();
    second.fk.setEndpoint(undefined);
    expect((await second.fk.env({ project: 'default', name: 'a', version: 1 }))?.accessKeyId).toBe(id);
    expect(store.rows.get(id)!.permissions).toEqual({ tables: ['other'] });
    await second.fk.stop();
  });

  it('two nodes syncing the same new function at once end with one key, used by both', async () => {
    const store = new MemoryCredentials();
    const a = setup(store);
    const b = setup(store);
    a.fk.sync([fn('x')]);
    b.fk.sync([fn('x')]);
    await Promise.all([a.fk.synced(), b.fk.synced()]);
    expect(store.rows.size).toBe(1);
    a.fk.setEndpoint('http://127.0.0.1:1');
    b.fk.setEndpoint('http://127.0.0.1:1');
    const ea = await a.fk.env({ project: 'default', name: 'x', version: 1 });
    const eb = await b.fk.env({ project: 'default', name: 'x', version: 1 });
    expect(ea?.accessKeyId).toBe(eb?.accessKeyId);
    expect(ea?.secretAccessKey).toBe(eb?.secretAccessKey);
    expect(a.errors.concat(b.errors)).toEqual([]);
  });

  it('the first sync sweeps old keys of functions that are gone, never young ones (another node may be deploying)', async () => {
    const store = new MemoryCredentials(() => Date.now() - 10 * 60_000);
    const { keys } = setup(store);
    await keys.create({
      project: 'p2',
      name: 'function:old',
      kind: 'function',
      functionName: 'old',
      permissions: { tables: [] },
    });
    await keys.create({
      project: 'default',
      name: 'ci',
      kind: 'user',
      functionName: null,
      permissions: null,
    });
    const young = new MemoryCredentials();
    for (const r of store.rows.values()) young.rows.set(r.accessKeyId, r);
    const { fk } = setup(store);
    fk.sync([fn('kept')]);
    await fk.start();
    expect(
      rows(store)
        .map((r) => r.name)
        .sort(),
    ).toEqual(['ci', 'function:kept']);

    const y = setup(young, () => Date.now() - 60 * 60_000);
    y.fk.sync([]);
    await y.fk.start();
    expect(
      rows(young)
        .map((r) => r.name)
        .sort(),
    ).toEqual(['ci', 'function:old']);
  });

  it('env() waits for a sync under way and for the endpoint, and gives up on the endpoint after a while', async () => {
    const { fk } = setup();
    fk.sync([fn('a')]);
    const pending = fk.env({ project: 'default', name: 'a', version: 1 });
    setTimeout(() => fk.setEndpoint('http://[::1]:9'), 20);
    expect(await pending).toMatchObject({ endpointUrl: 'http://[::1]:9' });

    const other = setup();
    other.fk.sync([fn('a')]);
    await other.fk.synced();
    const t0 = Date.now();
    const env = await other.fk.env({ project: 'default', name: 'a', version: 1 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(env).toBeDefined();
    expect(env!.endpointUrl).toBeUndefined();
    await other.fk.stop();
  });

  it('retries a key the store failed to make when an instance of the function starts', async () => {
    const store = new MemoryCredentials();
    const { fk, errors } = setup(store);
    const create = store.create.bind(store);
    let fail = true;
    store.create = async (c) => {
      if (fail) throw new Error('store down');
      return create(c);
    };
    fk.sync([fn('a')]);
    await fk.synced();
    expect(errors).toHaveLength(1);
    fail = false;
    fk.setEndpoint('http://127.0.0.1:1');
    expect(await fk.env({ project: 'default', name: 'a', version: 1 })).toMatchObject({
      accessKeyId: expect.stringMatching(/^NIMB/),
    });
  });
});

describe('FunctionKeys after the master key changed', () => {
  it('replaces a function key whose secret no longer decrypts, and logs why', async () => {
    const store = new MemoryCredentials();
    const before = setup(store);
    before.fk.sync([fn('a')]);
    await before.fk.synced();
    const oldId = [...store.rows.keys()][0]!;
    const errors: unknown[] = [];
    const keys = new AccessKeys({
      store,
      secrets: new SecretBox(randomBytes(32)),
      onError: (e) => errors.push(e),
    });
    const fk = new FunctionKeys({ keys, onError: (e) => errors.push(e) });
    fk.sync([fn('a')]);
    await fk.start();
    fk.setEndpoint('http://127.0.0.1:1');
    const env = await fk.env({ project: 'default', name: 'a', version: 1 });
    expect(env?.accessKeyId).toBeDefined();
    expect(env?.accessKeyId).not.toBe(oldId);
    expect([...store.rows.keys()]).toEqual([env!.accessKeyId]);
    expect(String(errors[0])).toMatch(/does not decrypt with this node's master key/);
  });
});

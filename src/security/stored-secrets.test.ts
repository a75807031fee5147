import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../clock/clock.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/index.js';
import { SecretBox } from './secrets.js';
import { ProjectSecrets, SecretUnavailableError } from './stored-secrets.js';

describe('ProjectSecrets', () => {
  let store: SqliteStore | undefined;
  afterEach(() => store?.closeSync());

  function make(key = randomBytes(32)): { secrets: ProjectSecrets; store: SqliteStore } {
    store = openSqliteStore({ path: ':memory:', clock: new ManualClock(1_000) });
    return { secrets: new ProjectSecrets({ store: store.secrets, box: new SecretBox(key) }), store };
  }

  it('stores a ciphertext, not the value, and resolves references into the environment only', async () => {
    const { secrets, store } = make();
    await secrets.set('default', 'db-password', 'hunter2-value');
    const row = await store.secrets.get('default', 'db-password');
    expect(row?.ciphertext).toMatch(/^v1\./);
    expect(row?.ciphertext).not.toContain('hunter2');
    const env = { DB_PASSWORD: '${secret:db-password}', PLAIN: 'x' };
    expect(await secrets.resolve('default', env)).toEqual({ DB_PASSWORD: 'hunter2-value', PLAIN: 'x' });
    expect(env.DB_PASSWORD).toBe('${secret:db-password}');
  });

  it('does not decrypt a ciphertext copied to another name or another project', async () => {
    const { secrets, store } = make();
    await store.projects.ensure('p2');
    await secrets.set('default', 'a', 'value-of-a');
    const { ciphertext } = (await store.secrets.get('default', 'a'))!;
    await store.secrets.put('default', 'b', ciphertext);
    await store.secrets.put('p2', 'a', ciphertext);
    const err = await secrets.resolve('default', { B: '${secret:b}' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretUnavailableError);
    expect(err).toMatchObject({ secret: 'b', variable: 'B', reason: 'undecryptable' });
    await expect(secrets.resolve('p2', { A: '${secret:a}' })).rejects.toThrow(/does not decrypt/);
    expect(await secrets.resolve('default', { A: '${secret:a}' })).toEqual({ A: 'value-of-a' });
  });

  it('names a missing secret and its variable, never a value', async () => {
    const { secrets } = make();
    const err = (await secrets.resolve('default', { K: '${secret:gone}' }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(SecretUnavailableError);
    expect(err.message).toBe(
      'secret "gone" (environment variable K) does not exist in this project; set it with `nimbus secret set gone`',
    );
  });

  it('refuses a ciphertext made under another master key with a message that says so', async () => {
    const { secrets, store } = make();
    await secrets.set('default', 's', 'old-key-value');
    const other = new ProjectSecrets({ store: store.secrets, box: new SecretBox(randomBytes(32)) });
    await expect(other.resolve('default', { S: '${secret:s}' })).rejects.toThrow(
      /secret "s" \(environment variable S\) does not decrypt with this node's master key/,
    );
  });
});

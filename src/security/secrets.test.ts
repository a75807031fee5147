import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { deriveKey, loadMasterKey, SecretBox, SecretDecryptError } from './secrets.js';

const key = randomBytes(32);

describe('SecretBox', () => {
  it('round-trips a secret, with a fresh IV each time and nothing of the secret in the ciphertext', () => {
    const box = new SecretBox(key);
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
    const a = box.encrypt(secret, 'NIMBAAAAAAAAAAAAAAAA');
    const b = box.encrypt(secret, 'NIMBAAAAAAAAAAAAAAAA');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^v1\.[A-Za-z0-9_-]+$/);
    expect(a).not.toContain(secret);
    expect(Buffer.from(a.slice(3), 'base64url').toString('latin1')).not.toContain(secret);
    expect(box.decrypt(a, 'NIMBAAAAAAAAAAAAAAAA')).toBe(secret);
    expect(box.decrypt(b, 'NIMBAAAAAAAAAAAAAAAA')).toBe(secret);
  });

  it('refuses a tampered ciphertext: any flipped bit, a truncation, another format', () => {
    const box = new SecretBox(key);
    const c = box.encrypt('the secret', 'ctx');
    const raw = Buffer.from(c.slice(3), 'base64url');
    for (const i of [0, 12, 20, raw.length - 1]) {
      const t = Buffer.from(raw);
      t[i] = t[i]! ^ 1;
      expect(() => box.decrypt(`v1.${t.toString('base64url')}`, 'ctx')).toThrow(SecretDecryptError);
    }
    expect(() => box.decrypt(`v1.${raw.subarray(0, 20).toString('base64url')}`, 'ctx')).toThrow(
      SecretDecryptError,
    );
    expect(() => box.decrypt(c.replace(/^v1/, 'v2'), 'ctx')).toThrow(SecretDecryptError);
    expect(() => box.decrypt('the secret', 'ctx')).toThrow(SecretDecryptError);
  });

  it('refuses another master key and another context (one row cannot pass for another)', () => {
    const c = new SecretBox(key).encrypt('the secret', 'NIMBAAAAAAAAAAAAAAAA');
    expect(() => new SecretBox(randomBytes(32)).decrypt(c, 'NIMBAAAAAAAAAAAAAAAA')).toThrow(
      SecretDecryptError,
    );
    expect(() => new SecretBox(key).decrypt(c, 'NIMBBBBBBBBBBBBBBBBB')).toThrow(SecretDecryptError);
  });

  it('takes 32-byte keys only', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('loadMasterKey', () => {
  const dirs: string[] = [];
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'nimbus-master-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('creates <data>/master.key 0600 on first start and reads the same key afterwards', () => {
    const d = dir();
    const first = loadMasterKey(d, {});
    expect(first).toMatchObject({ source: 'file', file: join(d, 'master.key'), created: true });
    expect(first.key).toHaveLength(32);
    expect(statSync(join(d, 'master.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(d, 'master.key'), 'utf8').trim()).toBe(first.key.toString('base64'));
    const again = loadMasterKey(d, {});
    expect(again.created).toBe(false);
    expect(again.key.equals(first.key)).toBe(true);
  });

  it('prefers NIMBUS_MASTER_KEY (base64) and then writes no file', () => {
    const d = dir();
    const k = loadMasterKey(d, { NIMBUS_MASTER_KEY: key.toString('base64') });
    expect(k).toMatchObject({ source: 'env', file: null });
    expect(k.key.equals(key)).toBe(true);
    expect(() => statSync(join(d, 'master.key'))).toThrow();
  });

  it('refuses a key that is not 32 bytes of base64, without echoing it', () => {
    const d = dir();
    expect(() => loadMasterKey(d, { NIMBUS_MASTER_KEY: 'c2hvcnQ=' })).toThrow(
      /NIMBUS_MASTER_KEY must hold a base64-encoded 32-byte key/,
    );
    expect(() => loadMasterKey(d, { NIMBUS_MASTER_KEY: 'not base64 at all!' })).toThrow(/32-byte/);
    writeFileSync(join(d, 'master.key'), 'garbage', { mode: 0o600 });
    expect(() => loadMasterKey(d, {})).toThrow(/master\.key must hold/);
  });
});

describe('deriveKey', () => {
  it('derives the same 32-byte key from the same master key, another for another purpose or master key', () => {
    const a = deriveKey(key, 'dynamodb shard iterators');
    expect(a).toHaveLength(32);
    expect(deriveKey(Buffer.from(key), 'dynamodb shard iterators')).toEqual(a);
    expect(deriveKey(key, 'something else')).not.toEqual(a);
    expect(deriveKey(randomBytes(32), 'dynamodb shard iterators')).not.toEqual(a);
    expect(a).not.toEqual(key);
  });
});

// Access keys Nimbus issues: AWS-shaped ids and secrets, stored with the secret encrypted (the store never sees
// it in the clear), and looked up for signature checks through a short-lived in-memory cache of decrypted
// keys, so a busy client does not cost a store read and a decryption per request.
import { randomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../clock/clock.js';
import type { CredentialStore, NewCredential, Permissions, StoredCredential } from '../store/types.js';
import { SecretDecryptError, type SecretBox } from './secrets.js';

/** "NIMB" and 16 characters of base32: 20 characters, the length and alphabet of AWS's access key ids. */
export const ACCESS_KEY_ID = /^NIMB[A-Z2-7]{16}$/;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function newAccessKeyId(): string {
  return awsStyleKeyId('NIMB');
}

/** A prefix of four letters and 16 random characters of base32: 20 characters, like AWS's key ids. */
export function awsStyleKeyId(prefix: string): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = prefix;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** 40 characters of base64 (240 random bits), like an AWS secret access key. */
export function newSecretAccessKey(): string {
  return randomBytes(30).toString('base64');
}

/** An issued key with its secret in the clear: only ever in memory. */
export interface IssuedKey {
  credential: StoredCredential;
  secretAccessKey: string;
}

export type NewKey = Omit<NewCredential, 'accessKeyId' | 'secretCiphertext'>;

export interface AccessKeysOptions {
  store: CredentialStore;
  secrets: SecretBox;
  clock?: Clock;
  /** How long a decrypted key is reused before it is read again (default 10 s). Removal and permission
   *  changes through this object take effect at once; those made by another node within this time. */
  cacheMs?: number;
  /** How many decrypted keys are kept at most (default 10,000). */
  cacheSize?: number;
  onError?: (err: unknown, context: string) => void;
}

interface Cached {
  key: IssuedKey;
  until: number;
}

export class AccessKeys {
  private readonly clock: Clock;
  private readonly cacheMs: number;
  private readonly cacheSize: number;
  private readonly cache = new Map<string, Cached>();
  private readonly loading = new Map<string, Promise<IssuedKey | undefined>>();
  /** Counts forget() calls: a read that started before one is answered but not cached. */
  private generation = 0;

  constructor(private readonly o: AccessKeysOptions) {
    this.clock = o.clock ?? systemClock;
    this.cacheMs = o.cacheMs ?? 10_000;
    this.cacheSize = o.cacheSize ?? 10_000;
  }

  /** Issues a new key: a fresh id and secret, the secret stored encrypted. The only time it is returned. */
  async create(input: NewKey): Promise<IssuedKey> {
    const accessKeyId = newAccessKeyId();
    const secretAccessKey = newSecretAccessKey();
    const credential = await this.o.store.create({
      ...input,
      accessKeyId,
      secretCiphertext: this.o.secrets.encrypt(secretAccessKey, accessKeyId),
    });
    return { credential, secretAccessKey };
  }

  /** One project's keys, without secrets. */
  list(project: string): Promise<StoredCredential[]> {
    return this.o.store.list(project);
  }

  /** The stored key without its secret (no cache: for the control API). */
  async describe(accessKeyId: string): Promise<StoredCredential | undefined> {
    const row = await this.o.store.get(accessKeyId);
    if (!row) return undefined;
    const { secretCiphertext: _, ...credential } = row;
    return credential;
  }

  async remove(project: string, accessKeyId: string): Promise<boolean> {
    const removed = await this.o.store.remove(project, accessKeyId);
    this.forget(accessKeyId);
    return removed;
  }

  async setPermissions(accessKeyId: string, permissions: Permissions | null): Promise<boolean> {
    const set = await this.o.store.setPermissions(accessKeyId, permissions);
    this.forget(accessKeyId);
    return set;
  }

  /**
   * A function's key with its secret, if it has one and it decrypts. With `replaceUndecryptable`, a key whose
   * secret does not decrypt (the master key was lost or changed) is removed, so that a new one can be made.
   */
  async forFunction(
    project: string,
    functionName: string,
    opts: { replaceUndecryptable?: boolean } = {},
  ): Promise<IssuedKey | undefined> {
    const row = await this.o.store.forFunction(project, functionName);
    if (!row) return undefined;
    const key = this.open(row);
    if (!key && opts.replaceUndecryptable) await this.remove(project, row.accessKeyId);
    return key;
  }

  /**
   * The key of an access key id, for a signature check: from the cache while it is fresh, otherwise from the
   * store. Undefined for ids Nimbus never issued (those not of its shape are not even looked up), removed
   * ones, and ones whose secret does not decrypt with this node's master key (logged: a misconfiguration).
   */
  lookup(accessKeyId: string): Promise<IssuedKey | undefined> {
    if (!ACCESS_KEY_ID.test(accessKeyId)) return Promise.resolve(undefined);
    const hit = this.cache.get(accessKeyId);
    if (hit && hit.until > this.clock.now()) return Promise.resolve(hit.key);
    const pending = this.loading.get(accessKeyId);
    if (pending) return pending;
    const p = this.load(accessKeyId).finally(() => {
      if (this.loading.get(accessKeyId) === p) this.loading.delete(accessKeyId);
    });
    this.loading.set(accessKeyId, p);
    return p;
  }

  /** Drops a key from the cache: the next lookup reads the store. */
  forget(accessKeyId: string): void {
    this.cache.delete(accessKeyId);
    this.loading.delete(accessKeyId);
    this.generation++;
  }

  private async load(accessKeyId: string): Promise<IssuedKey | undefined> {
    const generation = this.generation;
    const row = await this.o.store.get(accessKeyId);
    const key = row ? this.open(row) : undefined;
    // Removed or changed (forget) while it was being read: answer what was read, but do not keep it.
    if (key && this.generation === generation) {
      this.cache.delete(accessKeyId);
      if (this.cache.size >= this.cacheSize) {
        const oldest = this.cache.keys().next();
        if (!oldest.done) this.cache.delete(oldest.value);
      }
      this.cache.set(accessKeyId, { key, until: this.clock.now() + this.cacheMs });
    }
    return key;
  }

  private open(row: StoredCredential & { secretCiphertext: string }): IssuedKey | undefined {
    const { secretCiphertext, ...credential } = row;
    try {
      return { credential, secretAccessKey: this.o.secrets.decrypt(secretCiphertext, row.accessKeyId) };
    } catch (err) {
      if (!(err instanceof SecretDecryptError)) throw err;
      this.o.onError?.(
        new Error(
          `the secret of access key ${row.accessKeyId} does not decrypt with this node's master key ` +
            `(fingerprint ${this.o.secrets.fingerprint}); nodes that share a store need the same NIMBUS_MASTER_KEY`,
        ),
        'access key lookup',
      );
      return undefined;
    }
  }
}

// Secrets at rest. SigV4 verification needs an access key's secret itself (it is the HMAC key), so issued
// secrets cannot be hashed: they are stored encrypted with AES-256-GCM under one master key per deployment.
// The master key lives in <data dir>/master.key (created 0600 on first start) or, for nodes that share a
// PostgreSQL store and so must decrypt each other's secrets, in NIMBUS_MASTER_KEY (base64, 32 bytes).
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const MASTER_KEY_BYTES = 32;
export const MASTER_KEY_FILE = 'master.key';
export const MASTER_KEY_ENV = 'NIMBUS_MASTER_KEY';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A ciphertext that does not decrypt: tampered with, truncated, or made under another master key. */
export class SecretDecryptError extends Error {
  override name = 'SecretDecryptError';
}

/**
 * Encrypts and decrypts short secrets with one master key. Each ciphertext is bound to a context (the access
 * key id it belongs to) as additional authenticated data, so one row's ciphertext cannot be passed off as
 * another's. The format is `v1.` + base64url(iv ‖ tag ‖ ciphertext).
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== MASTER_KEY_BYTES) {
      throw new Error(`a master key has ${MASTER_KEY_BYTES} bytes, not ${key.length}`);
    }
    this.#key = Buffer.from(key);
  }

  /** Names the key without revealing it (for logs: which key a node uses). */
  get fingerprint(): string {
    return createHash('sha256').update('nimbus master key').update(this.#key).digest('hex').slice(0, 12);
  }

  encrypt(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
  }

  /** Throws SecretDecryptError unless the ciphertext was made by this key for this context, unchanged. */
  decrypt(ciphertext: string, context: string): string {
    const dot = ciphertext.indexOf('.');
    if (dot === -1 || ciphertext.slice(0, dot) !== VERSION) {
      throw new SecretDecryptError(`the ciphertext is not in the ${VERSION} format`);
    }
    const raw = Buffer.from(ciphertext.slice(dot + 1), 'base64url');
    if (raw.length < IV_BYTES + TAG_BYTES) throw new SecretDecryptError('the ciphertext is truncated');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new SecretDecryptError(
        'the ciphertext does not decrypt with this master key (tampered with, or made under another key)',
      );
    }
  }
}

/**
 * A key for one purpose (HKDF-SHA256 of the master key), so nothing else is ever keyed with the master key
 * itself, and every node with the same master key derives the same key: DynamoDB Streams' shard iterators
 * are signed with one, so an iterator from one node reads on another.
 */
export function deriveKey(masterKey: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), `nimbus ${purpose}`, 32));
}

export interface MasterKey {
  key: Buffer;
  /** Where it came from: the environment, or the data dir's file (created now when `created`). */
  source: 'env' | 'file';
  file: string | null;
  created: boolean;
}

/**
 * The master key: NIMBUS_MASTER_KEY when set (it must be base64 of 32 bytes), otherwise <dataDir>/master.key,
 * created 0600 with a fresh random key the first time. The file holds the key in base64, so it can be copied
 * into NIMBUS_MASTER_KEY of other nodes. Errors say what to fix; they never echo the key.
 */
export function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): MasterKey {
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { key: parseMasterKey(fromEnv, MASTER_KEY_ENV), source: 'env', file: null, created: false };
  }
  const file = join(dataDir, MASTER_KEY_FILE);
  let created = false;
  if (!existsSync(file)) {
    try {
      writeFileSync(file, `${randomBytes(MASTER_KEY_BYTES).toString('base64')}\n`, {
        mode: 0o600,
        flag: 'wx',
      });
      created = true;
    } catch (err) {
      // Another process made it between the check and the write: use theirs.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  chmodSync(file, 0o600);
  return { key: parseMasterKey(readFileSync(file, 'utf8'), file), source: 'file', file, created };
}

function parseMasterKey(text: string, where: string): Buffer {
  const s = text.trim();
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(s) ? Buffer.from(s, 'base64') : Buffer.alloc(0);
  if (key.length !== MASTER_KEY_BYTES) {
    throw Object.assign(
      new Error(
        `${where} must hold a base64-encoded ${MASTER_KEY_BYTES}-byte key (make one with \`openssl rand -base64 32\`)`,
      ),
      { userFacing: true },
    );
  }
  return key;
}

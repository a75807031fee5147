// Bearer API keys of projects. A key reads `nmb_<id>_<secret>`: the id finds its row, the secret proves it.
// Only the secret's SHA-256 is stored (keys carry 256 random bits, so a fast hash is enough: there is nothing
// to guess). SigV4 cannot work from a hash (the secret is the HMAC key), so a key also signs SigV4 requests with
// a secret derived from it (HMAC of the key), and that derived secret is stored encrypted under the master key,
// like every issued access key. A copy of the database alone lets nobody in.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { awsStyleKeyId } from './access-keys.js';
import type { ApiKeyStore, KeyRole, StoredApiKey } from '../store/types.js';
import { SecretDecryptError, type SecretBox } from './secrets.js';

/** "NIMK" and 16 characters of base32: the shape of an AWS access key id, told apart from issued keys' NIMB. */
export const API_KEY_ID = /^NIMK[A-Z2-7]{16}$/;
const API_KEY = /^nmb_(NIMK[A-Z2-7]{16})_([A-Za-z0-9_-]{43})$/;

/** The id and secret of a key in its text form, or undefined when it is not one. */
export function parseApiKey(key: string): { id: string; secret: string } | undefined {
  const m = API_KEY.exec(key);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

/** The SigV4 credentials a client signs with for this key: its id, and a secret derived from it. */
export function sigV4CredentialsOf(
  key: string,
): { accessKeyId: string; secretAccessKey: string } | undefined {
  const parsed = parseApiKey(key);
  if (!parsed) return undefined;
  return { accessKeyId: parsed.id, secretAccessKey: derivedSigV4Secret(key) };
}

function derivedSigV4Secret(key: string): string {
  return createHmac('sha256', key).update('nimbus sigv4 v1').digest('base64').slice(0, 40);
}

/** The stored form of a key secret (shared by the gateway API keys). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function newId(): string {
  return awsStyleKeyId('NIMK');
}

const CONTEXT = (id: string) => `api-key:${id}`;

/** A key with its text: only ever in memory, answered once. */
export interface IssuedApiKey {
  stored: StoredApiKey;
  key: string;
}

export class ApiKeys {
  constructor(
    private readonly store: ApiKeyStore,
    private readonly box: SecretBox,
  ) {}

  async create(project: string, name: string, role: KeyRole): Promise<IssuedApiKey> {
    const id = newId();
    const { key, keyHash, sigv4Ciphertext } = this.material(id);
    const stored = await this.store.create({ id, project, name, role, keyHash, sigv4Ciphertext });
    return { stored, key };
  }

  /** A new secret for the key; the old one stops working now. Undefined when it is not the project's. */
  async rotate(project: string, id: string): Promise<IssuedApiKey | undefined> {
    const { key, keyHash, sigv4Ciphertext } = this.material(id);
    const stored = await this.store.rotate(project, id, keyHash, sigv4Ciphertext);
    return stored && { stored, key };
  }

  list(project: string): Promise<StoredApiKey[]> {
    return this.store.list(project);
  }

  get(id: string): Promise<StoredApiKey | undefined> {
    return this.store.get(id);
  }

  remove(project: string, id: string): Promise<boolean> {
    return this.store.remove(project, id);
  }

  /** The key a bearer token is, when it is a live one: compared by hash in constant time. */
  async verify(token: string): Promise<StoredApiKey | undefined> {
    const parsed = parseApiKey(token);
    if (!parsed) return undefined;
    const row = await this.store.get(parsed.id);
    if (!row) return undefined;
    const given = Buffer.from(hashSecret(parsed.secret), 'hex');
    const stored = Buffer.from(row.keyHash, 'hex');
    return given.length === stored.length && timingSafeEqual(given, stored) ? row : undefined;
  }

  /** The key and its derived SigV4 secret for an access key id, or undefined (unknown, or undecryptable). */
  async sigV4(id: string): Promise<{ row: StoredApiKey; secret: string } | undefined> {
    if (!API_KEY_ID.test(id)) return undefined;
    const row = await this.store.get(id);
    if (!row) return undefined;
    try {
      return { row, secret: this.box.decrypt(row.sigv4Ciphertext, CONTEXT(id)) };
    } catch (err) {
      if (err instanceof SecretDecryptError) return undefined;
      throw err;
    }
  }

  private material(id: string): { key: string; keyHash: string; sigv4Ciphertext: string } {
    const secret = randomBytes(32).toString('base64url');
    const key = `nmb_${id}_${secret}`;
    return {
      key,
      keyHash: hashSecret(secret),
      sigv4Ciphertext: this.box.encrypt(derivedSigV4Secret(key), CONTEXT(id)),
    };
  }
}

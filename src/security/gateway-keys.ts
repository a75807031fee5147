// API keys of the gateway (API Gateway's x-api-key keys), issued per project under a usage plan. A key reads
// `nmg_<id>_<secret>`: the id finds its row, the secret's SHA-256 proves it, as for the control API's keys
// (api-keys.ts, whose id generator and hash this shares). The gateway checks a key on every request that
// needs one, so a verified row is remembered for a few seconds; a removal on this node forgets it at once.
import { timingSafeEqual, randomBytes } from 'node:crypto';
import type { Clock } from '../clock/clock.js';
import type { GatewayKeyStore, StoredGatewayKey } from '../store/types.js';
import { awsStyleKeyId } from './access-keys.js';
import { hashSecret } from './api-keys.js';

/** "NIMG" and 16 characters of base32, told apart from control keys' NIMK and access keys' NIMB. */
export const GATEWAY_KEY_ID = /^NIMG[A-Z2-7]{16}$/;
const GATEWAY_KEY = /^nmg_(NIMG[A-Z2-7]{16})_([A-Za-z0-9_-]{43})$/;

/** How long a verified key is trusted without a store read (so a removal on another node takes this long). */
export const GATEWAY_KEY_CACHE_MS = 10_000;
const MAX_CACHED = 10_000;

export interface IssuedGatewayKey {
  stored: StoredGatewayKey;
  key: string;
}

export class GatewayKeys {
  private readonly cache = new Map<string, { row: StoredGatewayKey; until: number }>();

  constructor(
    private readonly store: GatewayKeyStore,
    private readonly clock: Clock,
    private readonly cacheMs = GATEWAY_KEY_CACHE_MS,
  ) {}

  async create(project: string, name: string, plan: string): Promise<IssuedGatewayKey> {
    const id = awsStyleKeyId('NIMG');
    const secret = randomBytes(32).toString('base64url');
    const stored = await this.store.create({ id, project, name, plan, keyHash: hashSecret(secret) });
    return { stored, key: `nmg_${id}_${secret}` };
  }

  list(project: string): Promise<StoredGatewayKey[]> {
    return this.store.list(project);
  }

  async remove(project: string, id: string): Promise<boolean> {
    const removed = await this.store.remove(project, id);
    this.cache.delete(id);
    return removed;
  }

  /** The live key a header value is, compared by hash in constant time; undefined for anything else. */
  async verify(text: string | undefined): Promise<StoredGatewayKey | undefined> {
    const m = text === undefined ? null : GATEWAY_KEY.exec(text);
    if (!m) return undefined;
    const id = m[1]!;
    const now = this.clock.now();
    let row = this.cache.get(id);
    if (!row || row.until <= now) {
      const stored = await this.store.get(id);
      if (!stored) {
        this.cache.delete(id);
        return undefined;
      }
      if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value!);
      row = { row: stored, until: now + this.cacheMs };
      this.cache.set(id, row);
    }
    const given = Buffer.from(hashSecret(m[2]!), 'hex');
    const kept = Buffer.from(row.row.keyHash, 'hex');
    return given.length === kept.length && timingSafeEqual(given, kept) ? row.row : undefined;
  }
}

// Every deployed function's own access key. Like a TriggerSource it is told the deployed functions (sync) at
// start and after each deploy or removal: it creates the key of a function that has none (kind "function",
// name "function:<name>", permitted the tables its manifest grants), updates the permissions on redeploy and
// removes the key with the function. It keeps the decrypted keys in memory for the invoker, which puts them
// into each instance's environment with the API listener's address (AWS_ENDPOINT_URL).
import type { Component } from '../component.js';
import type { FunctionRef, FunctionVersion, Permissions } from '../store/types.js';
import type { AccessKeys, IssuedKey } from './access-keys.js';

/** What an instance of a function gets to call the AWS APIs of Nimbus as itself. */
export interface FunctionAwsEnv {
  accessKeyId: string;
  secretAccessKey: string;
  /** The API listener's origin (an IP literal); absent only if it never came up. */
  endpointUrl?: string;
}

export interface FunctionKeysOptions {
  keys: Pick<AccessKeys, 'create' | 'forFunction' | 'remove' | 'setPermissions' | 'list'>;
  /** Every project, for the first sync's sweep of keys whose function is gone. */
  projects?: () => Promise<string[]>;
  onError?: (err: unknown, context: string) => void;
  /** Epoch ms now (for the sweep's age margin). */
  now?: () => number;
  /** How long a cold start during startup waits for the API listener's address (default 10 s). */
  endpointWaitMs?: number;
}

interface Want {
  project: string;
  name: string;
  version: number;
  permissions: Permissions;
}

interface Held {
  project: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The function version whose deploy this key was checked against. */
  version: number;
  permissions: string;
}

/** The first sync removes function keys whose function is gone, if they are older than this: a younger one
 *  may belong to a function another node deployed a moment ago, which this node has not loaded yet. */
const SWEEP_MIN_AGE_MS = 5 * 60_000;

export class FunctionKeys implements Component {
  readonly name = 'function keys';
  private desired = new Map<string, Want>();
  private held = new Map<string, Held>();
  private run: Promise<void> = Promise.resolve();
  private queued = false;
  private busy = false;
  private swept = false;
  private stopped = false;
  private endpoint: string | undefined;
  private endpointWaiters: (() => void)[] = [];

  constructor(private readonly o: FunctionKeysOptions) {}

  /** The deployed functions now; their keys are brought in line in the background (see synced()). */
  sync(functions: readonly FunctionVersion[]): void {
    this.desired = new Map(
      functions.map((f) => [
        keyOf(f),
        {
          project: f.project,
          name: f.name,
          version: f.version,
          permissions: permissionsOf(f.config.permissions),
        },
      ]),
    );
    this.kick();
  }

  /** Resolves once the keys are what the last sync() asked for (failures are logged, and retried later). */
  synced(): Promise<void> {
    return this.run;
  }

  async start(): Promise<void> {
    await this.synced();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.endpointWaiters.splice(0)) w();
    await this.run;
  }

  /** The API listener is up at this origin: instances started from now on are told it. */
  setEndpoint(origin: string | undefined): void {
    this.endpoint = origin;
    for (const w of this.endpointWaiters.splice(0)) w();
  }

  /**
   * What an instance of this function version gets: its key, and the API's origin. Waits for a sync in
   * progress when the key is not known yet (a function deployed a moment ago), and tries once more if an
   * earlier attempt failed. Never rejects: undefined when the function has no key.
   */
  async env(fn: FunctionRef & { version?: number }): Promise<FunctionAwsEnv | undefined> {
    const k = keyOf(fn);
    const current = (): Held | undefined => {
      const h = this.held.get(k);
      return h && (fn.version === undefined || h.version === fn.version) ? h : undefined;
    };
    let h = current();
    if (!h && (this.busy || this.queued)) {
      await this.run;
      h = current();
    }
    if (!h && this.desired.has(k) && !this.stopped) {
      this.kick();
      await this.run;
      h = current();
    }
    // An instance of an older version than the key was checked against still gets the function's key.
    h ??= this.held.get(k);
    if (!h) return undefined;
    const endpointUrl = await this.endpointUrl();
    return {
      accessKeyId: h.accessKeyId,
      secretAccessKey: h.secretAccessKey,
      ...(endpointUrl !== undefined ? { endpointUrl } : {}),
    };
  }

  private endpointUrl(): Promise<string | undefined> {
    if (this.endpoint !== undefined || this.stopped) return Promise.resolve(this.endpoint);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(this.endpoint);
      };
      const timer = setTimeout(() => {
        this.endpointWaiters = this.endpointWaiters.filter((w) => w !== wake);
        resolve(undefined);
      }, this.o.endpointWaitMs ?? 10_000);
      timer.unref();
      this.endpointWaiters.push(wake);
    });
  }

  /** Runs one more pass after the current one (passes never overlap; queued ones coalesce). */
  private kick(): void {
    if (this.queued || this.stopped) return;
    this.queued = true;
    this.run = this.run.then(async () => {
      this.queued = false;
      this.busy = true;
      try {
        await this.apply();
      } catch (err) {
        this.o.onError?.(err, 'function keys');
      } finally {
        this.busy = false;
      }
    });
  }

  private async apply(): Promise<void> {
    const want = this.desired;
    if (!this.swept) this.swept = await this.sweep(want);
    for (const [k, w] of want) {
      if (this.stopped) return;
      try {
        const h = this.held.get(k);
        if (!h || h.version !== w.version) await this.acquire(k, w);
        else if (h.permissions !== json(w.permissions)) {
          await this.o.keys.setPermissions(h.accessKeyId, w.permissions);
          h.permissions = json(w.permissions);
        }
      } catch (err) {
        this.o.onError?.(err, `the access key of function ${w.project}/${w.name}`);
      }
    }
    for (const [k, h] of this.held) {
      if (want.has(k) || this.stopped) continue;
      try {
        await this.o.keys.remove(h.project, h.accessKeyId);
        this.held.delete(k);
      } catch (err) {
        this.o.onError?.(err, `removing the access key of function ${k}`);
      }
    }
  }

  /** The function's key from the store (made by an earlier start or another node), or a new one. A new
   *  version re-reads it too: the function may have been removed and deployed again elsewhere meanwhile. */
  private async acquire(k: string, w: Want): Promise<void> {
    let key: IssuedKey | undefined = await this.o.keys.forFunction(w.project, w.name, {
      replaceUndecryptable: true,
    });
    if (!key) {
      try {
        key = await this.o.keys.create({
          project: w.project,
          name: `function:${w.name}`,
          kind: 'function',
          functionName: w.name,
          permissions: w.permissions,
        });
      } catch (err) {
        // Another node made it first.
        key = await this.o.keys.forFunction(w.project, w.name);
        if (!key) throw err;
      }
    }
    if (json(key.credential.permissions) !== json(w.permissions)) {
      await this.o.keys.setPermissions(key.credential.accessKeyId, w.permissions);
    }
    this.held.set(k, {
      project: w.project,
      accessKeyId: key.credential.accessKeyId,
      secretAccessKey: key.secretAccessKey,
      version: w.version,
      permissions: json(w.permissions),
    });
  }

  /** Removes function keys (old enough) whose function is not deployed: removed while no node saw it. */
  private async sweep(want: Map<string, Want>): Promise<boolean> {
    try {
      const projects = new Set([...want.values()].map((w) => w.project));
      for (const p of (await this.o.projects?.()) ?? []) projects.add(p);
      const before = (this.o.now ?? Date.now)() - SWEEP_MIN_AGE_MS;
      for (const project of projects) {
        for (const c of await this.o.keys.list(project)) {
          if (c.kind !== 'function' || c.createdAt > before) continue;
          if (c.functionName !== null && want.has(keyOf({ project, name: c.functionName }))) continue;
          await this.o.keys.remove(project, c.accessKeyId);
        }
      }
      return true;
    } catch (err) {
      this.o.onError?.(err, 'sweeping the keys of removed functions');
      return false;
    }
  }
}

function keyOf(ref: FunctionRef): string {
  return `${ref.project}/${ref.name}`;
}

/** Permissions compare by their sorted table list. */
function json(p: Permissions | null): string {
  return p === null ? 'null' : JSON.stringify([...p.tables].sort());
}

/** What the manifest grants; queues only when some are, so keys granted tables alone keep their stored form. */
function permissionsOf(
  p: { tables: string[]; queues?: string[]; buckets?: string[] } | undefined,
): Permissions {
  const queues = p?.queues ?? [];
  const buckets = p?.buckets ?? [];
  return {
    tables: [...(p?.tables ?? [])],
    ...(queues.length > 0 ? { queues: [...queues] } : {}),
    ...(buckets.length > 0 ? { buckets: [...buckets] } : {}),
  };
}

// An in-memory CredentialStore for tests of what sits above the store (auth, the API, function keys). It keeps
// the same rules as the real ones: unique access key ids and one key per function.
import type { CredentialStore, NewCredential, Permissions, StoredCredential } from '../../src/store/types.js';

type Row = StoredCredential & { secretCiphertext: string };

export class MemoryCredentials implements CredentialStore {
  readonly rows = new Map<string, Row>();
  calls = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async create(c: NewCredential): Promise<StoredCredential> {
    this.calls++;
    if (this.rows.has(c.accessKeyId)) throw new Error(`access key ${c.accessKeyId} exists`);
    if (
      c.functionName !== null &&
      [...this.rows.values()].some((r) => r.project === c.project && r.functionName === c.functionName)
    ) {
      throw new Error(`function ${c.functionName} has a key`);
    }
    const row: Row = { ...c, createdAt: this.now() };
    this.rows.set(c.accessKeyId, row);
    const { secretCiphertext: _, ...stored } = row;
    return stored;
  }

  async get(accessKeyId: string): Promise<Row | undefined> {
    this.calls++;
    const r = this.rows.get(accessKeyId);
    return r && { ...r };
  }

  async list(project: string): Promise<StoredCredential[]> {
    this.calls++;
    return [...this.rows.values()]
      .filter((r) => r.project === project)
      .sort((a, b) => (a.name === b.name ? cmp(a.accessKeyId, b.accessKeyId) : cmp(a.name, b.name)))
      .map(({ secretCiphertext: _, ...r }) => r);
  }

  async remove(project: string, accessKeyId: string): Promise<boolean> {
    this.calls++;
    const r = this.rows.get(accessKeyId);
    if (!r || r.project !== project) return false;
    return this.rows.delete(accessKeyId);
  }

  async forFunction(project: string, functionName: string): Promise<Row | undefined> {
    this.calls++;
    const r = [...this.rows.values()].find((x) => x.project === project && x.functionName === functionName);
    return r && { ...r };
  }

  async setPermissions(accessKeyId: string, permissions: Permissions | null): Promise<boolean> {
    this.calls++;
    const r = this.rows.get(accessKeyId);
    if (!r) return false;
    r.permissions = permissions;
    return true;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

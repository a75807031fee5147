// Where a running `nimbus up` can be found: one small JSON record in its data dir (server.json) and one in
// the user's state folder ($XDG_STATE_HOME/nimbus/servers/, default ~/.local/state/nimbus/servers/), so a
// command run anywhere can find a server started with `--data` elsewhere. Records are hints, never
// authority: the reader checks the pid and the URL before trusting one (client/discovery.ts).
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';

export interface ServerRecord {
  dataDir: string;
  gatewayUrl: string;
  apiUrl: string;
  /** The api-key file of the data dir. */
  keyFile: string;
  pid: number;
  host: string;
  /** ISO time. */
  startedAt: string;
  /** The folder `nimbus up` was run in: a command run there prefers this server. */
  cwd: string;
}

export const DATA_DIR_RECORD = 'server.json';

/** $XDG_STATE_HOME/nimbus/servers, or ~/.local/state/nimbus/servers (an empty XDG_STATE_HOME is unset). */
export function userStateDir(env: NodeJS.ProcessEnv): string {
  const xdg = env['XDG_STATE_HOME'];
  const base = xdg && xdg.startsWith('/') ? xdg : join(env['HOME'] || homedir(), '.local', 'state');
  return join(base, 'nimbus', 'servers');
}

/** One file per data dir: a restart on the same dir replaces its record instead of adding one. */
export function userRecordPath(env: NodeJS.ProcessEnv, dataDir: string): string {
  const id = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  return join(userStateDir(env), `${id}.json`);
}

/** Written to a temporary name and renamed, so a reader never sees half a record. */
export function writeRecord(path: string, record: ServerRecord): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Removes the record only if it is still this process's: a newer server may have replaced it. */
export function removeRecord(path: string, pid = process.pid): void {
  try {
    if (readRecord(path)?.pid === pid) unlinkSync(path);
  } catch {
    // Already gone, or the folder was removed with the data dir.
  }
}

export function readRecord(path: string): ServerRecord | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const str = (k: string): boolean => typeof r[k] === 'string';
  if (!str('dataDir') || !str('apiUrl') || !str('gatewayUrl') || typeof r['pid'] !== 'number')
    return undefined;
  return {
    dataDir: r['dataDir'] as string,
    gatewayUrl: r['gatewayUrl'] as string,
    apiUrl: r['apiUrl'] as string,
    keyFile: str('keyFile') ? (r['keyFile'] as string) : join(r['dataDir'] as string, 'api-key'),
    pid: r['pid'],
    host: str('host') ? (r['host'] as string) : hostname(),
    startedAt: str('startedAt') ? (r['startedAt'] as string) : '',
    cwd: str('cwd') ? (r['cwd'] as string) : '',
  };
}

/** Every record in the user's state folder, with the file each came from. */
export function userRecords(env: NodeJS.ProcessEnv): { path: string; record: ServerRecord }[] {
  const dir = userStateDir(env);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.json'))
    .sort()
    .flatMap((n) => {
      const record = readRecord(join(dir, n));
      return record ? [{ path: join(dir, n), record }] : [];
    });
}

/** Whether the recorded process still runs. One on another host cannot be checked and is taken at its word. */
export function processAlive(record: Pick<ServerRecord, 'pid' | 'host'>): boolean {
  if (record.host !== hostname()) return true;
  try {
    process.kill(record.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

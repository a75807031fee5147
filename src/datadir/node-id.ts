// A data dir's node id: created once, then the same for every process that ever runs on that dir, so
// records written by one run can be told apart from another node's and still match after a restart.
//
// Publishing goes through link(2): the id is written whole to a temporary file, then hard-linked to
// <dataDir>/node-id, which fails if the name exists. Readers therefore never see a partial file, and when
// several processes create it at once exactly one link succeeds; the others adopt the winner's id.
import {
  chmodSync,
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

const FILE = 'node-id';
const VALID = /^[a-z0-9](?:[a-z0-9-]{0,126}[a-z0-9])?$/;
// Only the fallback without link(2) can expose a file before its content is written; how long to wait.
const EMPTY_WAIT_MS = 1000;
const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

export function nodeIdFor(dataDir: string): string {
  const dir = resolve(dataDir);
  if (mkdirSync(dir, { recursive: true, mode: 0o711 }) !== undefined) chmodSync(dir, 0o711);
  const path = join(dir, FILE);

  const existing = readId(path);
  if (existing !== null) return existing;

  const id = `${hostPart(hostname())}-${randomBytes(4).toString('hex')}`;
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeDurably(tmp, id);
  try {
    linkSync(tmp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (LINK_UNSUPPORTED.has(code)) publishExclusive(path, id);
    else if (code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  syncDir(dir);
  // Whoever won, the file now holds the one id everybody uses.
  const won = readId(path);
  if (won === null) throw new Error(`${path} vanished while it was being created`);
  return won;
}

/** The id in the file, or null when there is no file yet. */
function readId(path: string): string | null {
  const until = Date.now() + EMPTY_WAIT_MS;
  for (;;) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    if (VALID.test(text)) return text;
    if (text !== '' || Date.now() >= until) {
      // Never replaced automatically: a silently new id would make this node look like a different one.
      throw new Error(
        `${path} does not hold a node id (expected letters a-z, digits and dashes, found ${JSON.stringify(text.slice(0, 80))}); fix or remove it`,
      );
    }
    sleep(20);
  }
}

// Filesystems without hard links: an exclusive create still lets only one process win, though a reader
// may briefly see the file empty (readId waits for that).
function publishExclusive(path: string, id: string): void {
  try {
    writeDurably(path, id);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

// fsynced before it is linked, so a power loss cannot leave a published but empty node-id.
function writeDurably(path: string, id: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, id + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a directory; the link itself is already visible to other processes.
  }
}

function hostPart(host: string): string {
  const s = host
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  return s || 'node';
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

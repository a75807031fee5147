// Feature detection for isolation, done once at start. Nimbus uses the strongest level the host allows and
// says which it reached, rather than refusing to run on a laptop without bubblewrap.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync, accessSync, constants } from 'node:fs';
import { join } from 'node:path';

export interface SandboxCapabilities {
  /** Absolute path of a working bwrap, or null. */
  bwrap: string | null;
  /** uid/gid functions run as when Nimbus is root; null when Nimbus is not root (functions run as Nimbus's user). */
  uid: number | null;
  gid: number | null;
  /** Node's --experimental-permission is always used; recorded for the report. */
  nodePermission: true;
  /** Parent cgroup v1 memory directory under which per-instance cgroups are made, or null (RSS polling instead). */
  memoryCgroup: string | null;
  /** Human-readable summary printed by `nimbus up`. */
  level: string;
}

export const UNPRIVILEGED_ID = 65534;

function which(cmd: string): string | null {
  for (const dir of (process.env['PATH'] ?? '/usr/bin:/bin').split(':')) {
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return null;
}

function bwrapWorks(bwrap: string, uid: number | null, gid: number | null): boolean {
  try {
    const args = ['--unshare-all', '--share-net', '--die-with-parent', '--ro-bind', '/', '/', 'true'];
    execFileSync(bwrap, args, {
      stdio: 'ignore',
      timeout: 5000,
      ...(uid !== null && gid !== null ? { uid, gid } : {}),
    });
    return true;
  } catch {
    return false;
  }
}

/** A memory cgroup (v1) we may create children in, tested by making and removing one. */
function memoryCgroupParent(): string | null {
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => /^\d+:memory:/.test(l));
    if (!line) return null;
    const dir = join('/sys/fs/cgroup/memory', line.split(':')[2] ?? '/', `nimbus-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, 'probe');
    mkdirSync(probe);
    writeFileSync(join(probe, 'memory.limit_in_bytes'), String(64 * 1024 * 1024));
    rmdirSync(probe);
    return dir;
  } catch {
    return null;
  }
}

export function detectSandbox(
  opts: { disableBwrap?: boolean; disableCgroup?: boolean } = {},
): SandboxCapabilities {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const uid = root ? UNPRIVILEGED_ID : null;
  const gid = root ? UNPRIVILEGED_ID : null;
  const found = opts.disableBwrap ? null : which('bwrap');
  const bwrap = found && bwrapWorks(found, uid, gid) ? found : null;
  const memoryCgroup = root && !opts.disableCgroup ? memoryCgroupParent() : null;
  const parts = [
    bwrap ? 'bubblewrap namespaces' : 'no bubblewrap (install the bubblewrap package for namespaces)',
    uid !== null ? `uid ${uid}` : 'same uid as nimbus',
    'node permission model',
    memoryCgroup ? 'memory cgroup' : 'RSS polling',
  ];
  return { bwrap, uid, gid, nodePermission: true, memoryCgroup, level: parts.join(', ') };
}

/** Removes the cgroup parent made by detectSandbox (children must be gone). */
export function releaseCgroupParent(caps: SandboxCapabilities): void {
  if (!caps.memoryCgroup) return;
  try {
    rmdirSync(caps.memoryCgroup);
  } catch {
    // still busy or already gone; the kernel frees it when empty
  }
}

export function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

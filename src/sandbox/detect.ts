// Feature detection for isolation, done once at start. Nimbus uses the strongest level the host allows and
// says which it reached, rather than refusing to run on a laptop without bubblewrap.
import { execFileSync } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
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
  /**
   * Parent cgroup v1 cpu directory under which per-instance cgroups get a CPU share proportional to their
   * memory (cpu.shares), or null: without it instances compete for CPU as equals (idle ones stay frozen).
   */
  cpuCgroup: string | null;
  /**
   * bash, which starts every sandbox's spawn chain and closes the descriptors it should not get; null when
   * there is none (inherited descriptors then reach sandboxes, and the level says so).
   */
  fdCloser: string | null;
  /** slirp4netns, which gives a bubblewrap sandbox's own network namespace outbound access; or null. */
  slirp4netns: string | null;
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

/**
 * A cgroup v1 controller directory we may create children in, tested by making and removing one (with a
 * value written to the probe file, so a read-only or delegated hierarchy is found out here, not per instance).
 */
function cgroupParent(controller: 'memory' | 'cpu', probeFile: string, probeValue: string): string | null {
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => new RegExp(`^\\d+:([^:]*,)?${controller}(,[^:]*)?:`).test(l));
    if (!line) return null;
    const mount = controller === 'cpu' && !existsSync('/sys/fs/cgroup/cpu') ? 'cpu,cpuacct' : controller;
    const base = join('/sys/fs/cgroup', mount, line.split(':')[2] ?? '/');
    sweepStaleCgroups(base);
    const dir = join(base, `nimbus-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    const probe = join(dir, 'probe');
    mkdirSync(probe);
    writeFileSync(join(probe, probeFile), probeValue);
    rmdirSync(probe);
    return dir;
  } catch {
    return null;
  }
}

/** cpu.shares of an instance: Lambda gives one vCPU at 1,769 MB and CPU in proportion to memory below it. */
export function cpuSharesFor(memoryMB: number): number {
  return Math.max(2, Math.round((memoryMB / 1769) * 1024));
}

export function detectSandbox(
  opts: { disableBwrap?: boolean; disableCgroup?: boolean } = {},
): SandboxCapabilities {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const uid = root ? UNPRIVILEGED_ID : null;
  const gid = root ? UNPRIVILEGED_ID : null;
  const found = opts.disableBwrap ? null : which('bwrap');
  const bwrap = found && bwrapWorks(found, uid, gid) ? found : null;
  const memoryCgroup =
    root && !opts.disableCgroup
      ? cgroupParent('memory', 'memory.limit_in_bytes', String(64 * 1024 * 1024))
      : null;
  const cpuCgroup = root && !opts.disableCgroup ? cgroupParent('cpu', 'cpu.shares', '512') : null;
  if (cpuCgroup) {
    // The group of all sandboxes competes with the host's own processes: weigh it as one task per core, so
    // functions together are not squeezed below the host, while within it each instance gets its share.
    try {
      writeFileSync(join(cpuCgroup, 'cpu.shares'), String(1024 * Math.max(1, availableParallelism())));
    } catch {
      // the default weight (1024) still applies
    }
  }
  const fdCloser = which('bash');
  const slirp4netns = bwrap ? which('slirp4netns') : null;
  const parts = [
    bwrap ? 'bubblewrap namespaces' : 'no bubblewrap (install the bubblewrap package for namespaces)',
    ...(bwrap
      ? [
          slirp4netns
            ? 'own network namespace (outbound through slirp4netns)'
            : 'own network namespace, WARNING: no outbound network for functions (install slirp4netns)',
        ]
      : []),
    uid !== null ? `uid ${uid}` : 'same uid as nimbus',
    'node permission model',
    memoryCgroup ? 'memory cgroup' : 'RSS polling',
    cpuCgroup ? 'CPU share by memory' : 'no CPU share (no cpu cgroup; idle instances still frozen)',
    ...(fdCloser ? [] : ['WARNING: descriptors Nimbus inherited reach functions (install bash)']),
    // Said plainly: without a PID namespace every instance runs as the same uid and sees the others, so one
    // function can signal or ptrace another's process, and /tmp has no size limit.
    ...(bwrap
      ? []
      : [
          "WARNING: functions are not isolated from each other at this level (same uid, shared PID namespace, unlimited /tmp) and share the host's network (they can reach its loopback services; network: none cannot be deployed)",
        ]),
  ];
  return {
    bwrap,
    uid,
    gid,
    nodePermission: true,
    memoryCgroup,
    cpuCgroup,
    fdCloser,
    slirp4netns,
    level: parts.join(', '),
  };
}

/**
 * Removes the cgroup folder made by detectSandbox once its instances have exited: the kernel frees a cgroup
 * only after its last task is gone, so this retries for a while. Awaited on stop, so none is left behind.
 */
export async function releaseCgroupParent(caps: SandboxCapabilities, waitMs = 3000): Promise<void> {
  const until = Date.now() + waitMs;
  for (const dir of [caps.memoryCgroup, caps.cpuCgroup]) {
    if (!dir) continue;
    for (;;) {
      if (removeCgroupTree(dir) || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** rmdir of a cgroup and its child cgroups (the files inside are virtual); true once it is gone. */
function removeCgroupTree(dir: string): boolean {
  let children: string[];
  try {
    children = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(dir, d.name));
  } catch {
    return true;
  }
  for (const child of children) removeCgroupTree(child);
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/** Folders of earlier Nimbus processes that died without cleaning up (their pid is gone). */
function sweepStaleCgroups(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = /^nimbus-(\d+)$/.exec(name)?.[1];
    if (pid && pid !== String(process.pid) && !existsSync(`/proc/${pid}`)) removeCgroupTree(join(base, name));
  }
}

export function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

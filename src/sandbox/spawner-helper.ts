// The spawner helper: a small Node process the host starts once (spawner.ts) and asks, over Node's IPC
// channel, to start sandboxes. Forking is the one thing it does: a fork copies the forking process's page
// tables and blocks its event loop meanwhile, which in a 135 MB host took 2.8 ms p50 and 10 ms at worst per
// stem cell, on the loop that serves requests. Each sandbox's stdout, stderr and host channel are handed to
// the host as descriptors (SCM_RIGHTS), so invocations never pass through this process.
import type { Socket } from 'node:net';
import { startChain, type Chain, type SpawnRequest } from './spawn-chain.js';

export type HelperRequest =
  | { t: 'spawn'; id: number; req: SpawnRequest }
  | { t: 'kill'; id: number; signal: NodeJS.Signals }
  | { t: 'kill-nat'; id: number };

export type HelperEvent =
  | { t: 'fd'; id: number; n: 1 | 2 | 3; pid: number }
  | { t: 'spawned'; id: number; pid: number }
  | { t: 'failed'; id: number; message: string }
  | { t: 'nat-started'; id: number; pid: number }
  | { t: 'nat-ready'; id: number }
  | { t: 'nat-exit'; id: number; code: number | null; signal: string | null; tail: string }
  | { t: 'exit'; id: number; code: number | null; signal: string | null };

const chains = new Map<number, Chain>();

function send(ev: HelperEvent, handle?: Socket): void {
  // The host is gone when this fails: 'disconnect' below ends everything.
  if (process.connected) process.send!(ev, handle as never, () => undefined);
}

/**
 * Node starts reading a child's pipes as soon as it wraps them; a byte read here before the descriptor has
 * reached the host would be lost, so reading stops before the event loop runs again.
 */
function holdUnread(sockets: Socket[]): void {
  for (const s of sockets) (s as unknown as { _handle?: { readStop?(): number } })._handle?.readStop?.();
}

function onRequest(m: HelperRequest): void {
  switch (m.t) {
    case 'spawn': {
      const { id } = m;
      const chain = startChain(
        m.req,
        {
          spawned(pid, stdout, stderr, channel) {
            send({ t: 'fd', id, n: 1, pid }, stdout);
            send({ t: 'fd', id, n: 2, pid }, stderr);
            send({ t: 'fd', id, n: 3, pid }, channel);
            send({ t: 'spawned', id, pid });
          },
          failed(message) {
            chains.delete(id);
            send({ t: 'failed', id, message });
          },
          natStarted: (pid) => send({ t: 'nat-started', id, pid }),
          natReady: () => send({ t: 'nat-ready', id }),
          natExit: (code, signal, tail) => send({ t: 'nat-exit', id, code, signal, tail }),
          exit(code, signal) {
            chains.delete(id);
            send({ t: 'exit', id, code, signal });
          },
        },
        holdUnread,
      );
      chains.set(id, chain);
      return;
    }
    case 'kill':
      chains.get(m.id)?.kill(m.signal);
      return;
    case 'kill-nat':
      chains.get(m.id)?.killNat();
      return;
  }
}

if (!process.send) {
  process.stderr.write('nimbus spawner: must be started by Nimbus with an IPC channel\n');
  process.exit(1);
}
process.on('message', (m: HelperRequest) => onRequest(m));
// The host is gone (however it died: the kernel closes the channel): nothing may outlive it. bubblewrap's
// --die-with-parent ends the sandboxes with this process; without bubblewrap they are killed here.
process.on('disconnect', () => {
  for (const chain of chains.values()) {
    chain.killNat();
    chain.kill('SIGKILL');
  }
  process.exit(0);
});

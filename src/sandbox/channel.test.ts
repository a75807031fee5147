// The host's channel over a real socket pair: frames of one turn leave together at its end, and a cold start's
// first frame leaves at once, with whatever was queued before it.
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { HostChannel } from './channel.js';

const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

/** A child that reports each read of fd 3 as one line of stdout: how many writes reached it, and what. */
function reader(): { channel: HostChannel; reads: (bytes: number) => Promise<string[]> } {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const s = new (require('net').Socket)({ fd: 3, readable: true });
       s.on('data', (d) => process.stdout.write(JSON.stringify(d.toString()) + '\\n'));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] },
  );
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const channel = new HostChannel(child.stdio[3] as Socket, () => {});
  return {
    channel,
    reads: async (bytes) => {
      // Until that much has arrived (the child's node takes a while to boot on a loaded machine).
      const lines = (): string[] =>
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as string);
      for (let i = 0; i < 300 && lines().join('').length < bytes; i++)
        await new Promise((r) => setTimeout(r, 50));
      return out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as string);
    },
  };
}

it('sendNow writes in this turn, after what send queued', async () => {
  const { channel, reads } = reader();
  channel.send({ n: 1 });
  channel.sendNow({ n: 2 });
  // The turn has not ended: had sendNow waited for it, nothing would be written yet.
  const socket = (channel as unknown as { socket: Socket }).socket;
  expect(socket.bytesWritten + socket.writableLength).toBeGreaterThan(0);
  expect((await reads(16)).join('')).toBe('{"n":1}\n{"n":2}\n');
});

it('send alone leaves at the end of the turn', () => {
  const { channel } = reader();
  channel.send({ n: 1 });
  const socket = (channel as unknown as { socket: Socket }).socket;
  expect(socket.bytesWritten + socket.writableLength).toBe(0);
});

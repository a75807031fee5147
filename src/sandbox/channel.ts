// The host's end of a sandbox channel: newline-delimited JSON over a socket pair given to the process as
// fd 3 (see runtime/channel.ts for the other end). Messages to one instance within a turn of the event loop
// leave in one write, so queued invocations cost one wake-up of the sandbox, not one each.
import type { Socket } from 'node:net';
import { encodeLine, lineDecoder } from '../protocol/framing.js';

/** The longest message a sandbox may send: a 6 MB payload, JSON-escaped, with its logs, and room to spare. */
export const MAX_LINE = 32 * 1024 * 1024;

export class HostChannel {
  private out = '';
  private scheduled = false;
  private open = true;

  constructor(
    private readonly socket: Socket,
    onMessage: (msg: unknown) => void,
    onOverflow: () => void = () => socket.destroy(),
  ) {
    socket.setEncoding('utf8');
    // A sandbox writing garbage gets nothing for it, and one flooding the channel is stopped (MAX_LINE).
    socket.on('data', lineDecoder(onMessage, { maxLine: MAX_LINE, onOverflow }));
    const close = (): void => {
      this.open = false;
    };
    socket.on('close', close);
    // EPIPE after the process died: its exit handler reports what happened.
    socket.on('error', close);
  }

  /** Queues a message for this turn's write; throws if it cannot be serialized (the caller's error). */
  send(msg: unknown): void {
    const line = encodeLine(msg);
    if (!this.open) return;
    this.out += line;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Writes the message now, after anything queued this turn (one write): for a cold start's first frame. */
  sendNow(msg: unknown): void {
    const line = encodeLine(msg);
    if (!this.open) return;
    this.out += line;
    this.flush();
  }

  private flush = (): void => {
    this.scheduled = false;
    if (this.out === '' || !this.open) return;
    const data = this.out;
    this.out = '';
    this.socket.write(data);
  };

  close(): void {
    this.open = false;
    this.socket.destroy();
  }
}

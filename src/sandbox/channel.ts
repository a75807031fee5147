// The host's end of a sandbox channel: newline-delimited JSON over a socket pair given to the process as
// fd 3 (see runtime/channel.ts for the other end). Messages to one instance within a turn of the event loop
// leave in one write, so queued invocations cost one wake-up of the sandbox, not one each.
import type { Socket } from 'node:net';

export class HostChannel {
  private out = '';
  private scheduled = false;
  private inbox = '';
  private open = true;

  constructor(
    private readonly socket: Socket,
    onMessage: (msg: unknown) => void,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.inbox += chunk;
      let nl = this.inbox.indexOf('\n');
      while (nl >= 0) {
        const line = this.inbox.slice(0, nl);
        this.inbox = this.inbox.slice(nl + 1);
        if (line.length > 0) {
          let msg: unknown;
          try {
            msg = JSON.parse(line);
          } catch {
            // a sandbox writing garbage gets nothing for it; its invocation times out or it is replaced
            msg = undefined;
          }
          if (msg !== undefined) onMessage(msg);
        }
        nl = this.inbox.indexOf('\n');
      }
    });
    const close = (): void => {
      this.open = false;
    };
    socket.on('close', close);
    // EPIPE after the process died: its exit handler reports what happened.
    socket.on('error', close);
  }

  /** Queues a message for this turn's write; throws if it cannot be serialized (the caller's error). */
  send(msg: unknown): void {
    const line = `${JSON.stringify(msg)}\n`;
    if (!this.open) return;
    this.out += line;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
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

// The runtime's end of the host channel: newline-delimited JSON over the socket the host gives as fd 3.
// Messages written during one turn of the event loop leave in one write (setImmediate flush), so a burst of
// results costs one wake-up of the host instead of one each; this is why Node's built-in IPC channel, which
// writes every message at once, is not used.
//
// Back to back invocations (the host sends the next ones ahead while one runs): before a result leaves,
// `beforeFlush` may start the next queued invocation, and its result joins the same write if it is ready
// by the next turn. A result waits so at most HOLD_MS and HOLD_MAX invocations: the host reads several
// results per wake-up instead of one, at the price of up to a millisecond on the first one's answer (the
// host, which times invocations from one result to the next, counts that time to the earlier invocation).
import { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { encodeLine, lineDecoder } from '../protocol/framing.js';

export interface Channel {
  /** Queues a message; `flushed` (if given) forces an immediate write and is called once it is written.
   *  `payload`: JSON text sent after the message as it is (see protocol/framing.ts). */
  send(msg: unknown, flushed?: (err: Error | null) => void, payload?: string): void;
  /** While unref'd the channel does not keep the process alive (see invoke.ts: beforeExit). */
  ref(): void;
  unref(): void;
  readonly connected: boolean;
}

export const CHANNEL_FD = 3;
const HOLD_MS = 1;
const HOLD_MAX = 16;

export function openChannel(
  onMessage: (msg: unknown) => void,
  onClose: () => void,
  /** Called before a write; true if it started another invocation whose result may join the write. */
  beforeFlush: () => boolean = () => false,
): Channel {
  const socket = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
  let connected = true;
  let out = '';
  let scheduled = false;
  /** performance.now() when `out` got its first message, and how often its write was put off since. */
  let since = 0;
  let holds = 0;

  const flush = (): void => {
    scheduled = false;
    if (out === '' || !connected) return;
    if (holds < HOLD_MAX && performance.now() - since < HOLD_MS && beforeFlush()) {
      holds++;
      scheduled = true;
      setImmediate(flush);
      return;
    }
    holds = 0;
    const data = out;
    out = '';
    socket.write(data);
  };

  socket.setEncoding('utf8');
  socket.on('data', lineDecoder(onMessage));
  const closed = (): void => {
    if (!connected) return;
    connected = false;
    onClose();
  };
  socket.on('end', closed);
  socket.on('close', closed);
  // A write after the host is gone fails with EPIPE; the process is about to exit anyway.
  socket.on('error', closed);

  return {
    send(msg, flushed, payload) {
      if (!connected) {
        flushed?.(new Error('the host channel is closed'));
        return;
      }
      if (out === '') since = performance.now();
      out += encodeLine(msg, payload);
      if (flushed) {
        const data = out;
        out = '';
        socket.write(data, (err) => flushed(err ?? null));
        return;
      }
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    ref: () => socket.ref(),
    unref: () => socket.unref(),
    get connected() {
      return connected;
    },
  };
}

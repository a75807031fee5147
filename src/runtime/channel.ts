// The runtime's end of the host channel: newline-delimited JSON over the socket the host gives as fd 3.
// Messages written during one turn of the event loop leave in one write (setImmediate flush), so a burst of
// results costs one wake-up of the host instead of one each; this is why Node's built-in IPC channel, which
// writes every message at once, is not used.
//
// Results of invocations queued behind each other (K = 1) leave in one write each: holding one back while the
// next starts would coalesce them (measured: 8 queued results in 1 read instead of 5-8,
// bench/runtime-writes.mjs), but an answer held back is lost if the next invocation hangs, exits or runs out
// of memory before it yields, and a finished invocation would then be reported as failed.
import { Socket } from 'node:net';
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

export function openChannel(onMessage: (msg: unknown) => void, onClose: () => void): Channel {
  const socket = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
  let connected = true;
  let out = '';
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    if (out === '' || !connected) return;
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

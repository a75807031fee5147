import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * Answers oversized request headers with a complete `431` JSON response instead of Node's default
 * (a bare 431 without body for some paths, a reset connection for others). Other parse errors get a `400`
 * in the same shape. One helper for every HTTP server Nimbus runs; `body` picks the server's error shape.
 */
export function answerClientErrors(
  server: Server,
  body: (status: 431 | 400, message: string) => object,
): Server {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const overflow = err.code === 'HPE_HEADER_OVERFLOW';
    if (!socket.writable || (err.code === 'ECONNRESET' && !overflow)) return void socket.destroy();
    const status = overflow ? 431 : 400;
    const message = overflow ? 'Request Header Fields Too Large' : 'Bad Request';
    const json = JSON.stringify(body(status, message));
    socket.end(
      `HTTP/1.1 ${status} ${message}\r\n` +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(json)}\r\n` +
        'Connection: close\r\n\r\n' +
        json,
    );
    // Whatever the client still sends is read and dropped so closing does not reset before it reads the 431.
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    setTimeout(() => socket.destroy(), 10_000).unref();
  });
  return server;
}

// Reading a request body up to a limit: the one reader for every listener.
import type { IncomingMessage } from 'node:http';

export const TOO_LARGE = Symbol('body too large');
export const ABORTED = Symbol('request aborted');

/**
 * The whole body, or TOO_LARGE as soon as it passes the limit (a declared Content-Length over it is refused
 * before reading anything), or ABORTED when the client went away. It never rejects; after TOO_LARGE the caller
 * answers and drains the rest with req.resume().
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
): Promise<Buffer | typeof TOO_LARGE | typeof ABORTED> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.resolve(TOO_LARGE);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        done();
        chunks.length = 0;
        resolve(TOO_LARGE);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onClose = (): void => {
      done();
      resolve(ABORTED);
    };
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onClose);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onClose);
    req.on('close', onClose);
  });
}

// In a network namespace of its own the sandbox cannot reach the host's loopback, where AWS_ENDPOINT_URL
// points. The host serves the same endpoint on a unix socket bound into the sandbox; this forwards the
// endpoint's port on the sandbox's own 127.0.0.1 to it, so the URL stays valid and SDK clients (v3, and v2
// through aws-redirect.ts) run unmodified. Started before user code loads, so no function can take the port.
import { createServer, connect, type Server, type Socket } from 'node:net';

export async function forwardEndpoint(endpointUrl: string | undefined, socketPath: string): Promise<void> {
  if (!endpointUrl) return;
  const port = Number(new URL(endpointUrl).port || 80);
  await listenLocal(
    createServer((client) => relay(client, socketPath)),
    port,
  );
}

/**
 * The stem cell's rehearsal: listens on a free port of 127.0.0.1 and closes it again. A process's first
 * listen on a host name loads and compiles Node's dns module and the TCP server path, measured at 5-8 ms of a
 * cold start's init in a sandbox here; afterwards forwardEndpoint takes about 0.5 ms. Nothing is left open,
 * and a listen that fails (a sandbox without loopback) only costs the speed-up.
 */
export async function rehearseForward(): Promise<void> {
  const server = createServer();
  try {
    await listenLocal(server, 0);
  } catch {
    return;
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function listenLocal(server: Server, port: number): Promise<void> {
  server.unref();
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

/**
 * One client connection, relayed to the socket. When the host closes an idle keep-alive connection (its
 * keep-alive timeout passes while the instance is frozen), the client's connection stays open and the next
 * request gets a new upstream one: passing the close on would reach the SDK a turn of the event loop too
 * late, after it had sent its next request on the dying connection (a "socket hang up" on the first AWS call
 * after an idle spell). A close while a request is unanswered is passed on. Neither end keeps the event loop
 * alive: that is the function's own client socket's business (callbackWaitsForEmptyEventLoop).
 */
function relay(client: Socket, socketPath: string): void {
  client.unref();
  let upstream: Socket | null = null;
  /** Client bytes went up since the host last answered. */
  let asked = false;
  const open = (): Socket => {
    const up = connect(socketPath);
    up.unref();
    upstream = up;
    up.on('data', (d: Buffer) => {
      asked = false;
      if (!client.write(d)) {
        up.pause();
        client.once('drain', () => up.resume());
      }
    });
    up.on('error', () => undefined);
    up.on('close', () => {
      if (upstream === up) upstream = null;
      if (asked) client.destroy();
    });
    return up;
  };
  client.on('data', (d: Buffer) => {
    asked = true;
    const up = upstream ?? open();
    if (!up.write(d)) {
      client.pause();
      up.once('drain', () => client.resume());
    }
  });
  client.on('end', () => upstream?.end());
  client.on('close', () => upstream?.destroy());
  client.on('error', () => undefined);
}

// In a network namespace of its own the sandbox cannot reach the host's loopback, where AWS_ENDPOINT_URL
// points. The host serves the same endpoint on a unix socket bound into the sandbox; this forwards the
// endpoint's port on the sandbox's own 127.0.0.1 to it, so the URL stays valid and SDK clients (v3, and v2
// through aws-redirect.ts) run unmodified. Started before user code loads, so no function can take the port.
import { createServer, connect, type Socket } from 'node:net';

export async function forwardEndpoint(endpointUrl: string | undefined, socketPath: string): Promise<void> {
  if (!endpointUrl) return;
  const port = Number(new URL(endpointUrl).port || 80);
  const server = createServer((client: Socket) => {
    const upstream = connect(socketPath);
    // Neither end keeps the event loop alive: that is the function's own client socket's business
    // (callbackWaitsForEmptyEventLoop must see the loop as the function left it).
    client.unref();
    upstream.unref();
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  server.unref();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

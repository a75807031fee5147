// `nimbus dev --inspect`: a Node inspector on the sandbox's own 127.0.0.1, served on a unix socket the host
// bridges to its own 127.0.0.1 (the sandbox has a network namespace of its own, so the host cannot reach the
// port). The relay runs in a worker thread: a debugger paused at a breakpoint stops the main thread's event
// loop, and with it any relay on that loop, while the worker and the inspector's own thread keep talking.
import { open, url } from 'node:inspector';
import { Worker } from 'node:worker_threads';

const RELAY = `
const { createServer, connect } = require('node:net');
const { workerData } = require('node:worker_threads');
const server = createServer((client) => {
  const up = connect(workerData.port, '127.0.0.1');
  client.pipe(up).pipe(client);
  const end = () => { client.destroy(); up.destroy(); };
  client.on('error', end); up.on('error', end); client.on('close', end); up.on('close', end);
});
server.listen(workerData.path);
`;

export function openInspector(socketPath: string): void {
  open(0, '127.0.0.1', false);
  const ws = url();
  if (!ws) throw new Error('the inspector did not open');
  const port = Number(new URL(ws).port);
  new Worker(RELAY, { eval: true, workerData: { port, path: socketPath } }).unref();
}

// The isolation ceiling: what one process hop per request costs on this machine, with nothing else. A
// node:http parent hands each request to a child process over a socket pair (fd 3) with Nimbus's own
// framing (protocol/framing.ts: a JSON line each way, the messages of one turn of the event loop in one
// write, on both ends), the child runs the hello handler and answers, the parent sends the payload as the
// body. No gateway mapping, no record, no sandbox: the floor under any design that runs the function in
// another process. HOP_CHILDREN (default 1) children, requests spread round robin.
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { encodeLine, lineDecoder } from '../dist/protocol/framing.js';

const CHILDREN = Math.max(1, Number(process.env.HOP_CHILDREN ?? 1));
const pending = new Map();
let nextId = 0;

function child() {
  const proc = spawn(process.execPath, [fileURLToPath(new URL('./hop-child.mjs', import.meta.url))], {
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
  });
  const socket = proc.stdio[3];
  socket.setEncoding('utf8');
  socket.on(
    'data',
    lineDecoder((m) => {
      const res = pending.get(m.id);
      if (!res) return;
      pending.delete(m.id);
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(m.payload),
      });
      res.end(m.payload);
    }),
  );
  let out = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const data = out;
    out = '';
    socket.write(data);
  };
  return {
    proc,
    send(msg) {
      out += encodeLine(msg);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
}

const children = Array.from({ length: CHILDREN }, child);
let turn = 0;
const server = createServer((req, res) => {
  const id = String(++nextId);
  pending.set(id, res);
  children[turn++ % CHILDREN].send({ t: 'invoke', id, event: { rawPath: req.url } });
});
const stop = () => {
  for (const c of children) c.proc.kill();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));

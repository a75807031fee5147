// The child of bench/hop-server.mjs: reads invocations from fd 3, runs the hello handler, answers on fd 3,
// with the runtime's framing and its one write per turn of the event loop.
import { Socket } from 'node:net';
import { createRequire } from 'node:module';
import { encodeLine, lineDecoder } from '../dist/protocol/framing.js';

const { handler } = createRequire(import.meta.url)('./fixtures/hello/handler.js');
const socket = new Socket({ fd: 3, readable: true, writable: true });
let out = '';
let scheduled = false;
const flush = () => {
  scheduled = false;
  const data = out;
  out = '';
  socket.write(data);
};
const send = (msg) => {
  out += encodeLine(msg);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
};
socket.setEncoding('utf8');
socket.on(
  'data',
  lineDecoder((m) => {
    handler(m.event).then((result) =>
      send({ t: 'result', id: m.id, ok: true, payload: JSON.stringify(result) }),
    );
  }),
);
socket.on('close', () => process.exit(0));
socket.on('error', () => process.exit(0));

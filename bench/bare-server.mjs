// Baseline: the same handler behind a bare node:http server, no isolation, no gateway mapping beyond JSON.
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

const { handler } = createRequire(import.meta.url)('./fixtures/hello/handler.js');
const server = createServer((req, res) => {
  handler({ rawPath: req.url }).then((result) => {
    const body = JSON.stringify(result);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));

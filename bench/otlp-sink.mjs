// An OTLP/HTTP receiver for the tracing benchmark, in its own process (autocannon blocks the bench's event
// loop): reads each export, counts its spans and answers 200. Prints its URL as one JSON line.
import { createServer } from 'node:http';

let spans = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/count') return res.end(JSON.stringify({ spans }));
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rs of body.resourceSpans ?? [])
        for (const ss of rs.scopeSpans ?? []) spans += (ss.spans ?? []).length;
    } catch {
      // A protobuf export would land here; this sink counts JSON ones.
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }));
});

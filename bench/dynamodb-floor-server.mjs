// The DynamoDB benchmark's floor: a bare node:http server that parses each request's JSON and answers with a
// fixed item (GetItem), 100 fixed items (Query) or nothing (PutItem), with the x-amz-crc32 the SDK checks.
// No store, no signature check: what the same client over the same HTTP costs when the server does nothing.
import { createServer } from 'node:http';
import { crc32 } from 'node:zlib';

const item = (sk) => ({
  pk: { S: 'q0' },
  sk: { N: String(sk) },
  name: { S: `item-q0-${sk}` },
  count: { N: String(sk * 7) },
  active: { BOOL: sk % 2 === 0 },
  payload: { S: 'x'.repeat(100) },
});
const table = {
  TableName: 'bench',
  TableStatus: 'ACTIVE',
  KeySchema: [
    { AttributeName: 'pk', KeyType: 'HASH' },
    { AttributeName: 'sk', KeyType: 'RANGE' },
  ],
};
const answers = {
  CreateTable: () => ({ TableDescription: table }),
  DescribeTable: () => ({ Table: table }),
  BatchWriteItem: () => ({ UnprocessedItems: {} }),
  PutItem: () => ({}),
  GetItem: (input) => ({ Item: item(Number(input.Key.sk.N)) }),
  Query: () => ({ Items: Array.from({ length: 100 }, (_, i) => item(i)), Count: 100, ScannedCount: 100 }),
};
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const op = String(req.headers['x-amz-target']).split('.')[1];
    const body = JSON.stringify(answers[op](JSON.parse(Buffer.concat(chunks).toString('utf8'))));
    res.writeHead(200, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': Buffer.byteLength(body),
      'x-amz-crc32': String(crc32(body)),
    });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));

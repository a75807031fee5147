// The DynamoDB benchmark's load generator: one process per target, started by bench/dynamodb.mjs, so the
// client never shares an event loop (or a JIT) with the server it measures. Every target gets the same
// client: @aws-sdk/client-dynamodb with a keep-alive agent and maxAttempts 1.
//
// argv[2] is a JSON config: { endpoint, accessKeyId, secretAccessKey, serverPid?, concurrency, seconds,
// sequentialSeconds, rawSeconds, warmupSeconds, partitions, itemsPerPartition, label }. Commands come on
// stdin (see the end of this file); progress goes to stderr, figures to stdout, one JSON line per command.
//
// Per operation (PutItem, GetItem, Query): a warm-up at `concurrency` in flight, then `seconds` at
// `concurrency` in flight (ops/s, p50, p99), then `sequentialSeconds` with one request in flight (p50, p99).
// Then the same operation without the SDK: a pool of requests the SDK signed (caught before sending),
// replayed byte for byte over node:http, so what remains is HTTP and the server: the SDK's client-side cost
// per call (endpoint resolution, middleware, signing, response checksum and parsing) is the difference.
import { request, Agent } from 'node:http';
import { readFileSync } from 'node:fs';
import {
  BatchWriteItemCommand,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';

const cfg = JSON.parse(process.argv[2]);
const TABLE = 'bench';
const PAYLOAD = 'x'.repeat(100);
const log = (msg) => process.stderr.write(`    ${cfg.label ?? ''} ${msg}\n`);

const agent = new Agent({ keepAlive: true, maxSockets: cfg.concurrency, maxFreeSockets: cfg.concurrency });
const client = new DynamoDBClient({
  endpoint: cfg.endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
  maxAttempts: 1,
  requestHandler: { httpAgent: agent },
});

const item = (pk, sk) => ({
  pk: { S: pk },
  sk: { N: String(sk) },
  name: { S: `item-${pk}-${sk}` },
  count: { N: String(sk * 7) },
  active: { BOOL: sk % 2 === 0 },
  payload: { S: PAYLOAD },
});
const rand = (n) => Math.floor(Math.random() * n);
const partition = (i) => `q${i}`;

/** CPU seconds (user + system) of a process, from /proc; undefined where there is none. */
function cpuOf(pid) {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined;
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const r3 = (v) => Math.round(v * 1000) / 1000;

/** Runs `op` with `inFlight` loops for `seconds`; ops/s, latency percentiles (ms), CPU per op (µs). */
async function measure(op, inFlight, seconds, { record = true } = {}) {
  const lat = [];
  let errors = 0;
  let firstError;
  const serverCpu0 = cpuOf(cfg.serverPid);
  const clientCpu0 = process.cpuUsage();
  const hr0 = process.hrtime.bigint();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let seq = 0;
  const loop = async () => {
    while (performance.now() < end) {
      const n = seq++;
      const s = performance.now();
      try {
        await op(n);
        lat.push(performance.now() - s);
      } catch (err) {
        errors++;
        firstError ??= `${err.name}: ${err.message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  if (!record) return undefined;
  const clientCpu = process.cpuUsage(clientCpu0);
  const serverCpu1 = cpuOf(cfg.serverPid);
  lat.sort((a, b) => a - b);
  const out = {
    inFlight,
    ops: lat.length,
    opsPerSec: Math.round(lat.length / elapsed),
    p50: r3(percentile(lat, 50)),
    p99: r3(percentile(lat, 99)),
    clientCpuUsPerOp: Math.round((clientCpu.user + clientCpu.system) / Math.max(1, lat.length)),
    errors,
    // CLOCK_MONOTONIC µs, the clock of V8's CPU profiles: lets a profile of the server be cut to this window.
    window: [Number(hr0 / 1000n), Number(process.hrtime.bigint() / 1000n)],
  };
  if (serverCpu0 !== undefined && serverCpu1 !== undefined) {
    out.serverCpuUsPerOp = Math.round(((serverCpu1 - serverCpu0) * 1e6) / Math.max(1, lat.length));
  }
  if (firstError) out.firstError = firstError;
  return out;
}

async function setUp() {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: TABLE,
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'N' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } catch (err) {
    if (err.name !== 'ResourceInUseException') throw err;
  }
  for (;;) {
    const d = await client.send(new DescribeTableCommand({ TableName: TABLE }));
    if (d.Table?.TableStatus === 'ACTIVE') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  // The partitions Query and GetItem read: `partitions` × `itemsPerPartition`, written 25 at a time.
  const batches = [];
  for (let p = 0; p < cfg.partitions; p++) {
    for (let s = 0; s < cfg.itemsPerPartition; s += 25) {
      batches.push(
        Array.from({ length: Math.min(25, cfg.itemsPerPartition - s) }, (_, i) => ({
          PutRequest: { Item: item(partition(p), s + i) },
        })),
      );
    }
  }
  const workers = Array.from({ length: 4 }, async () => {
    for (let b = batches.shift(); b; b = batches.shift()) {
      let req = { [TABLE]: b };
      while (Object.keys(req).length > 0) {
        const r = await client.send(new BatchWriteItemCommand({ RequestItems: req }));
        req = r.UnprocessedItems ?? {};
      }
    }
  });
  await Promise.all(workers);
}

/** The request of each operation; `n` counts the operations of one measurement. */
const commands = {
  // New items each time (after the first pass, for a replayed pool), spread over 1,000 partitions of their own.
  PutItem: (n) =>
    new PutItemCommand({ TableName: TABLE, Item: item(`put${n % 1000}`, process.pid * 1e6 + n) }),
  GetItem: () =>
    new GetItemCommand({
      TableName: TABLE,
      Key: { pk: { S: partition(rand(cfg.partitions)) }, sk: { N: String(rand(cfg.itemsPerPartition)) } },
    }),
  Query: (n) =>
    new QueryCommand({
      TableName: TABLE,
      KeyConditionExpression: 'pk = :p',
      ExpressionAttributeValues: { ':p': { S: partition(n % cfg.partitions) } },
      Limit: 100,
    }),
};
const checks = {
  PutItem: () => undefined,
  GetItem: (r) => {
    if (!r.Item) throw new Error('GetItem found no item');
  },
  Query: (r) => {
    if (r.Count !== cfg.itemsPerPartition) throw new Error(`Query returned ${r.Count} items`);
  },
};
/** How many distinct signed requests the no-SDK runs cycle through. */
const POOL = { PutItem: 300, GetItem: 200, Query: cfg.partitions };

/** Requests exactly as the SDK sends them (signed), caught at its innermost middleware and never sent. */
async function presign(name) {
  const captured = [];
  const stopHere = new Error('captured');
  const c = new DynamoDBClient({
    endpoint: cfg.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
    maxAttempts: 1,
  });
  c.middlewareStack.add(
    () => async (args) => {
      const r = args.request;
      captured.push({ path: r.path || '/', headers: { ...r.headers }, body: r.body });
      throw stopHere;
    },
    { step: 'deserialize', name: 'benchCapture', priority: 'low' },
  );
  for (let i = 0; i < POOL[name]; i++) {
    try {
      await c.send(commands[name](1e5 + i));
    } catch (err) {
      if (err !== stopHere) throw err;
    }
  }
  c.destroy();
  return captured;
}

const url = new URL(cfg.endpoint);
/** One signed request over node:http (the same keep-alive agent); rejects unless DynamoDB answered 200. */
function replay(signed, name) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: signed.path,
        headers: signed.headers,
        agent,
      },
      (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          if (res.statusCode !== 200) return reject(new Error(`${res.statusCode} ${body}`));
          if (name === 'GetItem' && !body.includes('"Item"'))
            return reject(new Error('GetItem found no item'));
          resolve();
        });
      },
    );
    req.on('error', reject);
    req.end(signed.body);
  });
}

const line = (m) =>
  `${m.concurrent.opsPerSec} ops/s at ${cfg.concurrency} in flight (p50 ${m.concurrent.p50} / p99 ${m.concurrent.p99} ms); one in flight p50 ${m.sequential.p50} / p99 ${m.sequential.p99} ms${m.concurrent.errors + m.sequential.errors ? `; ERRORS ${m.concurrent.errors + m.sequential.errors}: ${m.concurrent.firstError ?? m.sequential.firstError}` : ''}`;

/** One operation: warm-up, `concurrency` in flight, one in flight; then the same without the SDK. */
async function operation(name) {
  const sdkOp = async (n) => checks[name](await client.send(commands[name](n)));
  await measure(sdkOp, cfg.concurrency, cfg.warmupSeconds, { record: false });
  const sdk = {
    concurrent: await measure(sdkOp, cfg.concurrency, cfg.seconds),
    sequential: await measure(sdkOp, 1, cfg.sequentialSeconds),
  };
  log(`${name}: ${line(sdk)}`);
  if (!(cfg.rawSeconds > 0)) return { sdk };
  const pool = await presign(name);
  const rawOp = (n) => replay(pool[n % pool.length], name);
  await measure(rawOp, cfg.concurrency, 0.5, { record: false });
  const raw = {
    concurrent: await measure(rawOp, cfg.concurrency, cfg.rawSeconds),
    sequential: await measure(rawOp, 1, cfg.sequentialSeconds),
  };
  log(`${name}, the SDK's signed requests replayed over node:http: ${line(raw)}`);
  return { sdk, raw };
}

// Driven over stdin, one JSON command a line, so the parent can take the targets in turns, operation by
// operation: {"cmd":"setup"}, {"cmd":"op","name":"GetItem"}, {"cmd":"exit"}. Each answer is one JSON line.
const send = (v) => process.stdout.write(`${JSON.stringify(v)}\n`);
let buffered = '';
let queue = Promise.resolve();
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buffered += d;
  for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
    const msg = JSON.parse(buffered.slice(0, nl));
    buffered = buffered.slice(nl + 1);
    queue = queue.then(() => handle(msg)).catch((err) => send({ error: String(err?.stack ?? err) }));
  }
});

async function handle(msg) {
  if (msg.cmd === 'setup') {
    const t0 = performance.now();
    await setUp();
    const setUpSeconds = r3((performance.now() - t0) / 1000);
    log(`table and ${cfg.partitions * cfg.itemsPerPartition} items written in ${setUpSeconds} s`);
    send({ setUpSeconds });
  } else if (msg.cmd === 'op') {
    send(await operation(msg.name));
  } else if (msg.cmd === 'exit') {
    client.destroy();
    agent.destroy();
    process.exit(0);
  }
}

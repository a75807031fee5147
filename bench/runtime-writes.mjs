import { spawn } from 'node:child_process';
// How many reads the host needs for the results of invocations queued in a sandbox runtime: 8 invocations
// sent in one write to a warm runtime (K = 1, the hello handler), 30 rounds; the runtime of this build and,
// given as an argument, another build's dist/runtime/bootstrap.cjs, in turns. No sandbox: the bare runtime
// on a socket pair, as test/runtime.test.ts runs it. `node bench/runtime-writes.mjs [other bootstrap.cjs]`
import { fileURLToPath } from 'node:url';
import { lineDecoder, encodeLine } from '../dist/protocol/framing.js';
const fixtures = fileURLToPath(new URL('./fixtures/hello', import.meta.url));
const here = fileURLToPath(new URL('../dist/runtime/bootstrap.cjs', import.meta.url));
const other = process.argv[2];
async function run(bootstrap) {
  const proc = spawn(process.execPath, [bootstrap], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    cwd: '/tmp',
    env: { PATH: process.env.PATH },
  });
  const sock = proc.stdio[3];
  sock.setEncoding('utf8');
  let results = 0,
    chunks = 0,
    waiter;
  const dec = lineDecoder((m) => {
    if (m.t === 'ready' || m.t === 'result') {
      if (m.t === 'result') results++;
      waiter?.();
    }
  });
  sock.on('data', (d) => {
    if (d.includes('"result"')) chunks++;
    dec(d);
  });
  const until = (n) =>
    new Promise((r) => {
      waiter = () => {
        if (results >= n) r();
      };
      waiter();
    });
  await new Promise((r) => {
    waiter = r;
  });
  const init = {
    functionName: 'h',
    functionVersion: '1',
    handler: 'handler.handler',
    codeDir: fixtures,
    memoryMB: 128,
    timeoutSec: 3,
    region: 'us-east-1',
    invokedFunctionArn: 'arn',
    logGroupName: 'g',
    logStreamName: 's',
    env: {},
    concurrency: 1,
  };
  sock.write(encodeLine({ t: 'invoke', id: 'i0', event: {}, deadline: Date.now() + 9000, init }));
  await until(1);
  const perRound = [];
  for (let round = 0; round < 30; round++) {
    const c0 = chunks,
      r0 = results;
    let text = '';
    for (let i = 0; i < 8; i++)
      text += encodeLine({ t: 'invoke', id: `r${round}-${i}`, event: {}, deadline: Date.now() + 9000 });
    sock.write(text);
    await until(r0 + 8);
    perRound.push(chunks - c0);
  }
  proc.kill();
  perRound.sort((a, b) => a - b);
  return `reads per 8 queued results: median ${perRound[15]}, min ${perRound[0]}, max ${perRound[29]}`;
}
const targets = other
  ? [
      ['other', other],
      ['this build', here],
    ]
  : [['this build', here]];
for (let i = 0; i < 2; i++) for (const [name, b] of targets) console.log(`${name}: ${await run(b)}`);

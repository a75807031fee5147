// Gateway protection benchmark: what a JWT authorizer, a cached Lambda authorizer and a throttle cost per
// request, against the same function on an unprotected route, in one Nimbus run under autocannon -c 50.
// The JWKS is served from this process; autocannon runs in its own. Figures only, never pass/fail.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { BIN, autocannon, machine, saveResult, sleep, startJsonProcess, stop } from './lib.mjs';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);

export async function runGateway() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-gw-'));
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256' };
  const jwks = http.createServer((_q, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise((r) => jwks.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${jwks.address().port}`;
  const svc = join(work, 'svc');
  execFileSync('mkdir', ['-p', svc]);
  writeFileSync(
    join(svc, 'nimbus.yaml'),
    `service: gwbench
http:
  authorizers:
    users: { type: jwt, issuer: '${issuer}', audience: [api], jwksUrl: '${issuer}/jwks' }
    custom: { type: lambda, function: auth, resultTtl: 300 }
functions:
  hello:
    handler: handler.hello
    events:
      - http: GET /open
      - http: { route: GET /jwt, authorizer: users }
      - http: { route: GET /lambda, authorizer: custom }
      - http: { route: GET /throttled, throttle: { rate: 1000000, burst: 1000000 } }
  auth:
    handler: handler.auth
`,
  );
  writeFileSync(
    join(svc, 'handler.js'),
    "exports.hello = async () => ({ message: 'hello world' });\nexports.auth = async () => ({ isAuthorized: true });\n",
  );
  const token = await new SignJWT({ sub: 'u' })
    .setProtectedHeader({ alg: 'RS256', kid: 'k' })
    .setIssuer(issuer)
    .setAudience('api')
    .setExpirationTime('1h')
    .sign(privateKey);

  const env = { ...process.env, NIMBUS_DATA: join(work, 'data'), NIMBUS_LOG_LEVEL: 'warn' };
  const nimbus = await startJsonProcess(
    process.execPath,
    [BIN, 'up', '--port', '0', '--api-port', '0', '--json'],
    {
      env,
    },
  );
  const result = { machine: machine(), date: new Date().toISOString() };
  try {
    execFileSync(process.execPath, [BIN, 'deploy', svc], { env, stdio: 'ignore' });
    await sleep(500);
    const gw = nimbus.info.gatewayUrl;
    const headers = { authorization: `Bearer ${token}` };
    for (const [name, path, h] of [
      ['open', '/open', {}],
      ['jwt', '/jwt', headers],
      ['lambdaCached', '/lambda', headers],
      ['throttled', '/throttled', {}],
    ]) {
      // autocannon runs synchronously and blocks this process's JWKS server: the first request fetches the
      // key set while this process can still answer, and the gateway keeps it cached for the run.
      const first = await fetch(gw + path, { headers: h });
      if (first.status !== 200) throw new Error(`${path} answered ${first.status}`);
      autocannon(gw + path, { connections: CONNECTIONS, duration: 2, headers: h });
      result[name] = autocannon(gw + path, { connections: CONNECTIONS, duration: DURATION, headers: h });
      const r = result[name];
      console.log(
        `gateway ${name}: ${r.reqPerSec} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, non-2xx ${r.non2xx}`,
      );
    }
  } finally {
    await stop(nimbus.proc);
    jwks.close();
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runGateway();
  console.log(`saved ${saveResult('gateway', r)}`);
}

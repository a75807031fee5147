// Event path benchmark (issue: events). In one run, on one node, with a no-op function:
//  (a) Event invokes accepted per second (each committed before its 202), under autocannon -c 50;
//  (b) the same events executed end to end per second (from the first accepted to the queue empty);
//  (c) warm synchronous Invoke (RequestResponse) throughput of the same function, the baseline;
//  (d) accept-to-start latency: the time from a client sending an event to its handler starting, for events
//      sent at a steady rate below capacity;
//  (e) queue messages sent per second (10 per request, each request committed before its answer) and handled
//      per second by a queue trigger with batches of 10, from the first send to the queue empty.
// Figures, not pass/fail: absolute numbers drift on a shared 2-core machine; the ratios are what compare.
import { execFileSync } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, autocannon, machine, percentile, saveResult, sleep, startNimbus, stop } from './lib.mjs';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const LAG_EVENTS = Number(process.env.BENCH_LAG_EVENTS ?? 1000);
const LAG_RATE = Number(process.env.BENCH_LAG_RATE ?? 500);

export async function runEvents() {
  const work = mkdtempSync(join(tmpdir(), 'nimbus-bench-events-'));
  const env = {
    ...process.env,
    NIMBUS_DATA: join(work, 'data'),
    NIMBUS_LOG_LEVEL: 'warn',
    NIMBUS_MAX_CONCURRENCY: '200',
  };
  const nimbus = await startNimbus(env);
  const key = readFileSync(join(work, 'data', 'api-key'), 'utf8').trim();
  const api = nimbus.info.apiUrl;
  const result = { machine: machine(), date: new Date().toISOString(), store: 'sqlite' };
  try {
    execFileSync(process.execPath, [BIN, 'deploy', join(ROOT, 'bench', 'fixtures', 'events')], {
      env,
      stdio: 'ignore',
    });
    const invokeUrl = (fn) => `${api}/2015-03-31/functions/${fn}/invocations`;
    const headers = (type) => ({ authorization: `Bearer ${key}`, 'x-amz-invocation-type': type });

    // (c) first: the synchronous baseline, warmed up.
    autocannon(invokeUrl('noop'), {
      connections: CONNECTIONS,
      duration: 3,
      method: 'POST',
      headers: headers('RequestResponse'),
      body: '{}',
    });
    result.sync = autocannon(invokeUrl('noop'), {
      connections: CONNECTIONS,
      duration: DURATION,
      method: 'POST',
      headers: headers('RequestResponse'),
      body: '{}',
    });
    console.log(`sync Invoke: ${result.sync.reqPerSec} req/s, p99 ${result.sync.p99} ms`);

    // (a) accepted, then (b) drained: executed events per second over the whole run.
    const before = await okCount(api, key, 'noop');
    const t0 = performance.now();
    result.accepted = autocannon(invokeUrl('noop'), {
      connections: CONNECTIONS,
      duration: DURATION,
      method: 'POST',
      headers: headers('Event'),
      body: '{}',
    });
    console.log(
      `Event accepted: ${result.accepted.reqPerSec} req/s (committed before each 202), p99 ${result.accepted.p99} ms, non-2xx ${result.accepted.non2xx}`,
    );
    const total = result.accepted.total - result.accepted.non2xx;
    for (;;) {
      const pending = await pendingOf(api, key, 'noop');
      if (pending === 0) break;
      await sleep(100);
    }
    const seconds = (performance.now() - t0) / 1000;
    const ran = (await okCount(api, key, 'noop')) - before;
    result.executed = {
      events: ran,
      accepted: total,
      seconds: Math.round(seconds * 100) / 100,
      perSec: Math.round(ran / seconds),
    };
    result.executedToSync = Math.round((result.executed.perSec / result.sync.reqPerSec) * 1000) / 1000;
    console.log(
      `Event executed: ${ran} of ${total} in ${result.executed.seconds} s = ${result.executed.perSec}/s (${result.executedToSync}x sync)`,
    );

    // (d) accept-to-start at a steady rate.
    const lag = [];
    for (let i = 0; i < LAG_EVENTS; i++) {
      const t = Date.now();
      await fetch(invokeUrl('stamp'), {
        method: 'POST',
        headers: headers('Event'),
        body: JSON.stringify({ sentAt: t }),
      }).then((r) => r.arrayBuffer());
      const wait = 1000 / LAG_RATE - (Date.now() - t);
      if (wait > 0) await sleep(wait);
    }
    while ((await pendingOf(api, key, 'stamp')) > 0) await sleep(100);
    for (let after = 0; ;) {
      const page = await (
        await fetch(`${api}/v1/functions/stamp/logs?limit=1000&after=${after}`, {
          headers: { authorization: `Bearer ${key}` },
        })
      ).json();
      if (page.records.length === 0) break;
      for (const r of page.records) {
        const m = /LAG (\d+)/.exec(r.logs);
        if (m) lag.push(Number(m[1]));
      }
      after = page.cursor;
    }
    result.acceptToStart = {
      events: lag.length,
      rate: LAG_RATE,
      p50: percentile(lag, 50),
      p99: percentile(lag, 99),
    };
    console.log(
      `accept to start at ${LAG_RATE}/s: p50 ${result.acceptToStart.p50} ms, p99 ${result.acceptToStart.p99} ms (${lag.length} events)`,
    );

    // (e) a queue and its trigger.
    const batch = JSON.stringify({ messages: Array.from({ length: 10 }, (_, i) => ({ body: `m${i}` })) });
    const q0 = performance.now();
    const sent = autocannon(`${api}/v1/queues/work/messages`, {
      connections: CONNECTIONS,
      duration: DURATION,
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: batch,
    });
    const messages = (sent.total - sent.non2xx) * 10;
    for (;;) {
      const q = await getJson(`${api}/v1/queues/work`, key);
      if (q.visible + q.inFlight + q.delayed === 0) break;
      await sleep(100);
    }
    const qSeconds = (performance.now() - q0) / 1000;
    result.queue = {
      sentPerSec: sent.reqPerSec * 10,
      sendP99: sent.p99,
      messages,
      seconds: Math.round(qSeconds * 100) / 100,
      handledPerSec: Math.round(messages / qSeconds),
    };
    console.log(
      `queue: ${result.queue.sentPerSec} messages/s sent (10 per request, p99 ${sent.p99} ms), ${messages} handled in ${result.queue.seconds} s = ${result.queue.handledPerSec}/s by a trigger with batches of 10`,
    );
  } finally {
    await stop(nimbus.proc);
    rmSync(work, { recursive: true, force: true });
  }
  return result;
}

async function functionView(api, key, fn) {
  return getJson(`${api}/v1/functions/${fn}`, key);
}

/** A GET on a connection of its own: autocannon runs block this process, and a pooled keep-alive connection
 *  the server closed meanwhile would be reused before its close is seen ("other side closed"). */
function getJson(url, key) {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { agent: false, headers: { authorization: `Bearer ${key}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
  });
}

async function pendingOf(api, key, fn) {
  return (await functionView(api, key, fn)).events.pending;
}

async function okCount(api, key, fn) {
  const v = await functionView(api, key, fn);
  return v.scaling.cold + v.scaling.warm;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runEvents();
  console.log(`saved ${saveResult('events', r)}`);
}

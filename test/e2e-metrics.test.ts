// Metrics and health end to end, on each backend: a known sequence of invocations (through the gateway, the
// Lambda API and an async event that dead-letters), then /metrics scraped with the operator's key and parsed as
// Prometheus text, its counters and histogram counts checked exactly. /metrics refuses a missing key (401) and
// any key but the operator's (403); /healthz and /readyz answer on both listeners without a key, a user's own
// GET /healthz route wins on the gateway, and on PostgreSQL /readyz turns 503 when the database goes away.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import parsePrometheusTextFormat, { type ParsedFamily as Family } from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NimbusClient } from '../src/client/index.js';
import { BACKENDS, eventually, FIXTURES, startTestNimbus, type TestNimbus } from './helpers.js';
import { TEST_POSTGRES_URL, withClient } from './support/postgres.js';

/**
 * The exposition parsed twice: as it is, and with histograms' TYPE lines left out, which makes their _bucket,
 * _sum and _count lines plain samples. parse-prometheus-text-format folds a histogram with labels into one
 * unlabelled entry, so labelled histograms are read from the second parse.
 */
function parse(text: string): { families: Family[]; samples: Family[] } {
  return {
    families: parsePrometheusTextFormat(text),
    samples: parsePrometheusTextFormat(text.replace(/^# TYPE \S+ histogram$/gm, '')),
  };
}

/** A family's series as "label=value,..." (sorted; `le` left out) to its value. */
function series(families: Family[], name: string, only?: (l: Record<string, string>) => boolean) {
  const out: Record<string, number> = {};
  // Samples of one name may come as several families (histogram lines interleave by series).
  for (const m of families.filter((x) => x.name === name).flatMap((x) => x.metrics)) {
    const labels = m.labels ?? {};
    if (only && !only(labels)) continue;
    const key = Object.entries(labels)
      .filter(([k]) => k !== 'le')
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    out[key] = Number(m.value);
  }
  return out;
}

/** A histogram's observation counts by series; its +Inf buckets must say the same. */
function histogramCounts(samples: Family[], name: string, only?: (l: Record<string, string>) => boolean) {
  const counts = series(samples, `${name}_count`, only);
  const inf = series(samples, `${name}_bucket`, (l) => l['le'] === '+Inf' && (!only || only(l)));
  expect(inf).toEqual(counts);
  return counts;
}

const inFixture = (l: Record<string, string>) =>
  ['hello', 'boom', 'slow', 'closed', 'limited', 'doomed', 'mine'].includes(l['function'] ?? '');

describe.each(BACKENDS)('metrics and health on %s', (backend) => {
  let n: TestNimbus;
  const scrape = (key?: string) =>
    fetch(`${n.apiUrl}/metrics`, key ? { headers: { authorization: `Bearer ${key}` } } : {});
  const get = async (url: string) => {
    const res = await fetch(url);
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
  };

  beforeAll(async () => {
    n = await startTestNimbus({ backend });
    await n.deploy(join(FIXTURES, 'metrics'));
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  it('counts a known sequence of invocations exactly, by function, trigger and status', async () => {
    const gw = (path: string) => fetch(n.gatewayUrl + path).then(async (r) => [r.status, await r.text()]);
    for (let i = 0; i < 5; i++) expect(await gw('/hello')).toEqual([200, 'hello']);
    for (let i = 0; i < 3; i++) expect((await n.client.invoke('hello', '{}')).statusCode).toBe(200);
    expect((await gw('/boom'))[0]).toBe(502);
    expect((await gw('/slow'))[0]).toBe(504);
    expect((await gw('/closed'))[0]).toBe(429);
    expect((await gw('/limited'))[0]).toBe(429);
    expect((await gw('/no/such/route'))[0]).toBe(404);
    expect(await gw('/healthz')).toEqual([200, '{"mine":true}']);
    const ev = await n.client.invoke('doomed', '{"n":1}', { async: true });
    expect(ev.statusCode).toBe(202);
    await eventually(async () => (await n.client.events({ function: 'doomed', state: 'dead' })).length === 1);

    // The dead-lettering is counted once the store has it; the scrape is polled only for that.
    const { families, samples } = await eventually(async () => {
      const res = await scrape(n.apiKey);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const p = parse(await res.text());
      return Object.keys(series(p.families, 'nimbus_dead_letters_total', inFixture)).length > 0 && p;
    });
    const d = 'project=default';
    expect(series(families, 'nimbus_invocations_total', inFixture)).toEqual({
      [`function=hello,${d},status=ok,trigger=http`]: 5,
      [`function=hello,${d},status=ok,trigger=invoke`]: 3,
      [`function=boom,${d},status=error,trigger=http`]: 1,
      [`function=slow,${d},status=timeout,trigger=http`]: 1,
      [`function=closed,${d},status=throttled,trigger=http`]: 1,
      [`function=mine,${d},status=ok,trigger=http`]: 1,
      [`function=doomed,${d},status=error,trigger=event`]: 1,
    });
    expect(series(families, 'nimbus_errors_total', inFixture)).toEqual({
      [`function=boom,${d},trigger=http`]: 1,
      [`function=slow,${d},trigger=http`]: 1,
      [`function=doomed,${d},trigger=event`]: 1,
    });
    expect(series(families, 'nimbus_throttles_total', inFixture)).toEqual({
      [`function=closed,${d},trigger=http`]: 1,
    });
    // Every invocation that ran is in the duration histogram, once: throttled ones never ran (closed: 0).
    const ran = {
      [`function=hello,${d}`]: 8,
      [`function=boom,${d}`]: 1,
      [`function=slow,${d}`]: 1,
      [`function=mine,${d}`]: 1,
      [`function=doomed,${d}`]: 1,
      [`function=closed,${d}`]: 0,
    };
    expect(histogramCounts(samples, 'nimbus_invocation_duration_seconds', inFixture)).toEqual(ran);
    const cold = series(families, 'nimbus_cold_starts_total', inFixture);
    const warm = series(families, 'nimbus_warm_starts_total', inFixture);
    for (const [key, total] of Object.entries(ran)) expect((cold[key] ?? 0) + (warm[key] ?? 0)).toBe(total);
    // hello ran one after another on one instance: one cold start, whose init is measured.
    expect(cold[`function=hello,${d}`]).toBe(1);
    expect(histogramCounts(samples, 'nimbus_init_duration_seconds', inFixture)[`function=hello,${d}`]).toBe(
      1,
    );

    // Gateway series carry the project whose routes were looked in, as every function series does.
    expect(series(families, 'nimbus_gateway_requests_total')).toEqual({
      [`${d},route=GET /hello,status=200`]: 5,
      [`${d},route=GET /boom,status=502`]: 1,
      [`${d},route=GET /slow,status=504`]: 1,
      [`${d},route=GET /closed,status=429`]: 1,
      [`${d},route=GET /limited,status=429`]: 1,
      [`${d},route=GET /healthz,status=200`]: 1,
      [`${d},route=unmatched,status=404`]: 1,
    });
    expect(series(families, 'nimbus_gateway_throttles_total')).toEqual({ [`${d},route=GET /limited`]: 1 });
    expect(series(families, 'nimbus_dead_letters_total', inFixture)).toEqual({
      [`function=doomed,${d},reason=RetriesExhausted`]: 1,
    });
    expect(histogramCounts(samples, 'nimbus_async_event_age_seconds', inFixture)).toEqual({
      [`function=doomed,${d}`]: 1,
    });
    expect(series(families, 'nimbus_async_events', inFixture)).toEqual({
      [`function=doomed,${d},state=dead`]: 1,
      [`function=doomed,${d},state=in_flight`]: 0,
      [`function=doomed,${d},state=pending`]: 0,
    });
    // Nothing is running now; hello keeps its one warm instance.
    expect(series(families, 'nimbus_concurrent_executions', (l) => l['function'] === 'hello')).toEqual({
      [`function=hello,${d}`]: 0,
    });
    expect(series(families, 'nimbus_instances', (l) => l['function'] === 'hello')).toEqual({
      [`function=hello,${d},state=busy`]: 0,
      [`function=hello,${d},state=idle`]: 1,
      [`function=hello,${d},state=starting`]: 0,
    });
    const cells = series(families, 'nimbus_stem_cells');
    expect(Object.keys(cells)).toContain('memory_mb=128,network=outbound,state=ready,tmp_mb=512');
    // The invocation log's batch writes were timed, on this backend.
    const writes = histogramCounts(
      samples,
      'nimbus_store_duration_seconds',
      (l) => l['operation'] === 'invocations.write',
    );
    expect(writes[`backend=${backend},operation=invocations.write`]).toBeGreaterThan(0);
    const typeOf = (name: string) => families.find((f) => f.name === name)?.type;
    expect(typeOf('nimbus_invocations_total')).toBe('COUNTER');
    expect(typeOf('nimbus_invocation_duration_seconds')).toBe('HISTOGRAM');
    expect(typeOf('nimbus_instances')).toBe('GAUGE');
    // Process metrics come with the prefix.
    expect(families.some((f) => f.name === 'nimbus_process_resident_memory_bytes')).toBe(true);
  });

  it('refuses /metrics without a key (401) and to every key but the operator (403), in JSON', async () => {
    const none = await scrape();
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { code: 'Unauthorized' } });
    const wrong = await scrape('not-a-key');
    expect(wrong.status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: { code: 'Unauthorized' } });

    const other = await n.client.createProject(`team-${randomBytes(3).toString('hex')}`);
    const res = await scrape(other.key.key);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('AccessDenied');
    expect(JSON.stringify(body)).not.toContain('nimbus_');
    // A key of the default project that is not its admin is refused too: the exposition spans every project.
    const reader = await n.client.createKey('read');
    expect((await scrape(reader.key)).status).toBe(403);
    // And the other project's admin cannot read it through the operator's header either.
    const viaHeader = await fetch(`${n.apiUrl}/metrics`, {
      headers: { authorization: `Bearer ${other.key.key}`, 'x-nimbus-project': 'default' },
    });
    expect(viaHeader.status).toBe(403);
    // The other project's key still works where it should.
    expect((await new NimbusClient({ apiUrl: n.apiUrl, apiKey: other.key.key }).list()).functions).toEqual(
      [],
    );
  });

  it('answers /healthz and /readyz on both listeners without a key, saying nothing but a status', async () => {
    for (const base of [n.apiUrl, n.gatewayUrl]) {
      const ready = await get(`${base}/readyz`);
      expect(ready).toEqual({ status: 200, type: 'application/json', body: '{"status":"ok"}' });
    }
    expect(await get(`${n.apiUrl}/healthz`)).toEqual({
      status: 200,
      type: 'application/json',
      body: '{"status":"ok"}',
    });
    // On the gateway the user's GET /healthz route wins; with no route there, the gateway answers.
    expect((await get(`${n.gatewayUrl}/healthz`)).body).toBe('{"mine":true}');
    expect((await get(`${n.gatewayUrl}/readyz?verbose=1`)).body).toBe('{"status":"ok"}');
    // Other methods are not health checks: the control listener wants a key, the gateway has no route.
    expect((await fetch(`${n.apiUrl}/readyz`, { method: 'POST' })).status).toBe(401);
    expect((await fetch(`${n.gatewayUrl}/readyz`, { method: 'POST' })).status).toBe(404);
  });
});

describe.skipIf(!BACKENDS.includes('postgresql'))('readiness when the database goes away', () => {
  const db = `nimbus_t_ready_${randomBytes(4).toString('hex')}`;
  let n: TestNimbus | undefined;

  afterAll(async () => {
    await n?.cleanup().catch(() => undefined);
    await withClient((c) => c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`));
  });

  it('turns /readyz to 503 with a reason on both listeners, while /healthz stays 200', async () => {
    await withClient((c) => c.query(`CREATE DATABASE ${db}`));
    const url = new URL(TEST_POSTGRES_URL);
    url.pathname = `/${db}`;
    n = await startTestNimbus({ backend: 'postgresql', storeUrl: url.toString() });
    for (const base of [n.apiUrl, n.gatewayUrl]) expect((await fetch(`${base}/readyz`)).status).toBe(200);

    // The database is dropped under the running node: its connections are cut and cannot come back.
    await withClient((c) => c.query(`DROP DATABASE ${db} WITH (FORCE)`));
    for (const base of [n.apiUrl, n.gatewayUrl]) {
      const res = await fetch(`${base}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'unavailable', reason: 'store unreachable' });
      const live = await fetch(`${base}/healthz`);
      expect([live.status, await live.json()]).toEqual([200, { status: 'ok' }]);
    }
  });
});

describe('with NIMBUS_METRICS=off', () => {
  let n: TestNimbus;
  beforeAll(async () => {
    n = await startTestNimbus({ metrics: false });
    await n.deploy(join(FIXTURES, 'metrics'));
  });
  afterAll(async () => {
    await n?.cleanup();
  });

  it('answers /metrics 404 MetricsOff to the operator and 401 without a key, and health still answers', async () => {
    expect((await fetch(`${n.gatewayUrl}/hello`)).status).toBe(200);
    const res = await fetch(`${n.apiUrl}/metrics`, { headers: { authorization: `Bearer ${n.apiKey}` } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'MetricsOff' } });
    expect((await fetch(`${n.apiUrl}/metrics`)).status).toBe(401);
    for (const base of [n.apiUrl, n.gatewayUrl])
      expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ok' });
  });
});

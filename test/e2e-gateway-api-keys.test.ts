// API keys with usage plans at the gateway, on each backend, in a project of its own (team-a, on its host):
// keys issued and revoked with `nimbus apikey`, refused as API Gateway refuses them (403 Forbidden), throttled
// per key (429 with Retry-After) and held to a daily quota (429 Limit Exceeded) that the next day lifts, the
// test moving the server's clock instead of waiting. Keys are stored hashed and a project's keys are its own.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/clock/clock.js';
import { BACKENDS, FIXTURES, runNimbus, secretOf, startTestNimbus, type TestNimbus } from './helpers.js';
import { gatewayRequest } from './support/gateway.js';
import { withClient } from './support/postgres.js';

describe.each(BACKENDS)('gateway API keys on %s', (backend) => {
  // Mid-morning UTC: a day is left before the quota resets.
  const clock = new ManualClock(Date.UTC(2026, 2, 3, 9, 0, 0));
  let n: TestNimbus;
  let aKey: string;
  let host: string;
  const dirs: string[] = [];

  const as = (key: string, args: string[]) =>
    runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: key }, args);
  const get = (path: string, apiKey?: string, on = host) =>
    gatewayRequest(n.gatewayUrl, on, path, apiKey === undefined ? {} : { 'x-api-key': apiKey });
  /** `nimbus apikey create --json` in team-a: the key and its id. */
  const issue = async (plan: string, name?: string): Promise<{ key: string; id: string }> => {
    const r = await as(aKey, [
      'apikey',
      'create',
      '--plan',
      plan,
      ...(name ? ['--name', name] : []),
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as { key: string; id: string };
  };

  beforeAll(async () => {
    n = await startTestNimbus({ backend, clock });
    aKey = (await n.client.createProject('team-a')).key.key;
    host = `team-a.localhost:${new URL(n.gatewayUrl).port}`;
    const deployed = await as(aKey, ['deploy', join(FIXTURES, 'metered')]);
    expect(deployed.code).toBe(0);
  });
  /** The Nimbus before the restart test, whose data dir and schema the second one took over. */
  let first: TestNimbus | undefined;
  afterAll(async () => {
    if (first) {
      await n?.stop();
      await first.cleanup().catch(() => undefined);
      rmSync(first.dataDir, { recursive: true, force: true });
    } else {
      await n?.cleanup();
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('issues a key once with `nimbus apikey create`, in text and JSON', async () => {
    const r = await as(aKey, ['apikey', 'create', '--plan', 'free', '--name', 'partner-a']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^API key {2}nmg_NIMG[A-Z2-7]{16}_[A-Za-z0-9_-]{43}$/m);
    expect(r.stdout).toMatch(/^Key id {3}NIMG[A-Z2-7]{16}$/m);
    expect(r.stdout).toContain('Plan     free (3 requests per DAY)');
    expect(r.stdout).toMatch(/will not be shown again/);
    const j = await issue('open');
    expect(j).toMatchObject({ plan: 'open', name: 'open', quota: null, planDeclared: true });
    expect(j.key.split('_')[1]).toBe(j.id);
  });

  it('refuses a request without a live key of the project with 403 Forbidden, and passes a valid one', async () => {
    const { key, id } = await issue('open');
    for (const sent of [
      undefined,
      '',
      'not-a-key',
      key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'),
      `nmg_NIMGAAAAAAAAAAAAAAAA_${secretOf(key)}`,
    ]) {
      const r = await get('/metered', sent);
      expect(r.status).toBe(403);
      expect(r.body).toMatchObject({ message: 'Forbidden' });
    }
    const ok = await get('/metered-v1', key);
    expect(ok.status).toBe(200);
    // Format 1.0 carries the key and its id, as API Gateway's REST APIs do.
    expect(ok.body.identity).toMatchObject({ apiKey: key, apiKeyId: id });
    expect((await get('/metered', key)).status).toBe(200);
    // Routes without apiKeyRequired need none.
    expect((await get('/public')).status).toBe(200);
  });

  it("refuses a key on another project's host", async () => {
    const { key } = await issue('open');
    // The same routes deployed in default: team-a's key is not default's.
    await n.deploy(join(FIXTURES, 'metered'));
    expect((await get('/metered', key, `127.0.0.1:${new URL(n.gatewayUrl).port}`)).status).toBe(403);
    expect((await get('/metered', key)).status).toBe(200);
  });

  it('refuses a revoked key from the next request on', async () => {
    const { key, id } = await issue('open');
    expect((await get('/metered', key)).status).toBe(200);
    const rm = await as(aKey, ['apikey', 'rm', id]);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toContain(`Revoked ${id}`);
    const r = await get('/metered', key);
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ message: 'Forbidden' });
    const again = await as(aKey, ['apikey', 'rm', id]);
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/not found/);
  });

  it("throttles per key: 429 Too Many Requests with Retry-After past the plan's burst", async () => {
    const a = await issue('slow');
    const b = await issue('slow');
    expect((await get('/metered', a.key)).status).toBe(200);
    const r = await get('/metered', a.key);
    expect(r.status).toBe(429);
    expect(r.body).toMatchObject({ message: 'Too Many Requests' });
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Another key of the plan has its own bucket.
    expect((await get('/metered', b.key)).status).toBe(200);
  });

  it('holds a key to its daily quota (429 Limit Exceeded), counted in `nimbus apikey ls`, and lifts it the next day', async () => {
    const { key, id } = await issue('free', 'quota-day');
    const other = await issue('free');
    for (let i = 0; i < 3; i++) expect((await get('/metered', key)).status).toBe(200);
    const over = await get('/metered', key);
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ message: 'Limit Exceeded' });
    // 15 hours to midnight UTC.
    expect(Number(over.headers['retry-after'])).toBe(15 * 3600);
    expect((await get('/metered', key)).status).toBe(429);
    // The quota is the key's, not the plan's.
    expect((await get('/metered', other.key)).status).toBe(200);

    const ls = await as(aKey, ['apikey', 'ls']);
    expect(ls.code).toBe(0);
    const line = ls.stdout.split('\n').find((l) => l.startsWith(id))!;
    expect(line).toMatch(/quota-day\s+free\s+1000\/s, burst 1000\s+3 of 3 this DAY/);
    const json = JSON.parse((await as(aKey, ['apikey', 'ls', '--json'])).stdout) as {
      apiKeys: { id: string; quota: { used: number; limit: number } | null }[];
    };
    expect(json.apiKeys.find((k) => k.id === id)!.quota).toMatchObject({ used: 3, limit: 3, period: 'DAY' });
    expect(JSON.stringify(json)).not.toContain(secretOf(key));

    clock.advance(15 * 3600 * 1000);
    expect((await get('/metered', key)).status).toBe(200);
    const next = await as(aKey, ['apikey', 'ls', '--json']);
    const after = (JSON.parse(next.stdout) as typeof json).apiKeys.find((k) => k.id === id)!;
    expect(after.quota).toMatchObject({ used: 1, limit: 3 });
  });

  it('keeps the counts across a restart (the store holds them)', async () => {
    const { key, id } = await issue('free', 'restart');
    for (let i = 0; i < 2; i++) expect((await get('/metered', key)).status).toBe(200);
    // Stopped, not cleaned up: the same data dir and schema serve the next start, and go in afterAll.
    await n.stop();
    first = n;
    n = await startTestNimbus({
      backend,
      clock,
      dataDir: n.dataDir,
      ...(backend === 'postgresql' ? { storeUrl: n.store.slice('postgresql '.length) } : {}),
    });
    host = `team-a.localhost:${new URL(n.gatewayUrl).port}`;
    expect((await get('/metered', key)).status).toBe(200);
    expect((await get('/metered', key)).status).toBe(429);
    const ls = JSON.parse((await as(aKey, ['apikey', 'ls', '--json'])).stdout) as {
      apiKeys: { id: string; quota: { used: number } }[];
    };
    expect(ls.apiKeys.find((k) => k.id === id)!.quota.used).toBe(3);
  });

  it('stores keys hashed: no key text anywhere in the store', async () => {
    const { key, id } = await issue('open');
    let stored: string;
    if (backend === 'sqlite') {
      await n.client.gatewayKeys();
      stored = readFileSync(join(n.dataDir, 'nimbus.db')).toString('latin1');
      try {
        stored += readFileSync(join(n.dataDir, 'nimbus.db-wal')).toString('latin1');
      } catch {
        // no WAL file
      }
    } else {
      const schema = /schema=(\w+)/.exec(n.store)![1]!;
      stored = await withClient(async (c) => {
        const r = await c.query(`SELECT t::text AS row FROM ${schema}.gateway_keys t`);
        return r.rows.map((x: { row: string }) => x.row).join('\n');
      });
    }
    expect(stored).toContain(id);
    expect(stored).not.toContain(secretOf(key));
  });

  it('refuses bad input on the CLI in one line, with the exit code', async () => {
    const noPlan = await as(aKey, ['apikey', 'create']);
    expect(noPlan.code).toBe(2);
    expect(noPlan.stderr.trim().split('\n')).toHaveLength(1);
    expect(noPlan.stderr).toMatch(/--plan/);
    const unknown = await as(aKey, ['apikey', 'create', '--plan', 'gold']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toMatch(/usage plan "gold" is not declared.*free, open, slow/);
    const bad = await as(aKey, ['apikey', 'frobnicate']);
    expect(bad.code).toBe(2);
    const noId = await as(aKey, ['apikey', 'rm']);
    expect(noId.code).toBe(2);
    // The HTTP face of the same refusal: a 400 with a JSON body.
    const res = await fetch(`${n.apiUrl}/v1/api-keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${aKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ plan: 'free', extra: 1 }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'BadRequest' } });
  });

  it("keeps a project's API keys from every other project's keys, and from keys without the role", async () => {
    const { key, id } = await issue('open', 'mine');
    // default's admin key sees only default's keys and cannot revoke team-a's.
    const theirs = JSON.parse((await as(n.apiKey, ['apikey', 'ls', '--json'])).stdout) as {
      apiKeys: { id: string }[];
    };
    expect(theirs.apiKeys.map((k) => k.id)).not.toContain(id);
    const rm = await as(n.apiKey, ['apikey', 'rm', id]);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toMatch(/not found/);
    const del = await fetch(`${n.apiUrl}/v1/api-keys/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${n.apiKey}` },
    });
    expect(del.status).toBe(404);
    expect((await get('/metered', key)).status).toBe(200);
    // A read or invoke key of team-a may do none of it.
    const reader = await new (await import('../src/client/index.js')).NimbusClient({
      apiUrl: n.apiUrl,
      apiKey: aKey,
    }).createKey('invoke');
    for (const args of [
      ['apikey', 'ls'],
      ['apikey', 'create', '--plan', 'open'],
      ['apikey', 'rm', id],
    ]) {
      const r = await as(reader.key, args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/takes role deploy/);
    }
    expect((await get('/metered', key)).status).toBe(200);
  });

  it('audits issuing and revoking keys in the project', async () => {
    const r = await as(aKey, ['audit', '--json']);
    const entries = (JSON.parse(r.stdout) as { entries: { action: string; project: string }[] }).entries;
    expect(entries.map((e) => e.action)).toEqual(expect.arrayContaining(['apikey.create', 'apikey.revoke']));
    expect(new Set(entries.map((e) => e.project))).toEqual(new Set(['team-a']));
  });

  it('refuses a deploy whose usage plan another service of the project declares with other limits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nimbus-metered2-'));
    dirs.push(dir);
    cpSync(join(FIXTURES, 'metered'), dir, { recursive: true });
    const yaml = readFileSync(join(dir, 'nimbus.yaml'), 'utf8')
      .replace('service: metered', 'service: metered-two')
      .replace('limit: 3', 'limit: 5')
      .replace('hello:', 'hello-two:')
      .replaceAll('/metered', '/two');
    writeFileSync(join(dir, 'nimbus.yaml'), yaml);
    const r = await as(aKey, ['deploy', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /http\.usagePlans\.free: usage plan "free" is declared with other limits by service "metered"/,
    );
    // In another project the name is free to mean something else.
    const cKey = (await n.client.createProject('team-c')).key.key;
    expect((await as(cKey, ['deploy', dir])).code).toBe(0);
  });
});

// Two nodes on one PostgreSQL schema: a key issued on one works on the other, and the quota holds for both
// together, each counting locally from the blocks it reserves.
describe.runIf(BACKENDS.includes('postgresql'))('gateway API keys on two nodes sharing PostgreSQL', () => {
  const clock = new ManualClock(Date.UTC(2026, 2, 3, 9, 0, 0));
  let a: TestNimbus;
  let b: TestNimbus | undefined;

  beforeAll(async () => {
    a = await startTestNimbus({ backend: 'postgresql', clock });
    b = await startTestNimbus({
      backend: 'postgresql',
      clock,
      storeUrl: a.store.slice('postgresql '.length),
    });
  });
  afterAll(async () => {
    await b?.cleanup();
    await a?.cleanup();
  });

  it('never admits more than the quota across both nodes', async () => {
    const key = (await a.client.createProject('team-a')).key.key;
    const env = { NIMBUS_API_KEY: key };
    expect(
      (await runNimbus({ ...env, NIMBUS_API_URL: a.apiUrl }, ['deploy', join(FIXTURES, 'metered')])).code,
    ).toBe(0);
    // The second node takes in the deploy (the same archive: nothing changes but its registry).
    expect(
      (await runNimbus({ ...env, NIMBUS_API_URL: b!.apiUrl }, ['deploy', join(FIXTURES, 'metered')])).code,
    ).toBe(0);
    const created = await runNimbus({ ...env, NIMBUS_API_URL: a.apiUrl }, [
      'apikey',
      'create',
      '--plan',
      'free',
      '--json',
    ]);
    const { key: apiKey, id } = JSON.parse(created.stdout) as { key: string; id: string };
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const node = i % 2 === 0 ? a : b!;
      const host = `team-a.localhost:${new URL(node.gatewayUrl).port}`;
      statuses.push(
        (await gatewayRequest(node.gatewayUrl, host, '/metered', { 'x-api-key': apiKey })).status,
      );
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
    // Both nodes settle on a clean stop; what the store holds is then exact.
    await b!.stop();
    const ls = await runNimbus({ ...env, NIMBUS_API_URL: a.apiUrl }, ['apikey', 'ls', '--json']);
    const k = (
      JSON.parse(ls.stdout) as { apiKeys: { id: string; quota: { used: number; reserved: number } }[] }
    ).apiKeys.find((x) => x.id === id)!;
    expect(k.quota).toMatchObject({ used: 3, reserved: 0 });
  });
});

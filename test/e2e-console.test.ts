// The web console in a real browser: headless Chromium (Debian's chromium package) driven by playwright-core
// against a real Nimbus. Sign-in, a live invocation arriving without a reload, an invocation and its trace,
// a dead letter replayed, sign-out; and the refusals: a wrong key, a change without the CSRF token, a key
// the page's scripts could read, a revoked key's session, a flood of sign-ins. Screenshots of the main pages
// go to docs/console/ with NIMBUS_CONSOLE_SCREENSHOTS=1 (to a temporary folder otherwise).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, eventually, startTestNimbus, type TestNimbus } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const CLIENT_TRACEPARENT = `00-${'4bf92f3577b34da6a3ce929d0e0e4736'}-${'00f067aa0ba902b7'}-01`;

// page.evaluate callbacks run in the browser: its globals, as far as these tests use them.
declare const document: any, window: any, localStorage: any, sessionStorage: any, indexedDB: any;
declare function getComputedStyle(el: unknown): { outlineStyle: string };

function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') {
    throw new Error(`${CHROMIUM} is missing and CI must run the browser tests: apt-get install chromium`);
  }
  console.warn(`console browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium)`);
  return false;
}

const SHOTS =
  process.env.NIMBUS_CONSOLE_SCREENSHOTS === '1'
    ? join(import.meta.dirname, '..', 'docs', 'console')
    : mkdtempSync(join(tmpdir(), 'nimbus-console-shots-'));

describe.runIf(chromiumAvailable())('web console in Chromium', () => {
  let n: TestNimbus;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** The hello invocation made while the function page was open. */
  let liveRequestId = '';
  let deadEventId = '';

  const consoleUrl = () => `${n.apiUrl}/console/`;
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${n.apiUrl}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${n.apiKey}`, ...init.headers },
    });
    return { status: res.status, body: (await res.json()) as any, headers: res.headers };
  };
  const signInWith = async (p: Page, key: string) => {
    await p.goto(consoleUrl());
    await p.fill('#key', key);
    await p.click('button[type=submit]');
  };

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    n = await startTestNimbus();
    await n.deploy(join(FIXTURES, 'console'));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await n?.cleanup();
    if (process.env.NIMBUS_CONSOLE_SCREENSHOTS !== '1') rmSync(SHOTS, { recursive: true, force: true });
  });

  it('serves the console with a strict CSP, no framing, and long caching for hashed assets only', async () => {
    const res = await fetch(consoleUrl());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const html = await res.text();
    // Every script is a file: nothing inline for the CSP to have to allow.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const js = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const asset = await fetch(`${n.apiUrl}${js}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const missing = await fetch(`${n.apiUrl}/console/assets/nothing.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'NotFound' } });
    expect((await fetch(`${n.apiUrl}/console`, { redirect: 'manual' })).headers.get('location')).toBe(
      '/console/',
    );
  });

  it('refuses a wrong key with a message, and gives it no session', async () => {
    await signInWith(page, 'nmb_NIMKAAAAAAAAAAAAAAAA_not-the-key-at-all-not-the-key-at-all-xyz1');
    await page.getByRole('alert').filter({ hasText: 'wrong, revoked or rotated' }).waitFor();
    expect(await context.cookies()).toEqual([]);
  });

  it('signs in, and keeps the key nowhere the page can read it', async () => {
    await signInWith(page, n.apiKey);
    await page.getByRole('navigation', { name: 'Pages' }).waitFor();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const cookies = await context.cookies();
    expect(cookies).toHaveLength(1);
    expect(cookies[0]).toMatchObject({
      name: 'nimbus_session',
      httpOnly: true,
      sameSite: 'Strict',
      path: '/',
    });
    expect(cookies[0]!.value).not.toContain(n.apiKey);
    const stored = await page.evaluate(async () => {
      const dump = (s: any) => Object.keys(s).map((k) => `${k}=${s.getItem(k)}`);
      return {
        cookie: document.cookie,
        local: dump(localStorage),
        session: dump(sessionStorage),
        idb: (await indexedDB.databases()).map((d: { name: string }) => d.name),
        input: document.querySelector('#key')?.value ?? null,
      };
    });
    // HttpOnly: the session cookie is not in document.cookie either.
    expect(stored).toEqual({ cookie: '', local: [], session: [], idb: [], input: null });
  });

  it('shows a deployed function, and its invocation arrives without a reload', async () => {
    await page.click('nav >> text=Functions');
    await page.locator('tr[data-function="hello"]').waitFor();
    await page.locator('tr[data-function="broken"]').waitFor();
    await page.click('tr[data-function="hello"] a');
    await page.getByRole('heading', { name: 'hello' }).waitFor();
    await page.evaluate(() => (window.__stillTheSamePage = true));
    // A sampled traceparent from the client: Nimbus follows the client's sampling decision (parent-based), so
    // this request is traced whatever the default ratio, and its trace can be opened below.
    const res = await fetch(`${n.gatewayUrl}/hello`, { headers: { traceparent: CLIENT_TRACEPARENT } });
    expect(await res.text()).toBe('hello');
    liveRequestId = res.headers.get('x-nimbus-request-id')!;
    await page.locator(`tr[data-request-id="${liveRequestId}"]`).waitFor({ timeout: 20_000 });
    await page.getByLabel('Live logs').filter({ hasText: 'hello from /hello' }).waitFor({ timeout: 20_000 });
    // The function's own figures follow too: its invocation count and its one cold start.
    await page.locator('.tile', { hasText: 'Invocations 1h' }).filter({ hasText: /1$/ }).waitFor();
    await page.locator('.tile', { hasText: 'Cold / warm' }).filter({ hasText: '1 / 0' }).waitFor();
    expect(await page.evaluate(() => window.__stillTheSamePage)).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'function.png'), fullPage: true });
  });

  it('opens the invocation: its result, logs and cost', async () => {
    await page.click(`tr[data-request-id="${liveRequestId}"] a.mono`);
    await page.getByRole('heading', { name: liveRequestId }).waitFor();
    expect(await page.locator('.card .status').first().textContent()).toBe('ok');
    await page.locator('pre.logs', { hasText: 'hello from /hello' }).waitFor();
    await page.getByText('picodollars').waitFor();
    // Without a trace store (or before the trace is written) the page says so rather than failing.
    await page.locator('h2', { hasText: 'Trace' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'invocation.png'), fullPage: true });
  });

  // The trace waterfall end to end: the invocation's spans from the span store, drawn on its page.
  it('opens the invocation’s trace as a waterfall', async () => {
    // Spans are stored in batches after the request ends: wait for the store to hold them.
    const t = await eventually(async () => {
      const r = await api(`/v1/invocations/${liveRequestId}/trace`);
      expect(r.status).toBe(200);
      // The invocation's own span is named after the function (faas.name).
      expect(r.body.spans.map((sp: { name: string }) => sp.name)).toContain('hello');
      return r;
    });
    expect(t.body.traceId).toBe(CLIENT_TRACEPARENT.split('-')[1]);
    await page.reload();
    const rows = page.locator('.span-row');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(t.body.spans.length);
    await page.screenshot({ path: join(SHOTS, 'invocation.png'), fullPage: true });
  });

  // The rendering of the endpoint's documented shape, whatever records traces: the browser is handed a fixed
  // answer for the trace route (only that route), so the waterfall is checked before the span store lands.
  it('draws a trace answer as a waterfall: tree order, depth, an error span marked', async () => {
    const ns = (ms: number) => (1_764_720_000_000_000_000n + BigInt(ms * 1e6)).toString();
    const span = (spanId: string, parentSpanId: string | null, a: number, b: number, code = 'OK') => ({
      traceId: 'a'.repeat(32),
      spanId,
      parentSpanId,
      name: `span ${spanId}`,
      kind: 'INTERNAL',
      startTimeUnixNano: ns(a),
      endTimeUnixNano: ns(b),
      durationMs: b - a,
      status: { code },
      attributes: {},
    });
    const body = {
      traceId: 'a'.repeat(32),
      spans: [span('c', 'a', 10, 90), span('a', null, 0, 100), span('b', 'a', 2, 8, 'ERROR')],
    };
    await page.route(`**/v1/invocations/${liveRequestId}/trace`, (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) }),
    );
    try {
      await page.reload();
      await page.locator('.span-row').first().waitFor();
      const rows = await page.locator('.span-row .span-name').allTextContents();
      expect(rows).toEqual(['span a', 'span b', 'span c']);
      expect(await page.locator('.span-bar.error').count()).toBe(1);
      const widths = await page
        .locator('.span-bar')
        .evaluateAll((els: any[]) => els.map((e) => e.getBoundingClientRect().width));
      // The root spans the track; the 80 ms child is 80 % of it.
      expect(widths[2]! / widths[0]!).toBeCloseTo(0.8, 2);
      await page.locator('.waterfall').screenshot({ path: join(SHOTS, 'trace.png') });
    } finally {
      await page.unroute(`**/v1/invocations/${liveRequestId}/trace`);
    }
  });

  it('replays a dead letter from the console, and sees it run again', async () => {
    const { requestId } = await n.client.invoke('broken', JSON.stringify({ n: 1 }), { async: true });
    deadEventId = requestId;
    await eventually(
      async () => (await n.client.events({ state: 'dead' })).some((e) => e.id === requestId),
      20_000,
    );
    await page.click('nav >> text=Events');
    const row = page.locator(`tr[data-event-id="${requestId}"]`);
    await row.waitFor();
    expect(await row.locator('td').nth(4).textContent()).toBe('1');
    expect(await row.textContent()).toContain('broken on purpose (1)');
    await page.screenshot({ path: join(SHOTS, 'events.png'), fullPage: true });
    await row.getByRole('button', { name: `Replay event ${requestId}` }).click();
    await page
      .getByRole('status')
      .filter({ hasText: `Event ${requestId} replayed: it is waiting to run again.` })
      .waitFor();
    // It ran again and failed again: a second attempt, back in the dead letters, without a reload.
    await page
      .locator(`tr[data-event-id="${requestId}"][data-state="dead"]`)
      .filter({ has: page.locator('td:nth-child(5)', { hasText: /^2$/ }) })
      .waitFor({ timeout: 30_000 });
    const attempts = (await api(`/v1/invocations?function=broken&requestId=${requestId}`)).body.invocations;
    expect(attempts.map((r: any) => r.status)).toEqual(['error', 'error']);
  });

  it('refuses a change made with the session but without its CSRF token (403), and changes nothing', async () => {
    const answers = await page.evaluate(async (id) => {
      const post = async (headers: Record<string, string>) => {
        const r = await fetch(`/v1/events/${id}/replay`, {
          method: 'POST',
          headers,
          credentials: 'same-origin',
        });
        return { status: r.status, body: await r.json() };
      };
      return { none: await post({}), wrong: await post({ 'x-nimbus-csrf': 'guessed' }) };
    }, deadEventId);
    expect(answers.none).toMatchObject({ status: 403, body: { error: { code: 'CsrfTokenMissing' } } });
    expect(answers.wrong).toMatchObject({ status: 403, body: { error: { code: 'CsrfTokenInvalid' } } });
    const ev = await api(`/v1/events/${deadEventId}`);
    expect(ev.body).toMatchObject({ state: 'dead', attempts: 2 });
    // Reads need no token: the session alone lists the functions.
    const read = await page.evaluate(async () => (await fetch('/v1/functions')).status);
    expect(read).toBe(200);
  });

  it('shows schedules with their next fire time, and the overview charts', async () => {
    await page.click('nav >> text=Schedules');
    const row = page.locator('table.schedules tbody tr').first();
    await row.waitFor();
    const next = (await api('/v1/functions/hello')).body.schedules[0].nextFireAt as number;
    const text = await row.textContent();
    expect(text).toContain('rate(1 hour)');
    expect(text).toContain(
      new Date(next)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z'),
    );
    await page.screenshot({ path: join(SHOTS, 'schedules.png'), fullPage: true });
    await page.click('nav >> text=Functions');
    await page.locator('tr[data-function="broken"]').waitFor();
    // Errors over 24 hours: the two failed attempts of the dead letter.
    await page
      .locator('tr[data-function="broken"]')
      .filter({ has: page.locator('td:nth-child(9)', { hasText: /^2$/ }) })
      .waitFor({ timeout: 15_000 });
    await page.screenshot({ path: join(SHOTS, 'functions.png'), fullPage: true });
    await page.click('nav >> text=Overview');
    await page.locator('figure.chart canvas').first().waitFor();
    expect(await page.locator('figure.chart').count()).toBe(3);
    // hello once, broken twice (at least: the schedule may have fired too).
    const tile = page.locator('.tile', { hasText: 'Invocations' }).locator('strong');
    expect(Number(await tile.textContent())).toBeGreaterThanOrEqual(3);
    await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });
  });

  it('is reachable by keyboard with a visible focus, and fits a 390 px phone screen', async () => {
    await page.goto(consoleUrl());
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const seen: string[] = [];
    for (let i = 0; i < 8 && !seen.includes('Events'); i++) {
      await page.keyboard.press('Tab');
      seen.push(await page.evaluate(() => document.activeElement?.textContent?.trim() ?? ''));
    }
    expect(seen).toContain('Events');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe('none');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Async events' }).waitFor();

    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    for (const [route, shot] of [
      ['', 'phone-overview.png'],
      ['functions/hello', 'phone-function.png'],
    ] as const) {
      await phone.goto(`${consoleUrl()}#/${route}`);
      await phone.locator('main h1').waitFor();
      await phone.locator('figure.chart canvas').first().waitFor();
      // Wide tables scroll inside their own box; the page itself never scrolls sideways.
      const width = await phone.evaluate(() => document.documentElement.scrollWidth);
      expect(width).toBeLessThanOrEqual(390);
      await phone.screenshot({ path: join(SHOTS, shot), fullPage: true });
    }
    await phone.close();
  });

  it('signs out, after which the cookie no longer works', async () => {
    const [cookie] = await context.cookies();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#key').waitFor();
    expect(await context.cookies()).toEqual([]);
    const res = await fetch(`${n.apiUrl}/v1/functions`, {
      headers: { cookie: `nimbus_session=${cookie!.value}` },
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: 'Unauthorized' } });
  });

  it("ends a project key's session when the key is rotated, and when it is revoked", async () => {
    const key = (
      await api('/v1/keys', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'console', role: 'read' }),
      })
    ).body;
    const signIn = async (k: string) => {
      const res = await fetch(`${n.apiUrl}/console/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: k }),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ role: 'read', keyId: key.id });
      return res.headers.get('set-cookie')!.split(';')[0]!;
    };
    const sessionStatus = async (cookie: string) =>
      (await fetch(`${n.apiUrl}/console/session`, { headers: { cookie } })).status;
    const first = await signIn(key.key);
    expect(await sessionStatus(first)).toBe(200);
    // A read key's session reads, and cannot change anything (the role holds, CSRF token or not).
    const session: any = await (
      await fetch(`${n.apiUrl}/console/session`, { headers: { cookie: first } })
    ).json();
    const replay = await fetch(`${n.apiUrl}/v1/events/${deadEventId}/replay`, {
      method: 'POST',
      headers: { cookie: first, 'x-nimbus-csrf': session.csrfToken },
    });
    expect(replay.status).toBe(403);
    expect(await replay.json()).toMatchObject({ error: { code: 'AccessDenied' } });
    const rotated = (await api(`/v1/keys/${key.id}/rotate`, { method: 'POST' })).body;
    expect(await sessionStatus(first)).toBe(401);
    const second = await signIn(rotated.key);
    expect((await api(`/v1/keys/${key.id}`, { method: 'DELETE' })).status).toBe(200);
    const after = await fetch(`${n.apiUrl}/console/session`, { headers: { cookie: second } });
    expect(after.status).toBe(401);
    expect(await after.json()).toMatchObject({ error: { code: 'NotSignedIn' } });
  });

  it('answers bad console and stats requests with a 4xx JSON error', async () => {
    const form = await fetch(`${n.apiUrl}/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `key=${n.apiKey}`,
    });
    expect(form.status).toBe(415);
    expect(await form.json()).toMatchObject({ error: { code: 'UnsupportedMediaType' } });
    const bucket = await api('/v1/invocations/stats?bucket=5ms');
    expect(bucket).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringMatching(/bucket/) } },
    });
    const many = await api('/v1/invocations/stats?since=30d&bucket=1s');
    expect(many).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringMatching(/10000 buckets/) } },
    });
    const ok = await api('/v1/invocations/stats?since=1h&by=function');
    expect(ok.status).toBe(200);
    expect(ok.body.buckets.map((b: any) => [b.functionName, b.invocations, b.errors]).sort()).toEqual([
      ['broken', 2, 2],
      ['hello', 1, 0],
    ]);
  });

  // Last: it leaves this address refused for a minute.
  it('refuses sign-ins from an address after 10 failures, with 429 and Retry-After', async () => {
    const attempt = () =>
      fetch(`${n.apiUrl}/console/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ key: 'wrong' }),
      });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await attempt()).status);
    // The sign-ins since the wrong-key step succeeded, which starts the count afresh.
    expect(statuses).toEqual(Array(10).fill(401));
    const refused = await attempt();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    // Even the right key waits now.
    const right = await fetch(`${n.apiUrl}/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: n.apiKey }),
    });
    expect(right.status).toBe(429);
  });
});

// Each bubblewrap sandbox has a network namespace of its own: its loopback, outbound connections through
// user-mode NAT (slirp4netns), the AWS endpoint Nimbus gives it, and nothing of the host's loopback. Hostile
// functions (test/fixtures/services/hostile, sealed) try the host's services and listen on ports; the
// test binds the servers they aim at. At the fallback level the documented behaviour is checked instead:
// functions share the host's network, and `network: none` cannot be deployed there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, connect, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BACKENDS,
  FIXTURES,
  HOST_OUTSIDE,
  bubblewrapAvailable,
  eventually,
  sandboxedNodes,
  slirpChildren,
  startTestNimbus,
  type Backend,
  type TestNimbus,
} from './helpers.js';

const BWRAP = bubblewrapAvailable();
const MODES = [
  ...BACKENDS.map((backend: Backend) => ({ mode: 'bubblewrap', backend, opts: {} })),
  { mode: 'fallback', backend: 'sqlite' as Backend, opts: { disableBwrap: true, disableCgroup: true } },
];

const OUTSIDE = HOST_OUTSIDE;
if (!OUTSIDE) console.warn('outbound tests skipped: this host has no non-loopback IPv4 address to aim at');

/** A TCP server that writes one line to whoever connects. */
async function bannerServer(host: string, banner: string): Promise<Server> {
  const s = createServer((c) => c.end(`${banner}\n`));
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  return s;
}
const portOf = (s: Server) => (s.address() as { port: number }).port;

/** What a client on the host gets from 127.0.0.1:port: the first line, or the error's code. */
function hostConnect(port: number): Promise<{ banner?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, timeout: 3000 });
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d) => {
      data += d;
      if (data.includes('\n')) {
        s.destroy();
        resolve({ banner: data.split('\n')[0] });
      }
    });
    s.on('timeout', () => (s.destroy(), resolve({ error: 'TIMEOUT' })));
    s.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

/** A port nothing listens on right now (bound, then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = portOf(s);
  await new Promise((r) => s.close(r));
  return port;
}

describe.each(MODES)('network at the $mode level on $backend', ({ mode, backend, opts }) => {
  const bw = mode === 'bubblewrap';
  const skip = bw && !BWRAP;
  let n: TestNimbus;
  let loopback: Server;
  let outside: Server | undefined;

  beforeAll(async () => {
    if (skip) return;
    loopback = await bannerServer('127.0.0.1', 'host-loopback');
    if (OUTSIDE) outside = await bannerServer(OUTSIDE, 'host-outside');
    n = await startTestNimbus({ ...opts, backend });
    await n.deploy(join(FIXTURES, 'hostile'));
  });
  let cleaned = false;
  afterAll(async () => {
    if (!cleaned) await n?.cleanup();
    loopback?.close();
    outside?.close();
  });

  const invoke = async (fn: string, payload: unknown = {}) =>
    JSON.parse((await n.client.invoke(fn, JSON.stringify(payload), {})).payload) as any;
  const apiPort = () => Number(new URL(n.apiUrl).port);

  describe.skipIf(skip || !bw)('its own namespace', () => {
    it("cannot connect to the host's loopback services: a test server, PostgreSQL, Nimbus's gateway", async () => {
      // The same server answers the host itself: the target is real.
      expect(await hostConnect(portOf(loopback))).toEqual({ banner: 'host-loopback' });
      expect((await invoke('connect', { host: '127.0.0.1', port: portOf(loopback) })).error).toBe(
        'ECONNREFUSED',
      );
      expect((await invoke('connect', { host: '127.0.0.1', port: 5432 })).error).toBe('ECONNREFUSED');
      // Nimbus's gateway: only the AWS endpoint's port is served inside (forwarded), nothing else of Nimbus's.
      const gatewayPort = Number(new URL(n.gatewayUrl).port);
      expect((await invoke('connect', { host: '127.0.0.1', port: gatewayPort })).error).toBe('ECONNREFUSED');
      // slirp4netns's alias for the host's loopback is closed too (--disable-host-loopback).
      expect((await invoke('connect', { host: '10.0.2.2', port: portOf(loopback) })).banner).toBeUndefined();
    });

    it('listens only inside: the host cannot connect to a port the function listens on', async () => {
      const port = await freePort();
      expect(await invoke('listen', { port })).toEqual({ port });
      expect((await hostConnect(port)).error).toBe('ECONNREFUSED');
    });

    it.skipIf(!OUTSIDE)("connects out through NAT: the host's non-loopback address answers", async () => {
      expect(await invoke('connect', { host: OUTSIDE, port: portOf(outside!) })).toEqual({
        banner: 'host-outside',
      });
    });

    it('calls the AWS endpoint with SDK v3 at AWS_ENDPOINT_URL, forwarded to the host over a unix socket', async () => {
      const r = await invoke('aws', { id: `net-${backend}` });
      expect(r).toEqual({ by: 'aws', endpoint: `http://127.0.0.1:${apiPort()}` });
    });

    it("still reaches the endpoint after idling past the API's keep-alive timeout (5 s) on a kept-alive connection", async () => {
      expect((await invoke('aws', { id: `idle1-${backend}` })).by).toBe('aws');
      // Frozen meanwhile; the host closes the SDK's idle connection, which the next call must survive.
      await new Promise((r) => setTimeout(r, 6000));
      expect(await invoke('aws', { id: `idle2-${backend}` })).toMatchObject({ by: 'aws' });
    });

    it('with network: none has only its loopback and the endpoint, and the function view says so', async () => {
      await n.deploy(join(FIXTURES, 'sealed'));
      if (OUTSIDE) {
        const r = await invoke('sealedConnect', { host: OUTSIDE, port: portOf(outside!) });
        expect(r.error).toBe('ENETUNREACH');
      }
      expect((await invoke('sealedConnect', { host: '127.0.0.1', port: portOf(loopback) })).error).toBe(
        'ECONNREFUSED',
      );
      expect(await invoke('sealedAws', { id: `sealed-${backend}` })).toEqual({
        by: 'sealedAws',
        endpoint: `http://127.0.0.1:${apiPort()}`,
      });
      expect(((await n.client.get('sealedConnect')) as any).network).toBe('none');
      expect(((await n.client.get('connect')) as any).network).toBe('outbound');
    });

    it.skipIf(!OUTSIDE)(
      'replaces instances whose slirp4netns was killed: the next calls connect out again',
      async () => {
        const target = { host: OUTSIDE, port: portOf(outside!) };
        expect(await invoke('connect', target)).toEqual({ banner: 'host-outside' });
        const killed = slirpChildren();
        expect(killed.length).toBeGreaterThan(0);
        for (const s of killed) process.kill(s.pid, 'SIGKILL');
        // Their instances are stopped (an instance without its network is broken) and new ones serve.
        await eventually(async () => (await invoke('connect', target)).banner === 'host-outside');
        const now = slirpChildren().map((s) => s.pid);
        expect(now.filter((pid) => killed.some((k) => k.pid === pid))).toEqual([]);
        await eventually(async () => {
          const live = new Set(sandboxedNodes(join(n.dataDir, 'sandboxes')).map((pid) => parentOf(pid)));
          return killed.every((k) => !live.has(k.target));
        });
      },
    );

    it('runs one slirp4netns per outbound sandbox, gone with its instance and with Nimbus', async () => {
      await invoke('exit').catch(() => undefined);
      // Every slirp4netns serves a live sandbox, and the instance that exited took its own along.
      await eventually(async () => {
        const live = new Set(sandboxedNodes(join(n.dataDir, 'sandboxes')).map((pid) => parentOf(pid)));
        const nats = slirpChildren();
        return nats.length > 0 && nats.every((s) => live.has(s.target));
      });
      cleaned = true;
      await n.cleanup();
      expect(await eventually(async () => slirpChildren().length === 0)).toBe(true);
    });
  });

  describe.skipIf(skip || bw)('the fallback level (documented: the host network is shared)', () => {
    it("says so in the level line, and a function reaches the host's loopback", async () => {
      expect(n.sandboxLevel).toContain("share the host's network");
      expect(await invoke('connect', { host: '127.0.0.1', port: portOf(loopback) })).toEqual({
        banner: 'host-loopback',
      });
      const port = await freePort();
      expect(await invoke('listen', { port })).toEqual({ port });
      expect(await hostConnect(port)).toEqual({ banner: 'from-the-sandbox' });
    });

    it('refuses to deploy network: none, naming the field, and deploys nothing of it', async () => {
      const err = await n.deploy(join(FIXTURES, 'sealed')).then(
        () => null,
        (e: any) => e,
      );
      expect(err?.status).toBe(400);
      expect(String(err?.message)).toContain('functions.sealedConnect.network');
      expect(String(err?.message)).toContain('needs bubblewrap');
      await expect(n.client.get('sealedConnect')).rejects.toMatchObject({ status: 404 });
    });

    it('still calls the AWS endpoint with SDK v3', async () => {
      expect((await invoke('aws', { id: 'fallback' })).by).toBe('aws');
    });
  });
});

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

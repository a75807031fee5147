// Starts a real Nimbus (real ports, real sandbox processes, SQLite in a temp dir) for end-to-end tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNimbus, type RunningNimbus, type StartOptions } from '../src/server.js';
import { NimbusClient } from '../src/client/index.js';
import { packageService } from '../src/build/package.js';

export const FIXTURES = join(import.meta.dirname, 'fixtures', 'services');

export interface TestNimbus extends RunningNimbus {
  client: NimbusClient;
  deploy(dir: string): Promise<unknown>;
  cleanup(): Promise<void>;
}

export async function startTestNimbus(opts: StartOptions = {}): Promise<TestNimbus> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'nimbus-test-'));
  const n = await startNimbus({ port: 0, apiPort: 0, dataDir, logLevel: 'silent', stemCells: 2, ...opts });
  const client = new NimbusClient({ apiUrl: n.apiUrl, apiKey: n.apiKey });
  return {
    ...n,
    client,
    deploy: async (dir) => client.deploy((await packageService(dir)).archive),
    cleanup: async () => {
      await n.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls until fn returns a truthy value (records are written off the hot path). */
export async function eventually<T>(
  fn: () => Promise<T | undefined | null | false>,
  ms = 10_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

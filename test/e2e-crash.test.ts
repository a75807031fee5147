// Crash safety of the async path, on both stores: a real `nimbus up` is killed with SIGKILL while it accepts
// and runs a stream of Event invokes; after a restart, every event that got a 202 has run at least once. The
// duplicates (runs cut off by the crash and run again) are counted and printed, not failed on.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageService } from '../src/build/package.js';
import { NimbusClient } from '../src/client/index.js';
import { BACKENDS, FIXTURES, eventually, exited, startUpProcess, type UpProcess } from './helpers.js';
import { createTestSchema, type TestSchema } from './support/postgres.js';

const EVENTS = Number(process.env['NIMBUS_CRASH_EVENTS'] ?? 20_000);
/** Kill once this many were accepted: the rest of the stream meets a dead server, as clients would. */
const KILL_AFTER = Math.floor(EVENTS / 2);
const SENDERS = 32;

describe.each(BACKENDS)('SIGKILL during a stream of async invokes on %s', (backend) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nimbus-crash-'));
  let schema: TestSchema | undefined;
  let up: UpProcess | undefined;

  afterAll(async () => {
    if (up) {
      up.proc.kill('SIGKILL');
      await exited(up.proc);
    }
    rmSync(dataDir, { recursive: true, force: true });
    await schema?.drop();
  });

  it(
    `runs every accepted event at least once after a restart (${EVENTS} sent)`,
    { timeout: 600_000 },
    async () => {
      schema = backend === 'postgresql' ? await createTestSchema('crash') : undefined;
      const env = {
        ...process.env,
        NIMBUS_DATA: dataDir,
        NIMBUS_STORE: schema?.url ?? 'sqlite',
        NIMBUS_LOG_LEVEL: 'error',
        NIMBUS_API_URL: '',
        NIMBUS_API_KEY: '',
      };
      up = await startUpProcess(env);
      const key = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();
      await new NimbusClient({ apiUrl: up.info.apiUrl, apiKey: key }).deploy(
        (await packageService(join(FIXTURES, 'noop'))).archive,
      );

      const accepted = await sendAndKill(up, key);
      await exited(up.proc);
      expect(accepted.size).toBeGreaterThanOrEqual(KILL_AFTER);

      up = await startUpProcess(env);
      const client = new NimbusClient({ apiUrl: up.info.apiUrl, apiKey: key });
      await eventually(async () => {
        const e = (await client.get('noop')).events;
        return e && e.pending === 0 ? true : undefined;
      }, 300_000);

      const runs = await okRuns(up.info.apiUrl, key);
      const missing = [...accepted].filter((id) => !runs.has(id));
      const duplicates = [...runs.values()].filter((n) => n > 1).length;
      console.log(
        `[${backend}] ${accepted.size} of ${EVENTS} accepted before SIGKILL; after restart ${missing.length} missing, ${duplicates} run more than once`,
      );
      expect(missing).toEqual([]);
      expect((await client.get('noop')).events).toMatchObject({ pending: 0, dead: 0 });
    },
  );
});

/** Sends EVENTS Event invokes from SENDERS at once; SIGKILLs the server once KILL_AFTER were accepted. */
async function sendAndKill(up: UpProcess, key: string): Promise<Set<string>> {
  const accepted = new Set<string>();
  let next = 0;
  let killed = false;
  const url = `${up.info.apiUrl}/2015-03-31/functions/noop/invocations`;
  const sender = async (): Promise<void> => {
    while (next < EVENTS) {
      const n = next++;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'x-amz-invocation-type': 'Event' },
          body: JSON.stringify({ n }),
        });
        await res.arrayBuffer();
        if (res.status === 202) accepted.add(res.headers.get('x-amzn-requestid')!);
      } catch {
        // The server is gone: this one was never acknowledged.
        if (killed) return;
      }
      if (!killed && accepted.size >= KILL_AFTER) {
        killed = true;
        up.proc.kill('SIGKILL');
      }
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  return accepted;
}

/** Request id → number of attempts that ran to "ok", read oldest first through the logs API's cursor. */
async function okRuns(apiUrl: string, key: string): Promise<Map<string, number>> {
  const runs = new Map<string, number>();
  for (let after = 0; ;) {
    const res = await fetch(`${apiUrl}/v1/functions/noop/logs?limit=1000&after=${after}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const page = (await res.json()) as { records: { requestId: string; status: string }[]; cursor: number };
    if (page.records.length === 0) return runs;
    for (const r of page.records)
      if (r.status === 'ok') runs.set(r.requestId, (runs.get(r.requestId) ?? 0) + 1);
    after = page.cursor;
  }
}

// A data dir under a private parent (as /root/app/.nimbus would be) must still serve functions.
import { afterAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, startTestNimbus, type TestNimbus } from './helpers.js';

const parent = mkdtempSync(join(tmpdir(), 'nimbus-private-'));
let n: TestNimbus | undefined;
afterAll(async () => {
  await n?.cleanup();
  rmSync(parent, { recursive: true, force: true });
});

it('runs functions when the data dir sits in a 0700 folder', async () => {
  expect(statSync(parent).mode & 0o777).toBe(0o700);
  n = await startTestNimbus({ dataDir: join(parent, 'data') });
  await n.deploy(join(FIXTURES, 'behave'));
  const r = await n.client.invoke('counter', '{}', {});
  expect(JSON.parse(r.payload)).toEqual({ count: 1 });
  // The private folder stays private: nothing was loosened to make this work.
  expect(statSync(parent).mode & 0o777).toBe(0o700);
});

// What the code cache deletes when asked to collect: everything not kept and not held.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageService } from '../build/package.js';
import { CodeCache } from './code-cache.js';

const work = mkdtempSync(join(tmpdir(), 'nimbus-cache-unit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function archive(body: string): Promise<{ sha256: string; archive: Buffer }> {
  const dir = mkdtempSync(join(work, 'svc-'));
  writeFileSync(join(dir, 'nimbus.yaml'), 'service: s\nfunctions:\n  f:\n    handler: index.handler\n');
  writeFileSync(join(dir, 'index.js'), body);
  return packageService(dir);
}

describe('CodeCache.collect', () => {
  it('deletes what is neither kept nor held, and extracts it again when asked', async () => {
    const root = join(work, 'code');
    const store = new Map<string, Buffer>();
    const cache = new CodeCache(root, { getCode: async (sha) => store.get(sha) });
    const [a, b, c] = await Promise.all(
      ['1', '2', '3'].map((n) => archive(`exports.handler = () => ${n};\n`)),
    );
    for (const x of [a!, b!, c!]) {
      store.set(x.sha256, x.archive);
      await cache.put(x.sha256, x.archive);
    }
    const release = cache.hold(c!.sha256);
    expect(await cache.collect(new Set([a!.sha256]))).toBe(1);
    expect(readdirSync(root).sort()).toEqual(
      [a!.sha256, `${a!.sha256}.complete`, c!.sha256, `${c!.sha256}.complete`].sort(),
    );
    release();
    expect(await cache.collect(new Set([a!.sha256]))).toBe(1);
    expect(readdirSync(root).sort()).toEqual([a!.sha256, `${a!.sha256}.complete`].sort());
    // Deleted code is not "ready" any more: the next use extracts it from the store.
    expect(cache.has(b!.sha256)).toBe(false);
    expect(readdirSync(await cache.dir(b!.sha256))).toEqual(['index.js', 'nimbus.yaml']);
  });
});

describe('CodeCache V8 code caches', () => {
  it('keeps one per code and key, drops a rejected one, and goes with its code on collect and discard', async () => {
    const root = join(work, 'code-v8');
    const cache = new CodeCache(root, { getCode: async () => undefined });
    const [a, b] = await Promise.all(['1', '2'].map((n) => archive(`exports.handler = () => ${n};\n`)));
    await cache.put(a!.sha256, a!.archive);
    await cache.put(b!.sha256, b!.archive);
    const bytes = Buffer.from('cached').toString('base64');
    await cache.putV8Cache(a!.sha256, 'index.handler\u0000128', bytes);
    await cache.putV8Cache(b!.sha256, 'index.handler\u0000128', bytes);
    expect(await cache.v8Cache(a!.sha256, 'index.handler\u0000128')).toBe(bytes);
    // Another memory size is another heap flag, so another cache.
    expect(await cache.v8Cache(a!.sha256, 'index.handler\u0000256')).toBeUndefined();
    // A fresh cache object over the same folder (a restart) reads it from disk.
    const again = new CodeCache(root, { getCode: async () => undefined });
    expect(await again.v8Cache(a!.sha256, 'index.handler\u0000128')).toBe(bytes);
    await again.dropV8Cache(a!.sha256, 'index.handler\u0000128');
    expect(await again.v8Cache(a!.sha256, 'index.handler\u0000128')).toBeUndefined();
    expect(readdirSync(join(root, `${a!.sha256}.v8`))).toEqual([]);

    expect(await again.collect(new Set([a!.sha256]))).toBe(1);
    expect(readdirSync(root).filter((n) => n.startsWith(b!.sha256))).toEqual([]);
    await again.discard(a!.sha256);
    expect(readdirSync(root)).toEqual([]);
  });
});

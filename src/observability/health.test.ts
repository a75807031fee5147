import { describe, expect, it } from 'vitest';
import { Health } from './health.js';

describe('Health', () => {
  const up = { store: () => Promise.resolve(), pool: () => true };

  it('is alive whatever the checks say, and ready only when the store answers and the pool can start', async () => {
    const down = new Health({
      store: () => Promise.reject(new Error('ECONNREFUSED 10.0.0.5:5432')),
      pool: () => false,
    });
    expect(await down.answer('/healthz')).toEqual({ status: 200, body: '{"status":"ok"}' });
    expect(await new Health(up).answer('/readyz')).toEqual({ status: 200, body: '{"status":"ok"}' });
    expect(await new Health({ ...up, pool: () => false }).answer('/readyz')).toEqual({
      status: 503,
      body: '{"status":"unavailable","reason":"sandbox pool not ready"}',
    });
    // The store's own error (an address here) never reaches the body.
    const refused = () => Promise.reject(new Error('ECONNREFUSED 10.0.0.5:5432'));
    const noStore = await new Health({ ...up, store: refused }).answer('/readyz');
    expect(noStore).toEqual({ status: 503, body: '{"status":"unavailable","reason":"store unreachable"}' });
    expect(await new Health({ ...up, stopping: () => true }).answer('/readyz')).toMatchObject({
      status: 503,
      body: '{"status":"unavailable","reason":"shutting down"}',
    });
    expect(await new Health(up).answer('/metrics')).toBeUndefined();
  });

  it('counts a store that does not answer as unreachable', async () => {
    const hung = new Health({ ...up, store: () => new Promise(() => {}) }, 10);
    expect(await hung.answer('/readyz')).toEqual({
      status: 503,
      body: '{"status":"unavailable","reason":"store unreachable"}',
    });
  });
});

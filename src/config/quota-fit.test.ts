import { describe, expect, it } from 'vitest';
import { quotaMisfit } from './quota-fit.js';

const f = (name: string, over: Record<string, number> = {}) => ({
  name,
  memory: 128,
  reservedConcurrency: undefined as number | undefined,
  ...over,
});

describe('quotaMisfit', () => {
  it('fits anything without a quota, and reservations up to the concurrency quota together', () => {
    const fns = [f('a', { reservedConcurrency: 5 }), f('b', { reservedConcurrency: 5 })];
    expect(quotaMisfit('p', { concurrency: null, memoryMB: null }, fns)).toBeUndefined();
    expect(quotaMisfit('p', { concurrency: 10, memoryMB: null }, fns)).toBeUndefined();
    expect(quotaMisfit('p', { concurrency: 9, memoryMB: null }, fns)).toMatchObject({
      field: 'concurrency.reserved',
      message: expect.stringContaining('total 10'),
    });
  });

  it("counts a reserved function's instances at its reservation, perInstance of them sharing one", () => {
    const shared = [f('a', { reservedConcurrency: 8, perInstanceConcurrency: 4, memory: 256 })];
    expect(quotaMisfit('p', { concurrency: null, memoryMB: 512 }, shared)).toBeUndefined();
    expect(quotaMisfit('p', { concurrency: null, memoryMB: 511 }, shared)).toMatchObject({ function: 'a' });
  });

  it('counts every provisioned instance of the project together', () => {
    const fns = [f('a', { provisionedConcurrency: 2 }), f('b', { provisionedConcurrency: 2 })];
    expect(quotaMisfit('p', { concurrency: null, memoryMB: 512 }, fns)).toBeUndefined();
    expect(quotaMisfit('p', { concurrency: null, memoryMB: 500 }, fns)).toMatchObject({
      field: 'concurrency.provisioned',
      hint: expect.stringContaining('nimbus project quota p --memory'),
    });
  });
});

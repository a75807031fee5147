// TableStore conformance: DynamoDB's data model on every backend. Key order (numbers by value, strings and
// binaries by bytes), Query conditions and pages, sparse secondary indexes and their projections, parallel
// Scan segments, atomic writes and transactions, streams, TTL expiry, and projects kept apart.
import { describe, expect, it } from 'vitest';
import {
  ItemCollectionSizeLimitError,
  ProjectNotFoundError,
  TableExistsError,
  TableInputError,
  TableNotFoundError,
} from '../errors.js';
import type { ItemPage, ItemQuery, SortCondition, StoredTable } from '../types.js';
import { itemSize } from '../../tables/keys.js';
import type { AttributeValue, IndexDef, Item, KeySchema, TableDef } from '../../tables/types.js';
import { useHarness, type HarnessFactory } from './harness.js';

const S = (s: string): AttributeValue => ({ S: s });
const N = (n: string | number): AttributeValue => ({ N: String(n) });
const B = (bytes: number[]): AttributeValue => ({ B: Buffer.from(bytes).toString('base64') });

/** A table keyed by pk (S) and sk (N) unless told otherwise. */
export function tableDef(name: string, over: Partial<TableDef> = {}): TableDef {
  return {
    name,
    key: { partition: { name: 'pk', type: 'S' }, sort: { name: 'sk', type: 'N' } },
    indexes: [],
    billingMode: 'PAY_PER_REQUEST',
    ...over,
  };
}

function keyOf(schema: KeySchema, item: Item): Item {
  const out: Item = { [schema.partition.name]: item[schema.partition.name]! };
  if (schema.sort) out[schema.sort.name] = item[schema.sort.name]!;
  return out;
}

export function tableStoreConformance(name: string, make: HarnessFactory): void {
  describe(`TableStore conformance: ${name}`, () => {
    const ctx = useHarness(make);
    const t = () => ctx.store.tables;
    const defs = new Map<string, TableDef>();
    const create = async (def: TableDef, project = 'default', service: string | null = null) => {
      defs.set(`${project}/${def.name}`, def);
      return t().createTable(project, def, service);
    };
    const schemaOf = (table: string, project = 'default') =>
      (defs.get(`${project}/${table}`) ?? tableDef(table)).key;
    const put = (table: string, item: Item, project = 'default') =>
      t().write(project, { table, key: keyOf(schemaOf(table, project), item), decide: () => item });
    const del = (table: string, key: Item, project = 'default') =>
      t().write(project, { table, key, decide: () => null });
    const attr = (page: ItemPage | Item[], a: string) =>
      (Array.isArray(page) ? page : page.items).map((i) => {
        const v = i[a];
        return v === undefined ? undefined : (Object.values(v)[0] as unknown);
      });
    const query = (
      table: string,
      partition: AttributeValue,
      over: Omit<ItemQuery, 'table' | 'partition'> = {},
    ) => t().query('default', { table, partition, ...over });
    /** Every page of a query or scan, following lastKey. */
    const allPages = async (next: (start: Item | undefined) => Promise<ItemPage>) => {
      const pages: ItemPage[] = [];
      let start: Item | undefined;
      do {
        const page = await next(start);
        pages.push(page);
        start = page.lastKey;
      } while (start && pages.length < 1000);
      return pages;
    };

    describe('definitions', () => {
      it('creates, gets and lists tables with their definition, owner, counts and stream label', async () => {
        const t0 = ctx.clock.now();
        const def = tableDef('orders', {
          indexes: [
            {
              name: 'byCustomer',
              kind: 'global',
              key: { partition: { name: 'customer', type: 'S' } },
              projection: { type: 'KEYS_ONLY' },
            },
          ],
          stream: { viewType: 'NEW_AND_OLD_IMAGES' },
          ttlAttribute: 'expires',
          provisionedThroughput: { readCapacityUnits: 5, writeCapacityUnits: 1 },
          billingMode: 'PROVISIONED',
        });
        const created = await create(def, 'default', 'shop');
        const expected: StoredTable = {
          ...def,
          project: 'default',
          service: 'shop',
          createdAt: t0,
          itemCount: 0,
          sizeBytes: 0,
          streamLabel: new Date(t0).toISOString().replace(/Z$/, ''),
          streamSeq: 0,
        };
        expect(created).toStrictEqual(expected);
        expect(await t().getTable('default', 'orders')).toStrictEqual(expected);
        await create(tableDef('apples'));
        expect((await t().listTables('default')).map((x) => [x.name, x.service, x.streamLabel])).toEqual([
          ['apples', null, null],
          ['orders', 'shop', expected.streamLabel],
        ]);
        expect(await t().getTable('default', 'nope')).toBeUndefined();
      });

      it('answers definition() as the table stands after each create, update and delete', async () => {
        const g: IndexDef = {
          name: 'g',
          kind: 'global',
          key: { partition: { name: 'color', type: 'S' } },
          projection: { type: 'KEYS_ONLY' },
        };
        expect(await t().definition('default', 't')).toBeUndefined();
        await create(tableDef('t'));
        expect(await t().definition('default', 't')).toStrictEqual(tableDef('t'));
        const item = { pk: S('a'), sk: N(1), color: S('red') };
        await put('t', item);
        await t().updateTable('default', tableDef('t', { indexes: [g] }));
        expect((await t().definition('default', 't'))?.indexes).toEqual([g]);
        expect((await t().query('default', { table: 't', index: 'g', partition: S('red') })).items).toEqual([
          { pk: S('a'), sk: N(1), color: S('red') },
        ]);
        // The same name again with another key schema: items are read and written by the new key.
        await t().deleteTable('default', 't');
        expect(await t().definition('default', 't')).toBeUndefined();
        await expect(t().getItem('default', 't', { pk: S('a'), sk: N(1) })).rejects.toBeInstanceOf(
          TableNotFoundError,
        );
        const byId = tableDef('t', { key: { partition: { name: 'id', type: 'S' } } });
        await create(byId);
        await put('t', { id: S('x') });
        expect(await t().getItem('default', 't', { id: S('x') })).toStrictEqual({ id: S('x') });
        expect((await t().definition('default', 't'))?.key).toEqual(byId.key);
        // What definition() hands out is shared, so it cannot be changed by whoever holds it.
        const def = (await t().definition('default', 't'))!;
        expect(() => (def.indexes as IndexDef[]).push(g)).toThrow(TypeError);
      });

      it('gives a page its items as stored JSON text too, in the same order', async () => {
        await create(tableDef('t'));
        for (const n of [3, 1, 2]) await put('t', { pk: S('p'), sk: N(n), v: S(`é${n}`) });
        const page = await query('t', S('p'), { limit: 2 });
        expect(page.texts.map((x) => JSON.parse(x) as Item)).toStrictEqual(page.items);
        expect(attr(page, 'sk')).toEqual(['1', '2']);
        expect(page.lastKey).toStrictEqual({ pk: S('p'), sk: N(2) });
      });

      it('refuses a name taken in the project, and an unknown project', async () => {
        await create(tableDef('t'));
        const err = await create(tableDef('t', { billingMode: 'PROVISIONED' })).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TableExistsError);
        expect(err).toMatchObject({ name: 'TableExistsError', message: 'Table already exists: t' });
        expect((await t().getTable('default', 't'))?.billingMode).toBe('PAY_PER_REQUEST');
        await expect(create(tableDef('t'), 'missing')).rejects.toBeInstanceOf(ProjectNotFoundError);
      });

      it('throws TableNotFoundError for every operation on a table that does not exist', async () => {
        const key = { pk: S('a'), sk: N(1) };
        const missing: (() => Promise<unknown>)[] = [
          () => t().getItem('default', 'nope', key),
          () => t().write('default', { table: 'nope', key, decide: () => undefined }),
          () => t().transact('default', [{ table: 'nope', key, decide: () => undefined }]),
          () => t().query('default', { table: 'nope', partition: S('a') }),
          () => t().scan('default', { table: 'nope' }),
          () => t().updateTable('default', tableDef('nope')),
          () => t().streamRecords('default', 'nope', 0, 10),
        ];
        for (const call of missing) {
          const err = await call().catch((e: unknown) => e);
          expect(err).toBeInstanceOf(TableNotFoundError);
          expect(err).toMatchObject({ name: 'TableNotFoundError', message: 'Requested resource not found' });
        }
        expect(await t().deleteTable('default', 'nope')).toBe(false);
      });

      it('keeps item count and size exact through puts, overwrites and deletes', async () => {
        await create(tableDef('t'));
        const a = { pk: S('a'), sk: N(1), v: S('x'.repeat(100)) };
        const b = { pk: S('b'), sk: N(2), n: N('123.45') };
        await put('t', a);
        await put('t', b);
        expect(await t().getTable('default', 't')).toMatchObject({
          itemCount: 2,
          sizeBytes: itemSize(a) + itemSize(b),
        });
        const a2 = { ...a, v: S('short') };
        await put('t', a2);
        expect(await t().getTable('default', 't')).toMatchObject({
          itemCount: 2,
          sizeBytes: itemSize(a2) + itemSize(b),
        });
        await del('t', { pk: S('b'), sk: N(2) });
        await del('t', { pk: S('zzz'), sk: N(2) });
        expect(await t().getTable('default', 't')).toMatchObject({ itemCount: 1, sizeBytes: itemSize(a2) });
      });

      it('turns the stream on with a new label and off again, and keeps only the definition of a StoredTable', async () => {
        const stored = await create(tableDef('t'));
        await put('t', { pk: S('a'), sk: N(1) });
        ctx.clock.advance(1500);
        // What an API handler may pass: the stored table with one field changed, counts and all.
        const on = await t().updateTable('default', {
          ...stored,
          stream: { viewType: 'KEYS_ONLY' },
          billingMode: 'PROVISIONED',
        });
        const label = new Date(ctx.clock.now()).toISOString().replace(/Z$/, '');
        expect(on).toMatchObject({
          streamLabel: label,
          itemCount: 1,
          billingMode: 'PROVISIONED',
          createdAt: stored.createdAt,
        });
        ctx.clock.advance(1000);
        const same = await t().updateTable('default', {
          ...tableDef('t'),
          stream: { viewType: 'KEYS_ONLY' },
        });
        expect(same.streamLabel).toBe(label);
        const off = await t().updateTable('default', tableDef('t'));
        expect(off.streamLabel).toBeNull();
        expect(off.stream).toBeUndefined();
        ctx.clock.advance(1000);
        const again = await t().updateTable('default', {
          ...tableDef('t'),
          stream: { viewType: 'NEW_IMAGE' },
        });
        expect(again.streamLabel).not.toBe(label);
        expect(again.streamLabel).toBe(new Date(ctx.clock.now()).toISOString().replace(/Z$/, ''));
        // Another view type is another stream; within one millisecond, still another label.
        const other = await t().updateTable('default', {
          ...tableDef('t'),
          stream: { viewType: 'KEYS_ONLY' },
        });
        expect(other.streamLabel).not.toBe(again.streamLabel);
        expect(other.streamLabel! > again.streamLabel!).toBe(true);
        // The key schema is the table's for good.
        await expect(
          t().updateTable('default', tableDef('t', { key: { partition: { name: 'pk', type: 'S' } } })),
        ).rejects.toBeInstanceOf(TableInputError);
      });

      it('deletes a table with its items, index entries and stream', async () => {
        const gsi: IndexDef = {
          name: 'g',
          kind: 'global',
          key: { partition: { name: 'g', type: 'S' } },
          projection: { type: 'ALL' },
        };
        await create(tableDef('t', { indexes: [gsi], stream: { viewType: 'KEYS_ONLY' } }));
        await put('t', { pk: S('a'), sk: N(1), g: S('x') });
        expect(await t().deleteTable('default', 't')).toBe(true);
        expect(await t().deleteTable('default', 't')).toBe(false);
        await expect(t().getItem('default', 't', { pk: S('a'), sk: N(1) })).rejects.toBeInstanceOf(
          TableNotFoundError,
        );
        // Created again, it starts empty.
        await create(tableDef('t', { indexes: [gsi], stream: { viewType: 'KEYS_ONLY' } }));
        expect(await t().getItem('default', 't', { pk: S('a'), sk: N(1) })).toBeUndefined();
        expect((await t().query('default', { table: 't', index: 'g', partition: S('x') })).items).toEqual([]);
        expect(await t().streamRecords('default', 't', 0, 100)).toEqual([]);
        expect(await t().getTable('default', 't')).toMatchObject({ itemCount: 0, sizeBytes: 0 });
      });

      it('keeps tables, items and streams across a reopen', async () => {
        await create(
          tableDef('t', {
            stream: { viewType: 'NEW_IMAGE' },
            indexes: [
              {
                name: 'g',
                kind: 'global',
                key: { partition: { name: 'g', type: 'S' } },
                projection: { type: 'KEYS_ONLY' },
              },
            ],
          }),
        );
        const item = {
          pk: S('a'),
          sk: N('1.5'),
          g: S('x'),
          data: { M: { deep: { L: [S('é'), B([0, 255])] } } },
        };
        await put('t', item);
        const before = await t().getTable('default', 't');
        await ctx.reopen();
        expect(await t().getTable('default', 't')).toStrictEqual(before);
        expect(await t().getItem('default', 't', { pk: S('a'), sk: N('15E-1') })).toStrictEqual(item);
        expect(
          (await t().query('default', { table: 't', index: 'g', partition: S('x') })).items,
        ).toStrictEqual([{ pk: S('a'), sk: N('1.5'), g: S('x') }]);
        expect((await t().streamRecords('default', 't', 0, 10)).map((r) => r.eventName)).toEqual(['INSERT']);
      });
    });

    describe('keys', () => {
      it('orders number sort keys by value: negatives, zero, decimals, exponents, 38 digits', async () => {
        await create(tableDef('n'));
        const ascending = [
          '-9.9999999999999999999999999999999999999E+125',
          '-1E+100',
          '-99999999999999999999999999999999999999',
          '-12345678901234567890123456789012345678',
          '-1000',
          '-10.5',
          '-10',
          '-1.0000000000000000000000000000000000001',
          '-1',
          '-0.99',
          '-0.5',
          '-0.05',
          '-1E-130',
          '0',
          '1E-130',
          '0.0000000000000000000000000000000000001',
          '0.05',
          '0.5',
          '0.99',
          '1',
          '1.0000000000000000000000000000000000001',
          '1.5',
          '10',
          '10.5',
          '1000',
          '12345678901234567890123456789012345678',
          '99999999999999999999999999999999999999',
          '1E+100',
          '9.9999999999999999999999999999999999999E+125',
        ];
        // Written in a scrambled order, so only the key order can bring them back sorted.
        for (let i = 0; i < ascending.length; i++) {
          const at = (i * 7) % ascending.length;
          await put('n', { pk: S('p'), sk: N(ascending[at]!), i: N(at) });
        }
        const all = await query('n', S('p'));
        expect(attr(all, 'sk')).toEqual(ascending);
        const back = await query('n', S('p'), { forward: false });
        expect(attr(back, 'sk')).toEqual([...ascending].reverse());
        const positives = await query('n', S('p'), { sort: { op: '>', value: N('0') } });
        expect(attr(positives, 'sk')).toEqual(ascending.slice(ascending.indexOf('0') + 1));
      });

      it('treats equal numbers as one key: 1.50 == 1.5 == 15E-1, -0 == 0', async () => {
        await create(tableDef('n'));
        await put('n', { pk: S('p'), sk: N('1.50'), v: S('first') });
        expect(await t().getItem('default', 'n', { pk: S('p'), sk: N('15E-1') })).toMatchObject({
          v: S('first'),
        });
        const r = await put('n', { pk: S('p'), sk: N('15E-1'), v: S('second') });
        expect(r.old).toMatchObject({ v: S('first') });
        expect(attr(await query('n', S('p'), { sort: { op: '=', value: N('1.5') } }), 'v')).toEqual([
          'second',
        ]);
        await put('n', { pk: S('p'), sk: N('-0'), v: S('zero') });
        expect(await t().getItem('default', 'n', { pk: S('p'), sk: N('0') })).toMatchObject({ v: S('zero') });
        expect((await t().getTable('default', 'n'))?.itemCount).toBe(2);
        // Number partition keys too.
        await create(tableDef('np', { key: { partition: { name: 'id', type: 'N' } } }));
        await put('np', { id: N('100') });
        expect(await t().getItem('default', 'np', { id: N('1E2') })).toStrictEqual({ id: N('100') });
      });

      it('refuses numbers DynamoDB refuses, writing nothing', async () => {
        await create(tableDef('n'));
        for (const bad of ['1'.repeat(39), '1E126', '1E-131', 'abc', '']) {
          await expect(put('n', { pk: S('p'), sk: N(bad) })).rejects.toBeInstanceOf(TableInputError);
        }
        expect((await t().scan('default', { table: 'n' })).items).toEqual([]);
      });

      it('orders string sort keys by UTF-8 bytes, including non-ASCII', async () => {
        await create(
          tableDef('s', { key: { partition: { name: 'pk', type: 'S' }, sort: { name: 'sk', type: 'S' } } }),
        );
        // UTF-8 order; UTF-16 order (JavaScript's <) would put the emoji before U+FF66.
        const ascending = ['A', 'Z', 'a', 'ab', 'b', 'z', '~', 'é', 'ö', '中', '\uff66', '😀'];
        for (const v of [...ascending].reverse()) await put('s', { pk: S('p'), sk: S(v) });
        expect(attr(await query('s', S('p')), 'sk')).toEqual(ascending);
        expect(attr(await query('s', S('p'), { sort: { op: '>=', value: S('é') } }), 'sk')).toEqual([
          'é',
          'ö',
          '中',
          '\uff66',
          '😀',
        ]);
      });

      it('orders binary sort keys by unsigned bytes', async () => {
        await create(
          tableDef('b', { key: { partition: { name: 'pk', type: 'B' }, sort: { name: 'sk', type: 'B' } } }),
        );
        const ascending = [
          [0],
          [0, 0],
          [0, 1],
          [1],
          [0x7f],
          [0x80],
          [0x80, 0],
          [0xfe, 0xff],
          [0xff],
          [0xff, 0],
        ];
        for (const v of [...ascending].reverse()) await put('b', { pk: B([9]), sk: B(v) });
        const got = (await query('b', B([9]))).items.map((i) => [
          ...Buffer.from((i.sk as { B: string }).B, 'base64'),
        ]);
        expect(got).toEqual(ascending);
        expect(await t().getItem('default', 'b', { pk: B([9]), sk: B([0x80, 0]) })).toBeDefined();
      });

      it('refuses keys that are missing, of the wrong type, empty, or not the item written', async () => {
        await create(tableDef('t'));
        const w = (key: Item, item: Item | null) =>
          t().write('default', { table: 't', key, decide: () => item });
        const bad: [Item, Item | null][] = [
          [{ pk: S('a'), sk: N(1) }, { pk: S('a') }],
          [
            { pk: S('a'), sk: N(1) },
            { pk: S('a'), sk: S('1') },
          ],
          [
            { pk: S('a'), sk: N(1) },
            { pk: S('b'), sk: N(1) },
          ],
          [{ pk: S('a') }, null],
          [{ pk: S('a'), sk: N(1), extra: S('x') }, null],
          [{ pk: N(1), sk: N(1) }, null],
          [
            { pk: S(''), sk: N(1) },
            { pk: S(''), sk: N(1) },
          ],
          [
            { pk: S('x'.repeat(2049)), sk: N(1) },
            { pk: S('x'.repeat(2049)), sk: N(1) },
          ],
        ];
        for (const [key, item] of bad) {
          const err = await w(key, item).catch((e: unknown) => e);
          expect(err, JSON.stringify(key)).toBeInstanceOf(TableInputError);
          expect(err).toMatchObject({ name: 'TableInputError' });
        }
        await expect(t().getItem('default', 't', { pk: S('a') })).rejects.toThrow(
          'The provided key element does not match the schema',
        );
        await expect(w({ pk: S('a'), sk: N(1) }, { pk: S('a') })).rejects.toThrow(
          'One or more parameter values were invalid: Missing the key sk in the item',
        );
        expect(await t().getTable('default', 't')).toMatchObject({ itemCount: 0 });
      });
    });

    describe('query', () => {
      const seed = async () => {
        await create(tableDef('q'));
        for (let i = 1; i <= 9; i++) await put('q', { pk: S('p'), sk: N(i * 10), i: N(i) });
        await put('q', { pk: S('other'), sk: N(50) });
        await put('q', { pk: S('p2'), sk: N(5) });
      };
      const sks = async (sort: SortCondition, forward = true) =>
        attr(await query('q', S('p'), { sort, forward }), 'sk').map(Number);

      it('applies each sort key condition to one partition only', async () => {
        await seed();
        expect(await sks({ op: '=', value: N(30) })).toEqual([30]);
        expect(await sks({ op: '=', value: N(35) })).toEqual([]);
        expect(await sks({ op: '<', value: N(30) })).toEqual([10, 20]);
        expect(await sks({ op: '<=', value: N(30) })).toEqual([10, 20, 30]);
        expect(await sks({ op: '>', value: N(70) })).toEqual([80, 90]);
        expect(await sks({ op: '>=', value: N(70) })).toEqual([70, 80, 90]);
        expect(await sks({ op: 'between', low: N(25), high: N(50) })).toEqual([30, 40, 50]);
        expect(await sks({ op: 'between', low: N(30), high: N(30) })).toEqual([30]);
        expect(await sks({ op: 'between', low: N(25), high: N(50) }, false)).toEqual([50, 40, 30]);
        expect(await sks({ op: '<', value: N(30) }, false)).toEqual([20, 10]);
        expect(attr(await query('q', S('p')), 'sk').map(Number)).toEqual([
          10, 20, 30, 40, 50, 60, 70, 80, 90,
        ]);
        expect((await query('q', S('nobody'))).items).toEqual([]);
      });

      it('applies begins_with to string and binary sort keys, and refuses it on numbers', async () => {
        await seed();
        await create(
          tableDef('s', { key: { partition: { name: 'pk', type: 'S' }, sort: { name: 'sk', type: 'S' } } }),
        );
        for (const v of ['a', 'ab', 'abc', 'abd', 'ac', 'b', 'é', 'éa', 'ê'])
          await put('s', { pk: S('p'), sk: S(v) });
        const bw = async (prefix: string, forward = true) =>
          attr(await query('s', S('p'), { sort: { op: 'begins_with', prefix: S(prefix) }, forward }), 'sk');
        expect(await bw('ab')).toEqual(['ab', 'abc', 'abd']);
        expect(await bw('ab', false)).toEqual(['abd', 'abc', 'ab']);
        expect(await bw('é')).toEqual(['é', 'éa']);
        expect(await bw('x')).toEqual([]);

        await create(
          tableDef('b', { key: { partition: { name: 'pk', type: 'S' }, sort: { name: 'sk', type: 'B' } } }),
        );
        for (const v of [[1], [1, 0xff], [1, 0xff, 0xff, 3], [2], [0xff], [0xff, 1]])
          await put('b', { pk: S('p'), sk: B(v) });
        const bb = async (prefix: number[]) =>
          (await query('b', S('p'), { sort: { op: 'begins_with', prefix: B(prefix) } })).items.map((i) => [
            ...Buffer.from((i.sk as { B: string }).B, 'base64'),
          ]);
        expect(await bb([1, 0xff])).toEqual([
          [1, 0xff],
          [1, 0xff, 0xff, 3],
        ]);
        expect(await bb([0xff])).toEqual([[0xff], [0xff, 1]]);

        await expect(
          query('q', S('p'), { sort: { op: 'begins_with', prefix: N(1) } }),
        ).rejects.toBeInstanceOf(TableInputError);
      });

      it('refuses conditions of the wrong type, an inverted between and an unknown index', async () => {
        await seed();
        const refused: (() => Promise<unknown>)[] = [
          () => query('q', N(1)),
          () => query('q', S('p'), { sort: { op: '=', value: S('10') } }),
          () => query('q', S('p'), { sort: { op: 'between', low: N(50), high: N(10) } }),
          () => query('q', S('p'), { index: 'nope' }),
        ];
        for (const call of refused) await expect(call()).rejects.toBeInstanceOf(TableInputError);
      });

      it('pages forward and backward with exclusiveStartKey, giving lastKey only while more follow', async () => {
        await seed();
        const forward = await allPages((start) => query('q', S('p'), { limit: 4, exclusiveStartKey: start }));
        expect(forward.map((p) => attr(p, 'sk').map(Number))).toEqual([
          [10, 20, 30, 40],
          [50, 60, 70, 80],
          [90],
        ]);
        expect(forward[0]!.lastKey).toStrictEqual({ pk: S('p'), sk: N(40) });
        expect(forward[2]!.lastKey).toBeUndefined();
        const backward = await allPages((start) =>
          query('q', S('p'), { limit: 4, forward: false, exclusiveStartKey: start }),
        );
        expect(backward.map((p) => attr(p, 'sk').map(Number))).toEqual([
          [90, 80, 70, 60],
          [50, 40, 30, 20],
          [10],
        ]);
        // A page that ends exactly at the last item has no lastKey.
        const exact = await allPages((start) =>
          query('q', S('p'), { limit: 3, sort: { op: '>', value: N(30) }, exclusiveStartKey: start }),
        );
        expect(exact.map((p) => attr(p, 'sk').map(Number))).toEqual([
          [40, 50, 60],
          [70, 80, 90],
        ]);
        // Continuing from a key that is no longer there starts strictly after where it was.
        await del('q', { pk: S('p'), sk: N(40) });
        const after = await query('q', S('p'), { limit: 2, exclusiveStartKey: { pk: S('p'), sk: N(40) } });
        expect(attr(after, 'sk').map(Number)).toEqual([50, 60]);
        const before = await query('q', S('p'), {
          forward: false,
          sort: { op: '>=', value: N(20) },
          exclusiveStartKey: { pk: S('p'), sk: N(40) },
        });
        expect(attr(before, 'sk').map(Number)).toEqual([30, 20]);
        expect(before.lastKey).toBeUndefined();
        expect((await query('q', S('p'), {})).items).toHaveLength(8);
      });

      it('queries a table without a sort key by its partition', async () => {
        await create(tableDef('h', { key: { partition: { name: 'id', type: 'S' } } }));
        await put('h', { id: S('a'), v: N(1) });
        await put('h', { id: S('b'), v: N(2) });
        expect((await t().query('default', { table: 'h', partition: S('a') })).items).toStrictEqual([
          { id: S('a'), v: N(1) },
        ]);
      });
    });

    describe('secondary indexes', () => {
      const indexed = () =>
        create(
          tableDef('t', {
            indexes: [
              {
                name: 'byStatus',
                kind: 'global',
                key: { partition: { name: 'status', type: 'S' }, sort: { name: 'at', type: 'N' } },
                projection: { type: 'KEYS_ONLY' },
              },
              {
                name: 'byOwner',
                kind: 'global',
                key: { partition: { name: 'owner', type: 'S' } },
                projection: { type: 'INCLUDE', attributes: ['title', 'missing'] },
              },
              {
                name: 'byPrice',
                kind: 'local',
                key: { partition: { name: 'pk', type: 'S' }, sort: { name: 'price', type: 'N' } },
                projection: { type: 'ALL' },
              },
            ],
          }),
        );

      it('keeps sparse entries with their projections, queried in index key order', async () => {
        await indexed();
        await put('t', {
          pk: S('a'),
          sk: N(1),
          status: S('open'),
          at: N(30),
          owner: S('ann'),
          title: S('A1'),
          body: S('x'),
        });
        await put('t', {
          pk: S('a'),
          sk: N(2),
          status: S('open'),
          at: N(10),
          price: N('9.5'),
          title: S('A2'),
        });
        await put('t', { pk: S('b'), sk: N(1), status: S('done'), at: N(20), owner: S('ann'), price: N(3) });
        // Only one of the index's key attributes: not in byStatus.
        await put('t', { pk: S('c'), sk: N(1), status: S('open'), owner: S('bob'), price: N(1) });
        await put('t', { pk: S('a'), sk: N(3), price: N('-2') });

        const open = await t().query('default', { table: 't', index: 'byStatus', partition: S('open') });
        expect(open.items).toStrictEqual([
          { pk: S('a'), sk: N(2), status: S('open'), at: N(10) },
          { pk: S('a'), sk: N(1), status: S('open'), at: N(30) },
        ]);
        const recent = await t().query('default', {
          table: 't',
          index: 'byStatus',
          partition: S('open'),
          sort: { op: '>', value: N(15) },
        });
        expect(attr(recent, 'at')).toEqual(['30']);

        const ann = await t().query('default', { table: 't', index: 'byOwner', partition: S('ann') });
        expect(ann.items).toStrictEqual([
          { pk: S('a'), sk: N(1), owner: S('ann'), title: S('A1') },
          { pk: S('b'), sk: N(1), owner: S('ann') },
        ]);

        const prices = await t().query('default', { table: 't', index: 'byPrice', partition: S('a') });
        expect(prices.items).toStrictEqual([
          { pk: S('a'), sk: N(3), price: N('-2') },
          { pk: S('a'), sk: N(2), status: S('open'), at: N(10), price: N('9.5'), title: S('A2') },
        ]);
        const byPriceBack = await t().query('default', {
          table: 't',
          index: 'byPrice',
          partition: S('a'),
          forward: false,
        });
        expect(attr(byPriceBack, 'price')).toEqual(['9.5', '-2']);
      });

      it('moves, drops and adds entries as items change and go', async () => {
        await indexed();
        const q = async (status: string) =>
          attr(await t().query('default', { table: 't', index: 'byStatus', partition: S(status) }), 'pk');
        await put('t', { pk: S('a'), sk: N(1), status: S('open'), at: N(1) });
        await put('t', { pk: S('b'), sk: N(1), status: S('open'), at: N(2) });
        await put('t', { pk: S('a'), sk: N(1), status: S('done'), at: N(1) });
        expect(await q('open')).toEqual(['b']);
        expect(await q('done')).toEqual(['a']);
        await put('t', { pk: S('a'), sk: N(1) });
        expect(await q('done')).toEqual([]);
        await put('t', { pk: S('a'), sk: N(1), status: S('open'), at: N(0) });
        expect(await q('open')).toEqual(['a', 'b']);
        await del('t', { pk: S('b'), sk: N(1) });
        expect(await q('open')).toEqual(['a']);
        const scanned = await t().scan('default', { table: 't', index: 'byStatus' });
        expect(scanned.items).toStrictEqual([{ pk: S('a'), sk: N(1), status: S('open'), at: N(0) }]);
      });

      it('refuses an item whose index key has the wrong type or is empty, writing nothing', async () => {
        await indexed();
        await put('t', { pk: S('a'), sk: N(1), owner: S('ann') });
        const refused: Item[] = [
          { pk: S('a'), sk: N(1), status: N(1), at: N(1) },
          { pk: S('a'), sk: N(1), owner: S('') },
          { pk: S('a'), sk: N(1), price: S('cheap') },
        ];
        for (const item of refused) {
          const err = await put('t', item).catch((e: unknown) => e);
          expect(err).toBeInstanceOf(TableInputError);
        }
        expect(await t().getItem('default', 't', { pk: S('a'), sk: N(1) })).toStrictEqual({
          pk: S('a'),
          sk: N(1),
          owner: S('ann'),
        });
        expect(
          (await t().query('default', { table: 't', index: 'byOwner', partition: S('ann') })).items,
        ).toHaveLength(1);
      });

      it('pages an index, entries with equal index keys in table key order, both ways', async () => {
        await create(
          tableDef('t', {
            indexes: [
              {
                name: 'g',
                kind: 'global',
                key: { partition: { name: 'g', type: 'S' }, sort: { name: 'r', type: 'N' } },
                projection: { type: 'KEYS_ONLY' },
              },
            ],
          }),
        );
        // Equal index keys (r) across partitions: the index orders them by table key.
        const expected: string[] = [];
        for (const r of [1, 2]) {
          for (const pk of ['a', 'b', 'c']) {
            for (const sk of [2 * r - 1, 2 * r]) expected.push(`${r}/${pk}/${sk}`);
          }
        }
        for (const label of [...expected].reverse()) {
          const [r, pk, sk] = label.split('/') as [string, string, string];
          await put('t', { pk: S(pk), sk: N(sk), g: S('x'), r: N(r) });
        }
        await put('t', { pk: S('z'), sk: N(1), g: S('y'), r: N(1) });
        const label = (i: Item) => `${attr([i], 'r')[0]}/${attr([i], 'pk')[0]}/${attr([i], 'sk')[0]}`;
        const fwd = await allPages((start) =>
          t().query('default', {
            table: 't',
            index: 'g',
            partition: S('x'),
            limit: 5,
            exclusiveStartKey: start,
          }),
        );
        expect(fwd.map((p) => p.items.length)).toEqual([5, 5, 2]);
        expect(fwd.flatMap((p) => p.items.map(label))).toEqual(expected);
        expect(fwd[0]!.lastKey).toStrictEqual({ pk: S('c'), sk: N(1), g: S('x'), r: N(1) });
        const back = await allPages((start) =>
          t().query('default', {
            table: 't',
            index: 'g',
            partition: S('x'),
            limit: 5,
            forward: false,
            exclusiveStartKey: start,
          }),
        );
        expect(back.flatMap((p) => p.items.map(label))).toEqual([...expected].reverse());
        const scanned = await allPages((start) =>
          t().scan('default', { table: 't', index: 'g', limit: 4, exclusiveStartKey: start }),
        );
        expect(scanned.flatMap((p) => p.items.map(label))).toEqual([...expected, '1/z/1']);
      });

      it('fills an index added by updateTable from the existing items, and empties a removed one', async () => {
        const stored = await create(tableDef('t'));
        await put('t', { pk: S('a'), sk: N(1), color: S('red') });
        await put('t', { pk: S('b'), sk: N(1), color: S('red'), size: N(3) });
        await put('t', { pk: S('c'), sk: N(1), color: N(7) });
        await put('t', { pk: S('d'), sk: N(1) });
        const byColor: IndexDef = {
          name: 'byColor',
          kind: 'global',
          key: { partition: { name: 'color', type: 'S' } },
          projection: { type: 'INCLUDE', attributes: ['size'] },
        };
        await t().updateTable('default', { ...stored, indexes: [byColor] });
        const red = await t().query('default', { table: 't', index: 'byColor', partition: S('red') });
        // The item whose color is a number is left out of the new index, not refused.
        expect(red.items).toStrictEqual([
          { pk: S('a'), sk: N(1), color: S('red') },
          { pk: S('b'), sk: N(1), color: S('red'), size: N(3) },
        ]);
        expect((await t().scan('default', { table: 't', index: 'byColor' })).items).toHaveLength(2);
        // New writes maintain it.
        await put('t', { pk: S('d'), sk: N(1), color: S('red') });
        expect(
          (await t().query('default', { table: 't', index: 'byColor', partition: S('red') })).items,
        ).toHaveLength(3);

        // A changed definition is rebuilt with it.
        await t().updateTable('default', {
          ...stored,
          indexes: [{ ...byColor, projection: { type: 'ALL' } }],
        });
        expect(
          (await t().query('default', { table: 't', index: 'byColor', partition: S('red') })).items[1],
        ).toStrictEqual({
          pk: S('b'),
          sk: N(1),
          color: S('red'),
          size: N(3),
        });

        await t().updateTable('default', { ...stored, indexes: [] });
        await expect(
          t().query('default', { table: 't', index: 'byColor', partition: S('red') }),
        ).rejects.toThrow('The table does not have the specified index: byColor');
        await t().updateTable('default', { ...stored, indexes: [byColor] });
        expect((await t().scan('default', { table: 't', index: 'byColor' })).items).toHaveLength(3);
      });
    });

    describe('scan', () => {
      const seed = async (n: number) => {
        await create(tableDef('t'));
        for (let i = 0; i < n; i++) await put('t', { pk: S(`p${i % 17}`), sk: N(i) });
      };
      const label = (i: Item) => `${attr([i], 'pk')[0]}/${attr([i], 'sk')[0]}`;

      it('returns every item in key order, a page at a time', async () => {
        await seed(60);
        const pages = await allPages((start) =>
          t().scan('default', { table: 't', limit: 25, exclusiveStartKey: start }),
        );
        expect(pages.map((p) => p.items.length)).toEqual([25, 25, 10]);
        const seen = pages.flatMap((p) => p.items);
        // Partition keys are ASCII here, so JavaScript's string order is their byte order.
        const pkOf = (i: Item) => attr([i], 'pk')[0] as string;
        const expected = [...seen].sort(
          (a, b) =>
            (pkOf(a) < pkOf(b) ? -1 : pkOf(a) > pkOf(b) ? 1 : 0) ||
            Number(attr([a], 'sk')[0]) - Number(attr([b], 'sk')[0]),
        );
        expect(seen.map(label)).toEqual(expected.map(label));
        expect(new Set(seen.map(label)).size).toBe(60);
      });

      it('splits the items into segments: each item in exactly one, whatever the total', async () => {
        await seed(120);
        const all = (await t().scan('default', { table: 't' })).items.map(label).sort();
        expect(all).toHaveLength(120);
        for (const total of [1, 2, 3, 7, 1000]) {
          const seen: string[] = [];
          for (let segment = 0; segment < total; segment++) {
            const pages = await allPages((start) =>
              t().scan('default', {
                table: 't',
                segment,
                totalSegments: total,
                limit: 7,
                exclusiveStartKey: start,
              }),
            );
            seen.push(...pages.flatMap((p) => p.items.map(label)));
          }
          expect(seen.sort()).toEqual(all);
        }
        // Items of one partition are in one segment.
        const segs = new Map<string, number>();
        for (let segment = 0; segment < 3; segment++) {
          const page = await t().scan('default', { table: 't', segment, totalSegments: 3 });
          for (const i of page.items) {
            const pk = attr([i], 'pk')[0] as string;
            expect(segs.get(pk) ?? segment).toBe(segment);
            segs.set(pk, segment);
          }
        }
        expect(new Set(segs.values()).size).toBeGreaterThan(1);
      });

      it('refuses a segment outside its total', async () => {
        await seed(1);
        for (const [segment, totalSegments] of [
          [3, 3],
          [-1, 3],
          [0, 0],
          [0, 1_000_001],
          [1, undefined],
          [undefined, 2],
        ] as const) {
          await expect(t().scan('default', { table: 't', segment, totalSegments })).rejects.toBeInstanceOf(
            TableInputError,
          );
        }
      });
    });

    describe('writes', () => {
      it('writes what decide returns: an item, null to delete, undefined to leave it, given the current item', async () => {
        await create(tableDef('t'));
        const key = { pk: S('a'), sk: N(1) };
        const seen: (Item | undefined)[] = [];
        const w = (decide: (cur: Item | undefined) => Item | null | undefined) =>
          t().write('default', {
            table: 't',
            key,
            decide: (cur) => {
              seen.push(cur);
              return decide(cur);
            },
          });
        expect(await w(() => undefined)).toEqual({ old: undefined, new: undefined });
        expect(await w(() => null)).toEqual({ old: undefined, new: undefined });
        expect(await t().getTable('default', 't')).toMatchObject({ itemCount: 0 });
        const v1 = { ...key, v: N(1) };
        expect(await w(() => v1)).toStrictEqual({ old: undefined, new: v1 });
        const v2 = { ...key, v: N(2) };
        expect(await w((cur) => ({ ...cur!, v: N(Number((cur!.v as { N: string }).N) + 1) }))).toStrictEqual({
          old: v1,
          new: v2,
        });
        expect(await w(() => undefined)).toStrictEqual({ old: v2, new: v2 });
        expect(await t().getItem('default', 't', key)).toStrictEqual(v2);
        expect(await w(() => null)).toStrictEqual({ old: v2, new: undefined });
        expect(await t().getItem('default', 't', key)).toBeUndefined();
        expect(seen).toStrictEqual([undefined, undefined, undefined, v1, v2, v2]);
      });

      it('rethrows what decide throws, writing nothing', async () => {
        await create(tableDef('t'));
        const key = { pk: S('a'), sk: N(1) };
        await put('t', { ...key, v: N(1) });
        const boom = new Error('condition failed');
        await expect(
          t().write('default', {
            table: 't',
            key,
            decide: () => {
              throw boom;
            },
          }),
        ).rejects.toBe(boom);
        expect(await t().getItem('default', 't', key)).toStrictEqual({ ...key, v: N(1) });
      });

      it('applies concurrent read-modify-writes of one item one after the other', async () => {
        await create(tableDef('t'));
        const key = { pk: S('counter'), sk: N(0) };
        await Promise.all(
          Array.from({ length: 25 }, () =>
            t().write('default', {
              table: 't',
              key,
              decide: (cur) => ({ ...key, n: N(Number((cur?.n as { N: string } | undefined)?.N ?? 0) + 1) }),
            }),
          ),
        );
        expect(await t().getItem('default', 't', key)).toStrictEqual({ ...key, n: N(25) });
      });

      it('refuses an item over 400 KB, writing nothing (no item, entry, count or stream record)', async () => {
        await create(
          tableDef('t', {
            stream: { viewType: 'NEW_AND_OLD_IMAGES' },
            indexes: [
              {
                name: 'g',
                kind: 'global',
                key: { partition: { name: 'g', type: 'S' } },
                projection: { type: 'ALL' },
              },
            ],
          }),
        );
        const key = { pk: S('a'), sk: N(1) };
        await put('t', { ...key, g: S('old') });
        const fill = 400 * 1024 - itemSize({ ...key, g: S('new'), big: S('') });
        const fits = { ...key, g: S('new'), big: S('x'.repeat(fill)) };
        expect(itemSize(fits)).toBe(400 * 1024);
        const before = await t().getTable('default', 't');
        const err = await put('t', { ...fits, big: S('x'.repeat(fill + 1)) }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TableInputError);
        expect((err as Error).message).toBe('Item size has exceeded the maximum allowed size');
        expect(await t().getItem('default', 't', key)).toStrictEqual({ ...key, g: S('old') });
        expect(await t().getTable('default', 't')).toStrictEqual(before);
        expect((await t().query('default', { table: 't', index: 'g', partition: S('new') })).items).toEqual(
          [],
        );
        expect(await t().streamRecords('default', 't', 0, 10)).toHaveLength(1);
        await put('t', fits);
        expect((await t().getItem('default', 't', key))?.g).toEqual(S('new'));
      });
    });

    describe('transact', () => {
      const seed = async () => {
        await create(tableDef('a', { stream: { viewType: 'NEW_IMAGE' } }));
        await create(tableDef('b', { key: { partition: { name: 'id', type: 'S' } } }));
        await put('a', { pk: S('x'), sk: N(1), n: N(1) });
      };

      it('runs every decide against the items as they were, then writes them all', async () => {
        await seed();
        const seen: (Item | undefined)[] = [];
        const results = await t().transact('default', [
          {
            table: 'a',
            key: { pk: S('x'), sk: N(1) },
            decide: (cur) => (seen.push(cur), { ...cur!, n: N(2) }),
          },
          {
            table: 'a',
            key: { pk: S('y'), sk: N(1) },
            decide: (cur) => (seen.push(cur), { pk: S('y'), sk: N(1) }),
          },
          { table: 'b', key: { id: S('k') }, decide: (cur) => (seen.push(cur), { id: S('k'), v: S('v') }) },
          { table: 'b', key: { id: S('none') }, decide: (cur) => (seen.push(cur), undefined) },
        ]);
        expect(seen).toStrictEqual([{ pk: S('x'), sk: N(1), n: N(1) }, undefined, undefined, undefined]);
        expect(results).toStrictEqual([
          { old: { pk: S('x'), sk: N(1), n: N(1) }, new: { pk: S('x'), sk: N(1), n: N(2) } },
          { old: undefined, new: { pk: S('y'), sk: N(1) } },
          { old: undefined, new: { id: S('k'), v: S('v') } },
          { old: undefined, new: undefined },
        ]);
        expect(await t().getItem('default', 'b', { id: S('k') })).toStrictEqual({ id: S('k'), v: S('v') });
        expect((await t().streamRecords('default', 'a', 0, 10)).map((r) => r.eventName)).toEqual([
          'INSERT',
          'MODIFY',
          'INSERT',
        ]);
      });

      it('writes nothing when a decide throws, and rethrows its error with the writeIndex', async () => {
        await seed();
        const boom = new Error('condition failed');
        const err = await t()
          .transact('default', [
            { table: 'a', key: { pk: S('x'), sk: N(1) }, decide: () => null },
            { table: 'b', key: { id: S('k') }, decide: () => ({ id: S('k') }) },
            {
              table: 'a',
              key: { pk: S('z'), sk: N(1) },
              decide: () => {
                throw boom;
              },
            },
          ])
          .catch((e: unknown) => e);
        expect(err).toBe(boom);
        expect(err).toMatchObject({ writeIndex: 2 });
        expect(await t().getItem('default', 'a', { pk: S('x'), sk: N(1) })).toBeDefined();
        expect(await t().getItem('default', 'b', { id: S('k') })).toBeUndefined();
        expect(await t().streamRecords('default', 'a', 0, 10)).toHaveLength(1);

        // The table's refusal of a decided item counts the same way.
        const big = await t()
          .transact('default', [
            { table: 'b', key: { id: S('k') }, decide: () => ({ id: S('k') }) },
            {
              table: 'a',
              key: { pk: S('x'), sk: N(1) },
              decide: () => ({ pk: S('x'), sk: N(1), b: S('x'.repeat(410_000)) }),
            },
          ])
          .catch((e: unknown) => e);
        expect(big).toBeInstanceOf(TableInputError);
        expect(big).toMatchObject({ writeIndex: 1 });
        expect(await t().getItem('default', 'b', { id: S('k') })).toBeUndefined();
      });

      it('refuses two operations on one item, writing nothing', async () => {
        await seed();
        const err = await t()
          .transact('default', [
            { table: 'b', key: { id: S('k') }, decide: () => ({ id: S('k') }) },
            { table: 'a', key: { pk: S('x'), sk: N('1.0') }, decide: () => null },
            { table: 'a', key: { pk: S('x'), sk: N(1) }, decide: () => null },
          ])
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(TableInputError);
        expect((err as Error).message).toBe(
          'Transaction request cannot include multiple operations on one item',
        );
        expect(await t().getItem('default', 'b', { id: S('k') })).toBeUndefined();
        expect(await t().getItem('default', 'a', { pk: S('x'), sk: N(1) })).toBeDefined();
      });
    });

    describe('streams', () => {
      it('records INSERT, MODIFY and REMOVE in order with both images, and nothing when nothing changed', async () => {
        await create(tableDef('t', { stream: { viewType: 'NEW_AND_OLD_IMAGES' } }));
        const key = { pk: S('a'), sk: N(1) };
        const v1 = { ...key, m: { M: { x: N('1.50'), y: { SS: ['a', 'b'] } } } };
        const t0 = ctx.clock.now();
        await put('t', v1);
        ctx.clock.advance(10);
        // The same item written again (keys in another order, an equal number, a set reordered): no record.
        await put('t', { m: { M: { y: { SS: ['b', 'a'] }, x: N('1.5') } }, sk: N(1), pk: S('a') });
        await t().write('default', { table: 't', key, decide: () => undefined });
        const v2 = { ...key, v: S('two') };
        await put('t', v2);
        ctx.clock.advance(10);
        await del('t', key);
        await del('t', key);
        const records = await t().streamRecords('default', 't', 0, 100);
        expect(records.map((r) => [r.eventName, r.at])).toEqual([
          ['INSERT', t0],
          ['MODIFY', t0 + 10],
          ['REMOVE', t0 + 20],
        ]);
        const seqs = records.map((r) => r.seq);
        expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
        expect(new Set(seqs).size).toBe(3);
        expect(records[0]).toStrictEqual({
          seq: seqs[0],
          table: 't',
          eventName: 'INSERT',
          keys: key,
          newImage: v1,
          at: t0,
          sizeBytes: itemSize(key) + itemSize(v1),
        });
        expect(records[1]).toMatchObject({ keys: key, newImage: v2 });
        // The old image is the item as stored before the write: the second put of v1.
        expect(records[1]!.oldImage).toMatchObject({ m: { M: { x: N('1.5') } } });
        expect(records[2]).toStrictEqual({
          seq: seqs[2],
          table: 't',
          eventName: 'REMOVE',
          keys: key,
          oldImage: v2,
          at: t0 + 20,
          sizeBytes: itemSize(key) + itemSize(v2),
        });
        expect(await t().streamRecords('default', 't', seqs[0]!, 1)).toStrictEqual([records[1]]);
        expect(await t().streamRecords('default', 't', seqs[2]!, 10)).toEqual([]);
      });

      it('stores the images the view type asks for', async () => {
        const key = { pk: S('a'), sk: N(1) };
        for (const viewType of ['KEYS_ONLY', 'NEW_IMAGE', 'OLD_IMAGE', 'NEW_AND_OLD_IMAGES'] as const) {
          await create(tableDef(viewType, { stream: { viewType } }));
          await put(viewType, { ...key, v: N(1) });
          await put(viewType, { ...key, v: N(2) });
          await del(viewType, key);
          const images = (await t().streamRecords('default', viewType, 0, 10)).map((r) => [
            r.eventName,
            r.keys,
            r.newImage?.v,
            r.oldImage?.v,
          ]);
          const newer = viewType === 'NEW_IMAGE' || viewType === 'NEW_AND_OLD_IMAGES';
          const older = viewType === 'OLD_IMAGE' || viewType === 'NEW_AND_OLD_IMAGES';
          expect(images, viewType).toEqual([
            ['INSERT', key, newer ? N(1) : undefined, undefined],
            ['MODIFY', key, newer ? N(2) : undefined, older ? N(1) : undefined],
            ['REMOVE', key, undefined, older ? N(2) : undefined],
          ]);
        }
      });

      it('records only while the stream is on', async () => {
        const stored = await create(tableDef('t'));
        await put('t', { pk: S('a'), sk: N(1) });
        expect(await t().streamRecords('default', 't', 0, 10)).toEqual([]);
        await t().updateTable('default', { ...stored, stream: { viewType: 'KEYS_ONLY' } });
        await put('t', { pk: S('b'), sk: N(1) });
        await t().updateTable('default', stored);
        await put('t', { pk: S('c'), sk: N(1) });
        const records = await t().streamRecords('default', 't', 0, 10);
        expect(records.map((r) => r.keys.pk)).toEqual([S('b')]);
      });

      it('counts the latest sequence number, and starts a new stream without the records of the last', async () => {
        const stored = await create(tableDef('t', { stream: { viewType: 'KEYS_ONLY' } }));
        expect(stored.streamSeq).toBe(0);
        await put('t', { pk: S('a'), sk: N(1) });
        await put('t', { pk: S('b'), sk: N(1) });
        const seqs = (await t().streamRecords('default', 't', 0, 10)).map((r) => r.seq);
        expect((await t().getTable('default', 't'))?.streamSeq).toBe(seqs.at(-1));
        // Off: no more records come.
        await t().updateTable('default', tableDef('t'));
        await put('t', { pk: S('c'), sk: N(1) });
        expect((await t().streamRecords('default', 't', 0, 10)).map((r) => r.seq)).toEqual(seqs);
        expect((await t().getTable('default', 't'))?.streamSeq).toBe(seqs.at(-1));
        // On again: a new stream, which starts empty and counts on from the last number.
        await t().updateTable('default', tableDef('t', { stream: { viewType: 'KEYS_ONLY' } }));
        expect(await t().streamRecords('default', 't', 0, 10)).toEqual([]);
        await put('t', { pk: S('d'), sk: N(1) });
        const next = await t().streamRecords('default', 't', 0, 10);
        expect(next.map((r) => [r.keys.pk, r.seq])).toEqual([[S('d'), seqs.at(-1)! + 1]]);
        expect((await t().getTable('default', 't'))?.streamSeq).toBe(seqs.at(-1)! + 1);
        expect((await t().listTables('default'))[0]?.streamSeq).toBe(seqs.at(-1)! + 1);
      });

      it("keeps each consumer's cursor, apart from the others', until the table goes", async () => {
        await create(tableDef('t', { stream: { viewType: 'KEYS_ONLY' } }));
        expect(await t().streamCursor('default', 't', 'fn-a')).toBeUndefined();
        await t().setStreamCursor('default', 't', 'fn-a', 5);
        await t().setStreamCursor('default', 't', 'fn-b', 2);
        await t().setStreamCursor('default', 't', 'fn-a', 7);
        expect(await t().streamCursor('default', 't', 'fn-a')).toBe(7);
        expect(await t().streamCursor('default', 't', 'fn-b')).toBe(2);
        expect(await t().streamCursor('other', 't', 'fn-a')).toBeUndefined();
        await ctx.reopen();
        expect(await t().streamCursor('default', 't', 'fn-a')).toBe(7);
        await expect(t().setStreamCursor('default', 'nope', 'fn-a', 1)).rejects.toBeInstanceOf(
          TableNotFoundError,
        );
        await t().deleteTable('default', 't');
        await create(tableDef('t', { stream: { viewType: 'KEYS_ONLY' } }));
        expect(await t().streamCursor('default', 't', 'fn-a')).toBeUndefined();
      });

      it('keeps records 24 hours', async () => {
        await create(tableDef('t', { stream: { viewType: 'KEYS_ONLY' } }));
        await put('t', { pk: S('old'), sk: N(1) });
        ctx.clock.advance(20 * 3600_000);
        await put('t', { pk: S('new'), sk: N(1) });
        ctx.clock.advance(5 * 3600_000);
        await t().expire(ctx.clock.now() / 1000, 100);
        expect((await t().streamRecords('default', 't', 0, 10)).map((r) => r.keys.pk)).toEqual([S('new')]);
      });
    });

    describe('TTL', () => {
      it('deletes items whose TTL number has passed, with REMOVE records marked as the service', async () => {
        const stored = await create(
          tableDef('t', {
            ttlAttribute: 'exp',
            stream: { viewType: 'OLD_IMAGE' },
            indexes: [
              {
                name: 'g',
                kind: 'global',
                key: { partition: { name: 'g', type: 'S' } },
                projection: { type: 'KEYS_ONLY' },
              },
            ],
          }),
        );
        const now = Math.floor(ctx.clock.now() / 1000);
        const items: Item[] = [
          { pk: S('past'), sk: N(1), exp: N(now - 10), g: S('x') },
          { pk: S('now'), sk: N(1), exp: N(`${now}.0`) },
          { pk: S('future'), sk: N(1), exp: N(now + 10) },
          { pk: S('string'), sk: N(1), exp: S(String(now - 10)) },
          { pk: S('ancient'), sk: N(1), exp: N(now - 6 * 365 * 24 * 3600) },
          { pk: S('none'), sk: N(1) },
        ];
        for (const i of items) await put('t', i);
        const seqBefore = (await t().streamRecords('default', 't', 0, 100)).at(-1)!.seq;
        expect(await t().expire(now, 100)).toBe(2);
        expect(attr(await t().scan('default', { table: 't' }), 'pk').sort()).toEqual([
          'ancient',
          'future',
          'none',
          'string',
        ]);
        expect((await t().query('default', { table: 't', index: 'g', partition: S('x') })).items).toEqual([]);
        expect((await t().getTable('default', 't'))?.itemCount).toBe(4);
        const removed = await t().streamRecords('default', 't', seqBefore, 100);
        expect(
          removed.map((r) => [r.eventName, (r.keys.pk as { S: string }).S, r.userIdentity]).sort(),
        ).toEqual([
          ['REMOVE', 'now', { type: 'Service', principalId: 'dynamodb.amazonaws.com' }],
          ['REMOVE', 'past', { type: 'Service', principalId: 'dynamodb.amazonaws.com' }],
        ]);
        expect(removed.find((r) => (r.keys.pk as { S: string }).S === 'past')?.oldImage).toStrictEqual(
          items[0],
        );
        expect(await t().expire(now, 100)).toBe(0);
        expect(await t().expire(now + 10, 100)).toBe(1);

        // Moving the TTL attribute takes effect on the items there are.
        await t().updateTable('default', { ...stored, ttlAttribute: 'other' });
        await put('t', { pk: S('later'), sk: N(1), exp: N(now), other: N(now + 20) });
        expect(await t().expire(now + 15, 100)).toBe(0);
        await t().updateTable('default', { ...stored, ttlAttribute: undefined });
        expect(await t().expire(now + 1000, 100)).toBe(0);
        await t().updateTable('default', { ...stored, ttlAttribute: 'exp' });
        expect(await t().expire(now + 15, 100)).toBe(1);
        expect(attr(await t().scan('default', { table: 't' }), 'pk').sort()).toEqual([
          'ancient',
          'none',
          'string',
        ]);
      });

      it('expires across tables and projects, at most limit at a time', async () => {
        await ctx.store.projects.ensure('p2');
        await create(tableDef('a', { ttlAttribute: 'exp' }));
        await create(tableDef('b', { ttlAttribute: 'exp' }));
        await create(tableDef('a', { ttlAttribute: 'exp' }), 'p2');
        for (let i = 0; i < 5; i++) {
          await put('a', { pk: S(`k${i}`), sk: N(i), exp: N(100 + i) });
          await put('b', { pk: S(`k${i}`), sk: N(i), exp: N(100 + i) });
          await put('a', { pk: S(`k${i}`), sk: N(i), exp: N(100 + i) }, 'p2');
        }
        expect(await t().expire(200, 6)).toBe(6);
        expect(await t().expire(200, 100)).toBe(9);
        for (const [project, table] of [
          ['default', 'a'],
          ['default', 'b'],
          ['p2', 'a'],
        ] as const) {
          expect((await t().getTable(project, table))?.itemCount).toBe(0);
        }
      });
    });

    describe('projects', () => {
      it('keeps tables of the same name in two projects apart', async () => {
        await ctx.store.projects.ensure('p2');
        await create(tableDef('t'));
        await create(tableDef('t', { key: { partition: { name: 'id', type: 'N' } } }), 'p2');
        await put('t', { pk: S('a'), sk: N(1), v: S('default') });
        await put('t', { id: N(1), v: S('p2') }, 'p2');
        expect(await t().getItem('default', 't', { pk: S('a'), sk: N(1) })).toMatchObject({
          v: S('default'),
        });
        expect(await t().getItem('p2', 't', { id: N(1) })).toMatchObject({ v: S('p2') });
        expect((await t().scan('p2', { table: 't' })).items).toStrictEqual([{ id: N(1), v: S('p2') }]);
        expect((await t().listTables('p2')).map((x) => [x.project, x.name, x.itemCount])).toEqual([
          ['p2', 't', 1],
        ]);
        await expect(t().getTable('p3', 't')).resolves.toBeUndefined();
        expect(await t().deleteTable('p2', 't')).toBe(true);
        expect(await t().getItem('default', 't', { pk: S('a'), sk: N(1) })).toMatchObject({
          v: S('default'),
        });
        expect(await t().listTables('p2')).toEqual([]);
        expect((await t().listTables('default')).map((x) => x.name)).toEqual(['t']);
      });
    });
  });

  describe(`TableStore conformance: ${name}, item collections under a small limit`, () => {
    const LIMIT = 1000;
    const ctx = useHarness(() => make({ itemCollectionLimit: LIMIT }));
    const t = () => ctx.store.tables;
    const byDate: IndexDef = {
      name: 'byDate',
      kind: 'local',
      key: { partition: { name: 'pk', type: 'S' }, sort: { name: 'date', type: 'S' } },
      projection: { type: 'ALL' },
    };
    const item = (pk: string, sk: number, bytes: number): Item => ({
      pk: S(pk),
      sk: N(sk),
      date: S('2026-12-02'),
      pad: S('x'.repeat(bytes)),
    });
    const put = (table: string, i: Item) =>
      t().write('default', { table, key: { pk: i.pk!, sk: i.sk! }, decide: () => i });
    const entryBytes = (i: Item) => Buffer.byteLength(JSON.stringify(i));

    it('refuses a write that would grow an item collection past the limit, and writes nothing of it', async () => {
      await t().createTable('default', tableDef('t', { indexes: [byDate] }), null);
      const first = item('a', 1, 300);
      const r = await put('t', first);
      // The item and its entry in the local index (projected ALL: the item again).
      expect(r.collectionBytes).toBe(itemSize(first) + entryBytes(first));
      const err = await put('t', item('a', 2, 300)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ItemCollectionSizeLimitError);
      expect(err).toMatchObject({ name: 'ItemCollectionSizeLimitError', table: 't', limit: LIMIT });
      expect(await t().getItem('default', 't', { pk: S('a'), sk: N(2) })).toBeUndefined();
      expect(
        (await t().query('default', { table: 't', index: 'byDate', partition: S('a') })).items,
      ).toHaveLength(1);
      expect(await t().getTable('default', 't')).toMatchObject({ itemCount: 1 });
      // Another partition is another collection; shrinking one makes room in it again.
      await expect(put('t', item('b', 1, 300))).resolves.toMatchObject({ new: item('b', 1, 300) });
      const smaller = item('a', 1, 10);
      expect((await put('t', smaller)).collectionBytes).toBe(itemSize(smaller) + entryBytes(smaller));
      await expect(put('t', item('a', 2, 300))).resolves.toBeDefined();
      const gone = await t().write('default', {
        table: 't',
        key: { pk: S('a'), sk: N(2) },
        decide: () => null,
      });
      expect(gone.collectionBytes).toBe(itemSize(smaller) + entryBytes(smaller));
    });

    it('refuses a whole transaction when one of its writes overfills a collection', async () => {
      await t().createTable('default', tableDef('t', { indexes: [byDate] }), null);
      const ok = item('b', 1, 10);
      const big = [item('a', 1, 300), item('a', 2, 300)];
      const err = await t()
        .transact(
          'default',
          [ok, ...big].map((i) => ({ table: 't', key: { pk: i.pk!, sk: i.sk! }, decide: () => i })),
        )
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ItemCollectionSizeLimitError);
      expect((err as { writeIndex?: number }).writeIndex).toBeGreaterThanOrEqual(1);
      expect(await t().getItem('default', 't', { pk: S('b'), sk: N(1) })).toBeUndefined();
    });

    it('measures no collection on a table without a local index, whatever its size', async () => {
      await t().createTable('default', tableDef('plain'), null);
      for (let sk = 1; sk <= 3; sk++) {
        expect((await put('plain', item('a', sk, 600))).collectionBytes).toBeUndefined();
      }
    });

    it('measures the items already there when a partition is first written (after a local index is added)', async () => {
      await t().createTable('default', tableDef('t'), null);
      const before = item('a', 1, 300);
      await put('t', before);
      await t().updateTable('default', tableDef('t', { indexes: [byDate] }));
      const err = await put('t', item('a', 2, 300)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ItemCollectionSizeLimitError);
      const tiny = item('a', 3, 1);
      expect((await put('t', tiny)).collectionBytes).toBe(
        itemSize(before) + entryBytes(before) + itemSize(tiny) + entryBytes(tiny),
      );
      // Dropping the local index and adding it back measures the collection again from its rows.
      await t().updateTable('default', tableDef('t'));
      await put('t', item('a', 5, 300));
      await t().updateTable('default', tableDef('t', { indexes: [byDate] }));
      await expect(put('t', item('a', 6, 1))).rejects.toBeInstanceOf(ItemCollectionSizeLimitError);
      await t().write('default', { table: 't', key: { pk: S('a'), sk: N(5) }, decide: () => null });
      // Survives a restart: the sizes are stored, not kept in memory.
      await ctx.reopen();
      await expect(put('t', item('a', 4, 300))).rejects.toBeInstanceOf(ItemCollectionSizeLimitError);
    });
  });
}

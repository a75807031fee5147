import { defineCommand, UsageError } from '../command.js';
import { table } from '../format.js';

const ACTIONS = ['ls', 'scan', 'get', 'rm'] as const;

export default defineCommand({
  name: 'table',
  aliases: ['tables'],
  summary: 'List tables, read their items, or drop one',
  description:
    'Tables are declared under "tables:" in a nimbus.yaml (or created through the DynamoDB API).\n' +
    '  nimbus table ls                   every table: key, indexes, stream, items, size\n' +
    '  nimbus table scan <t> [--limit N] the first items (default 25), one JSON object a line\n' +
    '  nimbus table get <t> <key-json>   one item, e.g. nimbus table get items \'{"id":"a1"}\'\n' +
    '  nimbus table rm <t> --yes         drops the table and every item in it',
  args: [
    { name: 'action', description: 'ls, scan, get or rm', required: true },
    { name: 'table', description: 'The table (scan, get, rm)' },
    { name: 'key', description: 'The key as JSON (get)' },
  ],
  options: {
    limit: { type: 'number', description: 'Items scan shows (1..1000, default 25)', placeholder: 'n' },
    yes: { type: 'boolean', description: 'Confirm rm: its items are deleted' },
  },
  examples: [
    'nimbus table ls',
    'nimbus table scan items --limit 10',
    'nimbus table get items \'{"id":"a1"}\'',
  ],
  async run(ctx) {
    const action = ctx.args['action']!;
    const name = ctx.args['table'];
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new UsageError(`"${action}" is not a table action`, `use one of: ${ACTIONS.join(', ')}`);
    }
    const client = ctx.client();
    if (action === 'ls') {
      const tables = await client.tables();
      if (ctx.json) return ctx.printJson({ tables });
      if (tables.length === 0) {
        ctx.out('No tables yet. Declare one under "tables:" in a nimbus.yaml and deploy it.');
        return;
      }
      ctx.out(
        table(
          ['table', 'key', 'indexes', 'stream', 'ttl', 'items', 'size'],
          tables.map((t) => [
            t.name,
            `${t.key.partition.name} ${t.key.partition.type}${t.key.sort ? `, ${t.key.sort.name} ${t.key.sort.type}` : ''}`,
            t.indexes.map((i) => i.name).join(', ') || '-',
            t.stream ?? '-',
            t.ttlAttribute ?? '-',
            String(t.itemCount),
            `${t.sizeBytes} B`,
          ]),
        ),
      );
      return;
    }
    if (!name) throw new UsageError(`nimbus table ${action} needs a table name`, 'see `nimbus table ls`');
    if (action === 'scan') {
      const page = await client.scanTable(name, ctx.options.limit ?? 25);
      if (ctx.json) return ctx.printJson(page);
      if (page.items.length === 0) {
        ctx.out(`${name} is empty.`);
        return;
      }
      for (const item of page.items) ctx.out(JSON.stringify(plain(item)));
      if (page.lastKey) ctx.out(`… more items; raise --limit to see them.`);
      return;
    }
    if (action === 'get') {
      const raw = ctx.args['key'];
      if (!raw)
        throw new UsageError(
          'nimbus table get needs the key as JSON',
          `for example nimbus table get ${name} '{"id":"a1"}'`,
        );
      let key: unknown;
      try {
        key = JSON.parse(raw);
      } catch {
        throw new UsageError('the key is not valid JSON', `for example '{"id":"a1"}'`);
      }
      const item = await client.getTableItem(name, key);
      if (ctx.json) return ctx.printJson({ item });
      ctx.out(JSON.stringify(plain(item), null, 2));
      return;
    }
    if (!ctx.options.yes) {
      throw new UsageError(`nimbus table rm deletes ${name} and every item in it`, 'add --yes to confirm');
    }
    const r = await client.dropTable(name);
    if (ctx.json) return ctx.printJson(r);
    ctx.out(`Dropped table ${r.removed} and its items.`);
  },
});

/** DynamoDB JSON as the plain JSON a person reads (numbers stay exact: big ones print as strings). */
function plain(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const a = v as Record<string, unknown>;
  const [type] = Object.keys(a);
  if (
    Object.keys(a).length === 1 &&
    type !== undefined &&
    ['S', 'N', 'B', 'SS', 'NS', 'BS', 'M', 'L', 'BOOL', 'NULL'].includes(type)
  ) {
    const x = a[type];
    switch (type) {
      case 'N': {
        const n = Number(x);
        return Number.isSafeInteger(n) || String(n) === x ? n : x;
      }
      case 'NS':
        return (x as string[]).map((s) => plain({ N: s }));
      case 'M':
        return Object.fromEntries(
          Object.entries(x as Record<string, unknown>).map(([k, e]) => [k, plain(e)]),
        );
      case 'L':
        return (x as unknown[]).map(plain);
      case 'NULL':
        return null;
      default:
        return x;
    }
  }
  return Object.fromEntries(Object.entries(a).map(([k, e]) => [k, plain(e)]));
}

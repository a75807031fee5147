import { secretRefs } from '../../config/secret-refs.js';
import { defineCommand } from '../command.js';
import { table } from '../format.js';

export default defineCommand({
  name: 'ls',
  aliases: ['list'],
  summary: 'List deployed functions',
  args: [],
  options: {},
  async run(ctx) {
    const client = ctx.client();
    const [{ functions, stemCells = [], gatewayUrl }, queues] = await Promise.all([
      client.list(),
      client.queues(),
    ]);
    if (ctx.json) {
      ctx.printJson({ functions, queues, stemCells, ...(gatewayUrl ? { gatewayUrl } : {}) });
      return;
    }
    // An empty table looks like a failure; say what to do next instead.
    if (functions.length === 0) {
      ctx.out('No functions deployed yet. Deploy a service folder with `nimbus deploy <dir>`.');
      return;
    }
    ctx.out(
      table(
        [
          'name',
          'version',
          'memory',
          'timeout',
          'instances',
          'cold/warm',
          'throttled',
          'evicted',
          'keep-alive',
          'routes',
        ],
        [...functions]
          .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
          .map((f) => {
            const s = f.scaling;
            return [
              f.name,
              String(f.version),
              `${f.memory} MB`,
              `${f.timeout} s`,
              s ? `${s.busy} busy, ${s.idle} idle${s.provisioned ? `, ${s.provisioned} prov` : ''}` : '-',
              s ? `${s.cold}/${s.warm}` : '-',
              s ? String(s.throttled) : '-',
              s ? String(s.evicted) : '-',
              s?.keepAlive ?? '-',
              f.routes.join(', ') || '-',
            ];
          }),
      ),
    );
    if (gatewayUrl && functions.some((f) => f.routes.length > 0)) ctx.out(`Routes served at ${gatewayUrl}`);
    const now = Date.now();
    for (const f of functions) {
      const e = f.events;
      if (e && (e.pending > 0 || e.dead > 0)) {
        const age =
          e.oldestPendingAt === null
            ? ''
            : ` (oldest ${Math.max(0, Math.round((now - e.oldestPendingAt) / 1000))} s)`;
        ctx.out(`Events ${f.name}: ${e.pending} waiting${age}, ${e.inFlight} running, ${e.dead} failed`);
      }
      const refs = secretRefs(f.environment ?? {});
      if (refs.length > 0) {
        ctx.out(`Secrets ${f.name}: ${refs.map((r) => `${r.variable} from ${r.secret}`).join(', ')}`);
      }
      for (const sc of f.schedules ?? []) {
        const tz = sc.timezone === 'UTC' ? '' : ` (${sc.timezone})`;
        const next = sc.nextFireAt === null ? 'never again' : `next ${new Date(sc.nextFireAt).toISOString()}`;
        ctx.out(`Schedule ${f.name}: ${sc.expression}${tz}, ${next}`);
      }
    }
    for (const q of queues) {
      const age =
        q.oldestSentAt === null ? '' : `, oldest ${Math.max(0, Math.round((now - q.oldestSentAt) / 1000))} s`;
      const dead = q.deadLetters === null ? '' : `, ${q.deadLetters} dead letters (${q.deadLetterQueue})`;
      const delayed = q.delayed > 0 ? `, ${q.delayed} delayed` : '';
      ctx.out(
        `Queue ${q.name}${q.fifo ? ' (fifo)' : ''}: ${q.visible} waiting, ${q.inFlight} in flight${delayed}${age}${dead}`,
      );
    }
    if (stemCells.length > 0) {
      ctx.out(
        `Stem cells: ${stemCells.map((c) => `${c.ready} ready of ${c.target} (${c.memoryMB} MB)${c.starting ? `, ${c.starting} booting` : ''}`).join('; ')}`,
      );
    }
  },
});

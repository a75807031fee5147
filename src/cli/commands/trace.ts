// nimbus trace: a trace from the node's span store as a text waterfall, by request id or trace id.
import type { SpanView, TraceView } from '../../client/index.js';
import { defineCommand } from '../command.js';

const BAR = 40;

export default defineCommand({
  name: 'trace',
  summary: 'Show a trace as a waterfall: by request id or trace id',
  description:
    "Reads the spans Nimbus kept (NIMBUS_TRACES, on by default) in the key's project: the gateway request,\n" +
    'the invocation, its admission and cold start, and the AWS calls the function made (see\n' +
    'docs/observability.md, "Traces"). A request id is the x-nimbus-request-id of a gateway answer or the\n' +
    'x-amzn-requestid of an invoke; a trace id is 32 hexadecimal digits.',
  args: [{ name: 'id', required: true, description: 'A request id or a trace id' }],
  options: {},
  examples: [
    'nimbus trace 0193b7a2-5c1e-7d40-9a5e-2f1c3b4d5e6f',
    'nimbus trace 4bf92f3577b34da6a3ce929d0e0e4736 --json',
  ],
  async run(ctx) {
    const trace = await ctx.client().trace(ctx.args['id']!);
    if (ctx.json) return ctx.printJson(trace);
    ctx.out(waterfall(trace));
  },
});

/** One line per span, children under their parent, with a bar placed on the trace's time line. */
export function waterfall(t: TraceView): string {
  const ids = new Set(t.spans.map((s) => s.spanId));
  const children = new Map<string | null, SpanView[]>();
  for (const s of t.spans) {
    // A parent outside the list (a client's span) makes a root here.
    const parent = s.parentSpanId !== null && ids.has(s.parentSpanId) ? s.parentSpanId : null;
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  const start = t.spans.reduce(
    (m, s) => (BigInt(s.startTimeUnixNano) < m ? BigInt(s.startTimeUnixNano) : m),
    BigInt(t.spans[0]!.startTimeUnixNano),
  );
  const end = t.spans.reduce(
    (m, s) => (BigInt(s.endTimeUnixNano) > m ? BigInt(s.endTimeUnixNano) : m),
    start,
  );
  const total = Number(end - start) || 1;
  const rows: [string, string, string, string][] = [];
  const walk = (parent: string | null, depth: number): void => {
    for (const s of children.get(parent) ?? []) {
      const from = Math.floor((Number(BigInt(s.startTimeUnixNano) - start) / total) * BAR);
      const width = Math.max(
        1,
        Math.round((Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / total) * BAR),
      );
      const bar =
        ' '.repeat(Math.min(from, BAR - 1)) + '█'.repeat(Math.min(width, BAR - Math.min(from, BAR - 1)));
      const status =
        s.status.code === 'ERROR' ? `ERROR${s.status.message ? ` ${s.status.message}` : ''}` : '';
      rows.push([
        `${'  '.repeat(depth)}${s.name}`,
        `${s.durationMs.toFixed(2)} ms`,
        `|${bar.padEnd(BAR)}|`,
        status,
      ]);
      walk(s.spanId, depth + 1);
    }
  };
  walk(null, 0);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const head = `trace ${t.traceId}: ${t.spans.length} span${t.spans.length === 1 ? '' : 's'}, ${(total / 1e6).toFixed(2)} ms`;
  return [
    head,
    ...rows.map((r) => `${r[0].padEnd(w0)}  ${r[1].padStart(w1)}  ${r[2]}${r[3] ? `  ${r[3]}` : ''}`),
  ].join('\n');
}

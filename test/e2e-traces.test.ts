// Traces end to end, on each backend: a real OTLP/HTTP receiver (a server in this test decoding the exporter's
// JSON) gets the span tree of gateway requests (gateway → invocation → admission, cold start → pool take, code
// link, init) with their attributes; a client's traceparent is continued; the function sees the trace as
// _X_AMZN_TRACE_ID and as the event's traceparent; a DynamoDB call made with the provided SDK is a child span
// in the same trace; the control API answers the same tree from the local store; a malformed traceparent
// starts a new trace instead of failing; an async invocation is a root of its own; and with sampling ratio 0
// nothing is exported or kept.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, eventually, FIXTURES, runNimbus, startTestNimbus, type TestNimbus } from './helpers.js';

/** A span as the OTLP receiver decoded it. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code?: number; message?: string };
  attributes: Record<string, unknown>;
  service: unknown;
}

/** What GET /v1/traces answers. */
interface ApiTrace {
  traceId: string;
  spans: {
    traceId: string;
    spanId: string;
    parentSpanId: string | null;
    name: string;
    kind: string;
    startTimeUnixNano: string;
    endTimeUnixNano: string;
    durationMs: number;
    status: { code: string; message?: string };
    attributes: Record<string, unknown>;
  }[];
}

const SERVER_KIND = 2;
const STATUS_ERROR = 2;

/** OTLP/JSON ids are hex; a protobuf-minded encoder would send base64: accept both. */
function hexId(v: unknown): string {
  if (typeof v !== 'string' || v === '') return '';
  return /^[0-9a-f]+$/.test(v) && (v.length === 32 || v.length === 16)
    ? v
    : Buffer.from(v, 'base64').toString('hex');
}

function anyValue(v: Record<string, unknown>): unknown {
  if ('stringValue' in v) return v['stringValue'];
  if ('boolValue' in v) return v['boolValue'];
  if ('intValue' in v) return Number(v['intValue']);
  if ('doubleValue' in v) return v['doubleValue'];
  if ('arrayValue' in v) {
    const values = (v['arrayValue'] as { values?: Record<string, unknown>[] }).values ?? [];
    return values.map(anyValue);
  }
  return undefined;
}

function attrs(list: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of (list as { key: string; value: Record<string, unknown> }[] | undefined) ?? []) {
    out[a.key] = anyValue(a.value);
  }
  return out;
}

/** An OTLP/HTTP trace receiver: POST /v1/traces with the JSON encoding of ExportTraceServiceRequest. */
class Receiver {
  readonly spans: OtlpSpan[] = [];
  readonly contentTypes = new Set<string>();
  readonly headers: Record<string, string | string[] | undefined>[] = [];
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.contentTypes.add(String(req.headers['content-type']));
        this.headers.push(req.headers);
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans?: {
            resource?: { attributes?: unknown };
            scopeSpans?: { spans?: Record<string, unknown>[] }[];
          }[];
        };
        for (const rs of body.resourceSpans ?? []) {
          const service = attrs(rs.resource?.attributes)['service.name'];
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              this.spans.push({
                traceId: hexId(s['traceId']),
                spanId: hexId(s['spanId']),
                parentSpanId: hexId(s['parentSpanId']) || null,
                name: String(s['name']),
                kind: Number(s['kind']),
                startTimeUnixNano: String(s['startTimeUnixNano']),
                endTimeUnixNano: String(s['endTimeUnixNano']),
                status: (s['status'] as OtlpSpan['status'] | undefined) ?? {},
                attributes: attrs(s['attributes']),
                service,
              });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  trace(traceId: string): OtlpSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

/** Runs start with these OTEL_* variables set (the SDK reads them when Nimbus builds its tracer). */
async function withEnv<T>(vars: Record<string, string>, start: () => Promise<T>): Promise<T> {
  const before = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await start();
  } finally {
    for (const [k, v] of Object.entries(before)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const hex = (n: number) =>
  Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');

describe.each(BACKENDS)('traces on %s', (backend) => {
  let n: TestNimbus;
  const receiver = new Receiver();
  const api = (path: string, key = n.apiKey) =>
    fetch(`${n.apiUrl}${path}`, { headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    const url = await receiver.start();
    n = await withEnv(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: url,
        OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=nimbus-test',
        OTEL_SERVICE_NAME: 'nimbus-e2e',
        OTEL_BSP_SCHEDULE_DELAY: '50',
        OTEL_TRACES_SAMPLER: 'parentbased_always_on',
      },
      () => startTestNimbus({ backend }),
    );
    await n.deploy(join(FIXTURES, 'traced'));
  });
  afterAll(async () => {
    await n?.cleanup();
    await receiver.stop();
  });

  /** The spans of a trace, once the receiver has `count` of them. */
  const exported = (traceId: string, count: number) =>
    eventually(async () => {
      const spans = receiver.trace(traceId);
      return spans.length >= count ? spans : undefined;
    });

  it("continues a client's traceparent through the gateway into the function, and exports the span tree", async () => {
    const traceId = hex(32);
    const clientSpan = hex(16);
    const res = await fetch(`${n.gatewayUrl}/echo/7`, {
      headers: { traceparent: `00-${traceId}-${clientSpan}-01`, tracestate: 'vendor=abc' },
    });
    expect(res.status).toBe(200);
    const requestId = res.headers.get('x-nimbus-request-id')!;
    const seen = (await res.json()) as { xray: string; traceparent: string; tracestate: string };

    // Gateway, invocation, admission, cold start and its three steps.
    const spans = await exported(traceId, 7);
    const byName = (name: string) => {
      const s = spans.find((x) => x.name === name);
      expect(s, `span "${name}" in ${spans.map((x) => x.name).join(', ')}`).toBeDefined();
      return s!;
    };
    const gateway = byName('GET /echo/{id}');
    const invocation = byName('echo');
    const cold = byName('cold start');
    expect(gateway.parentSpanId).toBe(clientSpan);
    expect(gateway.kind).toBe(SERVER_KIND);
    expect(gateway.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/echo/{id}',
      'url.path': '/echo/7',
      'http.response.status_code': 200,
      'faas.name': 'echo',
      'nimbus.project': 'default',
    });
    expect(invocation.parentSpanId).toBe(gateway.spanId);
    expect(invocation.kind).toBe(SERVER_KIND);
    expect(invocation.attributes).toMatchObject({
      'faas.name': 'echo',
      'faas.trigger': 'http',
      'faas.invocation_id': requestId,
      'faas.coldstart': true,
      'faas.version': '1',
      'faas.max_memory': 128 * 1024 * 1024,
      'nimbus.request_id': requestId,
      'nimbus.status': 'ok',
    });
    expect(byName('admission').parentSpanId).toBe(invocation.spanId);
    expect(byName('admission').attributes['nimbus.admission']).toBe('cold');
    expect(cold.parentSpanId).toBe(invocation.spanId);
    for (const step of ['pool take', 'code link', 'init'])
      expect(byName(step).parentSpanId).toBe(cold.spanId);
    // Children lie within their parents.
    const within = (child: OtlpSpan, parent: OtlpSpan) => {
      expect(BigInt(child.startTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(parent.startTimeUnixNano));
      expect(BigInt(child.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(parent.endTimeUnixNano));
    };
    within(invocation, gateway);
    within(byName('init'), cold);
    expect(gateway.service).toBe('nimbus-e2e');
    expect(receiver.contentTypes).toContain('application/json');
    expect(receiver.headers.some((h) => h['x-tenant'] === 'nimbus-test')).toBe(true);

    // The function saw the trace in both forms, naming its invocation's span as the parent.
    expect(seen.xray).toBe(
      `Root=1-${traceId.slice(0, 8)}-${traceId.slice(8)};Parent=${invocation.spanId};Sampled=1`,
    );
    expect(seen.traceparent).toBe(`00-${traceId}-${invocation.spanId}-01`);
    expect(seen.tracestate).toBe('vendor=abc');

    // The local store answers the same tree, by request id and by trace id.
    const byRequest = await api(`/v1/invocations/${requestId}/trace`);
    expect(byRequest.status).toBe(200);
    const stored = (await byRequest.json()) as ApiTrace;
    expect(stored.traceId).toBe(traceId);
    const tree = (list: { spanId: string; parentSpanId: string | null; name: string }[]) =>
      list.map((s) => `${s.name} ${s.spanId} <- ${s.parentSpanId}`).sort();
    expect(tree(stored.spans)).toEqual(tree(spans));
    const starts = stored.spans.map((s) => BigInt(s.startTimeUnixNano));
    expect(starts).toEqual([...starts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const storedGateway = stored.spans.find((s) => s.spanId === gateway.spanId)!;
    expect(storedGateway).toMatchObject({
      traceId,
      parentSpanId: clientSpan,
      kind: 'SERVER',
      startTimeUnixNano: gateway.startTimeUnixNano,
      endTimeUnixNano: gateway.endTimeUnixNano,
      status: { code: 'UNSET' },
      attributes: { 'http.route': '/echo/{id}', 'http.response.status_code': 200 },
    });
    expect(storedGateway.durationMs).toBeGreaterThan(0);
    const byTrace = (await (await api(`/v1/traces/${traceId.toUpperCase()}`)).json()) as ApiTrace;
    expect(byTrace).toEqual(stored);
    // The invocation record keeps its trace id.
    const rec = (await (await api(`/v1/invocations/${requestId}`)).json()) as { traceId: string };
    expect(rec.traceId).toBe(traceId);

    // Warm now: no cold start under the next invocation.
    const again = await fetch(`${n.gatewayUrl}/echo/8`, {
      headers: { traceparent: `00-${hex(32)}-${hex(16)}-01` },
    });
    const warmTrace = ((await again.json()) as { traceparent: string }).traceparent.split('-')[1]!;
    const warm = await exported(warmTrace, 2);
    expect(warm.find((s) => s.name === 'echo')?.attributes['faas.coldstart']).toBe(false);
    expect(warm.map((s) => s.name).sort()).toEqual(['GET /echo/{id}', 'echo']);
    expect(warm.find((s) => s.name === 'echo')?.attributes['nimbus.admission']).toBe('warm');
  });

  it("puts a function's DynamoDB call into its trace as a child of its invocation", async () => {
    const res = await fetch(`${n.gatewayUrl}/save`, { method: 'POST', body: JSON.stringify({ id: 'n1' }) });
    expect(res.status).toBe(200);
    const { xray } = (await res.json()) as { xray: string };
    const m = /^Root=1-([0-9a-f]{8})-([0-9a-f]{24});Parent=([0-9a-f]{16});Sampled=1$/.exec(xray);
    expect(m, xray).not.toBeNull();
    const traceId = m![1]! + m![2]!;
    const spans = await eventually(async () => {
      const all = receiver.trace(traceId);
      return all.some((s) => s.name === 'DynamoDB.PutItem') && all.some((s) => s.name === 'save')
        ? all
        : undefined;
    });
    const invocation = spans.find((s) => s.name === 'save')!;
    const call = spans.find((s) => s.name === 'DynamoDB.PutItem')!;
    expect(invocation.spanId).toBe(m![3]);
    expect(call.parentSpanId).toBe(invocation.spanId);
    expect(call.kind).toBe(SERVER_KIND);
    expect(call.attributes).toMatchObject({
      'rpc.system': 'aws-api',
      'rpc.service': 'DynamoDB',
      'rpc.method': 'PutItem',
      'http.response.status_code': 200,
      'nimbus.project': 'default',
    });
    // No client traceparent: the gateway span is the trace's root.
    expect(spans.find((s) => s.name === 'POST /save')?.parentSpanId).toBeNull();
    const stored = (await (await api(`/v1/traces/${traceId}`)).json()) as ApiTrace;
    expect(stored.spans.find((s) => s.name === 'DynamoDB.PutItem')?.parentSpanId).toBe(invocation.spanId);
  });

  it('marks a failed invocation and its 502 as errors', async () => {
    const res = await fetch(`${n.gatewayUrl}/fail`);
    expect(res.status).toBe(502);
    const requestId = res.headers.get('x-nimbus-request-id')!;
    const stored = await eventually(async () => {
      const r = await api(`/v1/invocations/${requestId}/trace`);
      return r.status === 200 ? ((await r.json()) as ApiTrace) : undefined;
    });
    const invocation = stored.spans.find((s) => s.name === 'fail')!;
    expect(invocation.status).toEqual({ code: 'ERROR', message: 'Error: boom' });
    expect(invocation.attributes['nimbus.status']).toBe('error');
    const gateway = stored.spans.find((s) => s.name === 'GET /fail')!;
    expect(gateway.status.code).toBe('ERROR');
    expect(gateway.attributes['http.response.status_code']).toBe(502);
    const otlp = await exported(stored.traceId, stored.spans.length);
    expect(otlp.find((s) => s.name === 'fail')?.status.code).toBe(STATUS_ERROR);
  });

  it('ignores a malformed traceparent: the request is served and starts a new trace', async () => {
    for (const bad of [
      'garbage',
      `00-${'0'.repeat(32)}-${hex(16)}-01`,
      `00-${hex(32)}-${'0'.repeat(16)}-01`,
    ]) {
      const res = await fetch(`${n.gatewayUrl}/echo/1`, { headers: { traceparent: bad } });
      expect(res.status).toBe(200);
      const { traceparent } = (await res.json()) as { traceparent: string };
      const [, traceId] = traceparent.split('-');
      expect(traceparent).not.toBe(bad);
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      const spans = await exported(traceId!, 2);
      expect(spans.find((s) => s.name === 'GET /echo/{id}')?.parentSpanId).toBeNull();
    }
  });

  it('gives an async invocation a root trace of its own', async () => {
    const r = await n.client.invoke('echo', '{}', { async: true });
    expect(r.statusCode).toBe(202);
    const stored = await eventually(async () => {
      const res = await api(`/v1/invocations/${r.requestId}/trace`);
      return res.status === 200 ? ((await res.json()) as ApiTrace) : undefined;
    });
    const root = stored.spans.find((s) => s.name === 'echo')!;
    expect(root.parentSpanId).toBeNull();
    expect(root.attributes).toMatchObject({ 'faas.trigger': 'other', 'nimbus.trigger': 'event' });
  });

  it('shows a trace as a waterfall with nimbus trace, by request id and trace id', async () => {
    const res = await fetch(`${n.gatewayUrl}/fail`);
    const requestId = res.headers.get('x-nimbus-request-id')!;
    const cli = (args: string[]) => runNimbus({ NIMBUS_API_URL: n.apiUrl, NIMBUS_API_KEY: n.apiKey }, args);
    const shown = await eventually(async () => {
      const r = await cli(['trace', requestId]);
      return r.code === 0 ? r : undefined;
    });
    const lines = shown.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^trace [0-9a-f]{32}: \d+ spans, [\d.]+ ms$/);
    // The invocation is indented under the gateway request, and carries its error.
    expect(lines[1]).toMatch(/^GET \/fail +[\d.]+ ms {2}\|█/);
    expect(lines[2]).toMatch(/^ {2}fail +[\d.]+ ms {2}\|.*█.*\| {2}ERROR Error: boom$/);
    const traceId = lines[0]!.split(' ')[1]!.replace(':', '');
    const json = await cli(['trace', traceId, '--json']);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as ApiTrace).spans.map((s) => s.name)).toContain('fail');
    const missing = await cli(['trace', hex(32)]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toMatch(/not found/);
  });

  it('answers the trace API in the caller project only, with JSON errors', async () => {
    const res = await fetch(`${n.gatewayUrl}/echo/2`);
    const requestId = res.headers.get('x-nimbus-request-id')!;
    const { traceparent } = (await res.json()) as { traceparent: string };
    const traceId = traceparent.split('-')[1]!;
    await eventually(async () => (await api(`/v1/traces/${traceId}`)).status === 200);

    expect((await fetch(`${n.apiUrl}/v1/traces/${traceId}`)).status).toBe(401);
    const other = (await n.client.createProject(`team-${hex(6)}`)).key.key;
    for (const path of [`/v1/traces/${traceId}`, `/v1/invocations/${requestId}/trace`]) {
      const r = await api(path, other);
      expect(r.status).toBe(404);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('NotFound');
    }
    const unknown = await api(`/v1/traces/${hex(32)}`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: 'NotFound' } });
    const bad = await api('/v1/traces/not-a-trace');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/32 hexadecimal/);
  });
});

describe('traces sampled at ratio 0', () => {
  it('exports and keeps nothing, and the function still gets its trace ids', async () => {
    const receiver = new Receiver();
    const url = await receiver.start();
    const n = await withEnv(
      {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${url}/v1/traces`,
        OTEL_TRACES_SAMPLER: 'traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0',
        OTEL_BSP_SCHEDULE_DELAY: '50',
      },
      () => startTestNimbus(),
    );
    try {
      await n.deploy(join(FIXTURES, 'traced'));
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${n.gatewayUrl}/echo/${i}`);
        expect(res.status).toBe(200);
        ids.push(res.headers.get('x-nimbus-request-id')!);
        const { xray } = (await res.json()) as { xray: string };
        expect(xray).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$/);
      }
      const r = await fetch(`${n.apiUrl}/v1/invocations/${ids[0]}/trace`, {
        headers: { authorization: `Bearer ${n.apiKey}` },
      });
      expect(r.status).toBe(404);
      expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/not found/);
    } finally {
      // A clean stop exports whatever was queued: after it, the receiver has everything it will ever get.
      await n.cleanup();
    }
    expect(receiver.spans).toEqual([]);
    await receiver.stop();
  });
});

import { describe, expect, it } from 'vitest';
import type { InvocationRecord } from '../store/types.js';
import { Metrics, timedPart } from './metrics.js';

function record(over: Partial<InvocationRecord> = {}): InvocationRecord {
  return {
    requestId: 'r',
    project: 'default',
    functionName: 'f',
    version: '1',
    trigger: 'http',
    attempt: 1,
    start: 0,
    durationMs: 3,
    billedMs: 3,
    memoryMB: 128,
    maxRssBytes: 0,
    cold: false,
    initMs: null,
    status: 'ok',
    errorType: null,
    errorMessage: null,
    logs: '',
    requests: 1,
    gbSeconds: 0.000375,
    costPicoUsd: 206_250,
    ...over,
  };
}

/** A metric's samples as "name{labels} value" lines, as exposed (in the order series were first seen). */
async function lines(m: Metrics, prefix: string): Promise<string[]> {
  const { body } = await m.expose();
  return body.split('\n').filter((l) => l.startsWith(prefix));
}

describe('Metrics', () => {
  it('counts records by function, trigger and status, and keeps throttles out of durations and starts', async () => {
    const m = new Metrics('sqlite');
    m.write(record({ cold: true, initMs: 12 }));
    m.write(record());
    m.write(record({ trigger: 'invoke', status: 'error' }));
    m.write(record({ status: 'throttled', durationMs: 0 }));
    m.write(record({ project: 'team-b', status: 'timeout' }));
    expect(await lines(m, 'nimbus_invocations_total')).toEqual([
      'nimbus_invocations_total{function="f",project="default",trigger="http",status="ok"} 2',
      'nimbus_invocations_total{function="f",project="default",trigger="invoke",status="error"} 1',
      'nimbus_invocations_total{function="f",project="default",trigger="http",status="throttled"} 1',
      'nimbus_invocations_total{function="f",project="team-b",trigger="http",status="timeout"} 1',
    ]);
    expect(await lines(m, 'nimbus_errors_total')).toEqual([
      'nimbus_errors_total{function="f",project="default",trigger="invoke"} 1',
      'nimbus_errors_total{function="f",project="team-b",trigger="http"} 1',
    ]);
    expect(await lines(m, 'nimbus_throttles_total')).toEqual([
      'nimbus_throttles_total{function="f",project="default",trigger="http"} 1',
    ]);
    expect(await lines(m, 'nimbus_invocation_duration_seconds_count')).toEqual([
      'nimbus_invocation_duration_seconds_count{function="f",project="default"} 3',
      'nimbus_invocation_duration_seconds_count{function="f",project="team-b"} 1',
    ]);
    expect(await lines(m, 'nimbus_cold_starts_total')).toEqual([
      'nimbus_cold_starts_total{function="f",project="default"} 1',
      'nimbus_cold_starts_total{function="f",project="team-b"} 0',
    ]);
    expect(await lines(m, 'nimbus_warm_starts_total')).toEqual([
      'nimbus_warm_starts_total{function="f",project="default"} 2',
      'nimbus_warm_starts_total{function="f",project="team-b"} 1',
    ]);
    expect(await lines(m, 'nimbus_init_duration_seconds_sum')).toEqual([
      'nimbus_init_duration_seconds_sum{function="f",project="default"} 0.012',
    ]);
    // 3 ms lands in the 5 ms bucket and not the 2.5 ms one.
    const buckets = await lines(
      m,
      'nimbus_invocation_duration_seconds_bucket{function="f",project="default"',
    );
    expect(buckets).toContain(
      'nimbus_invocation_duration_seconds_bucket{function="f",project="default",le="0.0025"} 0',
    );
    expect(buckets).toContain(
      'nimbus_invocation_duration_seconds_bucket{function="f",project="default",le="0.005"} 3',
    );
  });

  it('counts gateway requests per project and route across match objects, unmatched ones under "unmatched"', async () => {
    const m = new Metrics('sqlite');
    const route = {};
    const other = {};
    // The gateway makes a new match per request; the route object inside is what stays the same.
    for (let i = 0; i < 3; i++) m.request({ route, routeKey: 'GET /a' }, 200, 'default');
    m.request({ route, routeKey: 'GET /a' }, 502, 'default');
    m.request({ route: other, routeKey: 'GET /a' }, 200, 'team-a');
    m.request(undefined, 404, 'default');
    m.request(undefined, 404, 'team-a');
    // A host naming no project with routes: one series, whatever the name was.
    m.request(undefined, 404);
    m.request(undefined, 404);
    m.throttled({ route, routeKey: 'GET /a' }, 'default');
    expect(await lines(m, 'nimbus_gateway_')).toEqual([
      'nimbus_gateway_requests_total{route="GET /a",status="200",project="default"} 3',
      'nimbus_gateway_requests_total{route="GET /a",status="502",project="default"} 1',
      'nimbus_gateway_requests_total{route="GET /a",status="200",project="team-a"} 1',
      'nimbus_gateway_requests_total{route="unmatched",status="404",project="default"} 1',
      'nimbus_gateway_requests_total{route="unmatched",status="404",project="team-a"} 1',
      'nimbus_gateway_requests_total{route="unmatched",status="404",project="unknown"} 2',
      'nimbus_gateway_throttles_total{route="GET /a",project="default"} 1',
    ]);
  });

  it('reads instances, stem cells and the event queue when scraped, the queue at most once per 2 s', async () => {
    const m = new Metrics('postgresql');
    let queries = 0;
    let now = 4000;
    m.setSources({
      // Two versions of f while the older retires: instances add up, in-flight is the function's once.
      instances: () => [
        { project: 'default', name: 'f', busy: 1, idle: 0, starting: 0, provisioned: 1, inFlight: 3 },
        { project: 'default', name: 'f', busy: 2, idle: 1, starting: 1, provisioned: 0, inFlight: 3 },
      ],
      stemCells: () => [
        { memoryMB: 128, tmpMB: 512, network: 'outbound', ready: 2, starting: 1, target: 2 },
        { memoryMB: 128, tmpMB: 512, network: 'none', ready: 1, starting: 0, target: 1 },
      ],
      events: async () => {
        queries++;
        return [
          { project: 'default', functionName: 'f', pending: 5, inFlight: 2, dead: 1, oldestPendingAt: 1000 },
        ];
      },
      now: () => now,
    });
    expect(await lines(m, 'nimbus_concurrent_executions')).toEqual([
      'nimbus_concurrent_executions{function="f",project="default"} 3',
    ]);
    expect(await lines(m, 'nimbus_instances')).toEqual([
      'nimbus_instances{function="f",project="default",state="busy"} 3',
      'nimbus_instances{function="f",project="default",state="idle"} 1',
      'nimbus_instances{function="f",project="default",state="starting"} 1',
    ]);
    expect(await lines(m, 'nimbus_provisioned_instances')).toEqual([
      'nimbus_provisioned_instances{function="f",project="default"} 1',
    ]);
    expect(await lines(m, 'nimbus_stem_cells{')).toEqual([
      'nimbus_stem_cells{memory_mb="128",tmp_mb="512",network="outbound",state="ready"} 2',
      'nimbus_stem_cells{memory_mb="128",tmp_mb="512",network="outbound",state="starting"} 1',
      'nimbus_stem_cells{memory_mb="128",tmp_mb="512",network="none",state="ready"} 1',
      'nimbus_stem_cells{memory_mb="128",tmp_mb="512",network="none",state="starting"} 0',
    ]);
    expect(await lines(m, 'nimbus_async_')).toEqual([
      'nimbus_async_events{function="f",project="default",state="pending"} 3',
      'nimbus_async_events{function="f",project="default",state="in_flight"} 2',
      'nimbus_async_events{function="f",project="default",state="dead"} 1',
      'nimbus_async_oldest_event_age_seconds{function="f",project="default"} 3',
    ]);
    // Both queue gauges, over five scrapes in the same 2 s of the clock, share one store query.
    expect(queries).toBe(1);
    now += 2001;
    await m.expose();
    expect(queries).toBe(2);
  });

  it('times a store part’s asynchronous calls and leaves its answers alone', async () => {
    const m = new Metrics('sqlite');
    class Part {
      n = 41;
      async next(): Promise<number> {
        return ++this.n;
      }
      async fail(): Promise<never> {
        throw new Error('no');
      }
    }
    const part = new Part();
    const timed = timedPart(part, 'events', m);
    expect(await timed.next()).toBe(42);
    await expect(timed.fail()).rejects.toThrow('no');
    expect(part.n).toBe(42);
    expect(await lines(m, 'nimbus_store_duration_seconds_count')).toEqual([
      'nimbus_store_duration_seconds_count{backend="sqlite",operation="events.next"} 1',
      'nimbus_store_duration_seconds_count{backend="sqlite",operation="events.fail"} 1',
    ]);
  });
});

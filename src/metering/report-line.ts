// The REPORT line of an invocation, as CloudWatch shows Lambda's, plus Nimbus's cost and a status that is not
// ok. One formatter for `nimbus logs` and the Invoke API's X-Amz-Log-Result tail, so they never disagree.
import { formatUsd } from './price.js';

/** The fields of an invocation record the line shows. */
export interface ReportFields {
  requestId: string;
  durationMs: number;
  billedMs: number;
  memoryMB: number;
  /** 0 when unknown: the Max Memory Used field is then left out. */
  maxRssBytes: number;
  initMs: number | null;
  costPicoUsd: number;
  status: string;
  errorType: string | null;
  errorMessage: string | null;
}

export function reportLine(r: ReportFields): string {
  const fields = [
    `REPORT RequestId: ${r.requestId}`,
    `Duration: ${r.durationMs.toFixed(2)} ms`,
    `Billed Duration: ${r.billedMs} ms`,
    `Memory Size: ${r.memoryMB} MB`,
  ];
  if (r.maxRssBytes > 0) fields.push(`Max Memory Used: ${Math.ceil(r.maxRssBytes / 2 ** 20)} MB`);
  if (r.initMs !== null) fields.push(`Init Duration: ${r.initMs.toFixed(2)} ms`);
  fields.push(`Cost: ${formatUsd(r.costPicoUsd)} USD`);
  if (r.status !== 'ok') {
    const why = r.errorType ? ` (${r.errorType}: ${r.errorMessage ?? ''})` : '';
    fields.push(`Status: ${r.status}${why}`);
  }
  return fields.join('\t');
}

/** Lambda's JSON platform record status of an invocation status. */
function platformStatus(status: string): string {
  if (status === 'ok') return 'success';
  if (status === 'error' || status === 'timeout') return status;
  return 'failure';
}

/**
 * The platform.start and platform.report records a function with `logFormat: JSON` gets instead of START and
 * REPORT, as Lambda writes them to CloudWatch (record.metrics with durationMs, billedDurationMs, memorySizeMB,
 * maxMemoryUsedMB, initDurationMs on a cold start). One line each, newline-terminated.
 */
export function platformStart(requestId: string, version: string, at: number): string {
  return (
    JSON.stringify({
      time: new Date(at).toISOString(),
      type: 'platform.start',
      record: { requestId, version },
    }) + '\n'
  );
}

export function platformReport(r: ReportFields, at: number): string {
  const metrics: Record<string, number> = {
    durationMs: r.durationMs,
    billedDurationMs: r.billedMs,
    memorySizeMB: r.memoryMB,
  };
  if (r.maxRssBytes > 0) metrics['maxMemoryUsedMB'] = Math.ceil(r.maxRssBytes / 2 ** 20);
  if (r.initMs !== null) metrics['initDurationMs'] = r.initMs;
  return (
    JSON.stringify({
      time: new Date(at).toISOString(),
      type: 'platform.report',
      record: {
        requestId: r.requestId,
        metrics,
        status: platformStatus(r.status),
        ...(r.status !== 'ok' && r.errorType ? { errorType: r.errorType } : {}),
      },
    }) + '\n'
  );
}

// What both UsageStore backends check before adding: the same refusal, in the same words, on each.
import { HOUR_MS, USAGE_SERVICES, type UsageEntry, type UsageService } from './types.js';

export function checkUsageRow(e: UsageEntry): void {
  const whole = (v: number) => Number.isSafeInteger(v) && v >= 0;
  if (!(USAGE_SERVICES as readonly string[]).includes(e.service)) {
    throw new Error(`usage service must be one of ${USAGE_SERVICES.join(', ')}, not "${e.service}"`);
  }
  if (e.kind === '') throw new Error('usage kind must not be empty');
  if (!whole(e.hour) || e.hour % HOUR_MS !== 0) {
    throw new Error(`usage hour must be the start of an hour in epoch ms, not ${e.hour}`);
  }
  if (!whole(e.quantity)) throw new Error(`usage quantity must be a whole number >= 0, not ${e.quantity}`);
  if (!whole(e.costPicoUsd)) throw new Error(`usage cost must be a whole number >= 0, not ${e.costPicoUsd}`);
}

/** A usage row as both backends' queries return it. */
export interface UsageDbRow {
  project: string;
  service: string;
  resource: string;
  kind: string;
  hour: number;
  quantity: number;
  cost_pico_usd: number;
}

export function toUsage(r: UsageDbRow): UsageEntry {
  return {
    project: r.project,
    service: r.service as UsageService,
    resource: r.resource,
    kind: r.kind,
    hour: Number(r.hour),
    quantity: Number(r.quantity),
    costPicoUsd: Number(r.cost_pico_usd),
  };
}

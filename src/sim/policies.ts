// Policies by the names the simulator's --policies flag takes.
import { HybridHistogramPolicy, type HybridOptions } from '../scaler/hybrid.js';
import { FixedKeepAlive, type KeepAlivePolicy } from '../scaler/policy.js';

const HYBRID_KEYS: readonly (keyof HybridOptions)[] = [
  'rangeMs',
  'binMs',
  'headPercentile',
  'tailPercentile',
  'marginPct',
  'minObservations',
  'cvThreshold',
  'maxOutOfBoundsPct',
  'fallbackKeepAliveMs',
];

/**
 * "fixed<minutes>" (fixed10, fixed20, fixed0.5) or "hybrid" with optional overrides of its options,
 * "hybrid:minObservations=5:fallbackKeepAliveMs=1200000".
 */
export function makePolicy(spec: string): KeepAlivePolicy {
  const fixed = /^fixed(\d+(?:\.\d+)?)$/.exec(spec);
  if (fixed) return new FixedKeepAlive(Math.round(Number(fixed[1]) * 60_000));
  const [head, ...opts] = spec.split(':');
  if (head === 'hybrid') {
    const o: HybridOptions = {};
    for (const kv of opts) {
      const [k, v] = kv.split('=');
      const key = HYBRID_KEYS.find((x) => x === k);
      if (!key || v === undefined || !Number.isFinite(Number(v))) {
        throw new Error(`bad hybrid option "${kv}" (known: ${HYBRID_KEYS.join(', ')})`);
      }
      o[key] = Number(v);
    }
    return new HybridHistogramPolicy(o);
  }
  throw new Error(`unknown policy "${spec}": use fixed<minutes> or hybrid[:option=value...]`);
}

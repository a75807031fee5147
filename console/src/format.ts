// Small display helpers shared by the pages.

export function ms(v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  if (v < 1) return `${v.toFixed(2)} ms`;
  if (v < 1000) return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
  return `${(v / 1000).toFixed(2)} s`;
}

export function time(t: number | null | undefined): string {
  if (t === null || t === undefined) return '–';
  return new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

export function ago(t: number, now = Date.now()): string {
  const s = Math.round((now - t) / 1000);
  if (s < 0) return `in ${until(t, now)}`;
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function until(t: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((t - now) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** USD text as the API gives it ("0.000002083338"), shortened for a table. */
export function usd(v: string | number | undefined): string {
  if (v === undefined) return '–';
  const n = Number(v);
  if (n === 0) return '$0';
  // Three significant digits of a small amount, in plain decimals (a single invocation costs ~$0.0000002).
  if (n < 0.01) return `$${n.toFixed(Math.min(12, 2 - Math.floor(Math.log10(n))))}`;
  return `$${n.toFixed(2)}`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

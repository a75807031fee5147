// `nimbus deploy --stage NAME`: a separate copy of a service on the same server. Applied by the CLI to the
// resolved manifest before the schema checks it: the service becomes <service>-<stage>, every function, table,
// queue and bucket the manifest declares <name>-<stage> (a FIFO queue <name>-<stage>.fifo), and every route is
// served under /<stage>. References to what the manifest declares follow the rename; names of things the
// service does not declare (another service's table, say) are left as written.
import { ManifestError } from './manifest.js';
import { stageNameProblem } from './stage-name.js';

export function stagedName(name: string, stage: string): string {
  return name.endsWith('.fifo') ? `${name.slice(0, -5)}-${stage}.fifo` : `${name}-${stage}`;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function renameKeys(v: unknown, stage: string): { out: unknown; names: Set<string> } {
  const names = new Set<string>();
  if (!isObj(v)) return { out: v, names };
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    names.add(k);
    out[stagedName(k, stage)] = x;
  }
  return { out, names };
}

/**
 * The service's name for the stage, applied before variables are resolved so that ${self:service} is the
 * staged name (service: todo becomes todo-dev, service: ${env:SVC} becomes ${env:SVC}-dev).
 */
export function stageService(manifest: unknown, stage: string, file: string): unknown {
  const problem = stageNameProblem(stage);
  if (problem) throw new ManifestError(file, '', problem);
  if (!isObj(manifest) || typeof manifest['service'] !== 'string') return manifest;
  return { ...manifest, service: `${manifest['service']}-${stage}` };
}

/** The manifest (resolved, not yet checked) of the service's copy for this stage; the service is stageService's. */
export function applyStage(manifest: unknown, stage: string, file: string): unknown {
  const problem = stageNameProblem(stage);
  if (problem) throw new ManifestError(file, '', problem);
  if (!isObj(manifest)) return manifest;
  const m: Obj = { ...manifest };
  const fns = renameKeys(m['functions'], stage);
  const tables = renameKeys(m['tables'], stage);
  const queues = renameKeys(m['queues'], stage);
  const buckets = renameKeys(m['buckets'], stage);
  const ref = (names: Set<string>) => (v: unknown) =>
    typeof v === 'string' && names.has(v) ? stagedName(v, stage) : v;
  const fn = ref(fns.names);
  const table = ref(tables.names);
  const queue = ref(queues.names);
  const bucket = ref(buckets.names);
  const any = (v: unknown): unknown => [table, queue, bucket].reduce((x, f) => (x === v ? f(x) : x), v);
  /** `queue: orders` or `queue: { name: orders }` (events' short and long forms). */
  const named = (v: unknown, f: (v: unknown) => unknown, key = 'name'): unknown =>
    isObj(v) ? { ...v, [key]: f(v[key]) } : f(v);
  const destination = (d: unknown): unknown =>
    isObj(d)
      ? {
          ...d,
          ...('function' in d ? { function: fn(d['function']) } : {}),
          ...('queue' in d ? { queue: queue(d['queue']) } : {}),
        }
      : d;

  if (isObj(queues.out)) {
    for (const [k, q] of Object.entries(queues.out)) {
      if (isObj(q) && 'deadLetterQueue' in q)
        queues.out[k] = { ...q, deadLetterQueue: queue(q['deadLetterQueue']) };
    }
  }
  if (isObj(fns.out)) {
    for (const [k, f] of Object.entries(fns.out)) {
      if (!isObj(f)) continue;
      const g: Obj = { ...f };
      if (isObj(g['environment'])) {
        g['environment'] = Object.fromEntries(Object.entries(g['environment']).map(([n, v]) => [n, any(v)]));
      }
      if (isObj(g['permissions'])) {
        const p: Obj = { ...g['permissions'] };
        for (const [kind, f2] of [
          ['tables', table],
          ['queues', queue],
          ['buckets', bucket],
        ] as const) {
          if (Array.isArray(p[kind])) p[kind] = (p[kind] as unknown[]).map(f2);
        }
        g['permissions'] = p;
      }
      if (isObj(g['async'])) {
        const a: Obj = { ...g['async'] };
        for (const d of ['onSuccess', 'onFailure']) if (d in a) a[d] = destination(a[d]);
        g['async'] = a;
      }
      if (Array.isArray(g['events'])) {
        g['events'] = (g['events'] as unknown[]).map((ev) => {
          if (!isObj(ev)) return ev;
          const e: Obj = { ...ev };
          if ('http' in e) {
            e['http'] = isObj(e['http'])
              ? { ...e['http'], route: prefixRoute(e['http']['route'], stage) }
              : prefixRoute(e['http'], stage);
          }
          if ('queue' in e) e['queue'] = named(e['queue'], queue);
          if ('storage' in e) e['storage'] = named(e['storage'], bucket, 'bucket');
          if ('table' in e) {
            const t = named(e['table'], table);
            e['table'] =
              isObj(t) && isObj(t['onFailure'])
                ? { ...t, onFailure: { ...t['onFailure'], queue: queue(t['onFailure']['queue']) } }
                : t;
          }
          return e;
        });
      }
      fns.out[k] = g;
    }
  }
  if (isObj(m['http']) && isObj(m['http']['authorizers'])) {
    const auths = Object.fromEntries(
      Object.entries(m['http']['authorizers']).map(([n, a]) => [
        n,
        isObj(a) && 'function' in a ? { ...a, function: fn(a['function']) } : a,
      ]),
    );
    m['http'] = { ...m['http'], authorizers: auths };
  }
  for (const [k, r] of [
    ['functions', fns],
    ['tables', tables],
    ['queues', queues],
    ['buckets', buckets],
  ] as const) {
    if (k in m) m[k] = r.out;
  }
  return m;
}

/** "GET /items" → "GET /dev/items"; "GET /" → "GET /dev". Anything else is left for the schema to refuse. */
function prefixRoute(route: unknown, stage: string): unknown {
  if (typeof route !== 'string') return route;
  const m = /^(\s*[A-Za-z]+\s+)(\/\S*)(\s*)$/.exec(route);
  if (!m) return route;
  return `${m[1]}/${stage}${m[2] === '/' ? '' : m[2]}${m[3]}`;
}

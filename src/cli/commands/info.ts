import { defineCommand } from '../command.js';
import { table } from '../format.js';

export default defineCommand({
  name: 'info',
  summary: 'Show where Nimbus runs, and each service with its functions, routes and their URLs',
  args: [],
  options: {},
  examples: ['nimbus info', 'nimbus info --json'],
  async run(ctx) {
    const client = ctx.client();
    const [health, { functions }] = await Promise.all([client.health(), client.list()]);
    const gateway = health.gatewayUrl ?? '';
    const byService = new Map<string, typeof functions>();
    for (const f of [...functions].sort((a, b) => a.name.localeCompare(b.name))) {
      byService.set(f.service, [...(byService.get(f.service) ?? []), f]);
    }
    const services = [...byService.keys()].sort().map((name) => ({
      name,
      functions: byService.get(name)!.map((f) => ({
        name: f.name,
        version: f.version,
        routes: f.routes.map((route) => ({ route, url: routeUrl(gateway, route) })),
      })),
    }));
    if (ctx.json) {
      ctx.printJson({ apiUrl: client.apiUrl, gatewayUrl: gateway || null, services });
      return;
    }
    ctx.out([`Gateway  ${gateway || '(unknown)'}`, `API      ${client.apiUrl}`].join('\n'));
    if (services.length === 0) {
      ctx.out('No functions deployed yet. Deploy a service folder with `nimbus deploy <dir>`.');
      return;
    }
    const rows = services.flatMap((s) =>
      s.functions.flatMap((f) =>
        f.routes.length === 0
          ? [[s.name, f.name, String(f.version), '-', '-']]
          : f.routes.map((r) => [s.name, f.name, String(f.version), r.route, r.url || '-']),
      ),
    );
    ctx.out('');
    ctx.out(table(['service', 'function', 'version', 'route', 'url'], rows));
  },
});

/** "GET /items/{id}" → the gateway URL of its path (parameters left as written). */
function routeUrl(gateway: string, route: string): string {
  const path = route.slice(route.indexOf(' ') + 1);
  return gateway ? `${gateway}${path.startsWith('/') ? '' : '/'}${path}` : '';
}

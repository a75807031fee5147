// Which project a request is for, from its Host header, as API Gateway gives each API a hostname of its own:
// <project>.<gateway domain> serves that project's routes; any other host (an IP, the domain itself, a name
// the operator points at the gateway) serves the default project's, as the gateway always did.

/** The project named by the host, or `fallback` when the host is not a subdomain of `domain`. The name is
 *  returned as written (lowercased); whether such a project exists is the caller's question. */
export function projectOfHost(hostHeader: string | undefined, domain: string, fallback: string): string {
  if (!hostHeader) return fallback;
  const host = hostName(hostHeader).toLowerCase().replace(/\.$/, '');
  if (host.length <= domain.length + 1 || !host.endsWith(domain)) return fallback;
  const dot = host.length - domain.length - 1;
  if (host.charCodeAt(dot) !== 46 /* . */) return fallback;
  return host.slice(0, dot);
}

/** "api.example.com:8080" → "api.example.com"; "[::1]:3000" → "[::1]". */
function hostName(host: string): string {
  if (host.charCodeAt(0) === 91 /* [ */) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

/** Where a project's routes are served, given the gateway's own URL: the default project's at that URL (any
 *  host reaches it), another's at <project>.<domain> on the same scheme and port. */
export function projectGatewayUrl(gatewayUrl: string, domain: string, project: string, fallback: string) {
  if (project === fallback) return gatewayUrl;
  const u = new URL(gatewayUrl);
  u.hostname = `${project}.${domain}`;
  return u.origin;
}

// `nimbus dev --inspect`: one function at a time gets a Node inspector, reachable on the host's 127.0.0.1 at
// one port. Each connection to that port is relayed to the inspector socket of the function's newest
// instance (the sandbox's own network namespace keeps its port off the host: sandbox/instance.ts, runtime/
// inspect.ts). Before an instance exists the port answers the discovery endpoints with no targets, as a
// Node with nothing to debug would, so Chrome and VS Code keep polling. The session is a lease: the CLI renews
// it while it runs, and an abandoned one (a killed `nimbus dev`) closes by itself.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { lstatSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FunctionRef } from '../store/types.js';
import type { InspectTarget } from '../invoker/types.js';
import { ApiError } from './errors.js';

/** How long a session lives without being renewed. */
export const INSPECT_LEASE_MS = 30_000;
export const DEFAULT_INSPECT_PORT = 9229;

export interface InspectDeps {
  /** Whether the server runs in dev mode (NIMBUS_DEV) and not under NODE_ENV=production. */
  allowed: () => string | null;
  /** Whether instances get a network namespace of their own (bubblewrap), which the inspector needs. */
  isolated: boolean;
  start(ref: FunctionRef): InspectTarget;
}

export interface InspectSession {
  function: string;
  project: string;
  port: number;
  /** For chrome://inspect ("Configure…") and VS Code's attach: host:port. */
  address: string;
  leaseSec: number;
}

interface Open {
  ref: FunctionRef;
  target: InspectTarget;
  server: Server;
  port: number;
  lease: NodeJS.Timeout;
  sockets: Set<Socket>;
  debuggers: number;
}

export class InspectSessions {
  private open: Open | undefined;

  constructor(private readonly d: InspectDeps) {}

  /** Opens the inspector port for a function, or renews the session already open for it. */
  async openOrRenew(ref: FunctionRef, port = DEFAULT_INSPECT_PORT): Promise<InspectSession> {
    const refused = this.d.allowed();
    if (refused) throw new ApiError(403, 'InspectorRefused', refused, 'debug on a server in dev mode');
    if (!this.d.isolated) {
      throw new ApiError(
        409,
        'InspectorUnavailable',
        'an inspector needs bubblewrap (each instance in its own network namespace), which this node lacks',
        'install bubblewrap (docs/security.md)',
      );
    }
    const o = this.open;
    if (o && o.ref.project === ref.project && o.ref.name === ref.name) {
      o.lease.refresh();
      return this.view(o);
    }
    if (o) {
      throw new ApiError(
        409,
        'InspectorBusy',
        `function ${o.ref.name} is being inspected already; one function at a time`,
        'stop the other `nimbus dev --inspect` first',
      );
    }
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          e.code === 'EADDRINUSE'
            ? new ApiError(
                409,
                'InspectorPortInUse',
                `port ${port} on 127.0.0.1 is in use`,
                'pass another --inspect-port, or 0 for a free one',
              )
            : e,
        ),
      );
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const target = this.d.start(ref);
    const opened: Open = {
      ref,
      target,
      server,
      port: (server.address() as AddressInfo).port,
      lease: setTimeout(() => this.close(ref), INSPECT_LEASE_MS),
      sockets: new Set(),
      debuggers: 0,
    };
    opened.lease.unref();
    server.on('connection', (client) => this.relay(opened, client));
    this.open = opened;
    return this.view(opened);
  }

  /** Closes the port and every connection through it; the function's instances go back to ordinary ones. */
  close(ref: FunctionRef): boolean {
    const o = this.open;
    if (!o || o.ref.project !== ref.project || o.ref.name !== ref.name) return false;
    this.open = undefined;
    clearTimeout(o.lease);
    o.server.close();
    for (const s of o.sockets) s.destroy();
    o.target.attached(false);
    o.target.close();
    return true;
  }

  stop(): void {
    if (this.open) this.close(this.open.ref);
  }

  private view(o: Open): InspectSession {
    return {
      function: o.ref.name,
      project: o.ref.project,
      port: o.port,
      address: `127.0.0.1:${o.port}`,
      leaseSec: INSPECT_LEASE_MS / 1000,
    };
  }

  private relay(o: Open, client: Socket): void {
    o.sockets.add(client);
    client.on('close', () => o.sockets.delete(client));
    client.on('error', () => client.destroy());
    const socket = o.target.socket();
    // Only a socket the sandbox made counts (it owns the folder): never follow a link it left there.
    const usable = socket !== undefined && isSocket(socket);
    client.once('data', (first: Buffer) => {
      if (!usable) return noTargets(client, first);
      const upgrade = /^upgrade:\s*websocket/im.test(first.toString('latin1'));
      if (upgrade && ++o.debuggers === 1) o.target.attached(true);
      const up = connect(socket);
      o.sockets.add(up);
      up.write(first);
      client.pipe(up).pipe(client);
      const end = (): void => {
        client.destroy();
        up.destroy();
      };
      up.on('error', end);
      up.on('close', () => {
        o.sockets.delete(up);
        end();
      });
      client.on('close', () => {
        end();
        if (upgrade && --o.debuggers === 0 && this.open === o) o.target.attached(false);
      });
    });
  }
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** No instance yet: the discovery endpoints list no targets; anything else waits for the first request. */
function noTargets(client: Socket, first: Buffer): void {
  const line = first.toString('latin1').split('\r\n')[0] ?? '';
  const path = line.split(' ')[1] ?? '';
  const json = path.startsWith('/json/version')
    ? JSON.stringify({ Browser: `node.js/${process.version}`, 'Protocol-Version': '1.1' })
    : path.startsWith('/json')
      ? '[]'
      : undefined;
  const body = json ?? 'No instance of the function runs yet: send it a request, then attach.\n';
  const status = json ? '200 OK' : '503 Service Unavailable';
  const type = json ? 'application/json; charset=UTF-8' : 'text/plain; charset=UTF-8';
  client.end(
    `HTTP/1.1 ${status}\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

// Where a listener can be reached from this machine, as an origin with an IP literal (no name to resolve):
// what a function's AWS_ENDPOINT_URL points at. A listener bound to every address is reached on loopback.
import type { AddressInfo } from 'node:net';

export function ipOrigin(address: AddressInfo | string | null): string | undefined {
  if (address === null || typeof address === 'string') return undefined;
  let host = address.address;
  if (host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
}

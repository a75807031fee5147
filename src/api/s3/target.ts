// Which bucket and key a request names: virtual-hosted style (the bucket in the Host header, as
// `photos.localhost:4001` or `photos.s3.amazonaws.com`) or path style (`/photos/key`). The key is the rest of
// the raw path, percent-decoded once; "../" in it is part of the key, which never becomes a file path.
import type { IncomingHttpHeaders } from 'node:http';
import { ApiError } from '../errors.js';

export interface Target {
  bucket?: string;
  key?: string;
}

const AWS_HOST = /^(?:(.+)\.)?s3(?:[.-](?:dualstack\.)?[a-z0-9-]+)?\.amazonaws\.com$/;

export function targetOf(headers: IncomingHttpHeaders, rawPath: string): Target {
  const hostBucket = bucketFromHost(headers.host ?? '');
  const path = rawPath.startsWith('/') ? rawPath.slice(1) : rawPath;
  if (hostBucket !== undefined) return { bucket: hostBucket, key: path === '' ? undefined : decode(path) };
  if (path === '') return {};
  const slash = path.indexOf('/');
  if (slash === -1) return { bucket: decode(path) };
  const key = path.slice(slash + 1);
  return { bucket: decode(path.slice(0, slash)), key: key === '' ? undefined : decode(key) };
}

function bucketFromHost(host: string): string | undefined {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  if (name.endsWith('.localhost')) return name.slice(0, -'.localhost'.length) || undefined;
  return AWS_HOST.exec(name)?.[1];
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ApiError(400, 'InvalidURI', "Couldn't parse the specified URI.");
  }
}

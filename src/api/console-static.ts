// The console's compiled files (dist/console, built by Vite from console/ at `npm install`), read once at
// start and served from memory with their content types, long caching for the hashed assets, and headers
// that allow only the console's own scripts, styles and API calls, and no framing.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AwsResponse } from './aws.js';

export const CONSOLE_PREFIX = '/console';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
};

/** No inline script or style, nothing from elsewhere, no framing, no plugins, no form posts away. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

interface Asset {
  body: Buffer;
  type: string;
  /** Vite puts a content hash in every name under assets/: such a file never changes. */
  immutable: boolean;
}

export class ConsoleFiles {
  private readonly files = new Map<string, Asset>();

  /** <package>/dist/console (this module runs from src/api or dist/api); empty when it was not built. */
  constructor(dir = fileURLToPath(new URL('../../dist/console/', import.meta.url))) {
    let names: string[];
    try {
      names = walk(dir);
    } catch {
      return;
    }
    for (const file of names) {
      const rel = relative(dir, file).split(sep).join('/');
      this.files.set(`/${rel}`, {
        body: readFileSync(file),
        type: TYPES[extname(file)] ?? 'application/octet-stream',
        immutable: rel.startsWith('assets/'),
      });
    }
  }

  get built(): boolean {
    return this.files.has('/index.html');
  }

  /** The answer for a GET or HEAD under /console. */
  serve(pathname: string, head: boolean): AwsResponse {
    if (pathname === CONSOLE_PREFIX) {
      return { status: 308, headers: { location: `${CONSOLE_PREFIX}/`, ...SECURITY_HEADERS }, body: '' };
    }
    const rel = pathname.slice(CONSOLE_PREFIX.length);
    // The console routes in the fragment (#/functions/x), so any other path is a missing file.
    const asset = this.files.get(rel === '/' ? '/index.html' : rel);
    if (!asset) {
      const body = this.built
        ? JSON.stringify({ error: { code: 'NotFound', message: `no console file ${pathname}` } })
        : JSON.stringify({
            error: {
              code: 'ConsoleNotBuilt',
              message: 'the web console was not built',
              hint: 'run `npm run build` (it runs at `npm install`), then restart',
            },
          });
      return {
        status: this.built ? 404 : 503,
        headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...SECURITY_HEADERS },
        body,
      };
    }
    return {
      status: 200,
      headers: {
        'content-type': asset.type,
        'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        ...SECURITY_HEADERS,
      },
      body: head ? '' : asset.body,
    };
  }
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

// Requests to the gateway with a Host of the test's choosing, and fixture copies, for the gateway's e2e tests.
import http from 'node:http';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../helpers.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** A request to the gateway with a Host header of our choosing (fetch does not let one set it). */
export function gatewayRequest(
  gatewayUrl: string,
  host: string,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Reply> {
  const u = new URL(gatewayUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path, method, headers: { ...headers, host }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let body: any = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A copy of a fixture service with GREETING replaced, in a temp dir the caller removes. */
export function serviceCopy(fixture: string, greeting: string): string {
  const dir = mkdtempSync(join(tmpdir(), `nimbus-${fixture}-`));
  cpSync(join(FIXTURES, fixture), dir, { recursive: true });
  const file = join(dir, 'nimbus.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replaceAll("'GREETING'", `'${greeting}'`));
  return dir;
}

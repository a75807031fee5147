// `npm run bench` runs this first: the peers the benchmarks compare against (workerd, serverless and
// serverless-offline, with the AWS SDK v2 they pull in; about 400 MB) live in bench/package.json, not in
// Nimbus's own install, so a newcomer's `npm install` stays quick. Installed from bench/package-lock.json
// once, and again only when that lock changes.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const bench = new URL('.', import.meta.url).pathname;
const lock = join(bench, 'package-lock.json');
const installed = join(bench, 'node_modules', '.package-lock.json');

if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.error('Installing the benchmark peers (bench/package.json)…');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  execFileSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: bench, stdio: 'inherit' });
}

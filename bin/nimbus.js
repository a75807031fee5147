#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm install` through the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error(
    'nimbus: the build is missing (dist/). Run `npm install` or `npm run build` in the Nimbus folder.',
  );
  process.exit(1);
}
await import(entry.href);

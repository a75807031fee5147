// `.env` files for `nimbus dev` only: what `${env:NAME}` in nimbus.yaml reads while developing, so secrets and
// local settings stay out of the shell and out of the archive (`.env*` is never packaged). `nimbus deploy`
// reads only the real environment, so what reaches a shared server is always stated where it runs.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { CliError } from './command.js';

/** The files read, in order: a later one wins over an earlier one, and the real environment over both. */
export function envFiles(stage: string | undefined): string[] {
  return stage === undefined ? ['.env', '.env.local'] : ['.env', '.env.local', `.env.${stage}`];
}

export interface DevEnv {
  env: NodeJS.ProcessEnv;
  /** The files that existed and were read, relative to the service folder. */
  loaded: string[];
  /** Names set from the files (their values are never printed). */
  names: string[];
}

export function loadDevEnv(dir: string, stage: string | undefined, real: NodeJS.ProcessEnv): DevEnv {
  const fromFiles: Record<string, string> = {};
  const loaded: string[] = [];
  for (const name of envFiles(stage)) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read ${name}: ${(e as Error).message}`, 'check the file permissions');
    }
    Object.assign(fromFiles, parseEnv(text));
    loaded.push(name);
  }
  const names = Object.keys(fromFiles).filter((n) => real[n] === undefined);
  return { env: { ...fromFiles, ...real }, loaded, names: names.sort() };
}

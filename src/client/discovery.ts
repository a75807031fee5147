// How a command finds its server, in this order: the --api-url flag; the environment (NIMBUS_API_URL, then
// NIMBUS_DATA); the current folder's .nimbus; the servers `nimbus up` recorded in the user's state folder.
// A record whose process is gone is stale: it is never used, and if nothing better is found the error says
// so. An explicit source (flag or environment) is used or refused, never silently skipped.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  DATA_DIR_RECORD,
  processAlive,
  readRecord,
  userRecords,
  userStateDir,
  type ServerRecord,
} from '../datadir/server-record.js';

/** Thrown as an ApiError by the caller (index.ts), which owns that class. */
export interface DiscoveryFailure {
  code: 'NotConfigured' | 'StaleServer' | 'AmbiguousServer';
  message: string;
  hint: string;
}

export interface Located {
  apiUrl: string;
  apiKey: string;
  /** Where the URL came from, for error messages: "--api-url", "NIMBUS_API_URL", a record's file. */
  foundIn: string;
}

export class DiscoveryError extends Error {
  constructor(readonly failure: DiscoveryFailure) {
    super(failure.message);
  }
}

const fail = (code: DiscoveryFailure['code'], message: string, hint: string): never => {
  throw new DiscoveryError({ code, message, hint });
};

export function locateServer(env: NodeJS.ProcessEnv, cwd: string, flagUrl?: string): Located {
  const envData = env['NIMBUS_DATA']?.trim() ? resolve(cwd, env['NIMBUS_DATA'].trim()) : undefined;
  const localData = resolve(cwd, '.nimbus');
  const explicitUrl = flagUrl?.trim()
    ? { url: flagUrl.trim(), from: '--api-url' }
    : env['NIMBUS_API_URL']?.trim()
      ? { url: env['NIMBUS_API_URL'].trim(), from: 'NIMBUS_API_URL' }
      : undefined;
  if (explicitUrl) {
    // The key of the data dir next to it, as before: NIMBUS_DATA's, else ./.nimbus's; else that of the
    // running server recorded at this URL.
    const keyDir = envData ?? localData;
    const keyFile = resolve(keyDir, 'api-key');
    const recorded = existsSync(keyFile)
      ? undefined
      : userRecords(env).find(
          (r) =>
            r.record.apiUrl.replace(/\/+$/, '') === explicitUrl.url.replace(/\/+$/, '') &&
            processAlive(r.record),
        );
    return {
      apiUrl: explicitUrl.url,
      apiKey: recorded
        ? keyFor(env, recorded.record.keyFile, `the api-key file of ${recorded.record.dataDir}`)
        : keyFor(env, keyFile, `the api-key file of ${keyDir}`),
      foundIn: explicitUrl.from,
    };
  }
  if (envData) {
    const found = fromDataDir(env, envData, cwd);
    if (found.kind === 'live') return found.located;
    if (found.kind === 'stale') return fail('StaleServer', found.message, found.hint);
    return fail(
      'NotConfigured',
      `no Nimbus API to talk to: NIMBUS_DATA is ${envData}, and ${resolve(envData, 'api-url')} does not exist`,
      `start Nimbus with \`nimbus up --data ${envData}\`, or point NIMBUS_DATA at the data folder of a running one`,
    );
  }
  const local = fromDataDir(env, localData, cwd);
  if (local.kind === 'live') return local.located;

  const records = userRecords(env);
  const live = records.filter((r) => processAlive(r.record));
  // Started in this folder, or keeping its data directly in it (`--data ./state`): not merely below it, or
  // every server under the home folder would count as started there.
  const here = live.filter((r) => r.record.cwd === cwd || dirname(r.record.dataDir) === cwd);
  // The newest first: a restart in the same folder wins over an older server started there.
  const pick = (here.length > 0 ? here : live.length === 1 ? live : []).sort((a, b) =>
    b.record.startedAt.localeCompare(a.record.startedAt),
  )[0];
  if (pick) return located(env, pick.record, pick.path);
  if (live.length > 1) {
    const list = live.map((r) => `${r.record.dataDir} (${r.record.apiUrl}, pid ${r.record.pid})`).join(', ');
    return fail(
      'AmbiguousServer',
      `${live.length} Nimbus servers are running and none was started from ${cwd}: ${list}`,
      'choose one with NIMBUS_DATA=<data dir>, or run the command in the folder you started it from',
    );
  }
  if (local.kind === 'stale') return fail('StaleServer', local.message, local.hint);
  const stale = records[0];
  if (stale) {
    const s = stale.record;
    return fail(
      'StaleServer',
      `the Nimbus recorded in ${stale.path} (data dir ${s.dataDir}, pid ${s.pid}, started ${s.startedAt}) is no longer running`,
      `start it with \`nimbus up --data ${s.dataDir}\`, or start one here with \`nimbus up\``,
    );
  }
  return fail(
    'NotConfigured',
    `no Nimbus API to talk to: NIMBUS_API_URL is not set, ${resolve(localData, 'api-url')} does not exist and no running \`nimbus up\` is recorded in ${userStateDir(env)}`,
    'start Nimbus with `nimbus up` in this folder, or set NIMBUS_API_URL (or NIMBUS_DATA to its data folder)',
  );
}

type FromDataDir =
  { kind: 'live'; located: Located } | { kind: 'stale'; message: string; hint: string } | { kind: 'none' };

/** A data dir's server.json (written by `nimbus up`), or its bare api-url file (an embedded server's). */
function fromDataDir(env: NodeJS.ProcessEnv, dir: string, cwd: string): FromDataDir {
  const recordFile = resolve(dir, DATA_DIR_RECORD);
  const record = readRecord(recordFile);
  if (record) {
    if (processAlive(record)) return { kind: 'live', located: located(env, record, recordFile) };
    const start = dir === resolve(cwd, '.nimbus') ? '`nimbus up`' : `\`nimbus up --data ${dir}\``;
    return {
      kind: 'stale',
      message: `the Nimbus recorded in ${recordFile} (pid ${record.pid}, started ${record.startedAt}) is no longer running`,
      hint: `start it again with ${start}`,
    };
  }
  const urlFile = resolve(dir, 'api-url');
  const apiUrl = readSmallFile(urlFile);
  if (!apiUrl) return { kind: 'none' };
  return {
    kind: 'live',
    located: {
      apiUrl,
      apiKey: keyFor(env, resolve(dir, 'api-key'), `the api-key file of ${dir}`),
      foundIn: urlFile,
    },
  };
}

function located(env: NodeJS.ProcessEnv, record: ServerRecord, foundIn: string): Located {
  return {
    apiUrl: record.apiUrl,
    apiKey: keyFor(env, record.keyFile, `the api-key file of ${record.dataDir}`),
    foundIn,
  };
}

function keyFor(env: NodeJS.ProcessEnv, keyFile: string, what: string): string {
  const key = env['NIMBUS_API_KEY']?.trim() || readSmallFile(keyFile);
  if (key) return key;
  return fail(
    'NotConfigured',
    `no API key: NIMBUS_API_KEY is not set and ${keyFile} does not exist`,
    `set NIMBUS_API_KEY to the key in ${what} (shown by \`nimbus up\`)`,
  );
}

function readSmallFile(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch (e) {
    return fail(
      'NotConfigured',
      `cannot read ${path}: ${(e as Error).message}`,
      'check the file permissions',
    );
  }
}

import type { Command } from '../command.js';
import bucket from './bucket.js';
import apikey from './apikey.js';
import audit from './audit.js';
import credentials from './credentials.js';
import deploy from './deploy.js';
import events from './events.js';
import invoke from './invoke.js';
import key from './key.js';
import logs from './logs.js';
import project from './project.js';
import ls from './ls.js';
import queue from './queue.js';
import rm from './rm.js';
import secret from './secret.js';
import tableCmd from './table.js';
import up from './up.js';

/** In the order `nimbus --help` lists them. */
export const commands: Command[] = [
  up,
  deploy,
  invoke,
  ls,
  logs,
  events,
  queue,
  tableCmd,
  bucket,
  credentials,
  project,
  key,
  apikey,
  audit,
  secret,
  rm,
];

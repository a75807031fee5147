import type { Command } from '../command.js';
import bucket from './bucket.js';
import completion from './completion.js';
import info from './info.js';
import apikey from './apikey.js';
import audit from './audit.js';
import cost from './cost.js';
import credentials from './credentials.js';
import deploy from './deploy.js';
import event from './event.js';
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
import init from './init.js';
import trace from './trace.js';
import dev from './dev.js';

/** In the order `nimbus --help` lists them. */
export const commands: Command[] = [
  up,
  init,
  dev,
  deploy,
  invoke,
  ls,
  info,
  logs,
  trace,
  cost,
  events,
  event,
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
  completion,
];

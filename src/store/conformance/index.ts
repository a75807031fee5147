// The behaviour every Store backend must show, written once per part and run against each backend (SQLite and
// PostgreSQL), the way Hono runs one router case file against every router. Backend-specific checks (file
// modes, pragmas, schemas, storage layout) stay in that backend's own test file.
import { eventQueueConformance } from './events.js';
import { functionStoreConformance } from './functions.js';
import type { HarnessFactory } from './harness.js';
import { invocationLogConformance } from './invocations.js';
import { nodeRegistryConformance, projectStoreConformance } from './projects.js';
import { queueStoreConformance } from './queues.js';
import { quotaStoreConformance } from './quotas.js';
import { credentialStoreConformance } from './credentials.js';
import { apiKeyStoreConformance } from './api-keys.js';
import { gatewayKeyStoreConformance } from './gateway-keys.js';
import { secretStoreConformance } from './secrets.js';
import { objectStoreConformance } from './objects.js';
import { scheduleStoreConformance } from './schedules.js';
import { spanStoreConformance } from './spans.js';
import { tableStoreConformance } from './tables.js';
import { sessionStoreConformance } from './sessions.js';
import { invocationStatsConformance } from './invocation-stats.js';
import { usageStoreConformance } from './usage.js';

export type { HarnessFactory, StoreHarness } from './harness.js';
export { appendMany, codeOf, deployOf, fn, record, ref } from './harness.js';
export { queue } from './queues.js';
export { tableDef } from './tables.js';
export { newObject } from './objects.js';

/** Every part's suite against one backend. */
export function storeConformance(name: string, make: HarnessFactory): void {
  functionStoreConformance(name, make);
  invocationLogConformance(name, make);
  spanStoreConformance(name, make);
  eventQueueConformance(name, make);
  projectStoreConformance(name, make);
  nodeRegistryConformance(name, make);
  scheduleStoreConformance(name, make);
  queueStoreConformance(name, make);
  tableStoreConformance(name, make);
  credentialStoreConformance(name, make);
  apiKeyStoreConformance(name, make);
  gatewayKeyStoreConformance(name, make);
  secretStoreConformance(name, make);
  objectStoreConformance(name, make);
  quotaStoreConformance(name, make);
  sessionStoreConformance(name, make);
  invocationStatsConformance(name, make);
  usageStoreConformance(name, make);
}

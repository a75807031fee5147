export { openSqliteStore, SqliteStore, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT } from './store.js';
export type { SqliteStoreOptions, SqliteStoreStats } from './store.js';
export { StoreConflictError } from './errors.js';
export { canonicalJson } from './canonical-json.js';
export { MIGRATIONS, SCHEMA_VERSION, SchemaTooNewError } from './migrations.js';

export { openSqliteStore, SqliteStore } from './store.js';
export type { SqliteStoreOptions, SqliteStoreStats } from './store.js';
export { MIGRATIONS, SCHEMA_VERSION, SchemaTooNewError } from './migrations.js';

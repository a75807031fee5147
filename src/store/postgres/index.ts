// The PostgreSQL Store, for several Nimbus nodes sharing one database.
export {
  DEFAULT_SCHEMA,
  PostgresStore,
  SCHEMA_NAME,
  openPostgresStore,
  parsePostgresUrl,
  type PostgresStoreOptions,
  type PostgresTarget,
} from './store.js';
export { MIGRATIONS, MIGRATIONS_TABLE, SCHEMA_VERSION, type Migration } from './migrations.js';
export { SchemaTooNewError } from '../errors.js';

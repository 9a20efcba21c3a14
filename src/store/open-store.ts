import type { Config } from '../config.js';
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { Store, StoreLogger } from './store.js';

/** The store the configuration selects: PostgreSQL when a database URL is set, else the embedded file. */
export async function openStore(config: Config, logger: StoreLogger): Promise<Store> {
  if (config.databaseUrl !== null)
    return PostgresStore.open(config.databaseUrl, { poolSize: config.databasePool, timeoutMs: config.databaseTimeoutMs }, logger);
  return SqliteStore.open(config.dataDir, logger);
}

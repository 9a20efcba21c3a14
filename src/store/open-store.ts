import type { Config } from '../config.js';
import { SqliteStore, type StoreLogger } from './sqlite/sqlite-store.js';
import type { Store } from './store.js';

/** The store the configuration selects: the embedded SQLite file by default. */
export async function openStore(config: Config, logger: StoreLogger): Promise<Store> {
  if (config.databaseUrl !== null) throw new Error('the PostgreSQL store is not available in this version');
  return SqliteStore.open(config.dataDir, logger);
}

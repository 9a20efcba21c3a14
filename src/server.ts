import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { resolveAdminToken } from './admin-token.js';
import { SourceCache } from './collect/source-cache.js';
import type { Config } from './config.js';
import { buildApp } from './http/build-app.js';
import { createMetrics } from './metrics.js';
import { openStore } from './store/open-store.js';
import type { Store } from './store/store.js';

export interface RunningServer {
  app: FastifyInstance;
  /** The address it listens on, e.g. `http://127.0.0.1:8686`. */
  url: string;
  adminToken: string;
  close(): Promise<void>;
}

/**
 * Opens the store, builds the app and listens. `close` stops accepting, lets in-flight requests
 * commit, then closes the store (api.md: Ctrl-C / SIGTERM).
 */
export async function startServer(config: Config): Promise<RunningServer> {
  const { token, generated } = resolveAdminToken(config);
  // Printed once, on the start that generated it, as api.md promises; never logged.
  if (generated) process.stdout.write(`Generated admin token (saved in ${config.dataDir}/admin-token): ${token}\n`);

  let app: FastifyInstance | null = null;
  let store: Store | null = null;
  const metrics = createMetrics(async () => (store === null ? 0 : store.quarantineSize()));
  const logger = {
    error: (details: object, message: string) => app?.log.error(details, message),
    warn: (details: object, message: string) => app?.log.warn(details, message),
    committed: (size: number, seconds: number) => {
      metrics.commitBatchSize.observe(size);
      metrics.commitSeconds.observe(seconds);
    },
  };
  store = await openStore(config, logger);
  const sources = new SourceCache(store, logger);
  try {
    await sources.start();
    // Kept in the store, so every process on a shared database hashes ids alike.
    const hashKey = config.profileHashKey ?? (await store.profileHashKey(randomBytes(16).toString('hex')));
    app = await buildApp({ config, store, sources, adminToken: token, hashKey, metrics });
    app.addHook('onClose', async () => {
      sources.stop();
      await store.close();
    });
    const url = await app.listen({ port: config.port, host: config.host });
    const running = app;
    return { app: running, url, adminToken: token, close: () => running.close() };
  } catch (error) {
    sources.stop();
    await store.close();
    throw error;
  }
}

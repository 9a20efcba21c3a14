import type { Socket } from 'node:net';
import type pg from 'pg';

/**
 * Ends the connection of any client of `pool` held longer than `limitMs`. PostgreSQL ends a slow
 * statement itself (the pool's `statement_timeout`); what this catches is a database that stopped
 * answering altogether, a network that drops packets without a word, where a batch would
 * otherwise wait for the operating system to give up on the connection, many minutes later. The
 * holder's statements then fail at once, and the pool replaces the connection.
 *
 * One check a second for the whole pool, not a timer per statement: with `pg`'s own
 * per-statement timeout (`query_timeout`), statements' results outlived the young generation,
 * which cost the collector throughput and memory (docs/performance.md, finding 35). Returns the
 * function that stops it.
 */
export function watchHeldClients(pool: pg.Pool, limitMs: number, onLost: (heldMs: number) => void): () => void {
  const held = new Map<pg.PoolClient, number>();
  const acquired = (client: pg.PoolClient) => held.set(client, Date.now());
  const released = (_error: Error | undefined, client: pg.PoolClient) => held.delete(client);
  pool.on('acquire', acquired);
  pool.on('release', released);
  const timer = setInterval(
    () => {
      const now = Date.now();
      for (const [client, since] of held) {
        if (now - since <= limitMs) continue;
        held.delete(client);
        onLost(now - since);
        // As `pg` does when its own timeout ends a pipelined statement: the connection goes.
        (client as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
      }
    },
    Math.min(1000, limitMs / 4),
  );
  timer.unref();
  return () => {
    clearInterval(timer);
    pool.off('acquire', acquired);
    pool.off('release', released);
  };
}

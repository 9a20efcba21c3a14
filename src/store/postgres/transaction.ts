import type pg from 'pg';

/**
 * A statement's result, through `pg`'s callback form. Called without a callback, `pg` returns a
 * promise of its own making, and a result read that way stayed reachable until the old
 * generation's next collection: on the 1,000,000-event reads, 57 MB promoted out of the young
 * generation against 2 MB this way, and scavenges five times as long (docs/performance.md,
 * finding 36). Every statement of the store goes through here.
 */
export function run<R extends pg.QueryResultRow = any>(
  db: pg.ClientBase | pg.Pool,
  statement: string | pg.QueryConfig,
  values?: unknown[],
): Promise<pg.QueryResult<R>> {
  const config: pg.QueryConfig = typeof statement === 'string' ? { text: statement, values } : statement;
  return new Promise((resolve, reject) =>
    db.query<R>(config, (error, result) => (error ? reject(error) : resolve(result))),
  );
}

/**
 * Runs `fn` on a client of its own. A checked-out client that loses its connection emits
 * 'error', which would crash the process unheard (the pool listens only to idle clients), so it is
 * heard here; the failure reaches the caller through the failing query, and the broken client is
 * thrown away rather than returned to the pool.
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error) => (broken = error);
  client.on('error', onError);
  try {
    return await fn(client);
  } catch (error) {
    broken ??= error as Error;
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/** A transaction in progress, as `transaction` hands it to its function. */
export interface Transaction {
  client: pg.PoolClient;
  /** The results of the `opening` statements, in order. */
  opened: pg.QueryResult[];
  /**
   * Sends the transaction's last statements and COMMIT without waiting for each reply: on a pool
   * made with `pipeline: true`, one round trip. Afterwards the function only returns its value.
   */
  commitWith(...last: pg.QueryConfig[]): Promise<void>;
}

/**
 * `fn` inside BEGIN … COMMIT; ROLLBACK when it throws. `opening` statements are sent with the
 * BEGIN, without waiting for its reply (one round trip on a pipelined pool); each still starts
 * after the one before it ended, with a snapshot of its own. If one of them fails, those after it
 * fail too (the transaction is aborted) and so does the whole.
 */
export function transaction<T>(
  pool: pg.Pool,
  fn: (tx: Transaction) => Promise<T>,
  opening: pg.QueryConfig[] = [],
): Promise<T> {
  return withClient(pool, async (client) => {
    let committed = false;
    try {
      const [, ...opened] = await Promise.all([run(client, 'BEGIN'), ...opening.map((q) => run(client, q))]);
      const value = await fn({
        client,
        opened,
        // A failed statement aborts the transaction, and the COMMIT behind it then only rolls back.
        commitWith: async (...last) => {
          await Promise.all([...last.map((q) => run(client, q)), run(client, 'COMMIT')]);
          committed = true;
        },
      });
      if (!committed) await run(client, 'COMMIT');
      return value;
    } catch (error) {
      await run(client, 'ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}

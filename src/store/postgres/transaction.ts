import type pg from 'pg';

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

/**
 * `fn` inside BEGIN … COMMIT; ROLLBACK when it throws. `opening`, if given, is sent instead of a
 * bare BEGIN: statements that start with BEGIN, in one simple-protocol query (one round trip), whose
 * results `fn` gets, one per statement. It cannot carry parameters: values go in as literals.
 */
export function transaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient, opened: pg.QueryResult[]) => Promise<T>,
  opening = 'BEGIN',
): Promise<T> {
  return withClient(pool, async (client) => {
    try {
      const result = (await client.query(opening)) as pg.QueryResult | pg.QueryResult[];
      const value = await fn(client, Array.isArray(result) ? result : [result]);
      await client.query('COMMIT');
      return value;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}

import { readdirSync, readFileSync } from 'node:fs';
import type pg from 'pg';
import { run, transaction, withClient } from './transaction.js';

/** The migrations folder at the package root (the same depth from src/ and from dist/). */
const MIGRATIONS_DIR = new URL('../../../migrations/postgres/', import.meta.url);

/** Any constant; it names the lock that makes simultaneous starts migrate one after the other. */
const MIGRATION_LOCK = 4_242_001;

/**
 * Applies the ordered SQL files not yet recorded in `intake_migrations`, each in its own
 * transaction. Two processes starting at once take turns on an advisory lock, and the second
 * finds nothing left to do.
 */
export async function migrate(pool: pg.Pool): Promise<void> {
  const files = readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  await withClient(pool, async (client) => {
    // A migration may rebuild an index of millions of rows, and a process starting beside one
    // waits for it: no statement timeout on this connection while it migrates.
    await run(client, 'SET statement_timeout = 0');
    await run(client, 'SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await run(
        client,
        'CREATE TABLE IF NOT EXISTS intake_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const applied = new Set(
        (await run<{ name: string }>(client, 'SELECT name FROM intake_migrations')).rows.map((r) => r.name),
      );
      for (const file of files) {
        if (applied.has(file)) continue;
        await run(client, 'BEGIN');
        try {
          await run(client, readFileSync(new URL(file, MIGRATIONS_DIR), 'utf8'));
          await run(client, 'INSERT INTO intake_migrations (name) VALUES ($1)', [file]);
          await run(client, 'COMMIT');
        } catch (error) {
          await run(client, 'ROLLBACK');
          throw new Error(`migration ${file} failed: ${(error as Error).message}`);
        }
      }
    } finally {
      await run(client, 'SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      await run(client, 'RESET statement_timeout').catch(() => undefined);
    }
  });
}

/** `events_2026_11` holds the events inserted in November 2026 (UTC). */
export function partitionName(month: string): string {
  return `events_${month.replace('-', '_')}`;
}

/** The month (`YYYY-MM`, UTC) of an ISO time. */
export function monthOf(isoTime: string): string {
  return isoTime.slice(0, 7);
}

function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

/** Creates the month's partition if it is missing; safe when several processes try at once. */
export async function ensurePartition(pool: pg.Pool, month: string): Promise<void> {
  if (!/^\d{4}-\d{2}$/.test(month)) throw new Error(`bad month ${month}`);
  await transaction(pool, async ({ client }) => {
    await run(client, 'SELECT pg_advisory_xact_lock($1, hashtext($2))', [MIGRATION_LOCK, month]);
    await run(
      client,
      `CREATE TABLE IF NOT EXISTS ${partitionName(month)} PARTITION OF events
       FOR VALUES FROM ('${month}-01T00:00:00Z') TO ('${nextMonth(month)}-01T00:00:00Z')`,
    );
  });
}

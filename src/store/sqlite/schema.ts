import Database from 'better-sqlite3';

/**
 * Ordered migrations; `PRAGMA user_version` records how many are applied. Append, never edit.
 * Documents are stored as JSON text beside the columns that are filtered or joined on.
 * `profile_ids`: since 2026-11-27 a profile's own id gets no row (plan-batch.ts, `keep`); rows
 * written for own ids before that stay and are read the same way.
 */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT INTO meta (key, value) VALUES ('sources_version', 0);

  CREATE TABLE sources (id TEXT PRIMARY KEY, doc TEXT NOT NULL);

  -- seq gives a total order among events with the same insert time.
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    inserted_at INTEGER NOT NULL,
    type TEXT NOT NULL,
    source_id TEXT NOT NULL,
    session_id TEXT,
    profile_id TEXT,
    doc TEXT NOT NULL
  );
  CREATE INDEX events_by_time ON events (inserted_at, seq);
  CREATE INDEX events_by_source ON events (source_id, inserted_at, seq);
  CREATE INDEX events_by_type ON events (type, inserted_at, seq);
  CREATE INDEX events_by_session ON events (session_id, inserted_at, seq) WHERE session_id IS NOT NULL;
  CREATE INDEX events_by_profile ON events (profile_id, inserted_at, seq) WHERE profile_id IS NOT NULL;

  CREATE TABLE sessions (id TEXT PRIMARY KEY, profile_id TEXT, doc TEXT NOT NULL);
  CREATE TABLE profiles (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
  -- Every id a profile answers to (its own id included), for lookups by any of them.
  CREATE TABLE profile_ids (id TEXT PRIMARY KEY, profile_id TEXT NOT NULL);
  CREATE INDEX profile_ids_by_profile ON profile_ids (profile_id);
  `,
  `
  -- Settings shared by every process on the store, e.g. the key of hashed profile ids.
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  -- Custom event-to-profile mappings (identity.md §3).
  CREATE TABLE mappings (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
  CREATE INDEX sessions_by_profile ON sessions (profile_id);
  `,
  `
  -- Idempotency keys of deliveries, scoped to the source, with the first response (hardening.md §2).
  CREATE TABLE idempotency (
    source_id TEXT NOT NULL,
    key TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    response TEXT,
    PRIMARY KEY (source_id, key)
  );
  -- Refused requests kept for inspection and re-ingest (hardening.md §4).
  CREATE TABLE quarantine (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    source_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    doc TEXT NOT NULL,
    body BLOB NOT NULL
  );
  CREATE INDEX quarantine_by_source ON quarantine (source_id, seq);
  `,
];

/** How long a connection waits for another's write lock before the store counts as unavailable. */
export const BUSY_TIMEOUT_MS = 3000;

/**
 * Opens the database file with the durability Intake promises: WAL with synchronous FULL, so a
 * committed transaction is on disk before the commit returns.
 */
export function openDatabase(path: string): Database.Database {
  const db = new Database(path);
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}

/** Applies the migrations not yet applied, in one immediate transaction (safe for two processes). */
export function migrate(db: Database.Database): void {
  db.transaction(() => {
    const applied = db.pragma('user_version', { simple: true }) as number;
    for (let i = applied; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i] as string);
    if (applied < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

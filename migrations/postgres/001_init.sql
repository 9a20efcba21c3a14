-- Intake on PostgreSQL: the same documents and columns as the embedded store.
-- Documents are `json` (not jsonb): stored as the exact text written, so key order, duplicate
-- keys and number precision survive, as they do in SQLite.

CREATE TABLE meta (key text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO meta (key, value) VALUES ('sources_version', 0);

CREATE TABLE sources (id text PRIMARY KEY, doc json NOT NULL);

-- One sequence across all partitions: it orders events with the same insert time.
CREATE SEQUENCE events_seq AS bigint;

-- Partitioned by month of insert time, so an old month can be detached and dropped.
CREATE TABLE events (
  seq bigint NOT NULL DEFAULT nextval('events_seq'),
  id uuid NOT NULL,
  inserted_at timestamptz NOT NULL,
  type text NOT NULL,
  source_id text NOT NULL,
  session_id text,
  profile_id text,
  doc json NOT NULL,
  PRIMARY KEY (inserted_at, seq)
) PARTITION BY RANGE (inserted_at);

CREATE INDEX events_by_id ON events (id);
CREATE INDEX events_by_source ON events (source_id, inserted_at, seq);
CREATE INDEX events_by_type ON events (type, inserted_at, seq);
CREATE INDEX events_by_session ON events (session_id, inserted_at, seq) WHERE session_id IS NOT NULL;
CREATE INDEX events_by_profile ON events (profile_id, inserted_at, seq) WHERE profile_id IS NOT NULL;

CREATE TABLE sessions (id text PRIMARY KEY, profile_id text, doc json NOT NULL);
CREATE TABLE profiles (id text PRIMARY KEY, doc json NOT NULL);
-- Every id a profile answers to (its own id included), for lookups by any of them.
CREATE TABLE profile_ids (id text PRIMARY KEY, profile_id text NOT NULL);
CREATE INDEX profile_ids_by_profile ON profile_ids (profile_id);

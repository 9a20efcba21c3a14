-- Idempotency keys of deliveries, scoped to the source, with the first response (hardening.md §2).
CREATE TABLE idempotency (
  source_id text NOT NULL,
  key text NOT NULL,
  expires_at bigint NOT NULL,
  response json,
  PRIMARY KEY (source_id, key)
);

-- Refused requests kept for inspection and re-ingest (hardening.md §4).
CREATE TABLE quarantine (
  seq bigserial PRIMARY KEY,
  id uuid NOT NULL UNIQUE,
  source_id text NOT NULL,
  reason text NOT NULL,
  doc json NOT NULL,
  body bytea NOT NULL
);
CREATE INDEX quarantine_by_source ON quarantine (source_id, seq);

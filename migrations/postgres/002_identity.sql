-- Settings shared by every process, e.g. the key of hashed profile ids (identity.md §4).
CREATE TABLE settings (key text PRIMARY KEY, value text NOT NULL);
-- Custom event-to-profile mappings (identity.md §3).
CREATE TABLE mappings (id text PRIMARY KEY, doc json NOT NULL);
CREATE INDEX sessions_by_profile ON sessions (profile_id);

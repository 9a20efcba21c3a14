-- Events are looked up by id only for equality (GET /api/events/<id>), and ids are random: a
-- B-tree took each new id down its whole depth to a random leaf page. A hash index finds the
-- id's bucket page at once, with no order to keep: 6-8% more profile-less events a second on
-- the benchmark with random ids, no change with time-ordered ones (docs/performance.md,
-- finding 28). Rebuilding it holds off writes to events while it runs: on a large database,
-- upgrade in a quiet hour.
DROP INDEX events_by_id;
CREATE INDEX events_by_id ON events USING hash (id);

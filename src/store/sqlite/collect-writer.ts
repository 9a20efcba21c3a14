import type Database from 'better-sqlite3';
import { eventToJson } from '../../domain/event.js';
import type { Profile, ProfileTombstone } from '../../domain/profile.js';
import type { Session } from '../../domain/session.js';
import { planBatch } from '../plan-batch.js';
import { withIdempotency, type Claim } from '../idempotency.js';
import type { CollectOutcome, CollectUnit, StoredResponse } from '../store.js';

/**
 * The embedded store's write path: applies a batch of collector units in one transaction. Runs in
 * the writer thread, the only writer of events, sessions and profiles, one batch at a time, so
 * reading a session or profile and then creating it cannot race with another request.
 */
export function createCollectWriter(db: Database.Database): (units: CollectUnit[]) => Promise<CollectOutcome[]> {
  const insertEvent = db.prepare(
    `INSERT INTO events (id, inserted_at, type, source_id, session_id, profile_id, doc)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const selectSession = db.prepare<[string], string>('SELECT doc FROM sessions WHERE id = ?').pluck();
  const upsertSession = db.prepare(
    `INSERT INTO sessions (id, profile_id, doc) VALUES (?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET profile_id = excluded.profile_id, doc = excluded.doc`,
  );
  // A known session whose profile stays: only its document changes, and sessions_by_profile is
  // left alone (the upsert would rewrite its entry, one more page per event).
  const updateSessionDoc = db.prepare('UPDATE sessions SET doc = ? WHERE id = ?');
  const relinkSessions = db.prepare(
    `UPDATE sessions SET profile_id = ?, doc = json_set(doc, '$.profile.id', ?) WHERE profile_id = ?`,
  );
  const selectProfile = db.prepare<[string], string>('SELECT doc FROM profiles WHERE id = ?').pluck();
  const upsertProfile = db.prepare(
    'INSERT INTO profiles (id, doc) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc',
  );
  // An id the profile answers to has a row; its own id is its row in profiles (plan-batch.ts).
  const selectProfileId = db
    .prepare<{ id: string }, string | null>(
      'SELECT COALESCE((SELECT profile_id FROM profile_ids WHERE id = @id), (SELECT id FROM profiles WHERE id = @id))',
    )
    .pluck();
  // Claims a key, or re-claims an expired one; returns a row only when this unit may use it.
  const claimKey = db.prepare<[string, string, number, number], { one: number }>(
    `INSERT INTO idempotency (source_id, key, expires_at, response) VALUES (?, ?, ?, NULL)
     ON CONFLICT (source_id, key) DO UPDATE SET expires_at = excluded.expires_at, response = NULL
       WHERE idempotency.expires_at <= ?
     RETURNING 1 AS one`,
  );
  const keyResponse = db
    .prepare<[string, string], string | null>('SELECT response FROM idempotency WHERE source_id = ? AND key = ?')
    .pluck();
  const rememberKey = db.prepare('UPDATE idempotency SET response = ? WHERE source_id = ? AND key = ?');
  // A kept profile writes a row for each of its ids; one that already points there is left as it
  // is, not rewritten (a page of log each, for every new visit of a known customer).
  const upsertProfileId = db.prepare(
    `INSERT INTO profile_ids (id, profile_id) VALUES (?, ?)
     ON CONFLICT (id) DO UPDATE SET profile_id = excluded.profile_id WHERE profile_ids.profile_id IS NOT excluded.profile_id`,
  );

  /** The profile id each session read in this batch had, to know which ones keep theirs. */
  const readSessions = new Map<string, string | null>();
  const lookup = {
    session: async (id: string) => {
      const doc = selectSession.get(id);
      if (doc === undefined) return null;
      const session = JSON.parse(doc) as Session;
      readSessions.set(id, session.profile?.id ?? null);
      return session;
    },
    profile: async (id: string) => {
      const doc = selectProfile.get(id);
      return doc === undefined ? null : (JSON.parse(doc) as Profile | ProfileTombstone);
    },
    profileIdOf: async (anyId: string) => selectProfileId.get({ id: anyId }) ?? null,
  };

  return async (units) => {
    // Not db.transaction(): planning awaits its lookups. The writer takes one batch at a time.
    db.exec('BEGIN IMMEDIATE');
    readSessions.clear();
    try {
      const now = Date.now();
      const outcomes = await withIdempotency(
        units,
        {
          claim: async (claimants) =>
            claimants.map((unit): Claim => {
              const { key, expiresAt } = unit.idempotency!;
              if (claimKey.get(unit.sourceId, key, expiresAt, now) !== undefined) return { claimed: true };
              const response = keyResponse.get(unit.sourceId, key);
              return { claimed: false, response: response == null ? null : (JSON.parse(response) as StoredResponse) };
            }),
          remember: async (answers) => {
            for (const { unit, response } of answers) rememberKey.run(JSON.stringify(response), unit.sourceId, unit.idempotency!.key);
          },
        },
        async (fresh) => {
          const writes = await planBatch(fresh, lookup);
          for (const { from, to } of writes.relinks) relinkSessions.run(to, to, from);
          for (const [id, doc] of writes.profiles) upsertProfile.run(id, JSON.stringify(doc));
          for (const [id, profileId] of writes.profileIds) upsertProfileId.run(id, profileId);
          for (const session of writes.sessions.values()) {
            const profileId = session.profile?.id ?? null;
            const read = readSessions.get(session.id);
            if (read !== undefined && read === profileId) updateSessionDoc.run(JSON.stringify(session), session.id);
            else upsertSession.run(session.id, profileId, JSON.stringify(session));
          }
          for (const { event, insertedAt } of writes.events)
            insertEvent.run(event.id, insertedAt, event.type, event.sourceId, event.sessionId, event.profileId, eventToJson(event));
          return writes.outcomes;
        },
      );
      db.exec('COMMIT');
      return outcomes;
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  };
}

import type Database from 'better-sqlite3';
import { eventToJson } from '../../domain/event.js';
import type { Session } from '../../domain/session.js';
import { planBatch } from '../plan-batch.js';
import type { CollectOutcome, CollectUnit } from '../store.js';

/**
 * The embedded store's write path: applies a batch of collector units in one transaction. Runs in
 * the writer thread, the only writer of events, sessions and profiles, so reading a session and
 * then creating it cannot race with another request.
 */
export function createCollectWriter(db: Database.Database): (units: CollectUnit[]) => CollectOutcome[] {
  const insertEvent = db.prepare(
    `INSERT INTO events (id, inserted_at, type, source_id, session_id, profile_id, doc)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const selectSession = db.prepare<[string], string>('SELECT doc FROM sessions WHERE id = ?').pluck();
  const upsertSession = db.prepare(
    `INSERT INTO sessions (id, profile_id, doc) VALUES (?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET profile_id = excluded.profile_id, doc = excluded.doc`,
  );
  const profileExists = db.prepare<[string], number>('SELECT 1 FROM profiles WHERE id = ?').pluck();
  const insertProfile = db.prepare('INSERT INTO profiles (id, doc) VALUES (?, ?)');
  const insertProfileId = db.prepare('INSERT INTO profile_ids (id, profile_id) VALUES (?, ?)');

  const applyBatch = db.transaction((units: CollectUnit[]) => {
    const writes = planBatch(units, {
      session: (id) => {
        const doc = selectSession.get(id);
        return doc === undefined ? null : (JSON.parse(doc) as Session);
      },
      profileExists: (id) => profileExists.get(id) !== undefined,
    });
    for (const profile of writes.newProfiles) {
      insertProfile.run(profile.id, JSON.stringify(profile));
      for (const id of profile.ids) insertProfileId.run(id, profile.id);
    }
    for (const session of writes.sessions.values())
      upsertSession.run(session.id, session.profile?.id ?? null, JSON.stringify(session));
    for (const { event, insertedAt } of writes.events)
      insertEvent.run(event.id, insertedAt, event.type, event.sourceId, event.sessionId, event.profileId, eventToJson(event));
    return writes.outcomes;
  });
  return (units) => applyBatch.immediate(units);
}

import type Database from 'better-sqlite3';
import { eventToJson, INTERNAL_SOURCE_ID, type Event } from '../../domain/event.js';
import { eventTypeName } from '../../domain/event-type.js';
import { asJsonText, toJsonText } from '../../domain/json-text.js';
import type { Session } from '../../domain/session.js';
import { planVisit } from '../../domain/visit.js';
import type { CollectOutcome, CollectUnit } from '../store.js';

/**
 * The embedded store's write path: applies a batch of collector units in one transaction. Runs in
 * the writer thread, which is the only writer of events, sessions and profiles, so reading a
 * session and then creating it cannot race with another request.
 */
export function createCollectWriter(db: Database.Database): (units: CollectUnit[]) => CollectOutcome[] {
  const insertEvent = db.prepare(
    `INSERT INTO events (id, inserted_at, type, source_id, session_id, profile_id, doc)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const selectSession = db.prepare<[string], { doc: string }>('SELECT doc FROM sessions WHERE id = ?');
  const upsertSession = db.prepare(
    `INSERT INTO sessions (id, profile_id, doc) VALUES (?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET profile_id = excluded.profile_id, doc = excluded.doc`,
  );
  const profileExists = db.prepare<[string], { one: number }>('SELECT 1 AS one FROM profiles WHERE id = ?').pluck();
  const insertProfile = db.prepare('INSERT INTO profiles (id, doc) VALUES (?, ?)');
  const insertProfileId = db.prepare('INSERT INTO profile_ids (id, profile_id) VALUES (?, ?)');

  function storeEvent(event: Event, insertedAt: number): void {
    insertEvent.run(event.id, insertedAt, event.type, event.sourceId, event.sessionId, event.profileId, eventToJson(event));
  }

  function applyUnit(unit: CollectUnit): CollectOutcome {
    const insertedAt = Date.parse(unit.time);
    let sessionId: string | null = null;
    let profileId: string | null = null;

    if (unit.session !== null) {
      sessionId = unit.session.id;
      const row = selectSession.get(sessionId);
      const session = row ? (JSON.parse(row.doc) as Session) : null;
      const plan = planVisit(
        { sessionId, now: unit.time, ip: unit.ip, channel: unit.channel, newProfileId: unit.session.newProfileId },
        session,
        session?.profile != null && profileExists.get(session.profile.id) !== undefined,
      );
      profileId = plan.profileId;
      if (plan.newProfile !== null) {
        insertProfile.run(plan.newProfile.id, JSON.stringify(plan.newProfile));
        insertProfileId.run(plan.newProfile.id, plan.newProfile.id);
      }
      upsertSession.run(sessionId, profileId, JSON.stringify(plan.session));
      plan.systemEvents.forEach((type, i) =>
        storeEvent(
          {
            id: unit.systemEventIds[i] as string,
            type,
            name: eventTypeName(type),
            time: unit.time,
            channel: unit.channel,
            profileLess: false,
            ip: unit.ip,
            sourceId: INTERNAL_SOURCE_ID,
            sessionId,
            profileId,
            properties:
              type === 'visit-started'
                ? toJsonText({ 'trigger-event-types': unit.events.map((e) => e.type) })
                : asJsonText('{}'),
            request: null,
          },
          insertedAt,
        ),
      );
    }

    for (const draft of unit.events) {
      storeEvent(
        {
          ...draft,
          time: unit.time,
          channel: unit.channel,
          profileLess: unit.session === null,
          ip: unit.ip,
          sourceId: unit.sourceId,
          sessionId,
          profileId,
          request: unit.request,
        },
        insertedAt,
      );
    }
    return { sessionId, profileId };
  }

  const applyBatch = db.transaction((units: CollectUnit[]) => units.map(applyUnit));
  return (units) => applyBatch.immediate(units);
}

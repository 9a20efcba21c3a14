import { INTERNAL_SOURCE_ID, type Event } from '../domain/event.js';
import { eventTypeName } from '../domain/event-type.js';
import { asJsonText, toJsonText } from '../domain/json-text.js';
import type { Profile } from '../domain/profile.js';
import type { Session } from '../domain/session.js';
import { planVisit } from '../domain/visit.js';
import type { CollectOutcome, CollectUnit } from './store.js';

/** What the store already holds, as far as a batch needs to know. */
export interface BatchLookup {
  session(id: string): Session | null;
  profileExists(id: string): boolean;
}

/** Everything a batch writes, in the order it must be written. */
export interface BatchWrites {
  /** Events with their insert time in epoch milliseconds. */
  events: { event: Event; insertedAt: number }[];
  newProfiles: Profile[];
  /** The final state of every session the batch touched. */
  sessions: Map<string, Session>;
  outcomes: CollectOutcome[];
}

/**
 * Plans a batch of collector units against what the store holds: sessions and profiles are
 * resolved unit by unit, in arrival order, each unit seeing what the earlier ones created. Both
 * stores call this inside their transaction, so they agree on every rule of collector.md §6.
 */
export function planBatch(units: readonly CollectUnit[], lookup: BatchLookup): BatchWrites {
  const writes: BatchWrites = { events: [], newProfiles: [], sessions: new Map(), outcomes: [] };
  const created = new Set<string>();
  const sessionOf = (id: string) => writes.sessions.get(id) ?? lookup.session(id);
  const profileExists = (id: string) => created.has(id) || lookup.profileExists(id);

  for (const unit of units) {
    const insertedAt = Date.parse(unit.time);
    let sessionId: string | null = null;
    let profileId: string | null = null;

    if (unit.session !== null) {
      sessionId = unit.session.id;
      const session = sessionOf(sessionId);
      const plan = planVisit(
        { sessionId, now: unit.time, ip: unit.ip, channel: unit.channel, newProfileId: unit.session.newProfileId },
        session,
        session?.profile != null && profileExists(session.profile.id),
      );
      profileId = plan.profileId;
      if (plan.newProfile !== null) {
        writes.newProfiles.push(plan.newProfile);
        created.add(plan.newProfile.id);
      }
      writes.sessions.set(sessionId, plan.session);
      plan.systemEvents.forEach((type, i) => {
        const properties =
          type === 'visit-started'
            ? toJsonText({ 'trigger-event-types': unit.events.map((e) => e.type) })
            : asJsonText('{}');
        writes.events.push({
          insertedAt,
          event: {
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
            properties,
            request: null,
          },
        });
      });
    }

    for (const draft of unit.events) {
      writes.events.push({
        insertedAt,
        event: {
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
      });
    }
    writes.outcomes.push({ sessionId, profileId });
  }
  return writes;
}

import { INTERNAL_SOURCE_ID, type Event } from '../domain/event.js';
import { eventTypeName } from '../domain/event-type.js';
import { asJsonText, toJsonText } from '../domain/json-text.js';
import { applyMapping } from '../domain/mapping.js';
import { newId } from '../domain/new-id.js';
import { countVisit, isTombstone, mergeProfiles, newProfile, type Profile, type ProfileTombstone } from '../domain/profile.js';
import { newSession, type Session } from '../domain/session.js';
import type { CollectOutcome, CollectUnit, EventDraft } from './store.js';

/** What the store already holds, as far as a batch needs to know; read inside its transaction. */
export interface BatchLookup {
  session(id: string): Promise<Session | null>;
  /** By primary id: a live profile or a tombstone. */
  profile(id: string): Promise<Profile | ProfileTombstone | null>;
  /**
   * The profile any of its ids belongs to: the `profile_ids` row of an id it answers to, else the
   * profile whose own id it is (its own id has no row, except in databases written before).
   */
  profileIdOf(anyId: string): Promise<string | null>;
}

/** Everything a batch writes. */
export interface BatchWrites {
  /** Events with their insert time in epoch milliseconds, in arrival order. */
  events: { event: Event; insertedAt: number }[];
  /** New or changed profiles, tombstones included, by id. */
  profiles: Map<string, Profile | ProfileTombstone>;
  /** New or re-pointed rows of the any-id index: id → profile id. A profile's own id has none. */
  profileIds: Map<string, string>;
  /** Sessions outside this batch that belonged to an absorbed profile: relink `from` → `to`. */
  relinks: { from: string; to: string }[];
  /** The final state of every session the batch touched. */
  sessions: Map<string, Session>;
  outcomes: CollectOutcome[];
}

type SystemEventType = 'profile-created' | 'session-opened' | 'visit-started';

/**
 * Plans a batch against what the store holds, event by event in arrival order, each seeing what
 * the earlier ones did: sessions and visits (collector.md §6), profiles identified from payloads,
 * mappings into profiles and merges (identity.md §2, §3, §5). Both stores run it inside their
 * transaction, so they agree on every rule, and no SQL lives here.
 */
export async function planBatch(units: readonly CollectUnit[], lookup: BatchLookup): Promise<BatchWrites> {
  const writes: BatchWrites = {
    events: [],
    profiles: new Map(),
    profileIds: new Map(),
    relinks: [],
    sessions: new Map(),
    outcomes: [],
  };

  const sessionOf = async (id: string) => writes.sessions.get(id) ?? (await lookup.session(id));
  const profileRecord = async (id: string) => writes.profiles.get(id) ?? (await lookup.profile(id));
  /** The live profile with this primary id, following merges; null if there is none. */
  const liveProfile = async (id: string): Promise<Profile | null> => {
    let record = await profileRecord(id);
    for (let hops = 0; record !== null && isTombstone(record) && hops < 64; hops++)
      record = await profileRecord(record.merged_into);
    return record === null || isTombstone(record) ? null : record;
  };
  const profileByAnyId = async (anyId: string): Promise<Profile | null> => {
    const id = writes.profileIds.get(anyId) ?? (writes.profiles.has(anyId) ? anyId : await lookup.profileIdOf(anyId));
    return id === null ? null : liveProfile(id);
  };
  // A profile's own id is found in `profiles` itself; a row for it would write its random id into
  // two more indexes for every new profile (docs/performance.md, finding 16).
  const keep = (profile: Profile) => {
    writes.profiles.set(profile.id, profile);
    for (const id of profile.ids) if (id !== profile.id) writes.profileIds.set(id, profile.id);
  };
  const merge = (a: Profile, b: Profile, now: string): Profile => {
    if (a.id === b.id) return a;
    const { survivor, absorbed } = mergeProfiles(a, b, now);
    keep(survivor);
    writes.profiles.set(absorbed.id, { id: absorbed.id, merged_into: survivor.id });
    writes.relinks.push({ from: absorbed.id, to: survivor.id });
    for (const session of writes.sessions.values())
      if (session.profile?.id === absorbed.id) session.profile = { id: survivor.id };
    return survivor;
  };

  for (const unit of units) {
    const insertedAt = Date.parse(unit.time);
    let outcome: CollectOutcome | null = null;
    for (const draft of unit.events) {
      const { sessionId, profileId, createdId, systemEvents } =
        draft.identity === null
          ? { sessionId: null, profileId: null, createdId: null, systemEvents: [] }
          : await resolve(unit, draft);
      // `profile-created` names the profile created, even when this very event merged it into an
      // older one (its id answers with the survivor); the others name the profile it now belongs to.
      for (const type of systemEvents)
        writes.events.push({
          insertedAt,
          event: systemEvent(unit, type, draft, sessionId as string, (type === 'profile-created' ? createdId : profileId) as string),
        });
      writes.events.push({
        insertedAt,
        event: {
          id: draft.id,
          type: draft.type,
          name: draft.name,
          properties: draft.properties,
          time: unit.time,
          channel: unit.channel,
          profileLess: draft.identity === null,
          ip: unit.ip,
          sourceId: unit.sourceId,
          sessionId,
          profileId,
          request: unit.request,
        },
      });
      outcome ??= { sessionId, profileId };
    }
    writes.outcomes.push(outcome ?? { sessionId: null, profileId: null });
  }
  // A profile merged away later in the batch: its events keep the id they were stored with, which
  // the survivor answers to (identity.md §5: events are not rewritten).
  return writes;

  async function resolve(unit: CollectUnit, draft: EventDraft) {
    const identity = draft.identity!;
    const now = unit.time;
    const session = await sessionOf(identity.sessionId);
    const sessionProfile = session?.profile ? await liveProfile(session.profile.id) : null;

    let profile: Profile;
    let created = false;
    let createdId: string | null = null;
    if (identity.profile !== null) {
      const found = await profileByAnyId(identity.profile.lookupId);
      if (found !== null) profile = found;
      else {
        const { id, ids, data } = identity.profile.create;
        profile = { ...newProfile(id, now), ids: [...new Set([id, ...ids])], data };
        created = true;
        createdId = id;
      }
      // The identified profile wins for this event; the session's own profile is the same person.
      if (sessionProfile !== null) profile = merge(sessionProfile, profile, now);
    } else if (sessionProfile !== null) {
      profile = sessionProfile;
    } else {
      profile = newProfile(newId(unit.idScheme), now);
      created = true;
      createdId = profile.id;
    }

    const newVisit = session === null || sessionProfile === null;
    if (newVisit && !created) countVisit(profile, now);

    if (draft.mapping.length > 0) {
      const event = { type: draft.type, properties: JSON.parse(draft.properties) as unknown };
      const { changed, hashedIds } = applyMapping(profile, event, draft.mapping, now, unit.hashKey);
      // An identity field whose hashed id already belongs to another profile: one customer.
      for (const hashed of hashedIds) {
        const other = await profileByAnyId(hashed);
        if (other !== null) profile = merge(profile, other, now);
      }
      if (changed) keep(profile);
    }
    if (created || newVisit) keep(profile);

    const opened: Session =
      session === null
        ? newSession(identity.sessionId, profile.id, now, unit.ip, unit.channel)
        : {
            ...session,
            profile: { id: profile.id },
            metadata: {
              ...session.metadata,
              status: newVisit ? 'started' : 'active',
              time: { ...session.metadata.time, update: now },
            },
          };
    writes.sessions.set(opened.id, opened);

    const systemEvents: SystemEventType[] = newVisit
      ? [...(created ? (['profile-created'] as const) : []), 'session-opened', 'visit-started']
      : [];
    return { sessionId: identity.sessionId, profileId: profile.id, createdId, systemEvents };
  }
}

/** `profile-created`, `session-opened`, `visit-started`: stored under the internal source. */
function systemEvent(unit: CollectUnit, type: SystemEventType, trigger: EventDraft, sessionId: string, profileId: string): Event {
  return {
    id: newId(unit.idScheme),
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
        ? toJsonText({ 'trigger-event-types': unit.events.filter((e) => e.identity?.sessionId === sessionId).map((e) => e.type) })
        : asJsonText('{}'),
    request: null,
  };
}

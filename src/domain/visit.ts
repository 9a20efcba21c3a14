import { newProfile, type Profile } from './profile.js';
import { newSession, type Session } from './session.js';

/** The system events stored beside the user's events when a visit starts (collector.md §6). */
export type SystemEventType = 'profile-created' | 'session-opened' | 'visit-started';

export interface VisitContext {
  sessionId: string;
  now: string;
  ip: string | null;
  channel: string;
  /** The id to give a profile if one must be created. */
  newProfileId: string;
}

export interface VisitPlan {
  session: Session;
  /** Written only when `profileIsNew`; otherwise the existing profile is left as it is. */
  profileId: string;
  newProfile: Profile | null;
  systemEvents: SystemEventType[];
}

/**
 * Decides what a request carrying a session id does to its session and profile, given what the
 * store holds. Pure: the store reads, calls this, and writes the plan in the same transaction.
 *
 * - unknown session → new session with that id, new profile, visit counted, three system events;
 * - known session whose profile exists → session becomes `active`, nothing else changes;
 * - known session whose profile is gone → new profile, treated as a new visit.
 */
export function planVisit(ctx: VisitContext, session: Session | null, profileExists: boolean): VisitPlan {
  if (session !== null && session.profile !== null && profileExists) {
    return {
      session: {
        ...session,
        metadata: { ...session.metadata, status: 'active', time: { ...session.metadata.time, update: ctx.now } },
      },
      profileId: session.profile.id,
      newProfile: null,
      systemEvents: [],
    };
  }
  const profile = newProfile(ctx.newProfileId, ctx.now);
  const opened =
    session === null
      ? newSession(ctx.sessionId, profile.id, ctx.now, ctx.ip, ctx.channel)
      : {
          ...session,
          profile: { id: profile.id },
          metadata: { ...session.metadata, status: 'started' as const, time: { ...session.metadata.time, update: ctx.now } },
        };
  return {
    session: opened,
    profileId: profile.id,
    newProfile: profile,
    systemEvents: ['profile-created', 'session-opened', 'visit-started'],
  };
}

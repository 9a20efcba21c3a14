import type { JsonText } from '../domain/json-text.js';
import type { RequestInfo } from '../domain/event.js';
import type { Source, SourceInput, SourcePatch } from '../domain/source.js';

/** A user event as the pipeline built it; session and profile are filled in by the store. */
export interface EventDraft {
  id: string;
  type: string;
  name: string;
  properties: JsonText;
}

/**
 * Everything one collector request asks the store to commit, atomically. The store resolves the
 * session and profile inside its transaction (see domain/visit.ts) so that simultaneous requests
 * with one new session id make exactly one session and one profile.
 */
export interface CollectUnit {
  /** ISO time of the request; every event of the unit carries it. */
  time: string;
  sourceId: string;
  channel: string;
  ip: string | null;
  request: RequestInfo;
  /** Null on the session-less routes: no session or profile is read, created or referenced. */
  session: { id: string; newProfileId: string } | null;
  events: EventDraft[];
  /** Ids for the system events, should the unit open a visit. */
  systemEventIds: [string, string, string];
}

export interface CollectOutcome {
  sessionId: string | null;
  profileId: string | null;
}

export interface EventQuery {
  source?: string;
  type?: string;
  session?: string;
  profile?: string;
  /** Inclusive lower bound on insert time, epoch milliseconds. */
  from?: number;
  /** Exclusive upper bound on insert time, epoch milliseconds. */
  to?: number;
  limit: number;
  cursor?: EventCursor;
}

/** A position in the newest-first order: insert time, then the store's insert sequence. */
export interface EventCursor {
  time: number;
  seq: number;
}

export interface Page<T, C> {
  items: T[];
  next: C | null;
}

/**
 * The storage contract. The collector and the API know only this; `sqlite/` (embedded) implements
 * it, and PostgreSQL implements the same contract. Documents (events, sessions, profiles) come back
 * as their stored JSON text, so a payload is never re-serialised on the way out.
 */
export interface Store {
  /** Commits one request's events, session and profile changes durably (grouped with others). */
  collect(unit: CollectUnit): Promise<CollectOutcome>;

  getEvent(id: string): Promise<JsonText | null>;
  listEvents(query: EventQuery): Promise<Page<JsonText, EventCursor>>;
  getSession(id: string): Promise<JsonText | null>;
  /** Finds a profile by its id or any id in its `ids`. */
  getProfile(anyId: string): Promise<JsonText | null>;

  getSource(id: string): Promise<Source | null>;
  listSources(limit: number, after?: string): Promise<Page<Source, string>>;
  allSources(): Promise<Source[]>;
  /** Throws `errors.sourceExists` when the id is taken. */
  createSource(input: SourceInput & { id: string }): Promise<Source>;
  updateSource(id: string, patch: SourcePatch): Promise<Source | null>;
  deleteSource(id: string): Promise<boolean>;
  /** A number that changes whenever any process changes a source. */
  sourcesVersion(): Promise<number>;
  /**
   * Calls `onChange` soon after any process changes a source, where the store can push that
   * (PostgreSQL's NOTIFY); polling `sourcesVersion` stays the fallback. Returns an unsubscribe.
   */
  watchSources(onChange: () => void): () => void;

  /** Resolves when the store answers; rejects otherwise. */
  health(): Promise<void>;
  /** Finishes pending commits and releases the store. */
  close(): Promise<void>;
}

export interface StoreLogger {
  error(details: object, message: string): void;
}

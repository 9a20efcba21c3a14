import { IntakeError } from '../domain/errors.js';
import type { JsonText } from '../domain/json-text.js';
import type { RequestInfo } from '../domain/event.js';
import type { MappingItem, Mapping } from '../domain/mapping.js';
import type { IdScheme } from '../domain/new-id.js';
import type { Source, SourceInput, SourcePatch } from '../domain/source.js';

/** A user event as the pipeline built it; session and profile are resolved by the store. */
export interface EventDraft {
  id: string;
  type: string;
  name: string;
  properties: JsonText;
  /** How the event finds its session and profile; null on a profile-less event. */
  identity: EventIdentity | null;
  /** What the event copies into its profile (identity.md §3): catalogue and custom mappings. */
  mapping: MappingItem[];
}

export interface EventIdentity {
  /** From the URL, the payload, the sticky derivation, or new (identity.md §2 step 3). */
  sessionId: string;
  /** A profile identified from the payload; null → the session's profile, or a new one. */
  profile: ProfileClaim | null;
}

/** "The profile that answers to `lookupId`; if none, create this one." */
export interface ProfileClaim {
  lookupId: string;
  create: { id: string; ids: string[]; data: Record<string, unknown> };
}

/**
 * Everything one collector request asks the store to commit, atomically. The store resolves
 * sessions and profiles inside its transaction (plan-batch.ts), so simultaneous requests with one
 * new session id make exactly one session and one profile, and one pair of profiles merges once.
 */
export interface CollectUnit {
  /** The request's task id, remembered with an idempotency key. */
  task: string;
  /** ISO time of the request; every event of the unit carries it. */
  time: string;
  sourceId: string;
  channel: string;
  ip: string | null;
  request: RequestInfo;
  events: EventDraft[];
  /** The key of hashed ids, for identity fields that mappings set. */
  hashKey: string;
  /** The delivery's idempotency key (hardening.md §2), scoped to the source; null: none. */
  idempotency: { key: string; expiresAt: number } | null;
  /** How the store makes the ids of the system events and profiles this unit causes (domain/new-id.ts). */
  idScheme: IdScheme;
}

/** What the first request with an idempotency key answered; a retry gets it again. */
export interface StoredResponse {
  task: string;
  events: string[];
  sessionId: string | null;
  profileId: string | null;
}

/** A refused request kept for inspection and re-ingest (hardening.md §4). */
export interface QuarantineEntry {
  id: string;
  source: string;
  received_at: string;
  /** The refusal's code, e.g. SIGNATURE_FAILED, INVALID_JSON. */
  reason: string;
  detail: string;
  method: string;
  path: string;
  params: { eventType: string; sourceId: string; sessionId?: string };
  query: string;
  /** Raw header pairs, secret headers removed. */
  headers: [string, string][];
  body: Buffer;
  /** The body was cut at the size limit. */
  truncated: boolean;
  /**
   * The sender had passed the source's verification before the request was refused. A replay
   * of a `basic` or `token` request relies on it: their credential is a secret, not kept.
   * Absent in entries kept before it was recorded.
   */
  verified?: boolean;
}

export type QuarantineSummary = Omit<QuarantineEntry, 'body' | 'headers'> & { size: number };

export interface QuarantineQuery {
  source?: string;
  reason?: string;
  limit: number;
  /** The `next` of the previous page. */
  cursor?: number;
}

/** The session and profile of the unit's first event (its profile after any merge). */
export interface CollectOutcome {
  sessionId: string | null;
  profileId: string | null;
  /** Set when the unit's idempotency key was already used: nothing was stored. */
  replay?: StoredResponse;
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
  /** Finds a profile by its id or any id in its `ids`; an absorbed id answers with the survivor. */
  getProfile(anyId: string): Promise<JsonText | null>;

  getSource(id: string): Promise<Source | null>;
  listSources(limit: number, after?: string): Promise<Page<Source, string>>;
  allSources(): Promise<Source[]>;
  /** Throws `errors.sourceExists` when the id is taken. */
  createSource(input: SourceInput & { id: string }): Promise<Source>;
  updateSource(id: string, patch: SourcePatch): Promise<Source | null>;
  deleteSource(id: string): Promise<boolean>;
  /** A number that changes whenever any process changes a source or a mapping. */
  sourcesVersion(): Promise<number>;
  /**
   * Calls `onChange` soon after any process changes a source, where the store can push that
   * (PostgreSQL's NOTIFY); polling `sourcesVersion` stays the fallback. Returns an unsubscribe.
   */
  watchSources(onChange: () => void): () => void;

  /** The key of hashed ids: the stored one, or `candidate`, stored now if none was (first start). */
  profileHashKey(candidate: string): Promise<string>;

  listMappings(): Promise<Mapping[]>;
  getMapping(id: string): Promise<Mapping | null>;
  /** Inserts or replaces a mapping by id. */
  saveMapping(mapping: Mapping): Promise<void>;
  deleteMapping(id: string): Promise<boolean>;

  /**
   * Keeps a refused request, dropping the source's oldest beyond `maxPerSource`; resolves with
   * how many were dropped.
   */
  quarantine(entry: QuarantineEntry, maxPerSource: number): Promise<number>;
  listQuarantine(query: QuarantineQuery): Promise<Page<QuarantineSummary, number>>;
  getQuarantine(id: string): Promise<QuarantineEntry | null>;
  /** How many refused requests the quarantine holds, over all sources. */
  quarantineSize(): Promise<number>;
  deleteQuarantine(id: string): Promise<boolean>;

  /** Resolves when the store answers; rejects otherwise. */
  health(): Promise<void>;
  /** Finishes pending commits and releases the store. */
  close(): Promise<void>;
}

/** Where a store reports what the operator should know: failures, and each group commit. */
export interface StoreLogger {
  error(details: object, message: string): void;
  /** Something went wrong and was dealt with, e.g. a batch tried again. */
  warn(details: object, message: string): void;
  /** A group commit finished: how many requests it held and how long it took. */
  committed?(size: number, seconds: number): void;
}

/**
 * Whether a failed commit failed on what its units hold rather than on the store: a fault of
 * Intake's own code on some data (`TypeError`, `RangeError`), or a refusal the database names by
 * `isContentCode` (a value it cannot hold). Anything else (a lost connection, a full disk, a lock
 * held too long) is the store being unavailable, and a retry may succeed.
 */
export function failedOnContent(error: unknown, isContentCode: (code: string) => boolean): boolean {
  if (error instanceof TypeError || error instanceof RangeError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && isContentCode(code);
}

/** The error a store answers a unit with when it failed on its content alone (errors.unstorable). */
export const isUnstorable = (error: unknown): boolean => error instanceof IntakeError && error.code === 'UNSTORABLE';

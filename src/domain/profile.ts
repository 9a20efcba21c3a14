import { segmentsOf } from './mapping.js';

/** The customer (collector.md §6). `data`, `traits` … stay empty until mapping fills them. */
export interface Profile {
  id: string;
  ids: string[];
  metadata: {
    time: {
      insert: string;
      update: string;
      visit: { last: string | null; current: string; count: number };
    };
    /** When each mapped field last changed (identity.md §3). */
    fields?: Record<string, unknown>;
    /** Ids of the profiles merged into this one (identity.md §5). */
    merged_from?: string[];
  };
  data: Record<string, unknown>;
  traits: Record<string, unknown>;
  stats: Record<string, unknown>;
  segments: string[];
  interests: Record<string, unknown>;
  consents: Record<string, unknown>;
}

/** What is left of a profile merged into another: it answers with the survivor. */
export interface ProfileTombstone {
  id: string;
  merged_into: string;
}

export const isTombstone = (p: Profile | ProfileTombstone): p is ProfileTombstone => 'merged_into' in p;

/** A new profile whose visit counters start now. */
export function newProfile(id: string, now: string): Profile {
  return {
    id,
    ids: [id],
    metadata: { time: { insert: now, update: now, visit: { last: null, current: now, count: 1 } } },
    data: {},
    traits: {},
    stats: {},
    segments: [],
    interests: {},
    consents: {},
  };
}

/** A new visit of a known profile: `last := current`, `current := now`, `count += 1`. */
export function countVisit(profile: Profile, now: string): void {
  const visit = profile.metadata.time.visit;
  profile.metadata.time.visit = { last: visit.current, current: now, count: visit.count + 1 };
  profile.metadata.time.update = now;
}

/** Fills what `target` lacks from `source`, recursively; `target`'s values win. */
function fillMissing(target: Record<string, unknown>, source: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(source)) {
    const mine = Object.hasOwn(out, key) ? out[key] : undefined;
    if (mine === undefined || mine === null) Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else if (isPlainObject(mine) && isPlainObject(value)) out[key] = fillMissing(mine, value);
  }
  return out;
}

/**
 * Joins what two profiles gathered about one customer (`stats`, `interests`, `consents`): numbers
 * in `stats` are counters (`increment`) and add up, lists are joined without duplicates, objects
 * are joined key by key, and for anything else `target`'s value wins, as in `fillMissing`.
 */
function combine(target: Record<string, unknown>, source: Record<string, unknown>, addNumbers: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(source)) {
    const mine = Object.hasOwn(out, key) ? out[key] : undefined;
    let next: unknown = mine;
    if (mine === undefined || mine === null) next = value;
    else if (addNumbers && typeof mine === 'number' && typeof value === 'number') next = mine + value;
    else if (Array.isArray(mine) && Array.isArray(value)) {
      const seen = new Set(mine.map((v) => JSON.stringify(v)));
      next = [...mine, ...value.filter((v) => !seen.has(JSON.stringify(v)))];
    } else if (isPlainObject(mine) && isPlainObject(value)) next = combine(mine, value, addNumbers);
    Object.defineProperty(out, key, { value: next, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Merges two profiles of one customer (identity.md §5): the older survives, takes the other's
 * ids, fills its missing data and traits from it, adds up the visits and records what it absorbed.
 * What both gathered in `stats`, `interests` and `consents` is joined (`combine`).
 */
export function mergeProfiles(a: Profile, b: Profile, now: string): { survivor: Profile; absorbed: Profile } {
  const aFirst =
    a.metadata.time.insert < b.metadata.time.insert || (a.metadata.time.insert === b.metadata.time.insert && a.id < b.id);
  const [older, newer] = aFirst ? [a, b] : [b, a];
  const survivor: Profile = {
    ...older,
    ids: [...new Set([...older.ids, ...newer.ids])],
    metadata: {
      ...older.metadata,
      time: {
        ...older.metadata.time,
        update: now,
        visit: { ...older.metadata.time.visit, count: older.metadata.time.visit.count + newer.metadata.time.visit.count },
      },
      fields: { ...(newer.metadata.fields ?? {}), ...(older.metadata.fields ?? {}) },
      merged_from: [...new Set([...(older.metadata.merged_from ?? []), newer.id, ...(newer.metadata.merged_from ?? [])])],
    },
    data: fillMissing(older.data, newer.data),
    traits: fillMissing(older.traits, newer.traits),
    stats: combine(older.stats, newer.stats, true),
    interests: combine(older.interests, newer.interests, false),
    consents: combine(older.consents, newer.consents, false),
    segments: [...new Set([...segmentsOf(older), ...segmentsOf(newer)])],
  };
  return { survivor, absorbed: newer };
}

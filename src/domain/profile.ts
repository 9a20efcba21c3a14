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
  };
  data: Record<string, unknown>;
  traits: Record<string, unknown>;
  stats: Record<string, unknown>;
  segments: string[];
  interests: Record<string, unknown>;
  consents: Record<string, unknown>;
}

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

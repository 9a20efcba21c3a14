/** The documents the management API returns (docs/api.md, docs/collector.md §5). */

export const SOURCE_TYPES = ['webhook', 'rest', 'redirect'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

export interface Source {
  id: string;
  name: string;
  type: SourceType[];
  enabled: boolean;
  channel: string;
  description: string;
  transitional: boolean;
  config: Record<string, unknown>;
  tags: string[];
  created: string;
  updated: string;
  urls: string[];
}

export type Ref = { id: string } | null;

export interface EventDoc {
  id: string;
  type: string;
  name: string;
  metadata: { time: { insert: string }; status: string; channel: string; profile_less: boolean; ip: string | null };
  source: { id: string };
  session: Ref;
  profile: Ref;
  request: { method: string; path: string; query: string; ip: string | null; headers: Record<string, string> } | null;
}

export interface SessionDoc {
  id: string;
  profile: Ref;
  metadata: { time: { insert: string; update: string }; channel: string; status: string };
  context: { ip?: string | null };
}

export interface ProfileDoc {
  id: string;
  ids?: string[];
  metadata?: {
    time?: { insert?: string; update?: string; visit?: { last: string | null; current: string | null; count: number } };
    merged_from?: string[];
  };
}

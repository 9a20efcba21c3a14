/** A registered sender (collector.md §9). Its id in the URL is its credential. */
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
}

export const SOURCE_TYPES = ['webhook', 'rest', 'redirect'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

/** Lower-case, 1–128 of `a-z 0-9 . _ : -`; `@` is reserved for internal sources. */
export const SOURCE_ID_PATTERN = '^[a-z0-9._:-]{1,128}$';

/** The writable fields of a source, as the API and the CLI accept them. */
export interface SourceInput {
  id?: string;
  name: string;
  type?: SourceType[];
  enabled?: boolean;
  channel?: string;
  description?: string;
  transitional?: boolean;
  config?: Record<string, unknown>;
  tags?: string[];
}

export type SourcePatch = Partial<Omit<SourceInput, 'id'>>;

/** Source ids are case-insensitive: stored and looked up lower-cased (collector.md §4). */
export function normalizeSourceId(id: string): string {
  return id.trim().toLowerCase();
}

export function newSource(input: SourceInput, id: string, now: string): Source {
  return {
    id,
    name: input.name,
    type: input.type ?? ['webhook'],
    enabled: input.enabled ?? true,
    channel: input.channel ?? '',
    description: input.description ?? '',
    transitional: input.transitional ?? false,
    config: input.config ?? {},
    tags: input.tags ?? [],
    created: now,
    updated: now,
  };
}

export function patchSource(source: Source, patch: SourcePatch, now: string): Source {
  return { ...source, ...patch, id: source.id, created: source.created, updated: now };
}

/** The webhook URLs of a source, relative to the server (api.md). */
export function sourceUrls(id: string): string[] {
  return [`/collect/{event_type}/${id}`, `/collect/{event_type}/${id}/{session_id}`];
}

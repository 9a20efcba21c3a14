import { errors } from './errors.js';
import { hashedId, IDENTITY_FIELDS } from './hashed-id.js';
import { getPath, isDotPath, setPath } from './json-path.js';
import type { Profile } from './profile.js';

export const MAPPING_OPS = ['set', 'set_if_missing', 'append', 'increment'] as const;
export type MappingOp = (typeof MAPPING_OPS)[number];

/** One copy from a path in the event to a path in its profile (identity.md §3). */
export interface MappingItem {
  event: string;
  profile: string;
  op: MappingOp;
}

/** A custom mapping, managed through `/api/mappings`. */
export interface Mapping {
  id: string;
  event_type: string;
  source: string | null;
  enabled: boolean;
  items: MappingItem[];
  created: string;
  updated: string;
}

/** Where a mapping may write: never the profile's id, ids or metadata. */
const WRITABLE = /^(data|traits|stats|interests|consents)\.|^segments(\.|$)/;

export function validateMappingItems(items: MappingItem[]): void {
  items.forEach((item, i) => {
    if (!isDotPath(item.event)) throw errors.invalidField(`items/${i}/event must be a dot path into the event`);
    if (!isDotPath(item.profile) || !WRITABLE.test(item.profile))
      throw errors.invalidField(
        `items/${i}/profile must start with data., traits., stats., interests., consents. or segments`,
      );
  });
}

export interface MappingResult {
  /** Whether anything in the profile changed. */
  changed: boolean;
  /** Hashed ids of identity fields the mapping set, which the profile now answers to. */
  hashedIds: string[];
}

const isMissing = (v: unknown) => v === undefined || v === null || v === '';

/**
 * Applies mapping items to a profile in place: copies values from the event, stamps
 * `metadata.fields.<path>` with the event time for each changed field, and adds the hashed id of
 * every identity field it set to `ids`.
 */
export function applyMapping(
  profile: Profile,
  event: Record<string, unknown>,
  items: readonly MappingItem[],
  time: string,
  hashKey: string,
): MappingResult {
  const result: MappingResult = { changed: false, hashedIds: [] };
  const target = profile as unknown as Record<string, unknown>;
  for (const item of items) {
    const value = getPath(event, item.event);
    if (isMissing(value)) continue;
    const current = getPath(target, item.profile);
    let next: unknown;
    switch (item.op) {
      case 'set':
        next = value;
        break;
      case 'set_if_missing':
        next = isMissing(current) ? value : current;
        break;
      case 'append': {
        const list = Array.isArray(current) ? [...current] : isMissing(current) ? [] : [current];
        for (const v of Array.isArray(value) ? value : [value])
          if (!list.some((x) => JSON.stringify(x) === JSON.stringify(v))) list.push(v);
        next = list;
        break;
      }
      case 'increment': {
        const amount = typeof value === 'number' ? value : Number(value);
        if (!Number.isFinite(amount)) continue;
        next = (typeof current === 'number' ? current : 0) + amount;
        break;
      }
    }
    if (JSON.stringify(next) === JSON.stringify(current)) continue;
    setPath(target, item.profile, next);
    // Keyed by the whole path: `metadata.fields["data.contact.email.main"]`.
    const fields = (profile.metadata.fields ??= {});
    Object.defineProperty(fields, item.profile, { value: time, enumerable: true, writable: true, configurable: true });
    result.changed = true;
    const identity = IDENTITY_FIELDS[item.profile];
    if (identity !== undefined && typeof next === 'string' && next.trim() !== '') {
      const normalised = identity.normalize(next);
      if (normalised !== next) setPath(target, item.profile, normalised);
      const id = hashedId(hashKey, identity.prefix, normalised);
      if (!profile.ids.includes(id)) {
        profile.ids.push(id);
        result.hashedIds.push(id);
      }
    }
  }
  if (result.changed) profile.metadata.time.update = time;
  return result;
}

/**
 * Every hashed id `applyMapping` may add to a profile for this event, whatever the profile holds:
 * the identity fields its items would set to a text. A superset of `hashedIds` (an item that
 * changes nothing adds none), known before any profile is read, so that a store can lock what a
 * batch will look up before it looks.
 */
export function mappedIdentityIds(event: Record<string, unknown>, items: readonly MappingItem[], hashKey: string): string[] {
  const ids: string[] = [];
  for (const item of items) {
    const identity = IDENTITY_FIELDS[item.profile];
    if (identity === undefined || item.op === 'append' || item.op === 'increment') continue;
    const value = getPath(event, item.event);
    if (typeof value === 'string' && value.trim() !== '') ids.push(hashedId(hashKey, identity.prefix, identity.normalize(value)));
  }
  return ids;
}

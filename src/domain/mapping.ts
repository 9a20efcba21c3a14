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

/**
 * Where a mapping may write: never the profile's id, ids or metadata. `segments` is the profile's
 * list of segment names, written whole, never a path inside it.
 */
const WRITABLE = /^(data|traits|stats|interests|consents)\.|^segments$/;

export function validateMappingItems(items: MappingItem[]): void {
  items.forEach((item, i) => {
    if (!isDotPath(item.event)) throw errors.invalidField(`items/${i}/event must be a dot path into the event`);
    if (!isDotPath(item.profile) || !WRITABLE.test(item.profile))
      throw errors.invalidField(
        `items/${i}/profile must start with data., traits., stats., interests., consents. or be segments`,
      );
    if (item.profile === 'segments' && item.op === 'increment')
      throw errors.invalidField(`items/${i}: segments is a list of names; increment cannot apply to it`);
  });
}

export interface MappingResult {
  /** Whether anything in the profile changed. */
  changed: boolean;
  /** Hashed ids of identity fields the mapping set, which the profile now answers to. */
  hashedIds: string[];
}

const isMissing = (v: unknown) => v === undefined || v === null || v === '';

/** A decimal number, as JSON writes one or as text (`"12.50"`); not `0x10`, `true` or `[5]`. */
const DECIMAL = /^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;

/** The number an `increment` adds, or null when the value is not a number. */
function amountOf(value: unknown): number | null {
  const amount = typeof value === 'number' ? value : typeof value === 'string' && DECIMAL.test(value) ? Number(value) : null;
  return amount !== null && Number.isFinite(amount) ? amount : null;
}

/** Segment names in a value: a text or number, or the texts and numbers of a list. */
function segmentNames(value: unknown): string[] {
  const names = (Array.isArray(value) ? value : [value])
    .filter((v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)))
    .map((v) => String(v).trim())
    .filter((v) => v !== '');
  return [...new Set(names)];
}

/** The profile's segments as a list of names, whatever an older version of Intake left there. */
export const segmentsOf = (profile: { segments?: unknown }): string[] =>
  profile.segments === undefined || profile.segments === null ? [] : segmentNames(profile.segments);

/**
 * The normalised text of an identity field's value, which its hashed id is made from: texts and
 * numbers (a numeric `pk` is the same customer as its text); null for anything else, and for a
 * value that normalises to nothing (a phone of `"anonymous"`), which identifies no one.
 */
export function identityText(path: string, value: unknown): string | null {
  const identity = IDENTITY_FIELDS[path];
  if (identity === undefined) return null;
  if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) return null;
  const text = identity.normalize(String(value));
  return text === '' ? null : text;
}

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
    let value = getPath(event, item.event);
    if (isMissing(value)) continue;
    const identity = IDENTITY_FIELDS[item.profile];
    if (identity !== undefined) {
      // Compared, stored and hashed normalised: `" ANN@x.com"` over `ann@x.com` changes nothing.
      const text = identityText(item.profile, value);
      if (text === null) continue;
      if (typeof value === 'string') value = text;
    }
    const current = getPath(target, item.profile);
    let next: unknown;
    switch (item.op) {
      case 'set':
        next = item.profile === 'segments' ? segmentNames(value) : value;
        break;
      case 'set_if_missing':
        if (item.profile === 'segments') next = segmentsOf(profile).length === 0 ? segmentNames(value) : current;
        else next = isMissing(current) ? value : current;
        break;
      case 'append': {
        if (item.profile === 'segments') {
          next = [...new Set([...segmentsOf(profile), ...segmentNames(value)])];
          break;
        }
        const list = Array.isArray(current) ? [...current] : isMissing(current) ? [] : [current];
        for (const v of Array.isArray(value) ? value : [value])
          if (!list.some((x) => JSON.stringify(x) === JSON.stringify(v))) list.push(v);
        next = list;
        break;
      }
      case 'increment': {
        const amount = amountOf(value);
        if (amount === null) continue;
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
    // Only a value set names a customer: what `increment` or `append` made does not (and
    // `mappedIdentityIds`, which a store locks by, leaves them out too).
    const text = item.op === 'set' || item.op === 'set_if_missing' ? identityText(item.profile, next) : null;
    if (identity !== undefined && text !== null) {
      const id = hashedId(hashKey, identity.prefix, text);
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
 * the identity fields its items would set (`identityText`). A superset of `hashedIds` (an item that
 * changes nothing adds none), known before any profile is read, so that a store can lock what a
 * batch will look up before it looks.
 */
export function mappedIdentityIds(event: Record<string, unknown>, items: readonly MappingItem[], hashKey: string): string[] {
  const ids: string[] = [];
  for (const item of items) {
    const identity = IDENTITY_FIELDS[item.profile];
    if (identity === undefined || item.op === 'append' || item.op === 'increment') continue;
    const text = identityText(item.profile, getPath(event, item.event));
    if (text !== null) ids.push(hashedId(hashKey, identity.prefix, text));
  }
  return ids;
}

import { errors } from '../domain/errors.js';
import { hashedId, normalizeEmail, normalizePhone, stickySessionId } from '../domain/hashed-id.js';
import { getPath } from '../domain/json-path.js';
import { isStorableId } from '../domain/storable-text.js';
import { newId, type IdScheme } from '../domain/new-id.js';
import type { WebhookConfig } from '../domain/webhook-config.js';
import type { EventIdentity, ProfileClaim } from '../store/store.js';


/** A scalar payload value as text; absent, `null`, `""` and objects count as missing. */
function scalarAt(properties: unknown, path: string | null): string | null {
  if (path === null) return null;
  const value = getPath(properties, path);
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return null;
  const text = String(value).trim();
  return text === '' ? null : text;
}

/** A payload session id must be a valid path session id, or it is ignored (1–128, no controls). */
function sessionIdAt(properties: unknown, path: string | null): string | null {
  const id = scalarAt(properties, path);
  return id !== null && [...id].length <= 128 && isStorableId(id) ? id : null;
}

/** The longest customer id taken from a payload: an e-mail address used as an id fits. */
export const MAX_PROFILE_ID_LENGTH = 256;

/**
 * The profile a payload value names; null when it names no one (an e-mail or phone that
 * normalises to nothing, such as a caller id of `anonymous`). A customer id is kept as it is, so
 * one that no URL or store could carry is refused (422) rather than stored under another id.
 */
function claimFor(
  config: WebhookConfig,
  value: string,
  hashKey: string,
  idScheme: IdScheme,
): { claim: ProfileClaim; sticky: string } | null {
  switch (config.identifyBy) {
    case 'email': {
      const email = normalizeEmail(value);
      if (email === '') return null;
      const h = hashedId(hashKey, 'emm', email);
      return { claim: { lookupId: h, create: { id: newId(idScheme), ids: [h], data: { contact: { email: { main: email } } } } }, sticky: h };
    }
    case 'phone': {
      const phone = normalizePhone(value);
      if (phone === '') return null;
      const h = hashedId(hashKey, 'phm', phone);
      return { claim: { lookupId: h, create: { id: newId(idScheme), ids: [h], data: { contact: { phone: { main: phone } } } } }, sticky: h };
    }
    default:
      if ([...value].length > MAX_PROFILE_ID_LENGTH || !isStorableId(value))
        throw errors.invalidProfileId(config.profilePath ?? '', MAX_PROFILE_ID_LENGTH);
      return { claim: { lookupId: value, create: { id: value, ids: [], data: {} } }, sticky: value };
  }
}

/**
 * How one event finds its session and profile (identity.md §2). Without `generate_profile` this
 * is collector.md §6: the URL's session, or nothing. With it: a profile identified from the
 * payload, and a session from the URL, the payload, the sticky derivation, or a new one.
 * The properties are read, never modified (fix: Tracardi empties them).
 */
export function resolveIdentity(args: {
  config: WebhookConfig;
  urlSessionId: string | null;
  properties: () => unknown;
  hashKey: string;
  idScheme: IdScheme;
}): EventIdentity | null {
  const { config, urlSessionId, hashKey, idScheme } = args;
  if (!config.generateProfile) return urlSessionId === null ? null : { sessionId: urlSessionId, profile: null };

  const properties = args.properties();
  const value = config.identifyBy === 'none' ? null : scalarAt(properties, config.profilePath);
  const identified = value === null ? null : claimFor(config, value, hashKey, idScheme);
  const sessionId =
    urlSessionId ??
    sessionIdAt(properties, config.sessionPath) ??
    (config.stickySession && identified !== null ? stickySessionId(hashKey, identified.sticky) : newId(idScheme));
  return { sessionId, profile: identified?.claim ?? null };
}

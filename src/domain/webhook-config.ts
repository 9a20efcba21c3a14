import { errors } from './errors.js';
import { HARDENING_KEYS, parseHardeningConfig, type HardeningConfig } from './hardening-config.js';
import { isDotPath } from './json-path.js';

export type IdentifyBy = 'id' | 'email' | 'phone' | 'none';
const IDENTIFY_BY: readonly IdentifyBy[] = ['id', 'email', 'phone', 'none'];

/**
 * The webhook options of a source's `config`: identity (identity.md §1, Tracardi's names) and
 * hardening (hardening.md: verify, idempotency, max_body_bytes, rate_limit).
 */
export interface WebhookConfig extends HardeningConfig {
  generateProfile: boolean;
  identifyBy: IdentifyBy;
  profilePath: string | null;
  sessionPath: string | null;
  stickySession: boolean;
}

const KEYS = [
  'generate_profile',
  'identify_profile_by',
  'replace_profile_id',
  'replace_session_id',
  'sticky_session',
  ...HARDENING_KEYS,
];

/**
 * Validates a source's `config` and returns its meaning. Unknown keys and contradictions are a
 * 422 naming the key, when the source is saved. Tracardi's form — `replace_profile_id` without
 * `generate_profile` — means `generate_profile: true, identify_profile_by: "id"`.
 */
export function parseWebhookConfig(config: Record<string, unknown>): WebhookConfig {
  for (const key of Object.keys(config))
    if (!KEYS.includes(key)) throw errors.invalidField(`config.${key} is not a known option (known: ${KEYS.join(', ')})`);
  const bool = (key: string, fallback: boolean): boolean => {
    const value = config[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') throw errors.invalidField(`config.${key} must be true or false`);
    return value;
  };
  const path = (key: string): string | null => {
    const value = config[key];
    if (value === undefined || value === null) return null;
    if (!isDotPath(value)) throw errors.invalidField(`config.${key} must be a dot path such as data.object.email`);
    return value;
  };
  const profilePath = path('replace_profile_id');
  const sessionPath = path('replace_session_id');
  const tracardiForm = profilePath !== null && config.generate_profile === undefined;
  const rawIdentifyBy = config.identify_profile_by ?? (tracardiForm ? 'id' : 'none');
  if (!IDENTIFY_BY.includes(rawIdentifyBy as IdentifyBy))
    throw errors.invalidField(`config.identify_profile_by must be one of ${IDENTIFY_BY.join(', ')}`);
  const identifyBy = rawIdentifyBy as IdentifyBy;
  if (identifyBy !== 'none' && profilePath === null)
    throw errors.invalidField(`config.replace_profile_id is required when identify_profile_by is "${identifyBy}"`);
  return {
    ...parseHardeningConfig(config),
    generateProfile: tracardiForm || bool('generate_profile', false),
    identifyBy,
    profilePath,
    sessionPath,
    stickySession: bool('sticky_session', true),
  };
}

// Parsed once per source object: the source cache makes new objects when sources change, and
// parsing on every request was 5% of the main thread (docs/performance.md).
const parsed = new WeakMap<object, WebhookConfig>();

/** A source's webhook config, parsed once per source object. */
export function webhookConfigOf(source: { config: Record<string, unknown> }): WebhookConfig {
  let config = parsed.get(source);
  if (config === undefined) parsed.set(source, (config = parseWebhookConfig(source.config)));
  return config;
}

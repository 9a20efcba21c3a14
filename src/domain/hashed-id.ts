import { createHash } from 'node:crypto';

/**
 * Hashed profile ids, compatible with Tracardi's automatic profile merging (identity.md §4):
 * `prefix-` + the MD5 of `key-value` written as a UUID. With Tracardi's key, the ids match its own.
 */
export function uuidFormat(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

export function hashedId(key: string, prefix: string, normalisedValue: string): string {
  return `${prefix}-${uuidFormat(md5(`${key}-${normalisedValue}`))}`;
}

/** The session all of one customer's webhook events share, derived from their hashed id (or id). */
export function stickySessionId(key: string, identity: string): string {
  return uuidFormat(md5(`${key}:${identity}`));
}

export const normalizeEmail = (value: string): string => value.trim().toLowerCase();

/** A leading `+` and the digits; everything else (spaces, dashes, brackets) goes. */
export const normalizePhone = (value: string): string => {
  const trimmed = value.trim();
  return (trimmed.startsWith('+') ? '+' : '') + trimmed.replace(/\D/g, '');
};

/**
 * The identity fields of a profile, with the prefix of their hashed id. Values are normalised the
 * same way everywhere (fix: Tracardi hashed raw values in one place and normalised ones in another).
 */
export const IDENTITY_FIELDS: Readonly<Record<string, { prefix: string; normalize: (v: string) => string }>> = {
  'data.identifier.pk': { prefix: 'ipk', normalize: (v) => v.trim() },
  'data.identifier.id': { prefix: 'iid', normalize: (v) => v.trim() },
  'data.contact.email.main': { prefix: 'emm', normalize: normalizeEmail },
  'data.contact.email.business': { prefix: 'emb', normalize: normalizeEmail },
  'data.contact.email.private': { prefix: 'emp', normalize: normalizeEmail },
  'data.contact.phone.main': { prefix: 'phm', normalize: normalizePhone },
  'data.contact.phone.business': { prefix: 'phb', normalize: normalizePhone },
  'data.contact.phone.mobile': { prefix: 'pho', normalize: normalizePhone },
  'data.contact.phone.whatsapp': { prefix: 'pwa', normalize: normalizePhone },
};

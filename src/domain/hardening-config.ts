import { errors } from './errors.js';

/** Sender verification schemes (hardening.md §1). */
export const VERIFY_SCHEMES = ['stripe', 'github', 'shopify', 'slack', 'standard', 'hmac', 'basic', 'token'] as const;
export type VerifyScheme = (typeof VERIFY_SCHEMES)[number];

export interface VerifyConfig {
  scheme: VerifyScheme;
  /** Every active secret; a request passes if any verifies it (rotation). */
  secrets: string[];
  toleranceS: number;
  header: string | null;
  algorithm: 'sha1' | 'sha256' | 'sha512';
  encoding: 'hex' | 'base64';
  prefix: string;
  allowUrlSession: boolean;
}

export type IdempotencyConfig =
  | { mode: 'default'; windowS: number }
  | { mode: 'from'; from: { kind: 'header' | 'body' | 'query'; name: string }[]; windowS: number }
  | { mode: 'content'; windowS: number }
  | { mode: 'off' };

export interface HardeningConfig {
  verify: VerifyConfig | null;
  idempotency: IdempotencyConfig;
  maxBodyBytes: number | null;
  rateLimit: { perSecond: number; burst: number } | null;
}

export const HARDENING_KEYS = ['verify', 'idempotency', 'max_body_bytes', 'rate_limit'];

export const DEFAULT_WINDOW_S = 7 * 24 * 3600;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyKeys(where: string, value: Record<string, unknown>, keys: readonly string[]): void {
  for (const key of Object.keys(value))
    if (!keys.includes(key)) throw errors.invalidField(`${where}.${key} is not a known option (known: ${keys.join(', ')})`);
}

function positiveInt(where: string, value: unknown, fallback: number | null, max = 2 ** 31): number | null {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max)
    throw errors.invalidField(`${where} must be a whole number from 1 to ${max}`);
  return value;
}

function parseVerify(value: unknown): VerifyConfig | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value)) throw errors.invalidField('config.verify must be an object');
  onlyKeys('config.verify', value, ['scheme', 'secrets', 'tolerance_s', 'header', 'algorithm', 'encoding', 'prefix', 'allow_url_session']);
  const scheme = value.scheme as VerifyScheme;
  if (!VERIFY_SCHEMES.includes(scheme))
    throw errors.invalidField(`config.verify.scheme must be one of ${VERIFY_SCHEMES.join(', ')}`);
  const secrets = value.secrets;
  if (!Array.isArray(secrets) || secrets.length === 0 || secrets.length > 10 || !secrets.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 1024))
    throw errors.invalidField('config.verify.secrets must be a list of 1 to 10 non-empty strings');
  if (scheme === 'basic' && !secrets.every((s: string) => s.includes(':')))
    throw errors.invalidField('config.verify.secrets must be "user:password" for the basic scheme');
  if (scheme === 'standard' && !secrets.every((s: string) => /^(whsec_)?[A-Za-z0-9+/=]+$/.test(s)))
    throw errors.invalidField('config.verify.secrets must be base64 (optionally after whsec_) for the standard scheme');
  const header = value.header;
  if (header !== undefined && (typeof header !== 'string' || !/^[A-Za-z0-9-]{1,128}$/.test(header)))
    throw errors.invalidField('config.verify.header must be a header name');
  if (scheme === 'hmac' && header === undefined) throw errors.invalidField('config.verify.header is required for the hmac scheme');
  const algorithm = (value.algorithm ?? 'sha256') as VerifyConfig['algorithm'];
  if (!['sha1', 'sha256', 'sha512'].includes(algorithm))
    throw errors.invalidField('config.verify.algorithm must be sha1, sha256 or sha512');
  const encoding = (value.encoding ?? 'hex') as VerifyConfig['encoding'];
  if (!['hex', 'base64'].includes(encoding)) throw errors.invalidField('config.verify.encoding must be hex or base64');
  const prefix = value.prefix ?? '';
  if (typeof prefix !== 'string' || prefix.length > 64) throw errors.invalidField('config.verify.prefix must be a short string');
  const allow = value.allow_url_session ?? false;
  if (typeof allow !== 'boolean') throw errors.invalidField('config.verify.allow_url_session must be true or false');
  return {
    scheme,
    secrets: secrets as string[],
    toleranceS: positiveInt('config.verify.tolerance_s', value.tolerance_s, 300, 86_400 * 7) as number,
    header: typeof header === 'string' ? header.toLowerCase() : null,
    algorithm,
    encoding,
    prefix,
    allowUrlSession: allow,
  };
}

function parseIdempotency(value: unknown): IdempotencyConfig {
  if (value === undefined || value === null) return { mode: 'default', windowS: DEFAULT_WINDOW_S };
  if (!isObject(value)) throw errors.invalidField('config.idempotency must be an object');
  onlyKeys('config.idempotency', value, ['mode', 'from', 'window_s']);
  const windowS = positiveInt('config.idempotency.window_s', value.window_s, DEFAULT_WINDOW_S, 86_400 * 365) as number;
  if (value.mode === 'off') return { mode: 'off' };
  if (value.mode === 'content') return { mode: 'content', windowS };
  if (value.mode !== undefined) throw errors.invalidField('config.idempotency.mode must be content or off');
  if (value.from === undefined) return { mode: 'default', windowS };
  if (!Array.isArray(value.from) || value.from.length === 0)
    throw errors.invalidField('config.idempotency.from must be a non-empty list such as ["header:x-request-id"]');
  const from = value.from.map((entry: unknown) => {
    const match = typeof entry === 'string' ? /^(header|body|query):(.+)$/.exec(entry) : null;
    if (match === null) throw errors.invalidField('config.idempotency.from entries are header:<name>, body:<path> or query:<name>');
    const kind = match[1] as 'header' | 'body' | 'query';
    return { kind, name: kind === 'header' ? (match[2] as string).toLowerCase() : (match[2] as string) };
  });
  return { mode: 'from', from, windowS };
}

/** The hardening options of a source's `config` (hardening.md), validated when it is saved. */
export function parseHardeningConfig(config: Record<string, unknown>): HardeningConfig {
  const rate = config.rate_limit;
  let rateLimit: HardeningConfig['rateLimit'] = null;
  if (rate !== undefined && rate !== null) {
    if (!isObject(rate)) throw errors.invalidField('config.rate_limit must be an object');
    onlyKeys('config.rate_limit', rate, ['per_second', 'burst']);
    const perSecond = positiveInt('config.rate_limit.per_second', rate.per_second, null, 1_000_000);
    if (perSecond === null) throw errors.invalidField('config.rate_limit.per_second is required');
    rateLimit = { perSecond, burst: positiveInt('config.rate_limit.burst', rate.burst, perSecond, 1_000_000) as number };
  }
  return {
    verify: parseVerify(config.verify),
    idempotency: parseIdempotency(config.idempotency),
    maxBodyBytes: positiveInt('config.max_body_bytes', config.max_body_bytes, null, 1024 ** 3),
    rateLimit,
  };
}

/** `whsec_…c0ff`: enough to tell secrets apart, never enough to use one. */
export function maskSecret(secret: string): string {
  const underscore = secret.indexOf('_');
  const prefix = underscore > 0 && underscore <= 8 ? secret.slice(0, underscore + 1) : '';
  return secret.length - prefix.length >= 12 ? `${prefix}…${secret.slice(-4)}` : `${prefix}…`;
}

type Config = Record<string, unknown>;
const secretsOf = (config: Config | undefined): string[] | null => {
  const verify = config?.verify;
  return isObject(verify) && Array.isArray(verify.secrets) ? (verify.secrets as string[]) : null;
};

/** A source's config as the API shows it: secrets are write-only, shown only as masks. */
export function maskConfigSecrets(config: Config): Config {
  const secrets = secretsOf(config);
  if (secrets === null) return config;
  return { ...config, verify: { ...(config.verify as Config), secrets: secrets.map(maskSecret) } };
}

/**
 * A changed config that sends back a secret's mask (as read from the API) keeps that secret, so
 * editing other options never needs the secrets again. Masks are not unique (two secrets ending
 * alike, or short ones, mask the same): the list sent back whole, as read, keeps each secret in
 * its place; a mask that could stand for several secrets otherwise, or for none, is a 422 rather
 * than a guess that would swap or drop a secret.
 */
export function keepMaskedSecrets(next: Config, previous: Config): Config {
  const given = secretsOf(next);
  const known = secretsOf(previous);
  if (given === null) return next;
  const masks = (known ?? []).map(maskSecret);
  const asRead = known !== null && given.length === known.length && given.every((s, i) => s === masks[i] || s === known[i]);
  const resolved = given.map((s, i) => {
    if (asRead) return known[i] as string;
    if (known?.includes(s)) return s;
    const matches = (known ?? []).filter((_, k) => masks[k] === s);
    if (matches.length === 1) return matches[0] as string;
    if (matches.length > 1)
      throw errors.invalidField(`config.verify.secrets[${i}] is the mask of several secrets; send the secret itself`);
    if (s.includes('…')) throw errors.invalidField(`config.verify.secrets[${i}] is the mask of no current secret; send the secret itself`);
    return s;
  });
  return { ...next, verify: { ...(next.verify as Config), secrets: resolved } };
}

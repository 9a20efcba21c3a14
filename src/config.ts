import { isIP } from 'node:net';
import { ID_SCHEMES, type IdScheme } from './domain/new-id.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Fastify's `trustProxy`: a hop count or a list of trusted proxy addresses/CIDRs. */
export type TrustProxy = number | string[];

/** The whole configuration, read once at start (api.md "Configuration") and passed down. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | null;
  /** Connections each process keeps to PostgreSQL at most. */
  databasePool: number;
  /** Milliseconds a PostgreSQL statement may run, waits for locks included; then 503. */
  databaseTimeoutMs: number;
  adminToken: string | null;
  trustProxy: TrustProxy | null;
  /** Refused requests kept per source (hardening.md §4). */
  quarantineMax: number;
  /** Collector requests in flight at most; beyond, 503 (hardening.md §3). */
  maxInflight: number;
  /** The key of hashed profile ids; null: the one kept in the store (generated on first start). */
  profileHashKey: string | null;
  bodyLimit: number;
  logLevel: LogLevel;
  /** How the ids of new events, profiles and sessions are made (domain/new-id.ts). */
  idScheme: IdScheme;
}

/** An invalid setting; the CLI prints the message as one line and exits with code 2. */
export class ConfigError extends Error {}

/** Each setting: its environment variable and its `serve` flag. */
export const SETTINGS = {
  port: { env: 'PORT', flag: 'port' },
  host: { env: 'HOST', flag: 'host' },
  dataDir: { env: 'INTAKE_DATA_DIR', flag: 'data-dir' },
  databaseUrl: { env: 'INTAKE_DATABASE_URL', flag: 'database-url' },
  databasePool: { env: 'INTAKE_DATABASE_POOL', flag: 'database-pool' },
  databaseTimeoutMs: { env: 'INTAKE_DATABASE_TIMEOUT_MS', flag: 'database-timeout-ms' },
  adminToken: { env: 'INTAKE_ADMIN_TOKEN', flag: 'admin-token' },
  trustProxy: { env: 'INTAKE_TRUST_PROXY', flag: 'trust-proxy' },
  profileHashKey: { env: 'INTAKE_PROFILE_HASH_KEY', flag: 'profile-hash-key' },
  quarantineMax: { env: 'INTAKE_QUARANTINE_MAX', flag: 'quarantine-max' },
  maxInflight: { env: 'INTAKE_MAX_INFLIGHT', flag: 'max-inflight' },
  bodyLimit: { env: 'INTAKE_BODY_LIMIT', flag: 'body-limit' },
  logLevel: { env: 'INTAKE_LOG_LEVEL', flag: 'log-level' },
  idScheme: { env: 'INTAKE_IDS', flag: 'ids' },
} as const;

type Key = keyof typeof SETTINGS;

/** Dot-separated labels of letters, digits and inner hyphens (RFC 1123), e.g. `localhost`. */
const HOST_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Reads the configuration from the environment and flags; a flag wins over the environment. */
export function loadConfig(env: NodeJS.ProcessEnv, flags: Partial<Record<string, string>> = {}): Config {
  const raw = (key: Key): { value: string; name: string } | undefined => {
    const { env: envName, flag } = SETTINGS[key];
    const fromFlag = flags[flag];
    if (fromFlag !== undefined) return { value: fromFlag, name: `--${flag}` };
    const fromEnv = env[envName];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, name: envName };
    return undefined;
  };
  const bad = (setting: { name: string }, why: string) => new ConfigError(`${setting.name}: ${why}`);

  const integer = (key: Key, fallback: number, min: number, max: number): number => {
    const setting = raw(key);
    if (setting === undefined) return fallback;
    const n = Number(setting.value);
    if (!/^\d+$/.test(setting.value.trim()) || n < min || n > max)
      throw bad(setting, `must be a whole number from ${min} to ${max}, got "${setting.value}"`);
    return n;
  };

  const port = integer('port', 8686, 0, 65535);
  const bodyLimit = integer('bodyLimit', 1048576, 1, 1024 * 1024 * 1024);
  const databasePool = integer('databasePool', 10, 1, 1000);
  const databaseTimeoutMs = integer('databaseTimeoutMs', 15_000, 100, 3_600_000);
  const quarantineMax = integer('quarantineMax', 10_000, 1, 100_000_000);
  const maxInflight = integer('maxInflight', 10_000, 1, 10_000_000);

  const hostSetting = raw('host');
  if (hostSetting !== undefined && isIP(hostSetting.value) === 0 && !HOST_NAME.test(hostSetting.value))
    throw bad(hostSetting, `must be an IP address or a host name, got "${hostSetting.value}"`);
  const host = hostSetting?.value ?? '0.0.0.0';
  const dataDir = raw('dataDir')?.value ?? './data';

  const databaseUrlSetting = raw('databaseUrl');
  if (databaseUrlSetting !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrlSetting.value))
    throw bad(databaseUrlSetting, 'must be a postgres:// or postgresql:// URL');

  const tokenSetting = raw('adminToken');
  if (tokenSetting !== undefined && tokenSetting.value.length < 16)
    throw bad(tokenSetting, 'must be at least 16 characters');

  const levelSetting = raw('logLevel');
  if (levelSetting !== undefined && !LOG_LEVELS.includes(levelSetting.value as LogLevel))
    throw bad(levelSetting, `must be one of ${LOG_LEVELS.join(', ')}, got "${levelSetting.value}"`);

  const idSchemeSetting = raw('idScheme');
  if (idSchemeSetting !== undefined && !ID_SCHEMES.includes(idSchemeSetting.value as IdScheme))
    throw bad(idSchemeSetting, `must be one of ${ID_SCHEMES.join(', ')}, got "${idSchemeSetting.value}"`);

  return {
    port,
    host,
    dataDir,
    databaseUrl: databaseUrlSetting?.value ?? null,
    databasePool,
    databaseTimeoutMs,
    adminToken: tokenSetting?.value ?? null,
    trustProxy: parseTrustProxy(raw('trustProxy'), bad),
    profileHashKey: raw('profileHashKey')?.value ?? null,
    quarantineMax,
    maxInflight,
    bodyLimit,
    logLevel: (levelSetting?.value as LogLevel | undefined) ?? 'info',
    idScheme: (idSchemeSetting?.value as IdScheme | undefined) ?? 'random',
  };
}

/** Names proxy-addr (Fastify's trust-proxy implementation) understands beside addresses. */
const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function parseTrustProxy(
  setting: { value: string; name: string } | undefined,
  bad: (s: { name: string }, why: string) => ConfigError,
): TrustProxy | null {
  if (setting === undefined) return null;
  const value = setting.value.trim();
  if (/^\d+$/.test(value)) return Number(value);
  const entries = value.split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (entries.length === 0) throw bad(setting, 'must be a hop count or a list of addresses/CIDRs');
  for (const entry of entries) {
    if (PROXY_NAMES.has(entry)) continue;
    const [address = '', prefix] = entry.split('/');
    const family = isIP(address);
    const maxPrefix = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= maxPrefix);
    if (family === 0 || !prefixOk) throw bad(setting, `"${entry}" is not an IP address or CIDR`);
  }
  return entries;
}

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config.js';

export const ADMIN_TOKEN_FILE = 'admin-token';

/**
 * The management API's token: `INTAKE_ADMIN_TOKEN` if set, else the one saved in the data dir,
 * else a new one saved there with mode 0600 (`generated` tells the caller to print it once).
 */
export function resolveAdminToken(config: Config): { token: string; generated: boolean } {
  if (config.adminToken !== null) return { token: config.adminToken, generated: false };
  mkdirSync(config.dataDir, { recursive: true });
  const path = join(config.dataDir, ADMIN_TOKEN_FILE);
  try {
    const token = randomBytes(32).toString('base64url');
    // 'wx' fails if the file exists, so two processes starting at once keep one token.
    writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
    return { token, generated: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return { token: readFileSync(path, 'utf8').trim(), generated: false };
  }
}

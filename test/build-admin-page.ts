import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'vite';

const ROOT = new URL('..', import.meta.url).pathname;
const SOURCES = join(ROOT, 'ui');
const BUILT = join(ROOT, 'dist', 'ui', 'index.html');

function newestChange(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestChange(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Vitest global setup. The server serves the admin page from dist/ui/ (`npm run build`); this
 * rebuilds it when ui/ changed since, so the browser tests never run a stale page.
 */
export default async function buildAdminPageIfStale(): Promise<void> {
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= newestChange(SOURCES)) return;
  console.log('[intake] building the admin page (ui/ changed since dist/ui/ was built)');
  await build({ configFile: join(SOURCES, 'vite.config.ts'), logLevel: 'warn' });
}

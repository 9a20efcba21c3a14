import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** Where `vite build` puts the admin page (ui/vite.config.ts); the same from src/http and dist/http. */
export const UI_DIR = fileURLToPath(new URL('../../dist/ui/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** The page loads only its own files and talks only to this server. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface Asset {
  body: Buffer;
  type: string;
  /** Vite puts a content hash in the names under assets/, so they never change. */
  immutable: boolean;
}

/** Every file of the build, read once at start: a handful of small files, served from memory. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (subdir: string) => {
    for (const entry of readdirSync(join(dir, subdir), { withFileTypes: true })) {
      const name = subdir === '' ? entry.name : `${subdir}/${entry.name}`;
      if (entry.isDirectory()) walk(name);
      else if (entry.isFile())
        assets.set(name, {
          body: readFileSync(join(dir, name)),
          type: TYPES[extname(name)] ?? 'application/octet-stream',
          immutable: name.startsWith('assets/'),
        });
    }
  };
  if (existsSync(dir)) walk('');
  return assets;
}

/** The admin page (issue 7) at `/ui/`, and `/` sending a browser there. */
export async function uiRoutes(app: FastifyInstance): Promise<void> {
  const assets = loadAssets(UI_DIR);

  const send = (reply: FastifyReply, name: string) => {
    const asset = assets.get(name);
    if (asset === undefined) {
      if (assets.size === 0)
        return reply.code(503).send({ detail: 'The admin page is not built; run `npm run build`' });
      return reply.code(404).send({ detail: 'Not found' });
    }
    reply
      .type(asset.type)
      .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    if (name.endsWith('.html'))
      reply.header('content-security-policy', CONTENT_SECURITY_POLICY).header('x-frame-options', 'DENY');
    return reply.send(asset.body);
  };

  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/ui/', 302));
  app.get('/ui/', { schema: { hide: true } }, async (_request, reply) => send(reply, 'index.html'));
  app.get<{ Params: { '*': string } }>('/ui/*', { schema: { hide: true } }, async (request, reply) =>
    send(reply, request.params['*'] === '' ? 'index.html' : request.params['*']),
  );
}

import type { FastifyInstance } from 'fastify';
import { errors } from '../domain/errors.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * Fastify answers 404 for a known path with the wrong method; the contract says 405 (api.md).
 * Call `track` before routes are added and `answer` after: every path then gets a 405 route, with
 * an `Allow` header, for each method it lacks.
 */
export function methodNotAllowed(app: FastifyInstance) {
  const methodsByUrl = new Map<string, Set<string>>();
  let answering = false;
  return {
    track(): void {
      app.addHook('onRoute', (route) => {
        if (answering) return;
        const set = methodsByUrl.get(route.url) ?? new Set<string>();
        for (const m of [route.method].flat()) set.add(m);
        methodsByUrl.set(route.url, set);
      });
    },
    answer(): void {
      answering = true;
      for (const [url, allowed] of methodsByUrl) {
        const missing = METHODS.filter((m) => !allowed.has(m));
        if (missing.length === 0) continue;
        const allow = [...allowed];
        app.route({
          method: missing,
          url,
          schema: { hide: true },
          // Refused before the body is read, so no body can turn the 405 into a 400 or 415.
          onRequest: async (request) => {
            throw errors.methodNotAllowed(request.method, allow);
          },
          handler: async () => undefined, // never reached: onRequest refuses first
        });
      }
    },
  };
}

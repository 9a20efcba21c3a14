import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { errors } from '../domain/errors.js';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * The management API's bearer-token check, in constant time: both sides are hashed first so the
 * comparison does not leak the token's length either.
 */
export function bearerAuth(adminToken: string) {
  const expected = digest(adminToken);
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = digest(match?.[1]?.trim() ?? '');
    if (match === null || !timingSafeEqual(given, expected)) throw errors.unauthorized();
  };
}

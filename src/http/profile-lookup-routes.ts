import type { FastifyInstance } from 'fastify';
import { errors } from '../domain/errors.js';
import { hashedId, IDENTITY_FIELDS } from '../domain/hashed-id.js';
import type { JsonText } from '../domain/json-text.js';
import type { Store } from '../store/store.js';
import { bearerAuth } from './auth.js';
import { errorResponses, listSchema, profileSchema } from './schemas.js';

export interface ProfileLookupDeps {
  store: Store;
  adminToken: string;
  hashKey: string;
}

/** The hashed-id prefixes of each kind of contact (identity.md §4): e-mail main/business/private, phone …. */
const PREFIXES = {
  email: Object.entries(IDENTITY_FIELDS).filter(([path]) => path.startsWith('data.contact.email.')),
  phone: Object.entries(IDENTITY_FIELDS).filter(([path]) => path.startsWith('data.contact.phone.')),
};

/**
 * `GET /api/profiles?email=` / `?phone=` (api.md): the profiles that answer to an e-mail address or
 * phone number. A profile holds those only as hashed ids, so the server hashes the value the way
 * identification does, once per contact field, and looks each hashed id up.
 */
export async function profileLookupRoutes(app: FastifyInstance, deps: ProfileLookupDeps): Promise<void> {
  app.addHook('onRequest', bearerAuth(deps.adminToken));

  app.get<{ Querystring: { email?: string; phone?: string } }>(
    '/profiles',
    {
      schema: {
        summary: 'Find the profiles of an e-mail address or a phone number',
        description:
          'Exactly one of `email` or `phone`. The value is normalised and hashed like identification does ' +
          '(identity.md §4) for each contact field (e-mail main, business, private; phone main, business, ' +
          'mobile, WhatsApp); the profiles answering to any of those hashed ids, each once.',
        tags: ['read'],
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          properties: { email: { type: 'string', minLength: 1 }, phone: { type: 'string', minLength: 1 } },
        },
        response: { 200: listSchema(profileSchema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { email, phone } = request.query;
      if ((email === undefined) === (phone === undefined)) throw errors.invalidField('give exactly one of email or phone');
      const [kind, value] = email !== undefined ? (['email', email] as const) : (['phone', phone as string] as const);
      const found = new Map<string, JsonText>();
      for (const [, field] of PREFIXES[kind]) {
        const doc = await deps.store.getProfile(hashedId(deps.hashKey, field.prefix, field.normalize(value)));
        if (doc === null) continue;
        const id = (JSON.parse(doc) as { id: string }).id;
        if (!found.has(id)) found.set(id, doc);
      }
      return reply.type('application/json; charset=utf-8').send(`{"items":[${[...found.values()].join(',')}],"next":null}`);
    },
  );
}

import type { FastifyInstance, FastifyReply } from 'fastify';
import type { SourceCache } from '../collect/source-cache.js';
import { errors } from '../domain/errors.js';
import { normalizeEventType } from '../domain/event-type.js';
import type { JsonText } from '../domain/json-text.js';
import {
  normalizeSourceId,
  SOURCE_ID_PATTERN,
  sourceUrls,
  type Source,
  type SourceInput,
  type SourcePatch,
} from '../domain/source.js';
import { keepMaskedSecrets, maskConfigSecrets } from '../domain/hardening-config.js';
import { parseWebhookConfig } from '../domain/webhook-config.js';
import type { Store } from '../store/store.js';
import { bearerAuth } from './auth.js';
import { sendJsonPage } from './json-page.js';
import { decodeEventCursor, encodeEventCursor, parseLimit, parseTime } from './pagination.js';
import {
  errorResponses,
  eventSchema,
  idParamSchema,
  listSchema,
  pageQuerySchema,
  profileSchema,
  sessionSchema,
  sourceCreateSchema,
  sourcePatchSchema,
  sourceSchema,
} from './schemas.js';

export interface ApiDeps {
  store: Store;
  sources: SourceCache;
  adminToken: string;
}

const sourceIdPattern = new RegExp(SOURCE_ID_PATTERN);
/** A source as the API shows it: its webhook URLs, and its secrets masked (hardening.md §1). */
const withUrls = (source: Source) => ({ ...source, config: maskConfigSecrets(source.config), urls: sourceUrls(source.id) });
const security = [{ bearer: [] }];

/** Sends a stored JSON document as it is: it was serialised once, when it was written. */
function sendDocument(reply: FastifyReply, doc: JsonText | null, what: string): FastifyReply {
  if (doc === null) throw errors.notFound(`${what} not found`);
  return reply.type('application/json; charset=utf-8').send(doc);
}

/** The management API (api.md): sources, and reading events, sessions and profiles. */
export async function apiRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { store, sources } = deps;
  app.addHook('onRequest', bearerAuth(deps.adminToken));
  // JSON in and out (api.md): without this, Fastify's default text/plain parser lets a text body
  // through to validation (422) instead of refusing its media type (415).
  app.removeContentTypeParser('text/plain');

  // ---- sources -------------------------------------------------------------------------------

  app.post<{ Body: SourceInput }>(
    '/sources',
    {
      schema: {
        summary: 'Create a source',
        tags: ['sources'],
        security,
        body: sourceCreateSchema,
        response: { 201: sourceSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const id = request.body.id === undefined ? crypto.randomUUID() : normalizeSourceId(request.body.id);
      if (!sourceIdPattern.test(id))
        throw errors.invalidField('id must be 1–128 of a-z 0-9 . _ : - (it is lower-cased)');
      parseWebhookConfig(request.body.config ?? {});
      const source = await store.createSource({ ...request.body, id });
      await sources.reload();
      return reply.code(201).send(withUrls(source));
    },
  );

  app.get<{ Querystring: { limit?: string; cursor?: string } }>(
    '/sources',
    {
      schema: {
        summary: 'List sources by id',
        tags: ['sources'],
        security,
        querystring: { type: 'object', properties: pageQuerySchema },
        response: { 200: listSchema(sourceSchema), ...errorResponses },
      },
    },
    async (request) => {
      const page = await store.listSources(parseLimit(request.query.limit), request.query.cursor);
      return { items: page.items.map(withUrls), next: page.next };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/sources/:id',
    {
      schema: {
        summary: 'Get a source',
        tags: ['sources'],
        security,
        params: idParamSchema,
        response: { 200: sourceSchema, ...errorResponses },
      },
    },
    async (request) => {
      const source = await store.getSource(normalizeSourceId(request.params.id));
      if (source === null) throw errors.notFound('Source not found');
      return withUrls(source);
    },
  );

  app.patch<{ Params: { id: string }; Body: SourcePatch }>(
    '/sources/:id',
    {
      schema: {
        summary: 'Change a source; takes effect on every collector within a second',
        tags: ['sources'],
        security,
        params: idParamSchema,
        body: sourcePatchSchema,
        response: { 200: sourceSchema, ...errorResponses },
      },
    },
    async (request) => {
      const id = normalizeSourceId(request.params.id);
      let patch = request.body;
      if (patch.config !== undefined) {
        const current = await store.getSource(id);
        if (current !== null) patch = { ...patch, config: keepMaskedSecrets(patch.config, current.config) };
        parseWebhookConfig(patch.config as Record<string, unknown>);
      }
      const source = await store.updateSource(id, patch);
      if (source === null) throw errors.notFound('Source not found');
      await sources.reload();
      return withUrls(source);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/sources/:id',
    {
      schema: {
        summary: 'Delete a source; its stored events stay',
        tags: ['sources'],
        security,
        params: idParamSchema,
        response: { 204: { type: 'null', description: 'deleted' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const deleted = await store.deleteSource(normalizeSourceId(request.params.id));
      if (!deleted) throw errors.notFound('Source not found');
      await sources.reload();
      return reply.code(204).send();
    },
  );

  // ---- events, sessions, profiles ------------------------------------------------------------

  app.get<{ Params: { id: string } }>(
    '/events/:id',
    {
      schema: {
        summary: 'Get an event',
        tags: ['read'],
        security,
        params: idParamSchema,
        response: { 200: eventSchema, ...errorResponses },
      },
    },
    async (request, reply) => sendDocument(reply, await store.getEvent(request.params.id.toLowerCase()), 'Event'),
  );

  type EventListQuery = {
    source?: string;
    type?: string;
    session?: string;
    profile?: string;
    from?: string;
    to?: string;
    limit?: string;
    cursor?: string;
  };
  app.get<{ Querystring: EventListQuery }>(
    '/events',
    {
      schema: {
        summary: 'List events, newest first',
        tags: ['read'],
        security,
        querystring: {
          type: 'object',
          properties: {
            source: { type: 'string' },
            type: { type: 'string', description: 'normalised like a collected type' },
            session: { type: 'string' },
            profile: { type: 'string' },
            from: { type: 'string', description: 'ISO time, inclusive, on metadata.time.insert' },
            to: { type: 'string', description: 'ISO time, exclusive, on metadata.time.insert' },
            ...pageQuerySchema,
          },
        },
        response: { 200: listSchema(eventSchema), ...errorResponses },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const page = await store.listEvents({
        ...(q.source !== undefined ? { source: normalizeSourceId(q.source) } : {}),
        ...(q.type !== undefined ? { type: normalizeEventType(q.type) } : {}),
        ...(q.session !== undefined ? { session: q.session.trim() } : {}),
        ...(q.profile !== undefined ? { profile: q.profile.trim() } : {}),
        ...(q.from !== undefined ? { from: parseTime('from', q.from) as number } : {}),
        ...(q.to !== undefined ? { to: parseTime('to', q.to) as number } : {}),
        ...(q.cursor !== undefined ? { cursor: decodeEventCursor(q.cursor) } : {}),
        limit: parseLimit(q.limit),
      });
      const next = page.next === null ? null : encodeEventCursor(page.next);
      return sendJsonPage(reply, page.items, next);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/sessions/:id',
    {
      schema: {
        summary: 'Get a session',
        tags: ['read'],
        security,
        params: idParamSchema,
        response: { 200: sessionSchema, ...errorResponses },
      },
    },
    async (request, reply) => sendDocument(reply, await store.getSession(request.params.id), 'Session'),
  );

  app.get<{ Params: { id: string } }>(
    '/profiles/:id',
    {
      schema: {
        summary: 'Get a profile by its id or any of its ids',
        tags: ['read'],
        security,
        params: idParamSchema,
        response: { 200: profileSchema, ...errorResponses },
      },
    },
    async (request, reply) => sendDocument(reply, await store.getProfile(request.params.id), 'Profile'),
  );
}

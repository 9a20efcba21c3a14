import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { SourceCache } from '../collect/source-cache.js';
import { errors } from '../domain/errors.js';
import { isStorableId } from '../domain/storable-text.js';
import { normalizeEventType } from '../domain/event-type.js';
import { EVENT_TYPE_CATALOGUE } from '../domain/event-type-catalogue.js';
import { MAPPING_OPS, validateMappingItems, type Mapping, type MappingItem } from '../domain/mapping.js';
import { normalizeSourceId, SOURCE_ID_PATTERN } from '../domain/source.js';
import type { Store } from '../store/store.js';
import { bearerAuth } from './auth.js';
import { errorResponses, idParamSchema, listSchema } from './schemas.js';

const itemSchema = {
  type: 'object',
  properties: {
    event: { type: 'string', description: 'dot path in the event, e.g. properties.email' },
    profile: { type: 'string', description: 'dot path in the profile: data., traits., stats., interests., consents. or segments' },
    op: { enum: MAPPING_OPS },
  },
  required: ['event', 'profile', 'op'],
  additionalProperties: false,
} as const;

const writable = {
  event_type: { type: 'string', minLength: 1, maxLength: 128 },
  source: { type: ['string', 'null'], maxLength: 128, description: 'only events from this source; null: any' },
  enabled: { type: 'boolean' },
  items: { type: 'array', items: itemSchema, minItems: 1, maxItems: 100 },
} as const;

const mappingSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    ...writable,
    created: { type: 'string', format: 'date-time' },
    updated: { type: 'string', format: 'date-time' },
  },
} as const;

const eventTypeSchema = {
  type: 'object',
  properties: { type: { type: 'string' }, description: { type: 'string' }, mapping: { type: 'array', items: itemSchema } },
} as const;

interface MappingBody {
  id?: string;
  event_type: string;
  source?: string | null;
  enabled?: boolean;
  items: MappingItem[];
}

const security = [{ bearer: [] }];

const SOURCE_ID = new RegExp(SOURCE_ID_PATTERN);

/** The event type a mapping applies to, as the collector stores types; 422 for one no event can have. */
function mappedEventType(raw: string): string {
  const type = normalizeEventType(raw);
  if (type === '' || !isStorableId(type)) throw errors.invalidField('event_type must be an event type: not blank, no control characters');
  return type;
}

/** The source a mapping is limited to (null: any); 422 for an id no source can have. */
function mappedSource(raw: string | null | undefined): string | null {
  if (raw == null) return null;
  const id = normalizeSourceId(raw);
  if (!SOURCE_ID.test(id)) throw errors.invalidField('source must be a source id (a-z 0-9 . _ : -, 1–128) or null for any source');
  return id;
}

/** The event-type catalogue and custom event-to-profile mappings (identity.md §3). */
export async function mappingRoutes(
  app: FastifyInstance,
  deps: { store: Store; sources: SourceCache; adminToken: string },
): Promise<void> {
  const { store, sources } = deps;
  app.addHook('onRequest', bearerAuth(deps.adminToken));

  app.get(
    '/event-types',
    {
      schema: {
        summary: 'The built-in event types and what each maps into the profile',
        tags: ['identity'],
        security,
        response: { 200: listSchema(eventTypeSchema), ...errorResponses },
      },
    },
    async () => ({ items: EVENT_TYPE_CATALOGUE, next: null }),
  );

  app.post<{ Body: MappingBody }>(
    '/mappings',
    {
      schema: {
        summary: 'Create a custom mapping',
        tags: ['identity'],
        security,
        body: {
          type: 'object',
          properties: { id: { type: 'string', minLength: 1, maxLength: 128 }, ...writable },
          required: ['event_type', 'items'],
          additionalProperties: false,
        },
        response: { 201: mappingSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      validateMappingItems(body.items);
      const id = body.id?.trim() || randomUUID();
      if (!isStorableId(id)) throw errors.invalidField('id must not hold control characters or half of a surrogate pair');
      if ((await store.getMapping(id)) !== null) throw errors.conflict(`Mapping \`${id}\` already exists`);
      const now = new Date().toISOString();
      const mapping: Mapping = {
        id,
        event_type: mappedEventType(body.event_type),
        source: mappedSource(body.source),
        enabled: body.enabled ?? true,
        items: body.items,
        created: now,
        updated: now,
      };
      await store.saveMapping(mapping);
      await sources.reload();
      return reply.code(201).send(mapping);
    },
  );

  app.get(
    '/mappings',
    {
      schema: {
        summary: 'List custom mappings by id',
        tags: ['identity'],
        security,
        response: { 200: listSchema(mappingSchema), ...errorResponses },
      },
    },
    async () => ({ items: await store.listMappings(), next: null }),
  );

  app.get<{ Params: { id: string } }>(
    '/mappings/:id',
    {
      schema: {
        summary: 'Get a custom mapping',
        tags: ['identity'],
        security,
        params: idParamSchema,
        response: { 200: mappingSchema, ...errorResponses },
      },
    },
    async (request) => {
      const mapping = await store.getMapping(request.params.id);
      if (mapping === null) throw errors.notFound('Mapping not found');
      return mapping;
    },
  );

  app.patch<{ Params: { id: string }; Body: Partial<MappingBody> }>(
    '/mappings/:id',
    {
      schema: {
        summary: 'Change a custom mapping',
        tags: ['identity'],
        security,
        params: idParamSchema,
        body: { type: 'object', properties: writable, additionalProperties: false, minProperties: 1 },
        response: { 200: mappingSchema, ...errorResponses },
      },
    },
    async (request) => {
      const mapping = await store.getMapping(request.params.id);
      if (mapping === null) throw errors.notFound('Mapping not found');
      const patch = request.body;
      if (patch.items !== undefined) validateMappingItems(patch.items);
      const updated: Mapping = {
        ...mapping,
        ...(patch.event_type !== undefined ? { event_type: mappedEventType(patch.event_type) } : {}),
        ...(patch.source !== undefined ? { source: mappedSource(patch.source) } : {}),
        ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
        ...(patch.items !== undefined ? { items: patch.items } : {}),
        updated: new Date().toISOString(),
      };
      await store.saveMapping(updated);
      await sources.reload();
      return updated;
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/mappings/:id',
    {
      schema: {
        summary: 'Delete a custom mapping',
        tags: ['identity'],
        security,
        params: idParamSchema,
        response: { 204: { type: 'null', description: 'deleted' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      if (!(await store.deleteMapping(request.params.id))) throw errors.notFound('Mapping not found');
      await sources.reload();
      return reply.code(204).send();
    },
  );
}

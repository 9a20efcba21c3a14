import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { collect, type CollectDeps } from '../collect/collect.js';
import { errors } from '../domain/errors.js';
import { normalizeSourceId } from '../domain/source.js';
import type { QuarantineEntry } from '../store/store.js';
import { bearerAuth } from './auth.js';
import { collectReply } from './collect-routes.js';
import { parseLimit } from './pagination.js';
import { readBody } from './read-body.js';
import { collectResponseSchema, errorResponses, idParamSchema, listSchema, pageQuerySchema } from './schemas.js';

const summarySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    source: { type: 'string' },
    received_at: { type: 'string', format: 'date-time' },
    reason: { type: 'string', description: 'the refusal code, e.g. SIGNATURE_FAILED, INVALID_JSON' },
    detail: { type: 'string' },
    method: { type: 'string' },
    path: { type: 'string' },
    params: { type: 'object', additionalProperties: true },
    query: { type: 'string' },
    truncated: { type: 'boolean', description: 'the body was cut at the size limit: it cannot be replayed' },
    verified: { type: 'boolean', description: "the sender had passed the source's verification before the refusal" },
    size: { type: 'integer' },
  },
} as const;

const entrySchema = {
  type: 'object',
  properties: {
    ...summarySchema.properties,
    headers: { type: 'array', items: { type: 'array', items: { type: 'string' } }, description: 'secret headers removed' },
    body: { type: 'string', description: 'the raw body, base64' },
    body_text: { type: ['string', 'null'], description: 'the body as UTF-8 text, when it is valid UTF-8' },
  },
} as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });
function present(entry: QuarantineEntry) {
  let text: string | null = null;
  try {
    text = utf8.decode(entry.body);
  } catch {
    text = null;
  }
  return { ...entry, size: entry.body.length, body: entry.body.toString('base64'), body_text: text };
}

const security = [{ bearer: [] }];

const ENCODING_REFUSALS = new Set(['UNSUPPORTED_ENCODING', 'INVALID_ENCODING']);

/** Refused requests kept for inspection and re-ingest (hardening.md §4). */
export async function quarantineRoutes(
  app: FastifyInstance,
  deps: { collect: CollectDeps; adminToken: string },
): Promise<void> {
  const { store } = deps.collect;
  app.addHook('onRequest', bearerAuth(deps.adminToken));

  app.get<{ Querystring: { source?: string; reason?: string; limit?: string; cursor?: string } }>(
    '/quarantine',
    {
      schema: {
        summary: 'List quarantined requests, newest first',
        tags: ['quarantine'],
        security,
        querystring: {
          type: 'object',
          properties: { source: { type: 'string' }, reason: { type: 'string' }, ...pageQuerySchema },
        },
        response: { 200: listSchema(summarySchema), ...errorResponses },
      },
    },
    async (request) => {
      const q = request.query;
      // The `next` of a page: a position, written in decimal digits and nothing else.
      if (q.cursor !== undefined && !/^[1-9]\d{0,15}$/.test(q.cursor)) throw errors.invalidCursor();
      const cursor = q.cursor === undefined ? undefined : Number(q.cursor);
      if (cursor !== undefined && !Number.isSafeInteger(cursor)) throw errors.invalidCursor();
      const page = await store.listQuarantine({
        ...(q.source !== undefined ? { source: normalizeSourceId(q.source) } : {}),
        ...(q.reason !== undefined ? { reason: q.reason.trim().toUpperCase() } : {}),
        ...(cursor !== undefined ? { cursor } : {}),
        limit: parseLimit(q.limit),
      });
      return { items: page.items, next: page.next === null ? null : String(page.next) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/quarantine/:id',
    {
      schema: {
        summary: 'One quarantined request, with its body',
        tags: ['quarantine'],
        security,
        params: idParamSchema,
        response: { 200: entrySchema, ...errorResponses },
      },
    },
    async (request) => {
      const entry = await store.getQuarantine(request.params.id.toLowerCase());
      if (entry === null) throw errors.notFound('Quarantined request not found');
      return present(entry);
    },
  );

  app.post<{ Params: { id: string } }>(
    '/quarantine/:id/replay',
    {
      schema: {
        summary: "Run the stored request through the collector again; answers with the collector's result",
        tags: ['quarantine'],
        security,
        params: idParamSchema,
        response: { 200: collectResponseSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const id = request.params.id.toLowerCase();
      const entry = await store.getQuarantine(id);
      if (entry === null) throw errors.notFound('Quarantined request not found');
      // Only part of the body was kept: replayed, it would store what the sender never sent.
      if (entry.truncated) throw errors.truncatedReplay();
      // A body refused for its encoding was kept as it arrived, and is read as the collector
      // reads one; any other was kept decoded.
      // Repeated headers joined, as Node joins them for the collector.
      const encodings = entry.headers.filter(([name]) => name === 'content-encoding').map(([, value]) => value);
      const encoding = ENCODING_REFUSALS.has(entry.reason) && encodings.length > 0 ? encodings.join(', ') : undefined;
      const body =
        encoding === undefined
          ? { bytes: entry.body, tooLarge: false, refusal: undefined }
          : await readBody({ 'content-encoding': encoding }, Readable.from([entry.body]), deps.collect.bodyLimit);
      // Same bytes, headers and idempotency key; the signature is checked with today's secrets
      // against the time the request first arrived.
      const result = await collect(
        {
          method: entry.method === 'POST' ? 'POST' : 'GET',
          params: entry.params,
          path: entry.path,
          query: entry.query,
          rawHeaders: entry.headers.flat(),
          body: body.bytes,
          bodyTooLarge: body.tooLarge,
          ...(body.refusal !== undefined ? { bodyRefusal: body.refusal } : {}),
          ip: null,
          receivedAt: new Date(entry.received_at),
          replayOf: id,
          verifiedAtReceipt: entry.verified === true,
        },
        deps.collect,
      );
      // Stored now: it leaves the quarantine.
      await store.deleteQuarantine(id);
      return collectReply(result, reply);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/quarantine/:id',
    {
      schema: {
        summary: 'Drop a quarantined request',
        tags: ['quarantine'],
        security,
        params: idParamSchema,
        response: { 204: { type: 'null', description: 'dropped' }, ...errorResponses },
      },
    },
    async (request, reply) => {
      if (!(await store.deleteQuarantine(request.params.id.toLowerCase()))) throw errors.notFound('Quarantined request not found');
      return reply.code(204).send();
    },
  );
}

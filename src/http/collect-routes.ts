import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collect, type CollectDeps } from '../collect/collect.js';
import { collectResponseSchema, errorResponses } from './schemas.js';

interface CollectParams {
  event_type: string;
  source_id: string;
  session_id?: string;
}

const EMPTY = Buffer.alloc(0);

const paramsSchema = (withSession: boolean) => ({
  type: 'object',
  properties: {
    event_type: { type: 'string', description: 'the event type, normalised to lower-case-with-dashes' },
    source_id: { type: 'string', description: 'the id of a webhook source' },
    ...(withSession ? { session_id: { type: 'string', description: 'the visitor session' } } : {}),
  },
});

/**
 * The four collector routes (collector.md §1). The route only turns the request into plain data
 * for the pipeline and the pipeline's result into Tracardi's response body.
 */
export async function collectRoutes(app: FastifyInstance, deps: CollectDeps): Promise<void> {
  // Every body arrives as raw bytes: the pipeline picks the parser (collector.md §2), and the
  // raw bytes stay available for signature checks.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  const handler = async (request: FastifyRequest<{ Params: CollectParams }>, reply: FastifyReply) => {
    const [path = '', query = ''] = splitUrl(request.url);
    const result = await collect(
      {
        method: request.method === 'POST' ? 'POST' : 'GET',
        params: {
          eventType: request.params.event_type,
          sourceId: request.params.source_id,
          ...(request.params.session_id !== undefined ? { sessionId: request.params.session_id } : {}),
        },
        path,
        query,
        rawHeaders: request.raw.rawHeaders,
        body: Buffer.isBuffer(request.body) ? request.body : EMPTY,
        ip: request.ip ?? null,
      },
      deps,
    );
    // A retried delivery gets its first answer again (hardening.md §2).
    if (result.replayed) reply.header('idempotent-replayed', 'true');
    return {
      task: result.task,
      ux: [],
      response: {},
      events: result.events,
      profile: { id: result.profileId },
      session: { id: result.sessionId },
      errors: [],
      warnings: [],
    };
  };

  for (const withSession of [false, true]) {
    const url = withSession ? '/collect/:event_type/:source_id/:session_id' : '/collect/:event_type/:source_id';
    const what = withSession ? 'with a session: linked to the session and its profile' : 'profile-less';
    for (const method of ['POST', 'GET'] as const) {
      app.route<{ Params: CollectParams }>({
        method,
        url,
        // A HEAD must not store an event.
        exposeHeadRoute: false,
        schema: {
          summary: `Collect an event, ${what}; properties from the ${method === 'POST' ? 'body' : 'query string'}`,
          tags: ['collector'],
          params: paramsSchema(withSession),
          response: { 200: collectResponseSchema, ...errorResponses },
        },
        handler,
      });
    }
  }
}

function splitUrl(url: string): [string, string] {
  const q = url.indexOf('?');
  return q === -1 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
}

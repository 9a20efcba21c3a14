import type { FastifyInstance, FastifyReply, FastifyRequest, LogLevel } from 'fastify';
import { collect, type CollectDeps, type CollectResult } from '../collect/collect.js';
import type { Fields } from '../collect/parse-query.js';
import { errors } from '../domain/errors.js';
import type { Metrics } from '../metrics.js';
import { normalizeSourceId } from '../domain/source.js';
import { webhookConfigOf } from '../domain/webhook-config.js';
import { readBody, type ReadBody } from './read-body.js';
import { collectResponseSchema, errorResponses } from './schemas.js';

interface CollectParams {
  event_type: string;
  source_id: string;
  session_id?: string;
}

const EMPTY = Buffer.alloc(0);
const isReadBody = (body: unknown): body is ReadBody =>
  typeof body === 'object' && body !== null && Buffer.isBuffer((body as ReadBody).bytes);

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
export async function collectRoutes(
  app: FastifyInstance,
  deps: CollectDeps,
  limits: { bodyLimit: number; maxInflight: number },
  metrics: Metrics,
): Promise<void> {
  const { bodyLimit, maxInflight } = limits;
  // At the default level a collector request writes no access lines: the stored event is its
  // record, and two log lines per webhook cost more than a third of the throughput
  // (docs/performance.md). 5xx answers still log (warn); debug and trace log every request.
  const collectorLogLevel = (app.log.level === 'info' ? 'warn' : app.log.level) as LogLevel;
  // Every body arrives as raw bytes: the pipeline picks the parser (collector.md §2), and the
  // raw bytes stay available for signature checks.
  // A global cap on collector requests in progress (hardening.md §3): beyond it, 503 at once
  // rather than queueing without bound. Counted until the response is finished or abandoned.
  let inflight = 0;
  const finished = () => inflight--;
  app.addHook('onRequest', (request, _reply, done) => {
    if (inflight >= maxInflight) return done(errors.overloaded());
    inflight++;
    request.raw.once('close', finished);
    done();
  });

  // Every answer is counted by route, source (only a known one: a stranger's ids must not make
  // new series) and status.
  app.addHook('onResponse', (request, reply, done) => {
    const raw = (request.params as Partial<CollectParams>).source_id;
    const id = raw === undefined ? undefined : normalizeSourceId(raw);
    const source = id !== undefined && deps.findSource(id) !== undefined ? id : 'unknown';
    metrics.requests.inc({ route: request.routeOptions.url ?? 'unknown', source, status: String(reply.statusCode) });
    done();
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (request, payload, done) => {
    const params = request.params as Partial<CollectParams>;
    readBody(request.headers, payload, bodyLimitFor(params.source_id)).then(
      (body) => done(null, body),
      (error: Error) => done(error, undefined),
    );
  });

  /** The global limit, or the source's own `max_body_bytes` when it is smaller. */
  const bodyLimitFor = (rawSourceId: string | undefined): number => {
    const source = rawSourceId === undefined ? undefined : deps.findSource(normalizeSourceId(rawSourceId));
    if (source === undefined) return bodyLimit;
    try {
      return Math.min(bodyLimit, webhookConfigOf(source).maxBodyBytes ?? bodyLimit);
    } catch {
      return bodyLimit;
    }
  };

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
        // The router split the URL at its first `?` or `#`, and read the query with parseQuery;
        // a URL with a `#` (no browser sends one) has its query parsed again from the `?`.
        ...(request.url.includes('#') ? {} : { queryFields: request.query as Fields }),
        rawHeaders: request.raw.rawHeaders,
        body: isReadBody(request.body) ? request.body.bytes : EMPTY,
        bodyTooLarge: isReadBody(request.body) && request.body.tooLarge,
        ...(isReadBody(request.body) && request.body.refusal !== undefined ? { bodyRefusal: request.body.refusal } : {}),
        ip: request.ip ?? null,
      },
      deps,
    );
    return collectReply(result, reply);
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
        logLevel: collectorLogLevel,
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

/**
 * Tracardi's response body for a collector result (collector.md §7); a retried delivery gets its
 * first answer again, marked `Idempotent-Replayed: true` (hardening.md §2).
 */
export function collectReply(result: CollectResult, reply: FastifyReply) {
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
}

function splitUrl(url: string): [string, string] {
  const q = url.indexOf('?');
  return q === -1 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
}

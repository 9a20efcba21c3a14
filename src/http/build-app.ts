import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import type { CollectDeps } from '../collect/collect.js';
import { RateLimiter } from '../collect/rate-limiter.js';
import { parseQuery, redactQueryParam } from '../collect/parse-query.js';
import type { SourceCache } from '../collect/source-cache.js';
import type { Config } from '../config.js';
import { errors } from '../domain/errors.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { apiRoutes } from './api-routes.js';
import { collectRoutes } from './collect-routes.js';
import { errorReply, installErrorHandling } from './error-handler.js';
import { logStream } from './log-stream.js';
import { eventStreamRoutes } from './event-stream.js';
import { mappingRoutes } from './mapping-routes.js';
import { methodNotAllowed } from './method-not-allowed.js';
import { profileLookupRoutes } from './profile-lookup-routes.js';
import { quarantineRoutes } from './quarantine-routes.js';
import { uiRoutes } from './ui-routes.js';

export interface AppDeps {
  config: Config;
  store: Store;
  sources: SourceCache;
  adminToken: string;
  /** The key of hashed profile ids (identity.md §4). */
  hashKey: string;
  metrics: Metrics;
}

/** Documentation of the collector's request bodies, which are raw bytes to Fastify (see transform). */
const collectBodyDoc = {
  description:
    'JSON object or array of objects, form fields, multipart, text or XML (collector.md §2). ' +
    'Any media type listed in the specification is accepted.',
  content: {
    'application/json': { schema: { oneOf: [{ type: 'object' }, { type: 'array', items: { type: 'object' } }] } },
    'application/x-www-form-urlencoded': { schema: { type: 'object' } },
    'multipart/form-data': { schema: { type: 'object' } },
    'text/plain': { schema: { type: 'string' } },
    'application/xml': { schema: { type: 'string' } },
  },
};

/** A hop count trusts that many proxies nearest to us (what Fastify does for a number). */
function trustProxyOption(config: Config): boolean | string[] | ((address: string, hop: number) => boolean) {
  const trust = config.trustProxy;
  if (trust === null) return false;
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return trust;
}

/**
 * Node closes only the connections idle when the server stops; a keep-alive connection whose
 * request is still in flight stays open after its response until the client drops it (up to the
 * keep-alive timeout), holding the exit on SIGTERM. Responses sent while stopping close theirs.
 * Added before the routes so that every scope inherits the hook.
 */
function closeConnectionsWhenStopping(app: FastifyInstance): void {
  let stopping = false;
  app.addHook('preClose', async () => {
    stopping = true;
  });
  // A new request on a connection still open is refused in the usual JSON shape, with Retry-After.
  // Hooks on every request take callbacks, not async functions: no promise per hook per request.
  app.addHook('onRequest', (_request, _reply, done) => done(stopping ? errors.stopping() : undefined));
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (stopping) reply.header('connection', 'close');
    done(null, payload);
  });
}

/** A request's URL for the log: the path, and the query without a `?token=` value. */
function redactedUrl(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q + 1)}${redactQueryParam(url.slice(q + 1), 'token')}`;
}

/** The HTTP server: collector routes, management API and its event stream, admin page, health and the OpenAPI document. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    logger: {
      level: config.logLevel,
      // Buffered per turn of the event loop: one write() per turn, not per line (performance.md).
      stream: logStream,
      // Request lines are logged without a `?token=` value: a secret is never logged.
      serializers: {
        req: (request) => ({
          method: request.method,
          url: redactedUrl(request.url),
          remoteAddress: request.ip,
        }),
      },
    },
    // The sender's X-Request-Id when it is a sane token, else a new one (hardening.md §5).
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.:@/+=-]{1,128}$/.test(given) ? given : randomUUID();
    },
    bodyLimit: config.bodyLimit,
    // Slow senders (hardening.md §3): headers within 10 s, the whole request within 30 s, else
    // Node answers 408 and closes the connection; deadlines are checked every second.
    http: { headersTimeout: 10_000, requestTimeout: 30_000, connectionsCheckingInterval: 1_000 },
    requestTimeout: 30_000,
    trustProxy: trustProxyOption(config),
    // No cap of the router's own: an over-long path parameter reaches the collector and is a 422
    // naming it (collector.md §1). Node's header size limit (16 KiB) bounds the whole URL anyway.
    // Every query string is read by collector.md §3's rules, API routes' too; the collector
    // takes the router's reading rather than parsing the same text again (docs/performance.md).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 16 * 1024, querystringParser: parseQuery },
    frameworkErrors: errorReply(config.bodyLimit),
    // Refused by closeConnectionsWhenStopping instead, in Intake's error shape.
    return503OnClosing: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // A malformed request line or header never reaches a route; answer it in the same JSON shape.
    clientErrorHandler: (error: Error & { code?: string }, socket) => {
      const [status, detail] =
        error.code === 'HPE_HEADER_OVERFLOW'
          ? ['431 Request Header Fields Too Large', 'Request line or headers too large']
          : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? ['408 Request Timeout', 'The request did not arrive in time']
            : ['400 Bad Request', 'Bad request'];
      const body = JSON.stringify({ detail });
      if (socket.writable)
        socket.end(
          `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
    },
  });

  installErrorHandling(app, config.bodyLimit);
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });
  closeConnectionsWhenStopping(app);
  const notAllowed = methodNotAllowed(app);
  notAllowed.track();

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Intake',
        version: '0.1.0',
        description: 'Webhook and event collector with Tracardi-compatible collector URLs.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    // Collector bodies are raw bytes to Fastify (the pipeline parses them), so their schema is
    // documented here rather than validated.
    transformObject: (document) => {
      const openapi = 'openapiObject' in document ? document.openapiObject : {};
      for (const [path, item] of Object.entries(openapi.paths ?? {})) {
        const post = (item as { post?: { requestBody?: unknown } } | undefined)?.post;
        if (path.startsWith('/collect/') && post !== undefined) post.requestBody = collectBodyDoc;
      }
      return openapi;
    },
  });

  const collectDeps: CollectDeps = {
    store: deps.store,
    findSource: (id) => deps.sources.get(id),
    mappingFor: (type, sourceId) => deps.sources.mappingFor(type, sourceId),
    hashKey: deps.hashKey,
    idScheme: config.idScheme,
    quarantineMax: config.quarantineMax,
    bodyLimit: config.bodyLimit,
    rateLimiter: new RateLimiter(),
    report: {
      stored: (source, n) => deps.metrics.eventsStored.inc({ source }, n),
      replayed: (source) => deps.metrics.idempotentReplays.inc({ source }),
      refused: (reason) => deps.metrics.rejected.inc({ reason }),
      quarantined: (source, reason, dropped) => {
        deps.metrics.quarantined.inc({ source, reason });
        if (dropped > 0) deps.metrics.quarantineDropped.inc({ source }, dropped);
      },
    },
  };
  await app.register((scope) =>
    collectRoutes(scope, collectDeps, { bodyLimit: config.bodyLimit, maxInflight: config.maxInflight }, deps.metrics),
  );
  await app.register((scope) => apiRoutes(scope, deps), { prefix: '/api' });
  await app.register((scope) => mappingRoutes(scope, deps), { prefix: '/api' });
  await app.register((scope) => quarantineRoutes(scope, { collect: collectDeps, adminToken: deps.adminToken }), {
    prefix: '/api',
  });
  await app.register((scope) => eventStreamRoutes(scope, deps), { prefix: '/api' });
  await app.register((scope) => profileLookupRoutes(scope, deps), { prefix: '/api' });
  await app.register(uiRoutes);

  app.get(
    '/health',
    {
      schema: {
        summary: 'Whether the store answers',
        tags: ['service'],
        response: { 200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } } },
      },
    },
    async () => {
      await deps.store.health().catch(() => {
        throw errors.storeUnavailable();
      });
      return { status: 'ok' };
    },
  );

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Metrics in the Prometheus text format, every name prefixed intake_ (no token needed)',
        tags: ['service'],
      },
    },
    async (_request, reply) =>
      reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );

  notAllowed.answer();
  return app;
}

import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics.js';
import { normalizeEventType } from '../domain/event-type.js';
import type { JsonText } from '../domain/json-text.js';
import { normalizeSourceId } from '../domain/source.js';
import type { Store } from '../store/store.js';
import { bearerAuth } from './auth.js';
import { EventTail, eventId, type EventFilter } from './event-tail.js';
import { errorResponses } from './schemas.js';

export interface EventStreamDeps {
  store: Store;
  adminToken: string;
  metrics: Pick<Metrics, 'eventStreams'>;
}

/** How often each open stream asks the store for new events; well inside Live's two seconds. */
const POLL_MS = 500;
/** A comment line this often keeps proxies and idle timers from closing a quiet stream. */
const KEEP_ALIVE_MS = 15_000;
/** A client that reads slower than events arrive is cut off here (it reconnects) rather than buffered without end. */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** One server-sent event; `data` split into lines (JSON has newlines only outside its strings). */
function sse(fields: { event?: string; id?: string; data: string }): string {
  const head = (fields.event !== undefined ? `event: ${fields.event}\n` : '') + (fields.id !== undefined ? `id: ${fields.id}\n` : '');
  return `${head}data: ${fields.data.replace(/\r\n|\r|\n/g, '\ndata: ')}\n\n`;
}

const eventMessage = (doc: JsonText) => sse({ id: eventId(doc), data: doc });

/**
 * `GET /api/events/stream` (api.md): the events committed from now on, by any process, as
 * server-sent events. Each open stream follows the store through an `EventTail`, so it sees what
 * every collector process commits to the same database, not only this process's requests.
 */
export async function eventStreamRoutes(app: FastifyInstance, deps: EventStreamDeps): Promise<void> {
  app.addHook('onRequest', bearerAuth(deps.adminToken));

  // A stream never ends by itself; stopping the server ends them, so that close can finish.
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const stop of [...open]) stop();
  });

  app.get<{ Querystring: { source?: string; type?: string } }>(
    '/events/stream',
    {
      // A HEAD would start a stream that sends nothing; it gets the 405 instead.
      exposeHeadRoute: false,
      schema: {
        summary: 'Follow new events as server-sent events',
        description:
          'Sends `event: ready` once the starting point is fixed, then each event committed after it (by any ' +
          'process) as one message: `id` is the event id, `data` the event as GET /api/events/{id} returns it. ' +
          '`event: skipped` says that more events arrived at once than the stream relays; `event: error` ' +
          'precedes the end of the stream when the store fails. A comment line is sent every 15 s.',
        tags: ['read'],
        security: [{ bearer: [] }],
        querystring: {
          type: 'object',
          properties: {
            source: { type: 'string', description: 'only this source' },
            type: { type: 'string', description: 'only this event type, normalised like a collected type' },
          },
        },
        response: {
          200: {
            description: 'A text/event-stream that stays open',
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const filter: EventFilter = {
        ...(q.source !== undefined ? { source: normalizeSourceId(q.source) } : {}),
        ...(q.type !== undefined ? { type: normalizeEventType(q.type) } : {}),
      };
      const tail = new EventTail((query) => deps.store.listEvents(query), filter);
      // Before the stream starts, a failing store is still an ordinary 503.
      await tail.poll();

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
        // Hijacked answers skip the hooks that set it on every other answer.
        'x-request-id': request.id,
      });
      let lastWrite = Date.now();
      const send = (text: string) => {
        res.write(text);
        lastWrite = Date.now();
      };
      let timer: NodeJS.Timeout | undefined;
      let stopped = false;
      const stop = () => {
        if (stopped) return;
        stopped = true;
        clearTimeout(timer);
        open.delete(stop);
        deps.metrics.eventStreams.set(open.size);
        res.end();
      };
      open.add(stop);
      deps.metrics.eventStreams.set(open.size);
      res.on('close', stop);
      // A client gone during the first poll closed its socket before the listener above: without
      // this, its poller would run until the server stops.
      if (res.destroyed || request.raw.destroyed || request.raw.socket.destroyed) stop();

      const tick = async () => {
        try {
          const batch = await tail.poll();
          if (stopped) return;
          // However the client left, a stream whose socket is gone ends at its next poll.
          if (res.destroyed || request.raw.socket.destroyed) return stop();
          if (batch.skipped) send(sse({ event: 'skipped', data: '{"detail":"More events arrived than the stream relays at once; some are not shown"}' }));
          for (const doc of batch.events) send(eventMessage(doc));
          if (Date.now() - lastWrite >= KEEP_ALIVE_MS) send(': keep-alive\n\n');
          if (res.writableLength > MAX_BUFFERED_BYTES) {
            request.log.warn('event stream client too slow; closing its stream');
            stop();
            // Not only ended: what it left unread is let go of now (api.md: disconnected).
            res.destroy();
          }
        } catch (error) {
          if (stopped) return;
          request.log.warn({ err: error }, 'event stream: store unavailable; closing the stream');
          send(sse({ event: 'error', data: '{"detail":"Store unavailable"}' }));
          stop();
        }
        if (!stopped) timer = setTimeout(() => void tick(), POLL_MS);
      };

      if (stopped) return;
      send(sse({ event: 'ready', data: '{}' }));
      timer = setTimeout(() => void tick(), POLL_MS);
    },
  );
}

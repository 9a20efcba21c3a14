import { randomUUID } from 'node:crypto';
import type { RequestInfo } from '../domain/event.js';
import { eventTypeName, normalizeEventType } from '../domain/event-type.js';
import type { JsonText } from '../domain/json-text.js';
import type { Source } from '../domain/source.js';
import type { CollectUnit } from '../store/store.js';

/**
 * Builds what the store commits for one request: one user event per properties object, all with
 * the request's type, time, source and session (collector.md §5).
 */
export function buildUnit(args: {
  pathType: string;
  source: Source;
  sessionId: string | null;
  properties: JsonText[];
  request: RequestInfo;
  now: Date;
}): CollectUnit {
  const type = normalizeEventType(args.pathType);
  const name = eventTypeName(args.pathType);
  return {
    time: args.now.toISOString(),
    sourceId: args.source.id,
    channel: args.source.channel,
    ip: args.request.ip,
    request: args.request,
    session: args.sessionId === null ? null : { id: args.sessionId, newProfileId: randomUUID() },
    events: args.properties.map((properties) => ({ id: randomUUID(), type, name, properties })),
    systemEventIds: [randomUUID(), randomUUID(), randomUUID()],
  };
}

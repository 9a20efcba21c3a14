import type { RequestInfo } from '../domain/event.js';
import { eventTypeName, normalizeEventType } from '../domain/event-type.js';
import type { JsonText } from '../domain/json-text.js';
import type { MappingItem } from '../domain/mapping.js';
import { newId, type IdScheme } from '../domain/new-id.js';
import type { Source } from '../domain/source.js';
import type { WebhookConfig } from '../domain/webhook-config.js';
import type { CollectUnit } from '../store/store.js';
import { resolveIdentity } from './resolve-identity.js';

/**
 * Builds what the store commits for one request: one user event per properties object, all with
 * the request's type, time and source (collector.md §5), each with how it finds its session and
 * profile (identity.md §2) and what it maps into that profile (identity.md §3).
 */
export function buildUnit(args: {
  task: string;
  pathType: string;
  source: Source;
  config: WebhookConfig;
  sessionId: string | null;
  properties: JsonText[];
  request: RequestInfo;
  now: Date;
  hashKey: string;
  mappingFor: (type: string, sourceId: string) => MappingItem[];
  idempotency: CollectUnit['idempotency'];
  idScheme: IdScheme;
}): CollectUnit {
  const type = normalizeEventType(args.pathType);
  const name = eventTypeName(args.pathType);
  const { config } = args;
  const mapping = args.mappingFor(type, args.source.id);
  return {
    task: args.task,
    idempotency: args.idempotency,
    time: args.now.toISOString(),
    sourceId: args.source.id,
    channel: args.source.channel,
    ip: args.request.ip,
    request: args.request,
    hashKey: args.hashKey,
    idScheme: args.idScheme,
    events: args.properties.map((properties) => {
      const identity = resolveIdentity({
        config,
        urlSessionId: args.sessionId,
        properties: () => JSON.parse(properties) as unknown,
        hashKey: args.hashKey,
        idScheme: args.idScheme,
      });
      // Only an event with a profile maps into one.
      return { id: newId(args.idScheme), type, name, properties, identity, mapping: identity === null ? [] : mapping };
    }),
  };
}

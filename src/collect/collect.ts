import { randomUUID } from 'node:crypto';
import { toJsonText } from '../domain/json-text.js';
import type { MappingItem } from '../domain/mapping.js';
import type { Source } from '../domain/source.js';
import type { Store } from '../store/store.js';
import { buildUnit } from './build-unit.js';
import { captureHeaders, headerValue } from './capture-headers.js';
import { parseBody } from './parse-body.js';
import { parseParams } from './parse-params.js';
import { parseQuery } from './parse-query.js';
import { validateSource } from './validate-source.js';

/** A collector request as plain data: the HTTP layer builds it, the pipeline knows no HTTP. */
export interface CollectInput {
  method: 'GET' | 'POST';
  params: { eventType: string; sourceId: string; sessionId?: string };
  /** The URL path as received, without the query string. */
  path: string;
  /** The raw query string, without the `?`. */
  query: string;
  /** Node's raw header list: `[name, value, name, value …]`. */
  rawHeaders: readonly string[];
  body: Buffer;
  ip: string | null;
}

/** What a collector request produced (collector.md §7). */
export interface CollectResult {
  task: string;
  events: string[];
  sessionId: string | null;
  profileId: string | null;
}

export interface CollectDeps {
  store: Store;
  findSource: (id: string) => Source | undefined;
  /** The catalogue's and the custom mappings' items for an event type from a source. */
  mappingFor: (type: string, sourceId: string) => MappingItem[];
  /** The key of hashed profile ids (identity.md §4). */
  hashKey: string;
}

/**
 * The collection pipeline: check the path, check the source, read the properties, build the
 * events (with how each finds its session and profile, and what it maps into it), and let the
 * store resolve sessions and profiles and commit it all durably. Each step throws an
 * `IntakeError` to refuse the request.
 */
export async function collect(input: CollectInput, deps: CollectDeps): Promise<CollectResult> {
  const task = randomUUID();
  const params = parseParams(input.params);
  const source = validateSource(params.sourceId, deps.findSource);
  const properties =
    input.method === 'POST'
      ? await parseBody(headerValue(input.rawHeaders, 'content-type'), input.body)
      : [toJsonText(parseQuery(input.query))];

  // A transitional source is validated and answered, but nothing is stored (collector.md §9).
  if (source.transitional) return { task, events: [], sessionId: null, profileId: null };

  const unit = buildUnit({
    pathType: params.eventType,
    source,
    sessionId: params.sessionId,
    properties,
    request: {
      method: input.method,
      path: input.path,
      query: input.query,
      ip: input.ip,
      headers: captureHeaders(input.rawHeaders),
    },
    now: new Date(),
    hashKey: deps.hashKey,
    mappingFor: deps.mappingFor,
  });
  const outcome = await deps.store.collect(unit);
  return { task, events: unit.events.map((e) => e.id), ...outcome };
}

import type { JsonText } from './json-text.js';

/** The request an event came from, as stored (collector.md §5). Secret headers are already gone. */
export interface RequestInfo {
  method: string;
  path: string;
  /** The raw query string, without the `?`. */
  query: string;
  ip: string | null;
  headers: Record<string, string>;
}

/** One stored fact (collector.md §5). Properties stay JSON text: see json-text.ts. */
export interface Event {
  id: string;
  type: string;
  name: string;
  time: string;
  channel: string;
  profileLess: boolean;
  ip: string | null;
  sourceId: string;
  sessionId: string | null;
  profileId: string | null;
  properties: JsonText;
  request: RequestInfo | null;
}

/** The id of the internal source that system events (`profile-created` …) are stored under. */
export const INTERNAL_SOURCE_ID = '@internal';

const q = JSON.stringify;
const ref = (id: string | null) => (id === null ? 'null' : `{"id":${q(id)}}`);

/**
 * The stored document of an event, field for field as collector.md §5 lists it. Written by hand
 * so that the properties text is embedded as sent, never parsed and re-serialised.
 */
export function eventToJson(e: Event): string {
  return (
    `{"id":${q(e.id)},"type":${q(e.type)},"name":${q(e.name)},` +
    `"metadata":{"time":{"insert":${q(e.time)}},"status":"collected","channel":${q(e.channel)},` +
    `"profile_less":${e.profileLess},"ip":${q(e.ip)},"valid":true},` +
    `"source":{"id":${q(e.sourceId)}},"session":${ref(e.sessionId)},"profile":${ref(e.profileId)},` +
    `"properties":${e.properties},"context":{},"request":${q(e.request)},` +
    `"traits":{},"data":{},"tags":{"values":[],"count":0}}`
  );
}

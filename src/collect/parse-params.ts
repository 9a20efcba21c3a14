import { errors } from '../domain/errors.js';
import { CONTROL } from '../domain/storable-text.js';

export interface CollectParams {
  eventType: string;
  sourceId: string;
  sessionId: string | null;
}

const MAX_LENGTH = 128;

function checkParam(name: string, raw: string): string {
  const value = raw.trim();
  const length = [...value].length;
  if (length === 0) throw errors.invalidParameter(name, 'must not be empty');
  if (length > MAX_LENGTH) throw errors.invalidParameter(name, `must be at most ${MAX_LENGTH} characters`);
  if (CONTROL.test(value)) throw errors.invalidParameter(name, 'must not contain control characters');
  return value;
}

/**
 * Path parameters arrive URL-decoded and are trimmed before any check (collector.md §1; fix:
 * Tracardi answers 500 for an empty type).
 */
export function parseParams(raw: { eventType: string; sourceId: string; sessionId?: string }): CollectParams {
  return {
    eventType: checkParam('event_type', raw.eventType),
    sourceId: checkParam('source_id', raw.sourceId),
    sessionId: raw.sessionId === undefined ? null : checkParam('session_id', raw.sessionId),
  };
}

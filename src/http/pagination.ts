import { errors } from '../domain/errors.js';
import type { EventCursor } from '../store/store.js';

const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;

/** `?limit=` of a list call: 1–1000, default 100 (api.md). */
export function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw errors.invalidField(`limit must be from 1 to ${MAX_LIMIT}`);
  return limit;
}

/** Event cursors are opaque to clients: base64url of `[time, seq]`. */
export function encodeEventCursor(cursor: EventCursor): string {
  return Buffer.from(JSON.stringify([cursor.time, cursor.seq])).toString('base64url');
}

/** Times both stores can hold and compare: the years 0001 to 9999 (PostgreSQL's `timestamptz`). */
const EARLIEST = Date.parse('0001-01-01T00:00:00.000Z');
const LATEST = Date.parse('9999-12-31T23:59:59.999Z');
const inRange = (time: number) => time >= EARLIEST && time <= LATEST;

export function decodeEventCursor(raw: string): EventCursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && value.every(Number.isSafeInteger) && inRange(value[0] as number))
      return { time: value[0] as number, seq: value[1] as number };
  } catch {
    // falls through to the error below
  }
  throw errors.invalidCursor();
}

/** `from`/`to` of the event list: ISO 8601 times. */
export function parseTime(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const time = Date.parse(raw);
  if (Number.isNaN(time)) throw errors.invalidField(`${name} must be an ISO 8601 time`);
  if (!inRange(time)) throw errors.invalidField(`${name} must be a time in the years 0001 to 9999`);
  return time;
}

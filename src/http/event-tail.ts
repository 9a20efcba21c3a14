import type { JsonText } from '../domain/json-text.js';
import type { EventCursor, EventQuery, Page } from '../store/store.js';

/** How far back each poll looks: longer than a commit can lag its request time, plus clock skew. */
export const TAIL_LOOKBACK_MS = 10_000;
/** The most events one poll reads. */
export const TAIL_PAGE_SIZE = 500;

export type EventFilter = Pick<EventQuery, 'source' | 'type'>;
type ListEvents = (query: EventQuery) => Promise<Page<JsonText, EventCursor>>;

export interface TailBatch {
  /** Events committed since the previous poll, oldest first. */
  events: JsonText[];
  /** More events arrived than one poll reads: some of them are not in `events`. */
  skipped: boolean;
}

/**
 * Follows the events committed to the store by any process, through `listEvents` alone. An event's
 * insert time is its request time, taken before the commit, and several processes commit at once,
 * so an event can become visible after a newer one. "Newer than the last event seen" would miss it;
 * instead each poll reads the newest events of the last `TAIL_LOOKBACK_MS` and returns those the
 * previous poll did not see. An event that falls out of that page can never come back into it, so
 * remembering one page of ids is enough.
 */
export class EventTail {
  private seen: Set<string> | null = null;

  constructor(
    private readonly listEvents: ListEvents,
    private readonly filter: EventFilter,
    private readonly now: () => number = Date.now,
  ) {}

  /** The first poll marks where the tail starts and returns nothing. */
  async poll(): Promise<TailBatch> {
    const page = await this.listEvents({ ...this.filter, from: this.now() - TAIL_LOOKBACK_MS, limit: TAIL_PAGE_SIZE });
    const ids = page.items.map(eventId);
    const previous = this.seen;
    this.seen = new Set(ids);
    if (previous === null) return { events: [], skipped: false };
    const events: JsonText[] = [];
    for (let i = page.items.length - 1; i >= 0; i--) if (!previous.has(ids[i] as string)) events.push(page.items[i] as JsonText);
    // A full page whose oldest event is new may have pushed other new events out of reach.
    const oldest = ids[ids.length - 1];
    const skipped = page.next !== null && oldest !== undefined && !previous.has(oldest);
    return { events, skipped };
  }
}

/** The stored document starts with its id (domain/event.ts), so a large payload need not be parsed. */
const LEADING_ID = /^\{"id":"([^"\\]+)"/;

export function eventId(doc: JsonText): string {
  return LEADING_ID.exec(doc)?.[1] ?? (JSON.parse(doc) as { id: string }).id;
}

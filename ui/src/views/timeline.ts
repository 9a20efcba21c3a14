import { getJson, query, type Page } from '../api';
import { h, href, timeElement } from '../dom';
import type { EventDoc } from '../types';

const PAGE = 50;

/** The events of one profile or session, newest first, with a button for older ones. */
export function timeline(filter: { profile: string } | { session: string }, signal: AbortSignal): HTMLElement {
  const list = h('ol', { class: 'timeline' });
  const status = h('p', { class: 'loading', role: 'status' }, 'Loading events…');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Load older events');
  let cursor: string | null = null;

  const item = (event: EventDoc) =>
    h(
      'li',
      null,
      timeElement(event.metadata.time.insert),
      h('a', { href: href('events', event.id), class: 'event-type' }, event.type),
      h('span', { class: event.source.id.startsWith('@') ? 'source internal' : 'source' }, event.source.id),
      'profile' in filter && event.session !== null
        ? h('a', { href: href('sessions', event.session.id), class: 'id', title: `Session ${event.session.id}` }, `session ${event.session.id}`)
        : null,
    );

  const load = async () => {
    more.disabled = true;
    try {
      const page: Page<EventDoc> = await getJson(`/api/events${query({ ...filter, limit: PAGE, cursor })}`, signal);
      list.append(...page.items.map(item));
      cursor = page.next;
      more.hidden = cursor === null;
      status.textContent = list.children.length === 0 ? 'No events.' : `${list.children.length}${cursor === null ? '' : '+'} events, newest first.`;
    } catch (error) {
      if (!signal.aborted) status.textContent = `Could not load events: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', () => void load());
  void load();

  return h('section', { 'aria-labelledby': 'timeline-heading' }, h('h2', { id: 'timeline-heading' }, 'Timeline'), status, list, more);
}

import { getJson, query, type Page } from '../api';
import { copyable, formatAgo, h, href } from '../dom';
import type { EventDoc, Source } from '../types';
import type { View } from '../view';

/** Counting stops here: the API has no count, and reading more events to count them costs too much. */
const COUNT_CAP = 100;

/** The URL a sender posts to, with the placeholders the API returns (`{event_type}`). */
const absolute = (path: string) => `${location.origin}${path}`;

/** A ready command that sends one test event to the source. */
const curlLine = (id: string) =>
  `curl -X POST '${absolute(`/collect/test-event/${id}`)}' -H 'Content-Type: application/json' -d '{"hello": "world"}'`;

function badges(source: Source): HTMLElement {
  return h(
    'p',
    { class: 'badges' },
    h('span', { class: `badge ${source.enabled ? 'ok' : 'off'}` }, source.enabled ? 'Enabled' : 'Disabled'),
    source.type.map((type) => h('span', { class: 'badge' }, type)),
    source.transitional ? h('span', { class: 'badge warn' }, 'Transitional: stores nothing') : null,
  );
}

/** "12 events · last 3 minutes ago", loaded after the list is on screen. */
function eventCount(source: Source, signal: AbortSignal): HTMLElement {
  const out = h('span', { class: 'count' }, 'Counting events…');
  getJson<Page<EventDoc>>(`/api/events${query({ source: source.id, limit: COUNT_CAP })}`, signal)
    .then((page) => {
      const count = page.next === null ? String(page.items.length) : `${COUNT_CAP}+`;
      const last = page.items[0]?.metadata.time.insert;
      out.textContent =
        page.items.length === 0 ? 'No events yet' : `${count} ${count === '1' ? 'event' : 'events'} · last ${formatAgo(last as string)}`;
    })
    .catch(() => {
      if (!signal.aborted) out.textContent = 'Event count unavailable';
    });
  return out;
}

function sourceCard(source: Source, signal: AbortSignal): HTMLElement {
  const headingId = `source-${source.id}`;
  return h(
    'article',
    { class: 'card source', 'aria-labelledby': headingId },
    h(
      'header',
      { class: 'card-head' },
      h('h2', { id: headingId }, source.name),
      h(
        'div',
        { class: 'actions' },
        h('a', { class: 'button secondary', href: `${href('live')}${query({ source: source.id })}` }, 'Watch live'),
        h('a', { class: 'button', href: href('sources', source.id, 'edit'), 'aria-label': `Edit ${source.name}` }, 'Edit'),
      ),
    ),
    h(
      'dl',
      { class: 'facts' },
      h('div', null, h('dt', null, 'ID'), h('dd', null, h('code', null, source.id))),
      h('div', null, h('dt', null, 'Events'), h('dd', null, eventCount(source, signal))),
      source.channel !== '' ? h('div', null, h('dt', null, 'Channel'), h('dd', null, source.channel)) : null,
    ),
    badges(source),
    source.description !== '' ? h('p', { class: 'description' }, source.description) : null,
    h('h3', null, 'Webhook URLs'),
    source.urls.map((url) => copyable(absolute(url), `webhook URL ${url}`)),
    h('h3', null, 'Send a test event'),
    copyable(curlLine(source.id), `curl command for ${source.name}`, 'command'),
  );
}

/** Every source, with its state, event count, webhook URLs and a ready curl line. */
export async function sourcesView(signal: AbortSignal): Promise<View> {
  const sources: Source[] = [];
  let cursor: string | null = null;
  do {
    const page: Page<Source> = await getJson(`/api/sources${query({ limit: 1000, cursor })}`, signal);
    sources.push(...page.items);
    cursor = page.next;
  } while (cursor !== null);

  return {
    title: 'Sources',
    body: h(
      'section',
      null,
      h(
        'div',
        { class: 'view-head' },
        h('h1', { tabindex: '-1' }, 'Sources'),
        h('a', { class: 'button', href: href('sources', 'new') }, 'New source'),
      ),
      h(
        'p',
        { class: 'lead' },
        'A source is a sender. Its id is part of its webhook URLs and works as the sender’s credential.',
      ),
      sources.length === 0
        ? h('p', { class: 'empty' }, 'No sources yet. Create one to get its webhook URLs.')
        : h('div', { class: 'cards' }, sources.map((source) => sourceCard(source, signal))),
    ),
  };
}

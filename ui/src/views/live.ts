import { ApiError, getJson, query, type Page } from '../api';
import { announce, h, href, timeElement } from '../dom';
import { followEvents } from '../event-stream';
import type { EventDoc, Source } from '../types';
import type { View } from '../view';

/** Rows kept on screen; older ones drop off the bottom. */
const MAX_ROWS = 200;
/** Events loaded from the list when the stream starts, so the view is not empty. */
const BACKLOG = 50;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = window.setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (window.clearTimeout(timer), resolve()), { once: true });
  });

const idCell = (ref: { id: string } | null, kind: 'sessions' | 'profiles', label: string) =>
  h(
    'td',
    { 'data-label': label },
    ref === null ? h('span', { class: 'none' }, '—') : h('a', { class: 'id', href: href(kind, ref.id), title: ref.id }, ref.id),
  );

function eventRow(event: EventDoc, fresh: boolean): HTMLTableRowElement {
  const link = href('events', event.id);
  return h(
    'tr',
    {
      class: fresh ? 'fresh' : null,
      'data-id': event.id,
      // The type is the row's link for keyboards; a click anywhere else on the row follows it too.
      onclick: (e: MouseEvent) => {
        if (!(e.target instanceof HTMLAnchorElement)) location.hash = link;
      },
    },
    h('td', { 'data-label': 'Time' }, timeElement(event.metadata.time.insert)),
    h('td', { 'data-label': 'Type' }, h('a', { href: link, class: 'event-type' }, event.type)),
    h('td', { 'data-label': 'Source', class: event.source.id.startsWith('@') ? 'internal' : null }, event.source.id),
    idCell(event.session, 'sessions', 'Session'),
    idCell(event.profile, 'profiles', 'Profile'),
  );
}

/** Events as they are committed, newest on top, from the event stream, filtered by source and type. */
export async function liveView(params: URLSearchParams, signal: AbortSignal): Promise<View> {
  const filter = { source: params.get('source') ?? '', type: params.get('type') ?? '' };
  const sources = (await getJson<Page<Source>>('/api/sources?limit=1000', signal)).items;

  const sourceSelect = h(
    'select',
    { id: 'live-source', name: 'source' },
    h('option', { value: '' }, 'All sources'),
    sources.map((s) => h('option', { value: s.id, selected: s.id === filter.source }, `${s.name} (${s.id})`)),
    h('option', { value: '@internal', selected: filter.source === '@internal' }, 'System events (@internal)'),
  );
  if (filter.source !== '' && sourceSelect.value !== filter.source)
    sourceSelect.append(h('option', { value: filter.source, selected: true }, filter.source));
  const typeInput = h('input', { id: 'live-type', name: 'type', type: 'text', value: filter.type, placeholder: 'any type', spellcheck: 'false' });
  const apply = () => {
    location.hash = `${href('live')}${query({ source: sourceSelect.value, type: typeInput.value.trim() })}`;
  };
  sourceSelect.addEventListener('change', apply);
  const filters = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter events', onsubmit: (e: SubmitEvent) => (e.preventDefault(), apply()) },
    h('div', { class: 'field' }, h('label', { for: 'live-source' }, 'Source'), sourceSelect),
    h('div', { class: 'field' }, h('label', { for: 'live-type' }, 'Type'), typeInput),
    h('button', { type: 'submit' }, 'Apply'),
  );

  const status = h('p', { class: 'stream-status', role: 'status' }, 'Connecting…');
  const setStatus = (state: 'connecting' | 'live' | 'retrying', text: string) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  const skippedNote = h('p', { class: 'notice info', hidden: true }, 'Events arrived faster than the live view shows them; some are not listed here. The Sources and profile views list them all.');
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty' }, 'No events yet. Send one with the curl line on the Sources page; it appears here at once.');
  const table = h(
    'table',
    { class: 'events', hidden: true },
    h('caption', { class: 'visually-hidden' }, 'Events, newest first'),
    h('thead', null, h('tr', null, ['Time', 'Type', 'Source', 'Session', 'Profile'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );

  const shown = new Map<string, { time: number; row: HTMLTableRowElement }>();
  const addEvent = (event: EventDoc, fresh: boolean) => {
    if (shown.has(event.id)) return;
    const time = Date.parse(event.metadata.time.insert);
    const row = eventRow(event, fresh);
    // Newest on top: usually the first row, but a late commit can belong further down. Events are
    // added oldest first, so one with the same time as a row already shown is the newer of the two.
    const after = [...tbody.rows].find((r) => (shown.get(r.dataset.id as string)?.time ?? 0) <= time);
    tbody.insertBefore(row, after ?? null);
    shown.set(event.id, { time, row });
    while (tbody.rows.length > MAX_ROWS) {
      const last = tbody.rows[tbody.rows.length - 1] as HTMLTableRowElement;
      shown.delete(last.dataset.id as string);
      last.remove();
    }
    table.hidden = false;
    empty.hidden = true;
  };

  // Screen readers hear a count every few seconds, not every event.
  let unannounced = 0;
  const announceNew = () => {
    if (unannounced++ > 0) return;
    window.setTimeout(() => {
      announce(unannounced === 1 ? '1 new event' : `${unannounced} new events`);
      unannounced = 0;
    }, 3000);
  };

  const streamQuery = query({ source: filter.source, type: filter.type });
  const follow = async () => {
    let retryMs = 1000;
    while (!signal.aborted) {
      setStatus('connecting', 'Connecting…');
      try {
        await followEvents(
          streamQuery,
          {
            onReady: () => {
              retryMs = 1000;
              setStatus('live', 'Live: new events appear at the top.');
              // The stream starts now; what came before is read from the list and merged by id.
              getJson<Page<EventDoc>>(`/api/events${query({ ...filter, limit: BACKLOG })}`, signal)
                .then((page) => page.items.reverse().forEach((e) => addEvent(e, false)))
                .catch(() => undefined);
            },
            onEvent: (text) => {
              addEvent(JSON.parse(text) as EventDoc, true);
              announceNew();
            },
            onSkipped: () => (skippedNote.hidden = false),
          },
          signal,
        );
      } catch (error) {
        if (signal.aborted || (error instanceof ApiError && error.signedOut)) return;
      }
      if (signal.aborted) return;
      setStatus('retrying', `Disconnected. Reconnecting in ${retryMs / 1000} s…`);
      await sleep(retryMs, signal);
      retryMs = Math.min(retryMs * 2, 10_000);
    }
  };
  void follow();

  return {
    title: 'Live',
    body: h(
      'section',
      null,
      h('h1', { tabindex: '-1' }, 'Live events'),
      filters,
      status,
      skippedNote,
      empty,
      h('div', { class: 'table-wrap' }, table),
    ),
  };
}
